//! A provider node's transactions do not wait on each other: with mining paused, the
//! commits of two jobs are both sent (neither waits on the other's receipt); once blocks
//! come again both land in nonce order and both jobs complete.

use std::time::Duration;

use alloy::providers::Provider;
use stp_sdk::market::{Market, Outcome};

use crate::node::{Daemon, InputServer, matmul_input, wait_for};
use crate::support::Net;

const STEP: Duration = Duration::from_secs(60);

async fn rpc<T: alloy::rpc::json_rpc::RpcRecv>(
    m: &Market,
    method: &'static str,
    params: serde_json::Value,
) -> T {
    m.provider()
        .raw_request(method.into(), params)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Transactions waiting in the node's pool.
async fn pooled(m: &Market) -> u64 {
    let status: serde_json::Value = rpc(m, "txpool_status", serde_json::json!([])).await;
    match &status["pending"] {
        serde_json::Value::String(s) => {
            u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0)
        }
        v => v.as_u64().unwrap_or(0),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_commit_does_not_hold_back_another_jobs_commit() {
    let net = Net::start(false).await;
    let dir = tempfile::tempdir().unwrap();
    net.staked_providers(1).await;
    let consumer = net.market(3).await;
    let server = InputServer::start(matmul_input(7)).await;
    let now = consumer.now().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let spec = server.matmul_spec(&consumer, now, 1, [120, 60]);
        ids.push(consumer.post_job(spec).await.unwrap().job_id);
    }
    // Nothing is mined from now on: the first commit the node sends is stuck.
    let _: serde_json::Value = rpc(&consumer, "evm_setAutomine", serde_json::json!([false])).await;
    let node = Daemon::start(&net, 1, &net.anvil.endpoint(), &dir.path().join("p"), &[]);
    let start = tokio::time::Instant::now();
    while pooled(&consumer).await < 2 {
        assert!(
            start.elapsed() < STEP,
            "the second job's commit was never sent while the first was pending:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        consumer.job_history(ids[0]).await.unwrap().slots.is_empty(),
        "nothing mined yet"
    );

    let _: serde_json::Value = rpc(&consumer, "evm_setAutomine", serde_json::json!([true])).await;
    let _: serde_json::Value = rpc(&consumer, "evm_mine", serde_json::json!([])).await;
    for id in &ids {
        let h = wait_for(&consumer, *id, STEP, "completion", &[&node], |h| {
            h.outcome.is_some()
        })
        .await;
        assert_eq!(
            h.outcome,
            Some((Outcome::Completed, server.expected_result(&consumer, *id))),
            "job {id}"
        );
    }
    let provider = net.addr(1);
    let stake = consumer.stake_of(provider).await.unwrap();
    assert_eq!(
        stake.locked,
        alloy::primitives::U256::ZERO,
        "collateral released"
    );
    assert_eq!(
        consumer.balance_of(provider).await.unwrap(),
        crate::support::eth("0.04"),
        "paid for both"
    );
    // Two one-replica jobs: one commitResult each (taking the slot and settling the job),
    // nothing else.
    assert_eq!(
        consumer
            .provider()
            .get_transaction_count(provider)
            .await
            .unwrap(),
        1 + 2
    );
    server.stop().await;
}
