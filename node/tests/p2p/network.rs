//! Five-node networks: gossiped announcements and Kademlia provider records.

use stp_node::p2p::{P2pEvent, Role, records};
use stp_sdk::p2p::{Capabilities, JobAnnouncement, ProviderRecord};

use crate::common::{eventually, next_event, node};

fn announcement(from: &crate::common::TestNode, job: u8) -> JobAnnouncement {
    JobAnnouncement {
        chain_id: 31337,
        contract: [0xCC; 20],
        job_id: [job; 32],
        kernel_id: [2; 32],
        input_hash: [3; 32],
        input_manifest_root: [4; 32],
        input_size: 1024,
        max_output_size: 4096,
        bounty: 5_000_000,
        replicas: 3,
        posted_at: 10,
        commit_deadline: 20,
        reveal_deadline: 30,
        input_location: records::to_location(
            &from.client.peer_id(),
            std::slice::from_ref(&from.addr),
        ),
        part_hints: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcement_reaches_all_five_nodes_and_garbage_is_rejected() {
    let hub = node(Role::Provider, vec![]).await;
    let mut nodes = vec![hub];
    for _ in 0..4 {
        let boot = nodes[0].addr.clone();
        nodes.push(node(Role::Provider, vec![boot]).await);
    }
    for n in &nodes {
        eventually("every node sees a subscribed peer", 20, || async {
            n.client.topic_peers().await.unwrap() >= 1
        })
        .await;
    }
    eventually("hub sees all four subscribers", 20, || async {
        nodes[0].client.topic_peers().await.unwrap() == 4
    })
    .await;

    let ann = announcement(&nodes[2], 7);
    let publisher = nodes[2].client.peer_id();
    nodes[2].client.announce_job(&ann).await.expect("publish");
    for (i, n) in nodes.iter_mut().enumerate().filter(|(i, _)| *i != 2) {
        let got = next_event(&mut n.events, 20, |e| match e {
            P2pEvent::Announcement { from, ann, .. } => Some((from, *ann)),
            _ => None,
        })
        .await;
        assert_eq!(
            got,
            (publisher, ann.clone()),
            "node {i} got the announcement intact"
        );
    }

    // A well-signed gossipsub message whose payload is not an announcement: rejected by the
    // hub, which penalises the publisher and lowers its gossipsub score.
    let bad_publisher = nodes[3].client.peer_id();
    nodes[3]
        .client
        .publish_raw(b"not an announcement".to_vec())
        .await
        .expect("publish raw");
    let offence = next_event(&mut nodes[0].events, 20, |e| match e {
        P2pEvent::PeerPenalized { peer, offence } if peer == bad_publisher => Some(offence),
        _ => None,
    })
    .await;
    assert!(
        offence.to_string().contains("invalid announcement"),
        "{offence}"
    );
    eventually(
        "publisher's gossipsub score drops below zero",
        20,
        || async {
            nodes[0]
                .client
                .gossip_score(bad_publisher)
                .await
                .unwrap()
                .is_some_and(|s| s < 0.0)
        },
    )
    .await;
    // The garbage never surfaces as an announcement anywhere; a valid one still flows.
    let ann2 = announcement(&nodes[1], 8);
    nodes[1].client.announce_job(&ann2).await.expect("publish");
    let got = next_event(&mut nodes[4].events, 20, |e| match e {
        P2pEvent::Announcement { ann, .. } => Some(*ann),
        _ => None,
    })
    .await;
    assert_eq!(
        got, ann2,
        "the first announcement after the garbage is the valid one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_records_are_found_via_kademlia_from_a_bootstrap_only_node() {
    let hub = node(Role::Provider, vec![]).await;
    let mut providers = Vec::new();
    for _ in 0..3 {
        providers.push(node(Role::Provider, vec![hub.addr.clone()]).await);
    }
    let consumer = node(Role::Consumer, vec![hub.addr.clone()]).await;

    let mut expected = Vec::new();
    for (i, p) in providers.iter().enumerate() {
        let record = ProviderRecord {
            location: records::to_location(&p.client.peer_id(), std::slice::from_ref(&p.addr)),
            eth_address: [i as u8 + 1; 20],
            capabilities: Capabilities {
                adapter: format!("llvmpipe #{i}"),
                backend: "vulkan".into(),
                memory_bytes: 1 << 30,
                benchmark_score: 100 + i as u64,
                price_floor: 1,
            },
            published_at: 1_700_000_000,
            parts: Vec::new(),
        };
        eventually("provider record stored in the DHT", 20, || async {
            p.client.put_provider_record(&record).await.is_ok()
        })
        .await;
        expected.push(record);
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let found = loop {
        let found = consumer.client.find_providers().await.unwrap_or_default();
        if found.len() >= expected.len() {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer found only {found:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    for rec in &expected {
        assert!(
            found.contains(rec),
            "record of {:?} found intact",
            rec.capabilities.adapter
        );
    }
}
