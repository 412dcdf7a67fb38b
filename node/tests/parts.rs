//! Shared parts across jobs, end to end: real anvil, a real `stp provider run` node, jobs
//! posted and announced by the real consumer code. The node advertises the parts it holds
//! in its provider record (read back from the DHT by another peer and by `stp provider
//! list`), and when jobs compete for its one slot it takes first those whose parts it
//! holds, though they were posted after the others.

use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use alloy::providers::{Provider, ProviderBuilder};
use stp_node::consumer::{Order, Posted, announce_posted, prepare_many};
use stp_node::p2p::P2pClient;
use stp_sdk::batch::parts::{Segment, encode};
use stp_sdk::kernels::find_kernel;
use stp_sdk::market::{Market, Outcome};
use stp_sdk::p2p::input_hash;

mod devnet;
use devnet::{ProviderProc, devnet, eth, market, stake};

/// A 32 x 32 B of u32 words seeded by `seed`.
fn b_matrix(seed: u32) -> Vec<u8> {
    (0..32 * 32u32)
        .flat_map(|i| (i ^ seed).wrapping_mul(2_654_435_761).to_le_bytes())
        .collect()
}

/// A 1-replica matmul-u32 order of a 4 x 32 A (seeded by `salt`) times `b`, served as a
/// parts input: A inline, B referenced by hash.
fn order(b: &[u8], salt: u8) -> Order {
    let mut head = Vec::new();
    for v in [4u32, 32, 32] {
        head.extend_from_slice(&v.to_le_bytes());
    }
    head.extend((0..4 * 32 * 4).map(|i: u32| (i as u8) ^ salt));
    let served = encode(&[
        Segment::Inline(&head),
        Segment::Blob {
            hash: input_hash(b),
            size: b.len() as u64,
        },
    ]);
    let mut input = head.clone();
    input.extend_from_slice(b);
    Order {
        kernel: find_kernel("matmul-u32").unwrap().id,
        input,
        served: Some(served),
        replicas: 1,
        bounty: eth("0.001"),
        collateral: U256::ZERO,
        force: false,
        min_reputation: 0,
        commit_secs: Some(120),
        reveal_secs: Some(30),
        max_output: None,
        announce: false,
        optimistic: false,
    }
}

/// Posts `orders` in one transaction (consecutive ids, one block) and gossips each with
/// its part hints, as `stp batch post` does.
async fn post_and_announce(m: &Market, p2p: &P2pClient, orders: &[Order]) -> Vec<Posted> {
    let ready = prepare_many(m, p2p, orders).await.unwrap();
    let specs = ready.iter().map(|r| r.spec.clone()).collect();
    let jobs = m.post_jobs(specs).await.unwrap();
    let posted: Vec<Posted> = ready
        .into_iter()
        .zip(jobs)
        .map(|(r, j)| r.into_posted(j))
        .collect();
    for job in &posted {
        announce_posted(m, p2p, job).await;
    }
    posted
}

/// Mines an empty block (the node waits one confirmation before acting on an event).
async fn mine(rpc: &impl Provider) {
    let _: serde_json::Value = rpc.raw_request("evm_mine".into(), ()).await.unwrap();
}

/// Waits until `what` holds of the node's log, mining blocks meanwhile if `mining`.
async fn wait_log(
    node: &ProviderProc,
    (rpc, mining): (&impl Provider, bool),
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> String {
    for _ in 0..600 {
        let log = node.log_text();
        if ok(&log) {
            return log;
        }
        if mining {
            mine(rpc).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("never: {what}\n{}", node.log_text());
}

/// The jobs the node took, in the order it took them (its "accepted" log lines).
fn taken(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("accepted; fetching the input"))
        .filter_map(|l| l.split("job=").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}

/// The parts `provider`'s record in the DHT lists, as `p2p` finds it.
async fn advertised(p2p: &P2pClient, provider: Address) -> Option<Vec<[u8; 32]>> {
    let records = p2p.find_providers().await.ok()?;
    records
        .into_iter()
        .find(|r| Address::from(r.eth_address) == provider)
        .map(|r| r.parts)
}

/// The parts `stp provider list --json` shows for `provider`, looking up from `boot`.
async fn listed(boot: &str, dir: &std::path::Path, provider: Address) -> Vec<B256> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stp"))
        .args(["provider", "list", "--json", "--wait-secs", "10"])
        .args(["--bootstrap", boot, "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let me = json
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["address"].as_str().unwrap().parse::<Address>().unwrap() == provider);
    me.map(|p| serde_json::from_value(p["parts"].clone()).unwrap())
        .unwrap_or_default()
}

/// The consumer's libp2p node in `data_dir`, bootstrapped from `boot`.
async fn consumer_p2p(data_dir: &std::path::Path, boot: &str) -> stp_node::p2p::P2pClient {
    stp_node::cli::job::P2pArgs {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![boot.parse().unwrap()],
        data_dir: data_dir.to_path_buf(),
    }
    .spawn()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_provider_takes_first_the_jobs_whose_parts_it_holds_and_advertises_them() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let provider = anvil.addresses()[1];
    stake(&anvil, &dep, &[1]).await;
    let args = ["--max-concurrent", "1", "--confirmations", "1"];
    let node = ProviderProc::start_logged_with(&anvil, &dep, 1, dir.path(), &args);
    let boot = node.addr().await;
    let rpc = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let consumer = market(&anvil, &dep, 4).await;
    let p2p = consumer_p2p(&dir.path().join("consumer"), &boot).await;
    let (bx, by) = (b_matrix(1), b_matrix(2));
    let (hx, hy) = (input_hash(&bx), input_hash(&by));
    p2p.add_blob(bx.clone(), stp_sdk::p2p::Naming::Blake3)
        .await
        .unwrap();
    p2p.add_blob(by.clone(), stp_sdk::p2p::Naming::Blake3)
        .await
        .unwrap();

    // 1. The node runs a job of batch X: it fetches X's B and then advertises it.
    let x0 = post_and_announce(&consumer, &p2p, &[order(&bx, 0)]).await;
    let x0 = x0[0].job_id;
    for _ in 0..600 {
        let h = consumer.job_history(x0).await.unwrap();
        if h.outcome.is_some() {
            assert_eq!(h.outcome.map(|o| o.0), Some(Outcome::Completed));
            break;
        }
        mine(&rpc).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut parts = None;
    for _ in 0..200 {
        parts = advertised(&p2p, provider).await;
        if parts.as_deref() == Some(&[hx][..]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(parts, Some(vec![hx]), "the record in the DHT lists X's B");

    // 2. Two jobs of batch Y, then two of batch X, posted together and announced with
    // their part hints; the node sees them in one poll once the block is confirmed.
    let jobs = post_and_announce(
        &consumer,
        &p2p,
        &[order(&by, 1), order(&by, 2), order(&bx, 3), order(&bx, 4)],
    )
    .await;
    let ids: Vec<u64> = jobs.iter().map(|j| j.job_id).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "{ids:?}");
    for j in &jobs {
        assert_eq!(j.part_hints, vec![if j.job_id < ids[2] { hy } else { hx }]);
    }
    // (Hints arrive with the announcements, before the jobs are confirmed.)
    let hints = |log: &str| log.matches("part hints of an announced job").count();
    wait_log(&node, (&rpc, false), "the hints of all five jobs", |l| {
        hints(l) >= 5
    })
    .await;
    assert_eq!(
        taken(&node.log_text()),
        vec![x0],
        "nothing taken unconfirmed"
    );
    let log = wait_log(&node, (&rpc, true), "all five jobs taken", |l| {
        taken(l).len() >= 5
    })
    .await;

    // With one slot, the jobs whose part it holds went first: X's, then Y's.
    assert_eq!(
        taken(&log),
        vec![x0, ids[2], ids[3], ids[0], ids[1]],
        "X's chunks (B held) before Y's (posted first)"
    );
    assert_eq!(
        log.matches("input part fetched").count(),
        2,
        "each B crossed the network once"
    );

    // Its record now lists both, the most recently used (Y's) first, through the CLI.
    let mut shown = Vec::new();
    for _ in 0..40 {
        shown = listed(&boot, &dir.path().join("lister"), provider).await;
        if shown.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(shown, vec![B256::from(hy), B256::from(hx)]);
    p2p.shutdown().await;
}

/// Waits until job `id` settles; its outcome and the providers that held its slots.
async fn settled(m: &Market, id: u64) -> (Outcome, Vec<Address>) {
    for _ in 0..900 {
        let h = m.job_history(id).await.unwrap();
        if let Some((o, _)) = h.outcome {
            return (o, h.slots.iter().map(|s| s.provider).collect());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("job {id} never settled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_its_consumer_no_longer_serves_is_fetched_from_a_provider_that_advertises_it() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let a = anvil.addresses();
    stake(&anvil, &dep, &[1]).await;
    let holder = ProviderProc::start_logged(&anvil, &dep, 1, dir.path());
    let boot = holder.addr().await;
    let consumer = market(&anvil, &dep, 4).await;
    let p2p = consumer_p2p(&dir.path().join("consumer"), &boot).await;
    let b = b_matrix(3);
    let hash = input_hash(&b);
    p2p.add_blob(b.clone(), stp_sdk::p2p::Naming::Blake3)
        .await
        .unwrap();

    // 1. The first provider runs a job with B and advertises B; then it leaves the draw.
    let first = post_and_announce(&consumer, &p2p, &[order(&b, 0)]).await;
    assert_eq!(
        settled(&consumer, first[0].job_id).await,
        (Outcome::Completed, vec![a[1]])
    );
    let mut parts = None;
    for _ in 0..200 {
        parts = advertised(&p2p, a[1]).await;
        if parts.as_deref() == Some(&[hash][..]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(parts, Some(vec![hash]), "the record lists B");
    market(&anvil, &dep, 1)
        .await
        .unstake(eth("1"))
        .await
        .unwrap();

    // 2. A second provider, and a job whose B only the first provider still holds.
    stake(&anvil, &dep, &[2]).await;
    let args = ["--bootstrap", boot.as_str()];
    let fresh = ProviderProc::start_logged_with(&anvil, &dep, 2, dir.path(), &args);
    fresh.addr().await;
    p2p.store().remove(&hash).unwrap();
    assert!(!p2p.has_blob(&hash), "the consumer no longer serves B");
    let second = post_and_announce(&consumer, &p2p, &[order(&b, 1)]).await;
    assert_eq!(
        settled(&consumer, second[0].job_id).await,
        (Outcome::Completed, vec![a[2]]),
        "{}",
        fresh.log_text()
    );
    let log = fresh.log_text();
    assert!(
        log.contains("input part advertised by other providers"),
        "B's holder was found by its record"
    );
    assert_eq!(log.matches("input part fetched").count(), 1);
    p2p.shutdown().await;
}
