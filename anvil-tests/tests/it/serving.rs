//! A provider paid for an output must serve it: when adding the output to its blob store
//! fails at settlement (here its store's scratch directory is replaced by a file, so writes
//! fail as on a full or broken disk), the node keeps the result and tries again until the
//! output is served, instead of logging the failure and dropping it.

use std::time::Duration;

use stp_sdk::market::Outcome;

use crate::node::{Daemon, InputServer, matmul_input, wait_for};
use crate::support::Net;

const STEP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn an_output_that_cannot_be_stored_at_settlement_is_served_once_the_store_works_again() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    net.staked_providers(2).await;
    let consumer = net.market(3).await;
    let server = InputServer::start(matmul_input(3)).await;
    // Two replicas: settlement waits for the second node, started once the first's store
    // is broken.
    let spec = server.matmul_spec(&consumer, consumer.now().await.unwrap(), 2, [120, 60]);
    let id = consumer.post_job(spec).await.unwrap().job_id;
    let rpc = net.anvil.endpoint();
    let a_dir = dir.path().join("a");
    let a = Daemon::start(&net, 1, &rpc, &a_dir, &[]);
    wait_for(&consumer, id, STEP, "a's commit", &[&a], |h| {
        h.committers().contains(&net.addr(1))
    })
    .await;
    let scratch = a_dir.join("blobs").join("tmp");
    std::fs::remove_dir_all(&scratch).unwrap();
    std::fs::write(&scratch, b"not a directory").unwrap();

    let b = Daemon::start(&net, 2, &rpc, &dir.path().join("b"), &[]);
    let h = wait_for(&consumer, id, STEP, "settlement", &[&a, &b], |h| {
        h.outcome.is_some()
    })
    .await;
    let agreed = server.expected_result(&consumer, id);
    assert_eq!(h.outcome, Some((Outcome::Completed, agreed)));
    let start = tokio::time::Instant::now();
    while !a.log().contains("cannot serve the output yet") {
        assert!(start.elapsed() < STEP, "no serving failure:\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let served = a_dir
        .join("blobs")
        .join("blobs")
        .join(alloy::hex::encode(agreed));
    assert!(!served.exists(), "not served while the store is broken");

    std::fs::remove_file(&scratch).unwrap();
    std::fs::create_dir(&scratch).unwrap();
    while !served.exists() {
        assert!(
            start.elapsed() < STEP,
            "the output was never served:\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let blob = std::fs::read(&served).unwrap();
    assert_eq!(
        alloy::primitives::B256::from(stp_sdk::p2p::sha256(&blob)),
        agreed
    );
    // The log line follows the blob's rename into the store: wait for it, do not race it.
    while !a.log().contains("serving the output") {
        assert!(
            start.elapsed() < STEP,
            "the node never said it serves the output:\n{}",
            a.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}
