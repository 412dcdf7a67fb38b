//! Protocol v2 against a consumer that attacks its own job, with real provider nodes on
//! default flags: it withholds its input, or posts a custom kernel that does not compile
//! or runs out of loop fuel; and a 30 % Sybil group that races honest nodes for the slots
//! of many jobs. In the first three no honest provider loses anything and the consumer gets back exactly its bounty; in
//! the third the measured rate of Sybil majorities is printed next to the binomial tail.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, U256, aliases::U40, aliases::U96};
use stp_sdk::kernels::{
    BindingDecl, BindingKind,
    custom::{CustomBuffer, CustomJob},
};
use stp_sdk::market::{Market, Outcome};

use crate::node::{Daemon, InputServer, matmul_input, stp_bin};
use crate::support::{Net, Posted, eth};

/// Every node's log, for an assertion message.
fn logs(nodes: &[Daemon]) -> String {
    nodes
        .iter()
        .map(Daemon::log)
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// Waits until every node logged that it gave the job up (nothing at stake).
async fn wait_all_abandon(nodes: &[Daemon], what: &str) {
    let start = tokio::time::Instant::now();
    while !nodes.iter().all(|d| d.log().contains("abandoning job")) {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the nodes did not give up the job ({what}):\n{}",
            logs(nodes)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for d in nodes {
        assert!(
            !d.log().contains("slot taken"),
            "a node committed:\n{}",
            d.log()
        );
    }
}

/// After the commit deadline anyone finalizes: the job is unfilled, the consumer is
/// credited exactly its bounty back, and every honest provider has exactly what it had.
async fn assert_unfilled_and_nobody_gained(net: &Net, id: u64, consumer: Address, bounty: U256) {
    let keeper = net.market(9).await;
    let live = keeper.job_counters(id).await.unwrap().expect("still live");
    assert_eq!(live.committed, 0, "no honest node took a slot");
    net.advance(&keeper, 120).await;
    keeper
        .finalize(id)
        .await
        .expect("anyone finalizes the unfilled job");
    let h = keeper.job_history(id).await.unwrap();
    assert_eq!(h.outcome.map(|(o, _)| o), Some(Outcome::Unfilled));
    assert_eq!(
        keeper.balance_of(consumer).await.unwrap(),
        bounty,
        "refund, nothing more"
    );
    assert_eq!(keeper.burned().await.unwrap(), U256::ZERO);
    for i in 1..=3 {
        let who = net.addr(i);
        let s = keeper.stake_of(who).await.unwrap();
        assert_eq!(
            (s.staked, s.locked),
            (eth("1"), U256::ZERO),
            "provider {i} stake"
        );
        assert_eq!(keeper.balance_of(who).await.unwrap(), U256::ZERO);
        let r = keeper.reputation_of(who).await.unwrap();
        assert_eq!(
            (r.completed, r.slashed, r.missed),
            (0, 0, 0),
            "provider {i} record"
        );
    }
}

fn start_nodes(net: &Net, dir: &std::path::Path, extra: &[&str]) -> Vec<Daemon> {
    let rpc = net.anvil.endpoint();
    (1..=3)
        .map(|i| Daemon::start(net, i, &rpc, &dir.join(format!("p{i}")), extra))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_that_withholds_its_input_gains_nothing_and_costs_nobody_stake() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    net.staked_providers(3).await;
    // The nodes look at the chain every 2 s (and hear no gossip), so the consumer is gone
    // before any of them can fetch.
    let nodes = start_nodes(&net, dir.path(), &["--poll-ms", "2000"]);
    for d in &nodes {
        d.p2p_addr().await;
    }

    // The stock CLI posts and serves the input; it is killed the moment it says "posted".
    let input = dir.path().join("in.bin");
    std::fs::write(&input, matmul_input(9)).unwrap();
    let deployment = dir.path().join("deployment.json");
    net.deployment.save(&deployment).unwrap();
    let key = format!("0x{}", alloy::hex::encode(net.anvil.keys()[4].to_bytes()));
    let mut post = Command::new(stp_bin())
        .args(["job", "post", "--kernel", "matmul-u32", "--replicas", "3"])
        .args([
            "--bounty",
            "0.03",
            "--collateral",
            "0.1",
            "--commit-secs",
            "30",
        ])
        .args(["--reveal-secs", "10", "--wait"])
        .args(["--rpc-url", &net.anvil.endpoint(), "--private-key", &key])
        .arg("--input")
        .arg(&input)
        .arg("--deployment")
        .arg(&deployment)
        .arg("--data-dir")
        .arg(dir.path().join("consumer"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = post.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("posted job"))
        .expect("stp job post said it posted");
    post.kill().unwrap();
    post.wait().unwrap();
    let id: u64 = line
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no job id in {line:?}"));

    wait_all_abandon(&nodes, "withheld input").await;
    for d in &nodes {
        let log = d.log();
        assert!(log.contains("input_unavailable"), "{log}");
        // Retried with backoff, a bounded number of times, not on every poll.
        let retries = log.matches("input fetch failed; will retry").count();
        assert!(retries <= 2, "{retries} retries:\n{log}");
    }
    assert_unfilled_and_nobody_gained(&net, id, net.addr(4), eth("0.03")).await;
}

/// Posts `job` to three real nodes on the GPU path (Mesa's lavapipe without a GPU), which
/// must each fail it the same way (`expected` in their logs), commit nothing and keep
/// running; then the job ends unfilled and nobody gains or loses anything.
async fn a_custom_kernel_every_node_refuses(job: CustomJob<'_>, expected: &str) {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    net.staked_providers(3).await;
    let mut nodes = start_nodes(&net, dir.path(), &["--backend", "auto"]);
    for d in &nodes {
        d.p2p_addr().await;
    }
    let envelope = job.encode().expect("a well-formed envelope");
    let server = InputServer::start(envelope.clone()).await;
    let consumer = net.market(4).await;
    let now = consumer.now().await.unwrap();
    let spec = stp_sdk::market::JobSpec {
        consumer: net.addr(4),
        kernelId: B256::from(job.kernel_id().0),
        inputHash: B256::from(stp_sdk::p2p::input_hash(&envelope)),
        inputSize: envelope.len() as u64,
        maxOutputSize: 64,
        bounty: U96::saturating_from(eth("0.03")),
        collateral: U96::saturating_from(eth("0.1")),
        replicas: 3,
        quorum: 2,
        minReputation: 0,
        commitDeadline: U40::from(now + 60),
        revealDeadline: U40::from(now + 90),
        inputLocation: Bytes::from(server.location.clone()),
    };
    let posted = Posted::post(&consumer, spec).await;

    wait_all_abandon(&nodes, expected).await;
    for d in &mut nodes {
        let log = d.log();
        assert!(log.contains("kernel_failed"), "{log}");
        assert!(log.contains(expected), "{log}");
        assert!(d.is_running(), "the node keeps running:\n{log}");
    }
    assert_unfilled_and_nobody_gained(&net, posted.id, net.addr(4), eth("0.03")).await;
    server.stop().await;
}

fn custom_job(wgsl: &str) -> CustomJob<'_> {
    CustomJob {
        wgsl: wgsl.into(),
        entry_point: "main".into(),
        buffers: vec![CustomBuffer {
            decl: BindingDecl {
                binding: 0,
                kind: BindingKind::StorageReadWrite,
            },
            size: 64,
            init: Vec::new().into(),
        }],
        output_binding: 0,
        workgroups: [1, 1, 1],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_kernel_that_does_not_compile_costs_nobody_stake() {
    let job = custom_job("@compute @workgroup_size(1) fn main( { this is not WGSL");
    a_custom_kernel_every_node_refuses(job, "WGSL module rejected").await;
}

/// A loop of 70,000 iterations: Mesa would silently stop it at 65,535 and a real GPU would
/// not; metered, it runs out of fuel on every backend, so no honest node commits.
#[tokio::test(flavor = "multi_thread")]
async fn a_custom_kernel_out_of_loop_fuel_costs_nobody_stake() {
    let job = custom_job(
        "@group(0) @binding(0) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(1) fn main() {
    var c = 0u;
    for (var i = 0u; i < 70000u; i++) { c += 1u; }
    o[0] = c;
}",
    );
    a_custom_kernel_every_node_refuses(job, "ran out of fuel").await;
}

const SYBILS: [usize; 3] = [4, 5, 6];
const JUNK: B256 = B256::repeat_byte(0x5b);

/// One step of the Sybil group: each identity commits junk to every open job the draw
/// makes it eligible for (at once: it computes nothing), and reveals once the job filled.
async fn sybil_step(sybils: &[Market], jobs: &[Posted], done: &mut [[u8; 3]]) {
    for (j, job) in jobs.iter().enumerate() {
        let Ok(Some(live)) = sybils[0].job_counters(job.id).await else {
            continue;
        };
        for (s, m) in sybils.iter().enumerate() {
            match done[j][s] {
                0 if live.committed < 3 => {
                    let eligible = m
                        .draw_of(&job.r(), m.account())
                        .await
                        .is_ok_and(|d| d.eligible);
                    if eligible && m.commit(&job.r(), j as u64, JUNK, B256::ZERO).await.is_ok() {
                        done[j][s] = 1;
                    }
                }
                1 if live.committed == 3
                    && m.reveal(&job.r(), j as u64, JUNK, B256::ZERO).await.is_ok() =>
                {
                    done[j][s] = 2;
                }
                _ => {}
            }
        }
    }
}

#[allow(clippy::print_stdout, reason = "the test reports the measured rate")]
#[tokio::test(flavor = "multi_thread")]
async fn a_thirty_percent_sybil_group_wins_a_majority_about_as_often_as_the_binomial_tail() {
    const BATCHES: usize = 6;
    const PER_BATCH: usize = 8;
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    // Honest: three nodes with 7/3 ETH each; Sybils: three identities with 1 ETH each (30 %).
    for i in 1..=3 {
        net.market(i)
            .await
            .stake(eth("2.333333333333333334"))
            .await
            .unwrap();
    }
    let mut sybils = Vec::new();
    for i in SYBILS {
        let m = net.market(i).await;
        m.stake(eth("1")).await.unwrap();
        sybils.push(m);
    }
    net.advance(&sybils[0], 1).await;
    let nodes = start_nodes(&net, dir.path(), &["--max-concurrent", "8"]);
    for d in &nodes {
        d.p2p_addr().await;
    }
    let server = InputServer::start(matmul_input(11)).await;
    let consumer = net.market(7).await;

    let (mut majorities, mut total) = (0usize, 0usize);
    for _ in 0..BATCHES {
        let now = consumer.now().await.unwrap();
        let mut jobs = Vec::new();
        for _ in 0..PER_BATCH {
            let mut spec = server.matmul_spec(&consumer, now, 3, [40, 20]);
            spec.bounty = U96::saturating_from(eth("0.003"));
            spec.collateral = U96::saturating_from(eth("0.01"));
            jobs.push(Posted::post(&consumer, spec).await);
        }
        let mut done = vec![[0u8; 3]; jobs.len()];
        let start = tokio::time::Instant::now();
        loop {
            sybil_step(&sybils, &jobs, &mut done).await;
            let mut settled = 0;
            for job in &jobs {
                if consumer.job_counters(job.id).await.unwrap().is_none() {
                    settled += 1;
                }
            }
            if settled == jobs.len() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "jobs did not settle:\n{}",
                logs(&nodes)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for job in &jobs {
            let h = consumer.job_history(job.id).await.unwrap();
            let sybil_slots = h
                .slots
                .iter()
                .filter(|s| SYBILS.iter().any(|&i| net.addr(i) == s.provider))
                .count();
            majorities += usize::from(sybil_slots >= 2);
            total += 1;
        }
    }
    let measured = majorities as f64 / total as f64;
    // P(X >= 2), X ~ Binomial(3, 0.3): what a fair per-slot lot would give.
    let binomial = 3.0 * 0.3f64.powi(2) * 0.7 + 0.3f64.powi(3);
    println!(
        "sybil majority rate (30 % of stake, k=3, {total} jobs, real nodes): measured {measured:.3} ({majorities}/{total}), binomial tail {binomial:.3}"
    );
    // Under v1 (first come, first served) a consumer's own Sybils took every slot.
    assert!(measured < 0.6, "Sybils won {majorities} of {total}");
    server.stop().await;
}
