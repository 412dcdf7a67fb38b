//! Real `stp provider run` nodes surviving what providers' machines do: a `kill -9` right
//! after the commit, and the RPC endpoint dying for 20 s in the middle of a job. In both
//! the node finishes the job, is paid and is not slashed.

use std::time::Duration;

use stp_sdk::market::{Market, Outcome};

use crate::flaky_rpc::FlakyRpc;
use crate::node::{Daemon, InputServer, matmul_input, wait_for};
use crate::support::{Net, eth};

const STEP: Duration = Duration::from_secs(60);

/// The provider was paid its share and kept its whole stake and a clean record.
async fn assert_paid_not_slashed(m: &Market, provider: alloy::primitives::Address, share: &str) {
    assert_eq!(m.balance_of(provider).await.unwrap(), eth(share));
    let stake = m.stake_of(provider).await.unwrap();
    assert_eq!(stake.staked, eth("1"), "stake intact");
    assert_eq!(stake.locked, eth("0"), "collateral released");
    let rep = m.reputation_of(provider).await.unwrap();
    assert_eq!((rep.completed, rep.slashed, rep.missed), (1, 0, 0));
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_killed_after_commit_restarts_reveals_and_is_paid() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    net.staked_providers(2).await;
    let consumer = net.market(3).await;
    let server = InputServer::start(matmul_input(1)).await;
    // Two replicas: the reveal opens only once both committed, after the victim died.
    let spec = server.matmul_spec(&consumer, consumer.now().await.unwrap(), 2, [120, 60]);
    let id = consumer.post_job(spec).await.unwrap().job_id;

    let rpc = net.anvil.endpoint();
    let mut v = Daemon::start(&net, 1, &rpc, &dir.path().join("victim"), &[]);
    wait_for(&consumer, id, STEP, "the victim's commit", &[&v], |h| {
        h.committers().contains(&net.addr(1))
    })
    .await;
    v.kill9();

    let o = Daemon::start(&net, 2, &rpc, &dir.path().join("other"), &[]);
    wait_for(&consumer, id, STEP, "both commits", &[&v, &o], |h| {
        h.slots.len() == 2
    })
    .await;
    v.restart();
    let h = wait_for(&consumer, id, STEP, "finalization", &[&v, &o], |h| {
        h.outcome.is_some()
    })
    .await;

    assert_eq!(
        h.outcome,
        Some((Outcome::Completed, server.expected_result(&consumer, id)))
    );
    assert_eq!(h.reveals.len(), 2, "the restarted victim revealed");
    assert_paid_not_slashed(&consumer, net.addr(1), "0.01").await;
    assert!(v.log().contains("resuming job"), "{}", v.log());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_down_for_20_s_mid_job_the_node_recovers_and_is_paid() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let consumer = net.market(3).await;
    net.staked_providers(2).await;
    let server = InputServer::start(matmul_input(2)).await;
    let outage = Duration::from_secs(20);
    let rpc = FlakyRpc::start(net.anvil.endpoint().replace("http://", ""), outage).await;
    let mut d = Daemon::start(&net, 1, &rpc.url, &dir.path().join("p1"), &[]);
    // A second replica on a sound endpoint: the job needs node 1's reveal after the outage.
    let _other = Daemon::start(&net, 2, &net.anvil.endpoint(), &dir.path().join("p2"), &[]);

    // The node's commit (which takes its slot) reaches the chain, its reply is lost, then
    // the endpoint is dead for 20 s; the reveal window (60 s) outlasts the outage.
    rpc.arm();
    let spec = server.matmul_spec(&consumer, consumer.now().await.unwrap(), 2, [120, 60]);
    let id = consumer.post_job(spec).await.unwrap().job_id;
    wait_for(&consumer, id, STEP, "the commit", &[&d], |h| {
        h.slots.iter().any(|s| s.provider == net.addr(1))
    })
    .await;
    let start = tokio::time::Instant::now();
    while !rpc.tripped().await {
        assert!(
            start.elapsed() < STEP,
            "the commit never went through the relay"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rpc.is_dark().await);
    let h = wait_for(&consumer, id, STEP + outage, "finalization", &[&d], |h| {
        h.outcome.is_some()
    })
    .await;

    assert!(start.elapsed() >= outage, "finished during the outage?");
    assert_eq!(
        h.outcome,
        Some((Outcome::Completed, server.expected_result(&consumer, id)))
    );
    assert_paid_not_slashed(&consumer, net.addr(1), "0.01").await;
    assert!(d.is_running(), "the node survived the outage");
    let log = d.log();
    assert!(log.contains("chain reachable again"), "{log}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_sends_the_due_reveal_before_the_node_exits() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    net.staked_providers(2).await;
    let consumer = net.market(3).await;
    let server = InputServer::start(matmul_input(6)).await;
    let spec = server.matmul_spec(&consumer, consumer.now().await.unwrap(), 2, [120, 60]);
    let id = consumer.post_job(spec).await.unwrap().job_id;

    // This node polls the chain once at start, then not for a minute: it computes and
    // commits, but only its shutdown can send its reveal in time for this test.
    let rpc = net.anvil.endpoint();
    let mut s = Daemon::start(
        &net,
        1,
        &rpc,
        &dir.path().join("stopping"),
        &["--poll-ms", "60000"],
    );
    wait_for(&consumer, id, STEP, "the first commit", &[&s], |h| {
        h.committers().contains(&net.addr(1))
    })
    .await;
    let o = Daemon::start(&net, 2, &rpc, &dir.path().join("other"), &[]);
    wait_for(&consumer, id, STEP, "the other reveal", &[&s, &o], |h| {
        h.reveals.iter().any(|(p, _)| *p == net.addr(2))
    })
    .await;
    assert!(consumer.job_history(id).await.unwrap().outcome.is_none());

    assert!(
        s.terminate(Duration::from_secs(30)).await,
        "clean exit on SIGTERM:\n{}",
        s.log()
    );
    let h = consumer.job_history(id).await.unwrap();
    assert_eq!(
        h.outcome,
        Some((Outcome::Completed, server.expected_result(&consumer, id))),
        "{}",
        s.log()
    );
    assert_paid_not_slashed(&consumer, net.addr(1), "0.01").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_at_each_dangerous_point_of_a_job_costs_no_stake() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let consumer = net.market(2).await;
    net.staked_providers(1).await;
    let server = InputServer::start(matmul_input(7)).await;
    let rpc = net.anvil.endpoint();
    let data = dir.path().join("p1");

    // Each point is where a crash loses the most: a transaction mined but not yet recorded,
    // or the result stored but not yet committed (a second commit in another lane would
    // hold two slots and be slashed on both). The node exits there (as `kill -9`
    // would), then starts again on the same data directory without the fault.
    // One-replica jobs first: one transaction takes the slot with the result and settles
    // it, so both "mined" points are right after it.
    let solo = [
        "crash-after-computed",
        "crash-after-commit-mined",
        "crash-after-commit",
        "crash-after-reveal-mined",
    ];
    let mut crashes = 0;
    for point in solo {
        crash_and_restart(&net, &consumer, &server, &data, point, 1, &mut crashes).await;
    }
    // Then two-replica jobs beside a second, fault-free provider: a commit and a reveal.
    let other = net.market(3).await;
    other.stake(eth("1")).await.expect("stake");
    net.advance(&other, 1).await;
    let _other = Daemon::start(&net, 3, &rpc, &dir.path().join("p3"), &[]);
    let pair = [
        "crash-after-commit-mined",
        "crash-after-commit",
        "crash-after-reveal-mined",
    ];
    for point in pair {
        crash_and_restart(&net, &consumer, &server, &data, point, 2, &mut crashes).await;
    }
    let done = (solo.len() + pair.len()) as u64;
    let rep = consumer.reputation_of(net.addr(1)).await.unwrap();
    assert_eq!((rep.completed, rep.slashed, rep.missed), (done, 0, 0));
    let stake = consumer.stake_of(net.addr(1)).await.unwrap();
    assert_eq!((stake.staked, stake.locked), (eth("1"), eth("0")));
    let paid = eth("0.02") * alloy::primitives::U256::from(solo.len())
        + eth("0.01") * alloy::primitives::U256::from(pair.len());
    assert_eq!(consumer.balance_of(net.addr(1)).await.unwrap(), paid);
    server.stop().await;
}

/// Posts a `k`-replica job, runs provider 1 with the fault `point` until it exits there,
/// restarts it without the fault and waits for the job to complete with the right result.
async fn crash_and_restart(
    net: &Net,
    consumer: &Market,
    server: &InputServer,
    data: &std::path::Path,
    point: &str,
    k: u8,
    crashes: &mut usize,
) {
    let rpc = net.anvil.endpoint();
    let spec = server.matmul_spec(consumer, consumer.now().await.unwrap(), k, [120, 60]);
    let id = consumer.post_job(spec).await.unwrap().job_id;
    let mut crashing = Daemon::start(net, 1, &rpc, data, &["--fault", point]);
    let start = tokio::time::Instant::now();
    while crashing.is_running() {
        assert!(
            start.elapsed() < STEP,
            "never reached {point} (k = {k}):\n{}",
            crashing.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let d = Daemon::start(net, 1, &rpc, data, &[]);
    let h = wait_for(
        consumer,
        id,
        STEP,
        &format!("job {id} after {point}"),
        &[&d],
        |h| h.outcome.is_some(),
    )
    .await;
    assert_eq!(
        h.outcome,
        Some((Outcome::Completed, server.expected_result(consumer, id))),
        "{point} (k = {k})"
    );
    *crashes += 1;
    let log = d.log();
    assert_eq!(
        log.matches("fault injection: exiting now").count(),
        *crashes,
        "{log}"
    );
}

/// A job store that refuses a write stops the node through its loop, not with an exit deep
/// inside: no commit goes out for the result it could not record, the node winds down and
/// exits with the error named, and a restart on the same data directory does the job.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_store_write_stops_the_node_before_its_commit_and_a_restart_does_the_job() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let consumer = net.market(2).await;
    net.staked_providers(1).await;
    let server = InputServer::start(matmul_input(3)).await;
    let rpc = net.anvil.endpoint();
    let data = dir.path().join("p1");
    let spec = server.matmul_spec(&consumer, consumer.now().await.unwrap(), 1, [120, 60]);
    let id = consumer.post_job(spec).await.unwrap().job_id;

    let mut failing = Daemon::start(
        &net,
        1,
        &rpc,
        &data,
        &["--fault", "store-fails-at-computed"],
    );
    let status = failing.exited(STEP).await;
    let log = failing.log();
    // An error returned from main (1), not the old exit(70) nor a crash point's 137.
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!("cannot persist the state of job {id}")),
        "{log}"
    );
    assert!(log.contains("fatal error; sending the commits"), "{log}");
    assert!(log.contains("stopped; in-flight jobs resume"), "{log}");
    assert!(!log.contains("fault injection: exiting now"), "{log}");
    let h = consumer.job_history(id).await.unwrap();
    assert!(h.slots.is_empty(), "committed without a record: {h:?}");

    let d = Daemon::start(&net, 1, &rpc, &data, &[]);
    let h = wait_for(
        &consumer,
        id,
        STEP,
        "the job after the restart",
        &[&d],
        |h| h.outcome.is_some(),
    )
    .await;
    assert_eq!(
        h.outcome,
        Some((Outcome::Completed, server.expected_result(&consumer, id))),
        "{}",
        d.log()
    );
    assert_paid_not_slashed(&consumer, net.addr(1), "0.02").await;
    server.stop().await;
}
