//! Batches end to end: real anvil, real `stp provider run` nodes, the real `stp batch post`
//! consumer. An 8 x 8-tile mandelbrot image is rendered by four providers with three
//! replicas per tile while one provider is killed with SIGKILL mid-batch (and never
//! restarted) and another lies on purpose: the batch completes, the PNG equals the CPU
//! reference, the liar and the dead node lose stake, the honest nodes keep theirs and are
//! paid, and every bounty is accounted for.

use std::collections::BTreeSet;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use stp_sdk::kernels::{cpu_reference, find_kernel};
use stp_sdk::market::{Market, Outcome};

mod devnet;
use devnet::{ProviderProc, devnet, eth, json, key, market, stake, stp_cmd};

/// A 128 x 128 view of the set, x in [-2, 0.5), y in [-1.25, 1.25), 64 iterations.
fn mandelbrot_input() -> Vec<u8> {
    let q = |v: f64| (v * f64::from(1u32 << 27)) as i32;
    let mut input = Vec::new();
    input.extend_from_slice(&128u32.to_le_bytes());
    input.extend_from_slice(&128u32.to_le_bytes());
    for v in [q(-2.0), q(-1.25), q(2.5 / 128.0)] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    input.extend_from_slice(&64u32.to_le_bytes());
    input
}

/// Waits until `provider` holds a slot of a job whose slots are not all taken yet (so it
/// cannot have revealed it: reveals open once every slot is taken).
async fn wait_mid_job(m: &Market, provider: Address) -> u64 {
    for _ in 0..6000 {
        let next = m.next_job_id().await.unwrap();
        for id in (1..next).rev() {
            let h = m.job_history(id).await.unwrap();
            let k = h.spec.as_ref().map_or(0, |s| usize::from(s.replicas));
            if h.slots.len() < k && h.slots.iter().any(|s| s.provider == provider) {
                return id;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("provider {provider} never took a slot");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mandelbrot_batch_survives_a_killed_provider_and_a_liar() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let a = anvil.addresses();
    let (liar, doomed, honest) = (1, 2, [3, 5]);
    stake(&anvil, &dep, &[liar, doomed, honest[0], honest[1]]).await;
    let _liar = ProviderProc::start(&anvil, &dep, liar, dir.path(), Some("wrong-result"));
    let mut dead = ProviderProc::start(&anvil, &dep, doomed, dir.path(), None);
    let _honest: Vec<ProviderProc> = honest
        .iter()
        .map(|&i| ProviderProc::start(&anvil, &dep, i, dir.path(), None))
        .collect();

    let input = mandelbrot_input();
    let input_path = dir.path().join("view.bin");
    std::fs::write(&input_path, &input).unwrap();
    let png = dir.path().join("view.png");
    let consumer_dir = dir.path().join("consumer");
    let args = [
        "batch",
        "post",
        "--kernel",
        "mandelbrot-fixed",
        "--input",
        input_path.to_str().unwrap(),
        "--tiles",
        "8x8",
        "--replicas",
        "3",
        "--bounty",
        "0.003",
        "--collateral",
        "0.002",
        "--commit-secs",
        "30",
        "--reveal-secs",
        "15",
        "--max-attempts",
        "4",
        "--poll-secs",
        "0.3",
        "--output",
        png.to_str().unwrap(),
        "--json",
        "--data-dir",
        consumer_dir.to_str().unwrap(),
    ];
    let mut cmd = stp_cmd(&anvil, &dep, &args);
    cmd.arg("--private-key").arg(key(&anvil, 4));
    let consumer = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
        .wait_with_output();
    let consumer = tokio::spawn(consumer);

    // kill -9 the doomed node while it holds a slot it has not revealed.
    let watch = market(&anvil, &dep, 0).await;
    let held = wait_mid_job(&watch, a[doomed]).await;
    dead.kill().await;

    let out = tokio::time::timeout(Duration::from_secs(600), consumer)
        .await
        .expect("the batch finishes")
        .unwrap();
    let report = json(&out.unwrap());
    let chunks = report["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 64);
    assert!(chunks.iter().all(|c| c["phase"] == "verified"), "{report}");
    assert!(report["merkle_root"].is_string(), "{report}");

    // The PNG is the CPU reference of the whole image.
    let kernel = find_kernel("mandelbrot-fixed").unwrap();
    let expected = cpu_reference(&kernel.id, &input).unwrap();
    let image = stp_sdk::batch::encode_png(128, 128, &expected).unwrap();
    assert!(
        std::fs::read(&png).unwrap() == image,
        "the PNG is the CPU reference's"
    );

    // The job the dead node held ended without it: its chunk was verified all the same
    // (by the other replicas, or by a later attempt elsewhere).
    let jobs: Vec<u64> = chunks
        .iter()
        .flat_map(|c| c["attempts"].as_array().unwrap().clone())
        .map(|at| at["job_id"].as_u64().unwrap())
        .collect();
    assert!(jobs.contains(&held), "job {held} is one of the batch's");
    let h = watch.job_history(held).await.unwrap();
    assert!(
        !h.reveals.iter().any(|r| r.0 == a[doomed]),
        "the dead node never revealed job {held}"
    );
    let rep = watch.reputation_of(a[doomed]).await.unwrap();
    assert!(
        rep.missed >= 1,
        "the dead node's missed reveal is on record"
    );
    assert!(
        watch.reputation_of(a[liar]).await.unwrap().slashed >= 1,
        "the liar was caught"
    );

    // Who gained and who lost.
    let staked = |who: Address| {
        let m = &watch;
        async move { m.stake_of(who).await.unwrap().staked }
    };
    assert!(staked(a[liar]).await < eth("1"), "the liar lost stake");
    assert!(
        staked(a[doomed]).await < eth("1"),
        "the dead node lost stake"
    );
    for i in honest {
        assert_eq!(
            staked(a[i]).await,
            eth("1"),
            "honest node {i} keeps its stake"
        );
        assert!(
            watch.balance_of(a[i]).await.unwrap() > U256::ZERO,
            "honest node {i} is paid"
        );
    }
    // Every completed job paid its whole bounty to its winners; every other attempt was
    // refunded and withdrawn; every slash was burned.
    let mut completed = 0u64;
    let mut seen = BTreeSet::new();
    for &id in &jobs {
        assert!(seen.insert(id));
        let o = watch.job_history(id).await.unwrap().outcome.map(|(o, _)| o);
        if o == Some(Outcome::Completed) {
            completed += 1;
        }
    }
    assert!(completed >= 64, "a completed job for every chunk");
    let mut paid = U256::ZERO;
    for i in [liar, doomed, honest[0], honest[1]] {
        paid += watch.balance_of(a[i]).await.unwrap();
    }
    assert_eq!(
        paid,
        eth("0.003") * U256::from(completed),
        "bounties paid out"
    );
    assert_eq!(
        watch.balance_of(a[4]).await.unwrap(),
        U256::ZERO,
        "refunds withdrawn"
    );
    let lost = eth("4") - (staked(a[liar]).await + staked(a[doomed]).await) - eth("2");
    assert_eq!(
        watch.burned().await.unwrap(),
        lost,
        "the slashes were burned"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_whose_consumer_crashed_after_paying_is_found_on_chain_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    stake(&anvil, &dep, &[1]).await;
    let node = ProviderProc::start_logged(&anvil, &dep, 1, dir.path());
    let boot = node.addr().await;
    let input = mandelbrot_input();
    let input_path = dir.path().join("view.bin");
    std::fs::write(&input_path, &input).unwrap();
    let consumer_dir = dir.path().join("consumer");
    let common = |args: &[&str]| {
        let mut cmd = stp_cmd(&anvil, &dep, args);
        cmd.args(["--data-dir", consumer_dir.to_str().unwrap()])
            .args(["--private-key", &key(&anvil, 4)]);
        cmd
    };
    let post_args = [
        "batch",
        "post",
        "--kernel",
        "mandelbrot-fixed",
        "--input",
        input_path.to_str().unwrap(),
        "--tiles",
        "2x2",
        "--commit-secs",
        "12",
        "--reveal-secs",
        "10",
        "--wait",
        "--json",
    ];
    // The consumer dies right after its postJobs is mined, before it records the batch.
    let crashed = common(&post_args)
        .env("STP_CONSUMER_FAULT", "crash-after-paying")
        .output()
        .await
        .unwrap();
    assert_eq!(crashed.status.code(), Some(137), "{crashed:?}");
    let record = consumer_dir.join("batches").join("1.json");
    assert!(!record.exists(), "not recorded");
    let watch = market(&anvil, &dep, 0).await;
    assert_eq!(
        watch.next_job_id().await.unwrap(),
        5,
        "but paid for: jobs 1-4"
    );
    // Posting again finds the paid batch on-chain, records it and posts nothing.
    let again = common(&post_args).output().await.unwrap();
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "{said}");
    assert!(said.contains("paid for batch 1 (4 chunks)"), "{said}");
    assert!(said.contains("stp batch resume 1"), "{said}");
    assert_eq!(
        watch.next_job_id().await.unwrap(),
        5,
        "nothing posted twice"
    );
    let before: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(before["chunks"].as_array().unwrap().len(), 4);

    let png = dir.path().join("view.png");
    // The restarted consumer finds the winners through the node it bootstraps from.
    let resumed = common(&[
        "batch",
        "resume",
        "1",
        "--bootstrap",
        &boot,
        "--poll-secs",
        "0.3",
        "--output",
        png.to_str().unwrap(),
        "--json",
    ])
    .output();
    let out = tokio::time::timeout(Duration::from_secs(240), resumed)
        .await
        .expect("the resumed batch finishes")
        .unwrap();
    let report = json(&out);
    let chunks = report["chunks"].as_array().unwrap();
    assert!(chunks.iter().all(|c| c["phase"] == "verified"), "{report}");
    let kernel = find_kernel("mandelbrot-fixed").unwrap();
    let expected = cpu_reference(&kernel.id, &input).unwrap();
    let image = stp_sdk::batch::encode_png(128, 128, &expected).unwrap();
    assert!(
        std::fs::read(&png).unwrap() == image,
        "the PNG is the CPU reference's"
    );
    // The consumer paid for one completed job per chunk; every other attempt came back.
    let a = anvil.addresses();
    let mut completed = 0u64;
    for c in chunks {
        for at in c["attempts"].as_array().unwrap() {
            let h = watch
                .job_history(at["job_id"].as_u64().unwrap())
                .await
                .unwrap();
            if matches!(h.outcome, Some((Outcome::Completed, _))) {
                completed += 1;
            }
        }
    }
    assert_eq!(completed, 4, "exactly one completed job per chunk");
    assert_eq!(
        watch.balance_of(a[1]).await.unwrap(),
        eth("0.001") * U256::from(completed),
        "the provider is paid for each completed chunk"
    );
    assert_eq!(
        watch.balance_of(a[4]).await.unwrap(),
        U256::ZERO,
        "refunds withdrawn"
    );
}

/// A 1024 x 1024 x 1024 matmul-u32 input (A then B, deterministic words).
fn matmul_input() -> Vec<u8> {
    let mut input = Vec::with_capacity(12 + (8 << 20));
    for v in [1024u32, 1024, 1024] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..(2 * 1024 * 1024u32) {
        input.extend_from_slice(&(i ^ 0x5a5a).wrapping_mul(2_654_435_761).to_le_bytes());
    }
    input
}

#[tokio::test(flavor = "multi_thread")]
async fn a_matmul_batch_fetches_the_shared_b_once_per_provider() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let a = anvil.addresses();
    stake(&anvil, &dep, &[1, 2]).await;
    let nodes: Vec<ProviderProc> = [1, 2]
        .iter()
        .map(|&i| ProviderProc::start_logged(&anvil, &dep, i, dir.path()))
        .collect();
    for n in &nodes {
        n.addr().await;
    }
    let input = matmul_input();
    let input_path = dir.path().join("ab.bin");
    std::fs::write(&input_path, &input).unwrap();
    let output = dir.path().join("c.bin");
    let consumer_dir = dir.path().join("consumer");
    let args = [
        "batch",
        "post",
        "--kernel",
        "matmul-u32",
        "--input",
        input_path.to_str().unwrap(),
        "--chunks",
        "16",
        "--bounty",
        "0.001",
        "--commit-secs",
        "60",
        "--reveal-secs",
        "20",
        "--poll-secs",
        "0.3",
        "--output",
        output.to_str().unwrap(),
        "--json",
        "--data-dir",
        consumer_dir.to_str().unwrap(),
    ];
    let mut cmd = stp_cmd(&anvil, &dep, &args);
    cmd.arg("--private-key").arg(key(&anvil, 4));
    let out = tokio::time::timeout(Duration::from_secs(480), cmd.output())
        .await
        .expect("the batch finishes")
        .unwrap();
    let report = json(&out);
    assert!(
        report["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["phase"] == "verified"),
        "{report}"
    );
    let kernel = find_kernel("matmul-u32").unwrap();
    assert!(
        std::fs::read(&output).unwrap() == cpu_reference(&kernel.id, &input).unwrap(),
        "C equals the CPU reference"
    );

    // Each chunk's posted input is its rows of A and a reference to B, not B itself.
    let watch = market(&anvil, &dep, 0).await;
    let mut held = [0usize; 2];
    let next = watch.next_job_id().await.unwrap();
    for id in 1..next {
        let h = watch.job_history(id).await.unwrap();
        let size = h.spec.as_ref().unwrap().inputSize;
        assert!(size < (1 << 20), "job {id} posts {size} bytes, B stays out");
        for s in &h.slots {
            held[usize::from(s.provider == a[2])] += 1;
        }
    }
    assert_eq!(
        held.iter().sum::<usize>(),
        16,
        "one replica per chunk: {held:?}"
    );
    // B (4 MiB) crossed the network once to each provider that ran chunks, however many.
    for (n, i) in [1usize, 2].iter().enumerate() {
        let log = std::fs::read_to_string(dir.path().join(format!("provider{i}.log"))).unwrap();
        let fetched = log.matches("input part fetched").count();
        assert_eq!(
            fetched,
            usize::from(held[n] > 0),
            "provider {i} ran {} chunks and fetched B {fetched} times",
            held[n]
        );
    }
}

/// Posts a 1-replica matmul-u32 job whose served input is `served` (a parts input) while
/// the kernel input it claims is a valid 4 x 4 x 4 product, from consumer account 4.
async fn post_parts(
    m: &Market,
    p2p: &stp_node::p2p::P2pClient,
    served: Vec<u8>,
) -> stp_sdk::market::PostedJob {
    let kernel = find_kernel("matmul-u32").unwrap().id;
    let mut input = Vec::new();
    for v in [4u32; 3] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    input.extend_from_slice(&[1u8; 2 * 16 * 4]);
    let order = stp_node::consumer::Order {
        kernel,
        input,
        served: Some(served),
        replicas: 1,
        bounty: eth("0.01"),
        collateral: U256::ZERO,
        force: false,
        min_reputation: 0,
        commit_secs: Some(15),
        reveal_secs: Some(10),
        max_output: None,
        announce: false,
        optimistic: false,
    };
    let ready = stp_node::consumer::prepare(m, p2p, &order).await.unwrap();
    m.post_job(ready.spec).await.unwrap()
}

/// Finalizes job `posted` once it is past its commit deadline; its outcome.
async fn finalize_when_due(m: &Market, posted: &stp_sdk::market::PostedJob) -> Outcome {
    for _ in 0..600 {
        let h = m.job_history(posted.job_id).await.unwrap();
        if let Some((o, _)) = h.outcome {
            return o;
        }
        let _ = m.finalize_since(posted.job_id, posted.post_block).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("job {} never settled", posted.job_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_inputs_that_lie_about_their_parts_cost_the_provider_nothing() {
    use stp_sdk::batch::parts::{Segment, encode};
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let a = anvil.addresses();
    stake(&anvil, &dep, &[1]).await;
    let node = ProviderProc::start_logged(&anvil, &dep, 1, dir.path());
    node.addr().await;
    let consumer = market(&anvil, &dep, 4).await;
    let p2p = stp_node::cli::job::P2pArgs {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: Vec::new(),
        data_dir: dir.path().join("consumer"),
    }
    .spawn()
    .await
    .unwrap();
    // 1. A 1 MiB part served, but referenced as 64 bytes.
    let big = vec![7u8; 1 << 20];
    let hash = p2p
        .add_blob(big, stp_sdk::p2p::Naming::Blake3)
        .await
        .unwrap();
    let small_lie = encode(&[Segment::Inline(b"hdr"), Segment::Blob { hash, size: 64 }]);
    // 2. A part declared far beyond what a provider takes (1 GiB).
    let huge = encode(&[Segment::Blob {
        hash: [5u8; 32],
        size: 1 << 30,
    }]);
    let jobs = [
        post_parts(&consumer, &p2p, small_lie).await,
        post_parts(&consumer, &p2p, huge).await,
    ];
    for job in &jobs {
        assert_eq!(finalize_when_due(&consumer, job).await, Outcome::Unfilled);
    }
    let log = std::fs::read_to_string(dir.path().join("provider1.log")).unwrap();
    assert!(
        log.contains("referenced as 64 bytes"),
        "the lying size was refused at the part's manifest"
    );
    assert!(
        log.contains("more than this node's input limit"),
        "the oversized parts were refused before any fetch"
    );
    assert!(
        !log.contains("input part fetched"),
        "no part was downloaded"
    );
    // The honest provider lost nothing; the consumer only got its own bounties back.
    assert_eq!(consumer.stake_of(a[1]).await.unwrap().staked, eth("1"));
    assert_eq!(consumer.balance_of(a[1]).await.unwrap(), U256::ZERO);
    assert_eq!(consumer.balance_of(a[4]).await.unwrap(), eth("0.02"));
    p2p.shutdown().await;
}

/// The shipped digits classifier, imported from its ONNX file, written to `dir`.
fn digits_model(dir: &std::path::Path) -> (std::path::PathBuf, stp_sdk::model::ValidModel) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits");
    let onnx = std::fs::read(root.join("digits_int8.onnx")).unwrap();
    let model = stp_sdk::model::onnx::import(&onnx).unwrap().model;
    let path = dir.join("digits.stpm");
    std::fs::write(&path, model.model().encode()).unwrap();
    (path, model)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_digits_model_over_the_heldout_set_as_a_batch_with_a_liar() {
    use stp_sdk::model::{job, run_cpu};
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let a = anvil.addresses();
    let (liar, honest) = (1, [2, 3, 5]);
    stake(&anvil, &dep, &[liar, honest[0], honest[1], honest[2]]).await;
    let _liar = ProviderProc::start(&anvil, &dep, liar, dir.path(), Some("wrong-result"));
    let _honest: Vec<ProviderProc> = honest
        .iter()
        .map(|&i| ProviderProc::start(&anvil, &dep, i, dir.path(), None))
        .collect();

    let (model_path, model) = digits_model(dir.path());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits");
    let samples = root.join("heldout_input.bin");
    let output = dir.path().join("predictions.bin");
    let consumer_dir = dir.path().join("consumer");
    let args = [
        "batch",
        "post",
        "--model",
        model_path.to_str().unwrap(),
        "--input",
        samples.to_str().unwrap(),
        "--chunks",
        "6",
        "--replicas",
        "3",
        "--bounty",
        "0.003",
        "--collateral",
        "0.002",
        "--commit-secs",
        "30",
        "--reveal-secs",
        "15",
        "--max-attempts",
        "4",
        "--poll-secs",
        "0.3",
        "--output",
        output.to_str().unwrap(),
        "--json",
        "--data-dir",
        consumer_dir.to_str().unwrap(),
    ];
    let mut cmd = stp_cmd(&anvil, &dep, &args);
    cmd.arg("--private-key").arg(key(&anvil, 4));
    let out = tokio::time::timeout(Duration::from_secs(480), cmd.output())
        .await
        .expect("the batch finishes")
        .unwrap();
    let report = json(&out);
    let chunks = report["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 6);
    assert_eq!(report["kernel"], "model", "{report}");
    assert!(chunks.iter().all(|c| c["phase"] == "verified"), "{report}");

    // The predictions are the local CPU run's, byte for byte, and score as it does.
    let heldout = std::fs::read(&samples).unwrap();
    let expected = run_cpu(&model, &heldout).unwrap().to_bytes();
    let got = std::fs::read(&output).unwrap();
    assert!(got == expected, "the outputs equal the CPU reference's");
    let score = tokio::process::Command::new(env!("CARGO_BIN_EXE_stp"))
        .args([
            "model",
            "score",
            model_path.to_str().unwrap(),
            "--outputs",
            output.to_str().unwrap(),
            "--labels",
            root.join("heldout_labels.bin").to_str().unwrap(),
            "--json",
        ])
        .output()
        .await
        .unwrap();
    let score = json(&score);
    assert_eq!(score["samples"], 450, "{score}");
    assert!(score["accuracy"].as_f64().unwrap() > 0.95, "{score}");

    // Every job ran this model: its kernel id names it, and the model stayed out of the
    // posted inputs (a reference by hash).
    let watch = market(&anvil, &dep, 0).await;
    let kernel = job::kernel_id(&model.id());
    let next = watch.next_job_id().await.unwrap();
    let mut completed = 0u64;
    for id in 1..next {
        let h = watch.job_history(id).await.unwrap();
        let spec = h.spec.as_ref().unwrap();
        assert_eq!(spec.kernelId.0, kernel.0, "job {id} names the model");
        assert!(
            spec.inputSize < 76 * 64 + 200,
            "job {id}: samples and a reference"
        );
        if matches!(h.outcome, Some((Outcome::Completed, _))) {
            completed += 1;
        }
    }
    assert!(completed >= 6, "a completed job per chunk");

    // Who gained and who lost: the liar was slashed, the honest nodes keep their stake
    // and share every bounty.
    assert!(watch.reputation_of(a[liar]).await.unwrap().slashed >= 1);
    assert!(watch.stake_of(a[liar]).await.unwrap().staked < eth("1"));
    let mut paid = U256::ZERO;
    for i in honest {
        assert_eq!(
            watch.stake_of(a[i]).await.unwrap().staked,
            eth("1"),
            "node {i}"
        );
        let earned = watch.balance_of(a[i]).await.unwrap();
        assert!(earned > U256::ZERO, "honest node {i} is paid");
        paid += earned;
    }
    assert_eq!(
        watch.balance_of(a[liar]).await.unwrap() + paid,
        eth("0.003") * U256::from(completed),
        "bounties paid out"
    );
}
