//! Job announcements over gossipsub, checked against the chain: a provider node acts on
//! an honest one long before its next chain poll; lies are rejected, unknown jobs ignored.

use std::time::Duration;

use stp_node::daemon::gossip_verdict;
use stp_node::p2p::Verdict;
use stp_sdk::market::announcement;
use stp_sdk::p2p::PeerLocation;

use crate::node::{Daemon, InputServer, matmul_input, stp_bin, wait_for};
use crate::support::Net;

#[tokio::test(flavor = "multi_thread")]
async fn announcements_are_accepted_only_when_the_chain_agrees() {
    let net = Net::start(false).await;
    let (consumer, provider) = (net.market(2).await, net.market(1).await);
    let server = InputServer::start(matmul_input(4)).await;
    let spec = server.matmul_spec(&consumer, consumer.now().await.unwrap(), 1, [120, 60]);
    let posted = consumer.post_job(spec.clone()).await.unwrap();
    let (id, at) = (posted.job_id, posted.posted_at);
    let d = net.deployment.clone();
    let honest = announcement(&d, id, &spec, at, [7; 32], PeerLocation::default());

    assert_eq!(gossip_verdict(&provider, &honest).await, Verdict::Accept);
    let mut richer = honest.clone();
    richer.bounty *= 10;
    assert_eq!(gossip_verdict(&provider, &richer).await, Verdict::Reject);
    let mut later = honest.clone();
    later.posted_at += 3600;
    assert_eq!(gossip_verdict(&provider, &later).await, Verdict::Reject);
    let unknown = announcement(&d, id + 1, &spec, at, [7; 32], PeerLocation::default());
    assert_eq!(gossip_verdict(&provider, &unknown).await, Verdict::Ignore);
    let mut other_chain = honest.clone();
    other_chain.chain_id += 1;
    assert_eq!(
        gossip_verdict(&provider, &other_chain).await,
        Verdict::Ignore
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_takes_an_announced_job_before_its_next_chain_poll() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    net.staked_providers(1).await;
    // The chain watcher polls once at start, then only every 60 s.
    let d = Daemon::start(
        &net,
        1,
        &net.anvil.endpoint(),
        &dir.path().join("p1"),
        &["--poll-ms", "60000"],
    );
    let addr = d.p2p_addr().await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let input = dir.path().join("in.bin");
    std::fs::write(&input, matmul_input(5)).unwrap();
    let deployment = dir.path().join("deployment.json");
    net.deployment.save(&deployment).unwrap();
    let key = format!("0x{}", alloy::hex::encode(net.anvil.keys()[2].to_bytes()));
    let started = tokio::time::Instant::now();
    let _consumer = tokio::process::Command::new(stp_bin())
        .args([
            "job",
            "post",
            "--kernel",
            "matmul-u32",
            "--bounty",
            "0.01",
            "--wait",
        ])
        .arg("--input")
        .arg(&input)
        .args(["--bootstrap", &addr, "--rpc-url", &net.anvil.endpoint()])
        .arg("--deployment")
        .arg(&deployment)
        .args(["--private-key", &key])
        .arg("--data-dir")
        .arg(dir.path().join("consumer"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let observer = net.market(3).await;
    let wait = Duration::from_secs(30);
    wait_for(&observer, 1, wait, "the commit", &[&d], |h| {
        !h.slots.is_empty()
    })
    .await;
    assert!(
        started.elapsed() < wait,
        "committed only after the next chain poll"
    );
    assert!(
        d.log()
            .contains("job announced over gossip, checked on-chain"),
        "{}",
        d.log()
    );
}
