//! What `stp` tells a person who asked for something wrong, against a real anvil: refused
//! locally before anything is sent (zero amounts, unpayable stakes and bounties, too many
//! replicas, collateral no provider takes), contract errors in ETH, and no backtraces.

use std::path::Path;
use std::process::Output;

use alloy::node_bindings::AnvilInstance;
use alloy::primitives::{U256, utils::parse_ether};
use alloy::providers::{Provider, ProviderBuilder};
use stp_sdk::market::DeployParams;

mod devnet;
use devnet::{devnet, devnet_with, key};

/// Runs `stp args` with `env` set (and no key or RPC from the environment).
async fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_stp"));
    cmd.args(args)
        .env_remove("STP_PRIVATE_KEY")
        .env_remove("ETH_RPC_URL")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("run stp")
}

/// Runs `stp args` against `anvil`'s market; returns its stderr, asserting it failed.
async fn refused(anvil: &AnvilInstance, deployment: &Path, args: &[&str]) -> String {
    let mut all: Vec<&str> = args.to_vec();
    let rpc = anvil.endpoint();
    let dep = deployment.to_str().unwrap();
    all.extend(["--rpc-url", &rpc, "--deployment", dep]);
    let out = run(&all, &[]).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "stp {args:?} succeeded: {err}");
    err
}

/// A valid 8x8x8 `matmul-u32` input in `dir`.
fn input(dir: &Path) -> String {
    let mut bytes = Vec::new();
    for v in [8u32, 8, 8] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..128u32 {
        bytes.extend_from_slice(&i.to_le_bytes());
    }
    let path = dir.join("in.bin");
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

/// How many transactions `account` of `anvil` has sent.
async fn sent(anvil: &AnvilInstance, idx: usize) -> u64 {
    ProviderBuilder::new()
        .connect_http(anvil.endpoint_url())
        .get_transaction_count(anvil.addresses()[idx])
        .await
        .unwrap()
}

#[tokio::test]
async fn zero_stakes_and_bounties_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let k1 = key(&anvil, 1);
    for cmd in ["stake", "unstake"] {
        let err = refused(
            &anvil,
            &dep,
            &["provider", cmd, "--amount", "0", "--private-key", &k1],
        )
        .await;
        assert!(err.contains("must be more than 0"), "{err}");
    }
    let input = input(dir.path());
    let err = refused(
        &anvil,
        &dep,
        &[
            "job",
            "post",
            "--kernel",
            "matmul-u32",
            "--input",
            &input,
            "--bounty",
            "0",
            "--private-key",
            &k1,
        ],
    )
    .await;
    assert!(err.contains("--bounty"), "{err}");
    assert!(err.contains("must be more than 0"), "{err}");
    assert_eq!(sent(&anvil, 1).await, 0, "nothing reached the chain");
}

#[tokio::test]
async fn a_stake_or_bounty_above_the_wallet_says_what_it_holds_and_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let k1 = key(&anvil, 1);
    let wallet = anvil.addresses()[1].to_string();
    // Dev accounts hold 10000 ETH.
    let err = refused(
        &anvil,
        &dep,
        &[
            "provider",
            "stake",
            "--amount",
            "20000",
            "--private-key",
            &k1,
        ],
    )
    .await;
    assert!(
        err.contains(&format!(
            "wallet {wallet} holds 10000 ETH, but the stake of 20000 ETH plus gas needs at least 20000.0"
        )),
        "{err}"
    );
    assert!(err.contains("fund it or ask for less"), "{err}");
    assert!(!err.contains("is the node"), "{err}");

    let input = input(dir.path());
    let data = dir.path().join("consumer");
    let err = refused(
        &anvil,
        &dep,
        &[
            "job",
            "post",
            "--kernel",
            "matmul-u32",
            "--input",
            &input,
            "--bounty",
            "10000",
            "--data-dir",
            data.to_str().unwrap(),
            "--private-key",
            &k1,
        ],
    )
    .await;
    assert!(
        err.contains(&format!(
            "wallet {wallet} holds 10000 ETH, but the bounty of 10000 ETH plus gas needs at least 10000.0"
        )),
        "{err}"
    );
    assert_eq!(sent(&anvil, 1).await, 0, "nothing reached the chain");
}

#[tokio::test]
async fn a_wallet_just_short_of_the_gas_is_told_its_balance_when_the_node_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let fees = provider.estimate_eip1559_fees().await.unwrap();
    // Enough for 1 ETH and the least gas a stake could use, not for the gas limit it is sent
    // with: the local check lets it through and the node refuses it.
    let balance = parse_ether("1").unwrap() + U256::from(55_000 * fees.max_fee_per_gas);
    let wallet = anvil.addresses()[1];
    let _: serde_json::Value = provider
        .raw_request("anvil_setBalance".into(), (wallet, balance))
        .await
        .unwrap();
    let err = refused(
        &anvil,
        &dep,
        &[
            "provider",
            "stake",
            "--amount",
            "1",
            "--private-key",
            &key(&anvil, 1),
        ],
    )
    .await;
    assert!(
        err.contains(&format!(
            "wallet {wallet} holds {} ETH",
            stp_sdk::market::format_amount(balance)
        )) && err.contains("the wallet cannot pay for stake")
            && err.contains("fund the wallet or ask for less"),
        "{err}"
    );
    assert!(!err.contains("is the node"), "{err}");
    assert_eq!(sent(&anvil, 1).await, 0, "nothing was mined");
}

#[tokio::test]
async fn in_a_token_market_shortfalls_and_reverts_are_in_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet_with(dir.path(), |anvil| {
        DeployParams::devnet()
            .with_test_token(vec![anvil.addresses()[1]], parse_ether("5").unwrap())
    })
    .await;
    let k1 = key(&anvil, 1);
    let wallet = anvil.addresses()[1].to_string();
    let err = refused(
        &anvil,
        &dep,
        &["provider", "stake", "--amount", "10", "--private-key", &k1],
    )
    .await;
    assert!(
        err.contains(&format!(
            "wallet {wallet} holds 5 tokens, but the stake needs 10 tokens: fund it or ask for less"
        )),
        "{err}"
    );
    let err = refused(
        &anvil,
        &dep,
        &[
            "provider",
            "stake",
            "--amount",
            "0.01",
            "--private-key",
            &k1,
        ],
    )
    .await;
    assert!(
        err.contains("stake 0.01 tokens is below the market minimum 0.1 tokens"),
        "{err}"
    );
}

#[tokio::test]
async fn jobs_no_provider_can_take_are_refused_with_the_limit_named() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let k1 = key(&anvil, 1);
    let input = input(dir.path());
    let post = |extra: &'static [&'static str]| {
        let mut args = vec![
            "job",
            "post",
            "--kernel",
            "matmul-u32",
            "--input",
            &input,
            "--bounty",
            "0.01",
            "--private-key",
            &k1,
        ];
        args.extend(extra);
        args
    };
    let err = refused(&anvil, &dep, &post(&["--collateral", "10000"])).await;
    assert!(
        err.contains("--collateral 10000 ETH per replica is 1000000 times the bounty share"),
        "{err}"
    );
    assert!(err.contains("at most 20 times the bounty share"), "{err}");
    assert!(err.contains("here 0.2 ETH"), "{err}");
    assert!(err.contains("--force"), "{err}");

    let err = refused(&anvil, &dep, &post(&["--replicas", "100"])).await;
    assert!(
        err.contains("--replicas 100 is above this market's maximum of 16"),
        "{err}"
    );
    // The limit the message points at.
    let rpc = anvil.endpoint();
    let info = run(
        &[
            "market",
            "info",
            "--json",
            "--rpc-url",
            &rpc,
            "--deployment",
            dep.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("JSON");
    assert_eq!(info["max_replicas"], 16);
    assert_eq!(sent(&anvil, 1).await, 0, "nothing reached the chain");
}

#[tokio::test]
async fn contract_errors_read_in_eth_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let k1 = key(&anvil, 1);
    let err = refused(
        &anvil,
        &dep,
        &[
            "provider",
            "stake",
            "--amount",
            "0.01",
            "--private-key",
            &k1,
        ],
    )
    .await;
    assert!(
        err.contains("stake 0.01 ETH is below the market minimum 0.1 ETH; stake more with `stp provider stake --amount <ETH>`"),
        "{err}"
    );
    assert!(!err.contains("10000000000000000"), "wei in {err}");
}

#[tokio::test]
async fn user_errors_print_no_backtrace_unless_a_library_backtrace_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let args = [
        "provider",
        "status",
        "--address",
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "--deployment",
        missing.to_str().unwrap(),
    ];
    let out = run(&args, &[("RUST_BACKTRACE", "1")]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.json"), "{err}");
    assert!(err.contains("stp devnet up"), "{err}");
    for noise in ["backtrace", "Backtrace", "Location:", ".rs:"] {
        assert!(!err.contains(noise), "{noise:?} in {err}");
    }
    assert!(err.lines().count() <= 6, "{err}");

    let out = run(&args, &[("RUST_LIB_BACKTRACE", "1")]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Stack backtrace:"), "{err}");
}

#[tokio::test]
async fn model_jobs_with_bad_samples_or_no_model_are_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let k1 = key(&anvil, 1);
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits");
    let model = dir.path().join("digits.stpm");
    let imported = run(
        &[
            "model",
            "import",
            digits.join("digits_int8.onnx").to_str().unwrap(),
            "--output",
            model.to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(imported.status.success(), "{imported:?}");
    let model = model.to_str().unwrap();
    let samples = digits.join("heldout_input.bin");
    let short = dir.path().join("short.bin");
    std::fs::write(&short, &std::fs::read(&samples).unwrap()[..100]).unwrap();
    let short = short.to_str().unwrap();
    for command in ["job", "batch"] {
        let mut args = vec![command, "post", "--model", model, "--input", short];
        if command == "batch" {
            args.extend(["--chunks", "2"]);
        }
        args.extend(["--private-key", &k1]);
        let err = refused(&anvil, &dep, &args).await;
        assert!(
            err.contains("the samples do not fit the model's input"),
            "{err}"
        );
        assert!(
            err.contains("not a positive multiple of the model's 64-byte sample"),
            "{err}"
        );
    }
    let err = refused(
        &anvil,
        &dep,
        &[
            "job",
            "post",
            "--model",
            short,
            "--input",
            short,
            "--private-key",
            &k1,
        ],
    )
    .await;
    assert!(err.contains("not a valid model"), "{err}");
    let err = refused(
        &anvil,
        &dep,
        &[
            "batch",
            "post",
            "--model",
            model,
            "--input",
            samples.to_str().unwrap(),
            "--tiles",
            "2x2",
            "--private-key",
            &k1,
        ],
    )
    .await;
    assert!(err.contains("--chunks N or --chunk-rows SAMPLES"), "{err}");
    assert_eq!(sent(&anvil, 1).await, 0, "nothing reached the chain");
}
