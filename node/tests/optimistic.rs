//! Optimistic jobs end to end: real anvil, real `stp provider run` nodes, the real
//! `stp job post --optimistic` consumer. A lying replica is caught by Freivalds, challenged,
//! recomputed by three drawn honest nodes and slashed while the consumer gets its bounty and
//! bond back; an honest result challenged anyway costs the consumer its bond; an
//! unchallenged job pays after the window. Each asserts who gained and who lost.

use std::path::Path;
use std::time::Duration;

use alloy::node_bindings::AnvilInstance;
use alloy::primitives::{Address, U256};
use stp_sdk::market::{Market, Outcome};

mod devnet;
use devnet::{ProviderProc, devnet, eth, json, key, market, stake, stp_cmd};

fn matmul_input(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let mut input = Vec::new();
    for v in [16u32, 16, 16] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..(2 * 16 * 16u32) {
        input.extend_from_slice(&(i ^ 0x3c3c).wrapping_mul(2_654_435_761).to_le_bytes());
    }
    let path = dir.join("in.bin");
    std::fs::write(&path, &input).unwrap();
    (path, input)
}

/// `stp job post --optimistic` of `input` by dev account 4, collateral 0.06 (its 50 %
/// slash covers the bond of 3 x 0.01), with `extra` flags.
fn post_optimistic(
    anvil: &AnvilInstance,
    dep: &Path,
    dir: &Path,
    input: &Path,
    extra: &[&str],
) -> tokio::process::Command {
    let output = dir.join("out.bin");
    let consumer = dir.join("consumer");
    let mut args = vec![
        "job",
        "post",
        "--optimistic",
        "--kernel",
        "matmul-u32",
        "--input",
        input.to_str().unwrap(),
        "--bounty",
        "0.01",
        "--collateral",
        "0.06",
        "--commit-secs",
        "30",
        "--reveal-secs",
        "30",
        "--poll-secs",
        "0.2",
        "--output",
        output.to_str().unwrap(),
        "--json",
        "--data-dir",
        consumer.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut cmd = stp_cmd(anvil, dep, &args);
    cmd.arg("--private-key").arg(key(anvil, 4));
    cmd
}

/// Waits until job `id` has its one slot taken.
async fn wait_for_claim(m: &Market, id: u64) {
    for _ in 0..600 {
        if let Ok(h) = m.job_history(id).await
            && !h.slots.is_empty()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} was never taken");
}

async fn staked(m: &Market, who: Address) -> U256 {
    m.stake_of(who).await.unwrap().staked
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lying_optimistic_replica_is_caught_challenged_and_slashed_by_three_drawn_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    stake(&anvil, &dep, &[1, 2, 3, 5]).await;
    // Only the liar runs when the job is posted, so it takes the job's one slot; the honest
    // nodes start once it did, in time for the escalation's draw.
    let _liar = ProviderProc::start(&anvil, &dep, 1, dir.path(), Some("wrong-result"));
    let (input_path, input) = matmul_input(dir.path());
    let consumer = post_optimistic(&anvil, &dep, dir.path(), &input_path, &[])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output();
    let consumer = tokio::spawn(consumer);
    let watch = market(&anvil, &dep, 0).await;
    wait_for_claim(&watch, 1).await;
    let _honest: Vec<ProviderProc> = [2, 3, 5]
        .iter()
        .map(|&i| ProviderProc::start(&anvil, &dep, i, dir.path(), None))
        .collect();
    let out = tokio::time::timeout(Duration::from_secs(240), consumer)
        .await
        .expect("the consumer finishes")
        .unwrap();
    let posted = json(&out.unwrap());
    assert_eq!(posted["outcome"], "overturned", "{posted}");
    assert_eq!(posted["check"]["outcome"]["result"], "fail", "{posted}");
    assert_eq!(posted["challenge"]["escalation_id"], 2, "{posted}");
    assert!(
        posted["receipt"]["escalation_agreeing"].as_u64().unwrap() >= 2,
        "{posted}"
    );
    // The output written is the escalation's, equal to the CPU reference.
    let kernel = stp_sdk::kernels::find_kernel("matmul-u32").unwrap();
    let expected = stp_sdk::kernels::cpu_reference(&kernel.id, &input).unwrap();
    assert_eq!(std::fs::read(dir.path().join("out.bin")).unwrap(), expected);

    let a = anvil.addresses();
    assert_eq!(
        staked(&watch, a[1]).await,
        eth("0.97"),
        "the liar loses half its 0.06 collateral"
    );
    assert_eq!(
        watch.balance_of(a[1]).await.unwrap(),
        U256::ZERO,
        "the liar is not paid"
    );
    assert_eq!(
        watch.balance_of(a[4]).await.unwrap(),
        eth("0.04"),
        "the consumer gets its bounty and its bond back, no more"
    );
    let mut judges_paid = U256::ZERO;
    for i in [2, 3, 5] {
        assert_eq!(
            staked(&watch, a[i]).await,
            eth("1"),
            "honest judge {i} keeps its stake"
        );
        judges_paid += watch.balance_of(a[i]).await.unwrap();
    }
    assert_eq!(judges_paid, eth("0.03"), "the judges share the bond");
    assert_eq!(
        watch.burned().await.unwrap(),
        U256::ZERO,
        "the slash paid the bond back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_honest_optimistic_result_challenged_anyway_costs_the_consumer_its_bond() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    stake(&anvil, &dep, &[1, 2, 3, 5]).await;
    let _defendant = ProviderProc::start(&anvil, &dep, 1, dir.path(), None);
    let (input_path, _) = matmul_input(dir.path());
    // The consumer's check passes, so the CLI does not challenge; it waits for the job to
    // settle (serving the input meanwhile)...
    let cli = post_optimistic(&anvil, &dep, dir.path(), &input_path, &["--wait"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output();
    let cli = tokio::spawn(cli);
    let consumer = market(&anvil, &dep, 4).await;
    wait_for_claim(&consumer, 1).await;
    // ...and the consumer challenges it by hand, within the window.
    let _judges: Vec<ProviderProc> = [2, 3, 5]
        .iter()
        .map(|&i| ProviderProc::start(&anvil, &dep, i, dir.path(), None))
        .collect();
    let h = consumer.job_history(1).await.unwrap();
    let slot = h.slots[0];
    let c = consumer
        .challenge(&h.job_ref().unwrap(), slot.provider, slot.lane)
        .await
        .unwrap();
    assert_eq!(c.bond, eth("0.03"));
    let out = tokio::time::timeout(Duration::from_secs(240), cli)
        .await
        .expect("the consumer finishes")
        .unwrap();
    let posted = json(&out.unwrap());
    assert_eq!(posted["check"]["outcome"]["result"], "pass", "{posted}");
    assert_eq!(
        posted["outcome"], "completed",
        "the escalation upholds the honest result: {posted}"
    );
    assert_eq!(wait_settled(&consumer, 1).await, Outcome::Completed);

    let a = anvil.addresses();
    assert_eq!(
        consumer.balance_of(a[1]).await.unwrap(),
        eth("0.01"),
        "the defendant is paid"
    );
    assert_eq!(
        staked(&consumer, a[1]).await,
        eth("1"),
        "the defendant keeps its stake"
    );
    assert_eq!(
        consumer.balance_of(a[4]).await.unwrap(),
        U256::ZERO,
        "the bond is lost"
    );
    let mut judges_paid = U256::ZERO;
    for i in [2, 3, 5] {
        judges_paid += consumer.balance_of(a[i]).await.unwrap();
        assert_eq!(staked(&consumer, a[i]).await, eth("1"));
    }
    assert_eq!(
        judges_paid,
        eth("0.03"),
        "the bond paid the escalation's replicas"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unchallenged_optimistic_job_pays_its_replica_after_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    stake(&anvil, &dep, &[1]).await;
    let _provider = ProviderProc::start(&anvil, &dep, 1, dir.path(), None);
    let (input_path, input) = matmul_input(dir.path());
    let posted = json(
        &post_optimistic(&anvil, &dep, dir.path(), &input_path, &["--wait"])
            .output()
            .await
            .unwrap(),
    );
    assert_eq!(posted["outcome"], "completed", "{posted}");
    assert_eq!(posted["receipt"]["kind"], "optimistic", "{posted}");
    let kernel = stp_sdk::kernels::find_kernel("matmul-u32").unwrap();
    let expected = stp_sdk::kernels::cpu_reference(&kernel.id, &input).unwrap();
    assert_eq!(std::fs::read(dir.path().join("out.bin")).unwrap(), expected);
    let m = market(&anvil, &dep, 0).await;
    let h = m.job_history(1).await.unwrap();
    let spec = h.spec.clone().unwrap();
    let settled_at = m.now().await.unwrap();
    let (window, _) = m.optimistic_params().await.unwrap();
    assert!(
        settled_at > spec.revealDeadline.to::<u64>() + window,
        "settled only after the challenge window"
    );
    let a = anvil.addresses();
    assert_eq!(
        m.balance_of(a[1]).await.unwrap(),
        eth("0.01"),
        "paid the bounty"
    );
    assert_eq!(staked(&m, a[1]).await, eth("1"));
}

/// Polls until job `id` is settled; its outcome.
async fn wait_settled(m: &Market, id: u64) -> Outcome {
    for _ in 0..1200 {
        if let Some((o, _)) = m.job_history(id).await.unwrap().outcome {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job {id} never settled");
}
