//! Blob transfers: intact delivery, corrupt sources, resume, multi-source.

use std::os::unix::fs::FileExt;

use stp_node::p2p::{FetchOptions, Offence, P2pEvent, Role, TransferError};
use stp_sdk::p2p::{Naming, input_hash, sha256};
use tokio::sync::watch;

use crate::common::{eventually, next_event, node, spawn_with, test_bytes, test_config};

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_moves_intact_and_is_served_onwards() {
    // Inputs are named by BLAKE3, results by sha256: both move the same way.
    for (naming, seed) in [(Naming::Blake3, 1), (Naming::Sha256, 11)] {
        blob_moves_intact(naming, seed).await;
    }
}

async fn blob_moves_intact(naming: Naming, seed: u64) {
    let a = node(Role::Provider, vec![]).await;
    let b = node(Role::Consumer, vec![a.addr.clone()]).await;
    let data = test_bytes(5 * MIB + 12_345, seed);
    let hash = a.client.add_blob(data.clone(), naming).await.unwrap();
    let expected = match naming {
        Naming::Blake3 => input_hash(&data),
        Naming::Sha256 => sha256(&data),
    };
    assert_eq!(hash, expected);

    let report = b
        .client
        .fetch_blob(hash, vec![a.client.peer_id()])
        .await
        .expect("fetch");
    assert_eq!(
        (report.size, report.chunks, report.resumed_chunks),
        (data.len() as u64, 6, 0)
    );
    assert_eq!(std::fs::read(&report.path).unwrap(), data);
    assert!(b.client.has_blob(&hash));

    // What b fetched it now serves: a third node gets it from b alone.
    let c = node(Role::Consumer, vec![b.addr.clone()]).await;
    let report = c
        .client
        .fetch_blob(hash, vec![b.client.peer_id()])
        .await
        .expect("fetch from b");
    assert_eq!(std::fs::read(report.path).unwrap(), data);

    let missing = c.client.fetch_blob([9; 32], vec![a.client.peer_id()]).await;
    assert!(
        matches!(
            missing,
            Err(stp_node::p2p::P2pError::Transfer(TransferError::NotFound(
                _
            )))
        ),
        "{missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_source_is_caught_banned_and_fetch_completes_from_honest_peer() {
    let honest = node(Role::Provider, vec![]).await;
    let liar = node(Role::Provider, vec![]).await;
    let data = test_bytes(40 * MIB, 2);
    let hash = honest
        .client
        .add_blob(data.clone(), Naming::Blake3)
        .await
        .unwrap();
    assert_eq!(
        liar.client
            .add_blob(data.clone(), Naming::Blake3)
            .await
            .unwrap(),
        hash
    );
    // The liar's disk copy goes bad in every chunk; its manifest still claims the truth.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(liar.client.store().blob_path(&hash))
        .unwrap();
    for chunk in 0..40u64 {
        file.write_all_at(&[0xEE; 16], chunk * MIB as u64 + 100)
            .unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(
        Role::Consumer,
        &dir,
        vec![honest.addr.clone(), liar.addr.clone()],
    );
    config.limits.max_chunks_per_request = 2;
    let mut consumer = spawn_with(config, dir).await;
    let sources = vec![liar.client.peer_id(), honest.client.peer_id()];
    let report = consumer
        .client
        .fetch_blob(hash, sources)
        .await
        .expect("fetch completes");

    assert_eq!(std::fs::read(&report.path).unwrap(), data, "blob intact");
    assert_eq!(report.banned.len(), 1, "{:?}", report.banned);
    assert_eq!(report.banned[0].0, liar.client.peer_id());
    assert!(matches!(report.banned[0].1, Offence::CorruptChunk { .. }));
    let from_liar = report
        .chunks_per_peer
        .iter()
        .find(|(p, _)| *p == liar.client.peer_id())
        .map_or(0, |(_, n)| *n);
    assert_eq!(from_liar, 0, "no chunk from the liar was accepted");
    let liar_id = liar.client.peer_id();
    next_event(&mut consumer.events, 10, |e| match e {
        P2pEvent::PeerPenalized {
            peer,
            offence: Offence::CorruptChunk { .. },
        } if peer == liar_id => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_fetch_resumes_from_verified_chunks_on_disk() {
    let source = node(Role::Provider, vec![]).await;
    let consumer = node(Role::Consumer, vec![source.addr.clone()]).await;
    let data = test_bytes(64 * MIB, 3);
    let hash = source
        .client
        .add_blob(data.clone(), Naming::Blake3)
        .await
        .unwrap();

    let (tx, mut rx) = watch::channel(0u64);
    let opts = FetchOptions {
        progress: Some(tx),
        ..Default::default()
    };
    let (client, peer) = (consumer.client.clone(), source.client.peer_id());
    let task = tokio::spawn(async move { client.fetch_blob_with(hash, vec![peer], opts).await });
    rx.wait_for(|bytes| *bytes >= 4 * MIB as u64).await.unwrap();
    task.abort();
    assert!(
        task.await.unwrap_err().is_cancelled(),
        "fetch was interrupted before it finished"
    );
    assert!(!consumer.client.has_blob(&hash));

    let report = consumer
        .client
        .fetch_blob(hash, vec![peer])
        .await
        .expect("resumed fetch");
    assert!(
        report.resumed_chunks >= 4,
        "resumed {} chunks",
        report.resumed_chunks
    );
    assert!(report.resumed_chunks < 64);
    let fetched: usize = report.chunks_per_peer.iter().map(|(_, n)| n).sum();
    assert_eq!(
        fetched + report.resumed_chunks,
        64,
        "only the missing chunks were fetched"
    );
    assert_eq!(std::fs::read(report.path).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_pulls_from_several_sources_in_parallel() {
    let mut sources = Vec::new();
    let data = test_bytes(32 * MIB, 4);
    for _ in 0..4 {
        let s = node(Role::Provider, vec![]).await;
        s.client
            .add_blob(data.clone(), Naming::Blake3)
            .await
            .unwrap();
        sources.push(s);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(
        Role::Consumer,
        &dir,
        sources.iter().map(|s| s.addr.clone()).collect(),
    );
    config.limits.max_chunks_per_request = 1;
    config.limits.streams_per_source = 2;
    let consumer = spawn_with(config, dir).await;
    eventually("connected to all sources", 10, || async {
        consumer.client.connected_peers().await.unwrap().len() == 4
    })
    .await;
    let peers = sources.iter().map(|s| s.client.peer_id()).collect();
    let report = consumer
        .client
        .fetch_blob(input_hash(&data), peers)
        .await
        .expect("fetch");
    assert_eq!(std::fs::read(&report.path).unwrap(), data);
    let contributing = report
        .chunks_per_peer
        .iter()
        .filter(|(_, n)| *n > 0)
        .count();
    assert!(
        contributing >= 2,
        "chunks came from several peers: {:?}",
        report.chunks_per_peer
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_fetcher_is_not_held_back_by_earlier_uploads_of_the_same_chunks() {
    let source = node(Role::Provider, vec![]).await;
    let data = test_bytes(8 * MIB, 12);
    let hash = source
        .client
        .add_blob(data.clone(), Naming::Blake3)
        .await
        .unwrap();
    for round in 0..2 {
        let consumer = node(Role::Consumer, vec![source.addr.clone()]).await;
        let started = std::time::Instant::now();
        let report = consumer
            .client
            .fetch_blob(hash, vec![source.client.peer_id()])
            .await
            .expect("fetch");
        // The scheduler waits 5 s before re-asking a source for chunks it is sending
        // elsewhere; chunks it finished sending long ago must not count as such.
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "round {round} took {:?}",
            started.elapsed()
        );
        assert_eq!(std::fs::read(&report.path).unwrap(), data);
    }
    assert!(source.client.served_bytes() >= 2 * data.len() as u64);
}
