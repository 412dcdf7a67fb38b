//! A consumer that never touches our SDK: the job is posted with Foundry's `cast`, the
//! result and the payout are read back with `cast`. Our provider node still finds the
//! job on-chain, computes it, and gets it finalized and paid.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use stp_sdk::market::Outcome;

use crate::node::{Daemon, InputServer, matmul_input, wait_for};
use crate::support::Net;

const POST_JOB: &str = "postJob((address,bytes32,bytes32,uint64,uint64,uint96,uint96,uint8,uint8,uint32,uint40,uint40,bytes))";

fn cast_path() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../node_modules/@foundry-rs/cast-linux-amd64/bin/cast");
    assert!(
        p.exists(),
        "cast not found at {}: run `npm ci`",
        p.display()
    );
    p
}

/// Runs cast, asserting success; returns trimmed stdout.
fn cast(args: &[&str]) -> String {
    let out = Command::new(cast_path())
        .args(args)
        .output()
        .expect("run cast");
    assert!(
        out.status.success(),
        "cast {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_posted_with_cast_is_picked_up_completed_and_paid() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    let observer = net.market(3).await;
    net.staked_providers(1).await;
    let rpc = net.anvil.endpoint();
    let d = Daemon::start(&net, 1, &rpc, &dir.path().join("p1"), &[]);

    let server = InputServer::start(matmul_input(3)).await;
    let consumer = net.market(2).await;
    let s = server.matmul_spec(&consumer, consumer.now().await.unwrap(), 1, [120, 60]);
    let tuple = format!(
        "({},{},{},{},{},{},{},{},{},{},{},{},0x{})",
        s.consumer,
        s.kernelId,
        s.inputHash,
        s.inputSize,
        s.maxOutputSize,
        s.bounty,
        s.collateral,
        s.replicas,
        s.quorum,
        s.minReputation,
        s.commitDeadline,
        s.revealDeadline,
        alloy::hex::encode(&s.inputLocation)
    );
    let escrow = net.deployment.job_escrow.to_string();
    let key = format!("0x{}", alloy::hex::encode(net.anvil.keys()[2].to_bytes()));
    let value = format!("{}wei", s.bounty);
    cast(&[
        "send",
        "--rpc-url",
        &rpc,
        "--private-key",
        &key,
        "--value",
        &value,
        &escrow,
        POST_JOB,
        &tuple,
    ]);
    let id: u64 = cast(&["call", "--rpc-url", &rpc, &escrow, "nextJobId()(uint256)"])
        .parse::<u64>()
        .expect("job counter")
        - 1;

    let h = wait_for(
        &observer,
        id,
        Duration::from_secs(60),
        "finalization",
        &[&d],
        |h| h.outcome.is_some(),
    )
    .await;
    assert_eq!(h.spec.as_ref(), Some(&s), "cast posted the spec we built");
    assert_eq!(
        h.outcome,
        Some((Outcome::Completed, server.expected_result(&observer, id)))
    );

    // The consumer checks the outcome with cast alone: the JobFinalized log carries the
    // agreed result hash, and the provider's credited share is readable.
    let logs = cast(&[
        "logs",
        "--rpc-url",
        &rpc,
        "--address",
        &escrow,
        "--from-block",
        "0",
        "--json",
    ]);
    let expected = server.expected_result(&observer, id).to_string();
    assert!(
        logs.contains(&expected[2..]),
        "no log carries {expected}: {logs}"
    );
    let credited = cast(&[
        "call",
        "--rpc-url",
        &rpc,
        &escrow,
        "balanceOf(address)(uint256)",
        &net.addr(1).to_string(),
    ]);
    let credited = credited.split_whitespace().next().unwrap_or_default();
    assert_eq!(credited, s.bounty.to_string());
    server.stop().await;
}
