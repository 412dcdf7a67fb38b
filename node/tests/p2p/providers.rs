//! Provider records of the first provider of a network: it publishes before any peer
//! exists, and peers that come later still find it under the providers key.

use std::time::Duration;

use stp_node::p2p::{P2pError, ProviderRecordStatus, Role, records};
use stp_sdk::p2p::{Capabilities, ProviderRecord};

use crate::common::{TestNode, eventually, node, spawn_with, test_config};

fn record_of(p: &TestNode, n: u8) -> ProviderRecord {
    ProviderRecord {
        location: records::to_location(&p.client.peer_id(), std::slice::from_ref(&p.addr)),
        eth_address: [n; 20],
        capabilities: Capabilities {
            adapter: format!("llvmpipe #{n}"),
            backend: "vulkan".into(),
            memory_bytes: 1 << 30,
            benchmark_score: 100,
            price_floor: 1,
        },
        published_at: 1_700_000_000,
        // A version 2 record: the parts travel through the DHT with it.
        parts: vec![[n; 32]],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_provider_is_listed_under_the_providers_key_for_later_peers() {
    let first = node(Role::Provider, vec![]).await;
    let record = record_of(&first, 1);
    // No peer can take a copy yet: the put may report that, but the node must still list
    // itself as a provider.
    let _ = first.client.put_provider_record(&record).await;

    let consumer = node(Role::Consumer, vec![first.addr.clone()]).await;
    eventually("the consumer finds the first provider", 20, || async {
        consumer.client.find_providers().await.unwrap_or_default() == vec![record.clone()]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_provider_copies_its_record_to_the_first_dht_peer_and_is_found_once_offline() {
    let first = node(Role::Provider, vec![]).await;
    let record = record_of(&first, 1);
    let err = first.client.put_provider_record(&record).await;
    assert!(
        matches!(err, Err(P2pError::ProviderRecordNotReplicated(_))),
        "{err:?}"
    );
    assert_eq!(
        first.client.provider_record_status().await.unwrap(),
        Some(ProviderRecordStatus {
            publications: 1,
            replicated: false
        })
    );

    // The default schedule is minutes away: only the new peer can trigger the copy.
    let second = node(Role::Provider, vec![first.addr.clone()]).await;
    eventually("the record reaches the second provider", 20, || async {
        first
            .client
            .provider_record_status()
            .await
            .unwrap()
            .is_some_and(|s| s.replicated)
    })
    .await;
    first.client.shutdown().await;
    eventually("the first provider is gone", 20, || async {
        second.client.connected_peers().await.unwrap().is_empty()
    })
    .await;

    let consumer = node(Role::Consumer, vec![second.addr.clone()]).await;
    eventually(
        "the consumer finds the offline first provider via the second",
        20,
        || async {
            consumer.client.find_providers().await.unwrap_or_default() == vec![record.clone()]
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_record_is_published_again_on_schedule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(Role::Provider, &dir, vec![]);
    config.provider_republish = Duration::from_millis(200);
    let first = spawn_with(config, dir).await;
    let _second = node(Role::Provider, vec![first.addr.clone()]).await;
    let _ = first
        .client
        .put_provider_record(&record_of(&first, 1))
        .await;
    eventually("three more publications, all replicated", 20, || async {
        first
            .client
            .provider_record_status()
            .await
            .unwrap()
            .is_some_and(|s| s.publications >= 4 && s.replicated)
    })
    .await;
}
