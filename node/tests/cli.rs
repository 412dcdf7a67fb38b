//! The `stp` binary against a real anvil: chain-facing commands, their JSON output, decoded
//! contract errors and keystores made by `cast wallet new`.

use std::path::Path;
use std::process::Output;

use alloy::node_bindings::AnvilInstance;

mod devnet;
use devnet::{ProviderProc, devnet, json, key, repo_root, stp_cmd};

async fn stp(anvil: &AnvilInstance, deployment: &Path, args: &[&str]) -> Output {
    stp_cmd(anvil, deployment, args)
        .output()
        .await
        .expect("run stp")
}

#[tokio::test]
async fn provider_stake_then_status_json_shows_the_stake() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let k1 = key(&anvil, 1);
    let staked = stp(
        &anvil,
        &dep,
        &["provider", "stake", "--amount", "0.5", "--private-key", &k1],
    )
    .await;
    assert!(
        staked.status.success(),
        "{}",
        String::from_utf8_lossy(&staked.stderr)
    );
    assert!(String::from_utf8_lossy(&staked.stdout).contains("staked 0.5 ETH"));

    let status = json(
        &stp(
            &anvil,
            &dep,
            &["provider", "status", "--json", "--private-key", &k1],
        )
        .await,
    );
    assert_eq!(
        status["address"].as_str().unwrap().to_lowercase(),
        anvil.addresses()[1].to_string().to_lowercase()
    );
    assert_eq!(status["staked"], "500000000000000000");
    assert_eq!(status["free"], "500000000000000000");
    assert_eq!(status["locked"], "0");
    assert_eq!(status["min_stake"], "100000000000000000");
    assert_eq!(status["reputation"]["completed"], 0);

    let by_address = json(
        &stp(
            &anvil,
            &dep,
            &[
                "provider",
                "status",
                "--json",
                "--address",
                &anvil.addresses()[1].to_string(),
            ],
        )
        .await,
    );
    assert_eq!(by_address["staked"], status["staked"]);
}

#[tokio::test]
async fn contract_errors_are_decoded_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let k1 = key(&anvil, 1);
    let out = stp(&anvil, &dep, &["payout", "claim", "--private-key", &k1]).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EscrowNothingToWithdraw"), "{err}");
    assert!(err.contains("stp payout balance"), "{err}");

    let out = stp(&anvil, &dep, &["provider", "stake", "--amount", "0.5"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--private-key"));
}

#[tokio::test]
async fn keystore_from_cast_wallet_new_signs() {
    let cast = repo_root().join("node_modules/@foundry-rs/cast-linux-amd64/bin/cast");
    assert!(
        cast.is_file(),
        "cast not found: run `npm ci` at the repository root"
    );
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(&cast)
        .args(["wallet", "new"])
        .arg(dir.path())
        .args(["--unsafe-password", "pw"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let keystore = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = String::from_utf8_lossy(&made.stdout).to_lowercase();
    let (anvil, dep) = devnet(dir.path()).await;
    let ks = keystore.to_str().unwrap();
    let status = json(
        &stp(
            &anvil,
            &dep,
            &[
                "payout",
                "balance",
                "--json",
                "--keystore",
                ks,
                "--password",
                "pw",
            ],
        )
        .await,
    );
    let address = status["address"].as_str().unwrap().to_lowercase();
    assert!(
        text.contains(&address),
        "cast printed {text}, stp used {address}"
    );
    let wrong = stp(
        &anvil,
        &dep,
        &["payout", "balance", "--keystore", ks, "--password", "nope"],
    )
    .await;
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong password"));
}

#[tokio::test]
async fn job_post_waits_and_fetches_the_quorum_output_while_a_liar_is_slashed() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    for idx in 1..=3 {
        let out = stp(
            &anvil,
            &dep,
            &[
                "provider",
                "stake",
                "--amount",
                "1",
                "--private-key",
                &key(&anvil, idx),
            ],
        )
        .await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Stake counts in the draw of jobs posted after it was bonded.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let _providers = [
        ProviderProc::start(&anvil, &dep, 1, dir.path(), None),
        ProviderProc::start(&anvil, &dep, 2, dir.path(), None),
        ProviderProc::start(&anvil, &dep, 3, dir.path(), Some("wrong-result")),
    ];
    let (m, k, n) = (8u32, 8u32, 8u32);
    let mut input = Vec::new();
    for v in [m, k, n] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..(m * k + k * n) {
        input.extend_from_slice(&(i.wrapping_mul(2_654_435_761)).to_le_bytes());
    }
    let input_path = dir.path().join("in.bin");
    std::fs::write(&input_path, &input).unwrap();
    let output_path = dir.path().join("out.bin");
    let consumer_dir = dir.path().join("consumer");
    let posted = json(
        &stp(
            &anvil,
            &dep,
            &[
                "job",
                "post",
                "--kernel",
                "matmul-u32",
                "--input",
                input_path.to_str().unwrap(),
                "--replicas",
                "3",
                "--bounty",
                "0.03",
                "--collateral",
                "0.1",
                "--commit-secs",
                "30",
                "--reveal-secs",
                "30",
                "--poll-secs",
                "0.2",
                "--output",
                output_path.to_str().unwrap(),
                "--json",
                "--data-dir",
                consumer_dir.to_str().unwrap(),
                "--private-key",
                &key(&anvil, 4),
            ],
        )
        .await,
    );
    assert_eq!(posted["outcome"], "completed");
    assert_eq!(posted["quorum"], 2);
    assert_eq!(posted["check"]["outcome"]["result"], "pass", "{posted}");
    assert_eq!(posted["check"]["kernel"], "matmul-u32");
    let kernel = stp_sdk::kernels::find_kernel("matmul-u32").unwrap();
    let expected = stp_sdk::kernels::cpu_reference(&kernel.id, &input).unwrap();
    assert_eq!(std::fs::read(&output_path).unwrap(), expected);

    let id = posted["job_id"].as_u64().unwrap().to_string();
    let status = json(&stp(&anvil, &dep, &["job", "status", &id, "--json"]).await);
    assert_eq!(status["outcome"], "completed");
    assert_eq!(status["reveals"].as_array().unwrap().len(), 3);
    let liar = anvil.addresses()[3].to_string();
    let liar_status = json(
        &stp(
            &anvil,
            &dep,
            &["provider", "status", "--json", "--address", &liar],
        )
        .await,
    );
    assert_eq!(liar_status["reputation"]["slashed"], 1);
    assert_eq!(liar_status["staked"], "950000000000000000");
    // The liar's slash is burned: the consumer is credited nothing for it.
    let market = json(&stp(&anvil, &dep, &["market", "info", "--json"]).await);
    assert_eq!(market["burned"], "50000000000000000");
    let consumer = anvil.addresses()[4].to_string();
    let balance = json(
        &stp(
            &anvil,
            &dep,
            &["payout", "balance", "--json", "--address", &consumer],
        )
        .await,
    );
    assert_eq!(balance["credited_balance"], "0");
    let list = json(&stp(&anvil, &dep, &["job", "list", "--json"]).await);
    assert_eq!(list.as_array().unwrap().len(), 1);
    // The read commands keep a chain index: it exists now, and what it answers from (only
    // blocks since the last run ingested) is what the chain scan answered.
    let index = std::fs::read_dir(dep.with_extension("index"))
        .unwrap()
        .count();
    assert_eq!(index, 1, "one index file for this market");
    let again = json(&stp(&anvil, &dep, &["job", "status", &id, "--json"]).await);
    assert_eq!(again, status, "same answer from the index");
    assert_eq!(list[0], again, "list and status agree");
}

/// GET `path` from a local HTTP server; (status line, body).
async fn http_get(addr: &str, path: &str) -> std::io::Result<(String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut text = String::new();
    s.read_to_string(&mut text).await?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

#[tokio::test]
async fn provider_run_takes_a_toml_config_serves_metrics_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let staked = stp(
        &anvil,
        &dep,
        &[
            "provider",
            "stake",
            "--amount",
            "1.5",
            "--private-key",
            &key(&anvil, 1),
        ],
    )
    .await;
    assert!(
        staked.status.success(),
        "{}",
        String::from_utf8_lossy(&staked.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics = format!("127.0.0.1:{port}");
    let config = dir.path().join("provider.toml");
    std::fs::write(
        &config,
        format!(
            "rpc-url = \"{}\"\ndeployment = \"{}\"\ndata-dir = \"{}\"\nbackend = \"cpu\"\npoll-ms = 100\nmetrics = \"{metrics}\"\n",
            anvil.endpoint(),
            dep.display(),
            dir.path().join("p1").display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_stp"))
        .args(["provider", "run", "--config"])
        .arg(&config)
        .env("STP_PRIVATE_KEY", key(&anvil, 1))
        .env_remove("ETH_RPC_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Every setting came from the file: the node reached anvil and serves its metrics.
    let mut body = String::new();
    for _ in 0..150 {
        if let Ok((status, b)) = http_get(&metrics, "/metrics").await
            && status.contains("200")
            && b.contains("stp_stake 1.5")
        {
            body = b;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(body.contains("stp_stake 1.5"), "no stake gauge in: {body}");
    assert!(body.contains("stp_jobs{phase=\"committed\"} 0"), "{body}");
    assert!(body.contains("stp_gpu_busy_seconds_total 0"), "{body}");
    let (status, _) = http_get(&metrics, "/nope").await.unwrap();
    assert!(status.contains("404"), "{status}");

    let pid = child.id().unwrap().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let exit = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait())
        .await
        .expect("the node stops within 30 s of SIGTERM")
        .unwrap();
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test]
async fn provider_config_file_with_a_typo_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("provider.toml");
    std::fs::write(&config, "price-flor = \"0.1\"\n").unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_stp"))
        .args(["provider", "run", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `price-flor`"), "{err}");
    assert!(err.contains("provider.toml"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_output_a_single_replica_agreed_on_fails_the_consumers_own_check() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    let out = stp(
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
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The only replica lies: hash agreement (k=1) cannot catch it, Freivalds can.
    let _liar = ProviderProc::start(&anvil, &dep, 1, dir.path(), Some("wrong-result"));
    let mut input = Vec::new();
    for v in [16u32, 16, 16] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..(2 * 16 * 16u32) {
        input.extend_from_slice(&(i ^ 0x5a5a).wrapping_mul(2_654_435_761).to_le_bytes());
    }
    let input_path = dir.path().join("in.bin");
    std::fs::write(&input_path, &input).unwrap();
    let output_path = dir.path().join("out.bin");
    let posted = stp(
        &anvil,
        &dep,
        &[
            "job",
            "post",
            "--kernel",
            "matmul-u32",
            "--input",
            input_path.to_str().unwrap(),
            "--bounty",
            "0.01",
            "--commit-secs",
            "30",
            "--reveal-secs",
            "30",
            "--poll-secs",
            "0.2",
            "--output",
            output_path.to_str().unwrap(),
            "--data-dir",
            dir.path().join("consumer").to_str().unwrap(),
            "--private-key",
            &key(&anvil, 4),
        ],
    )
    .await;
    let stderr = String::from_utf8_lossy(&posted.stderr);
    assert!(
        !posted.status.success(),
        "a wrong output was accepted:\n{stderr}"
    );
    assert!(stderr.contains("fails its check"), "{stderr}");
    assert!(stderr.contains("Freivalds"), "{stderr}");
}

#[tokio::test]
async fn job_post_with_a_model_runs_it_on_a_provider_and_checks_sampled_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let (anvil, dep) = devnet(dir.path()).await;
    devnet::stake(&anvil, &dep, &[1]).await;
    let _provider = ProviderProc::start(&anvil, &dep, 1, dir.path(), None);
    let digits = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/digits");
    let onnx = std::fs::read(digits.join("digits_int8.onnx")).unwrap();
    let model = stp_sdk::model::onnx::import(&onnx).unwrap().model;
    let model_path = dir.path().join("digits.stpm");
    std::fs::write(&model_path, model.model().encode()).unwrap();
    let samples = std::fs::read(digits.join("heldout_input.bin")).unwrap()[..40 * 64].to_vec();
    let input_path = dir.path().join("x.bin");
    std::fs::write(&input_path, &samples).unwrap();
    let output_path = dir.path().join("out.bin");
    let consumer_dir = dir.path().join("consumer");
    let posted = json(
        &stp(
            &anvil,
            &dep,
            &[
                "job",
                "post",
                "--model",
                model_path.to_str().unwrap(),
                "--input",
                input_path.to_str().unwrap(),
                "--bounty",
                "0.01",
                "--poll-secs",
                "0.2",
                "--output",
                output_path.to_str().unwrap(),
                "--json",
                "--data-dir",
                consumer_dir.to_str().unwrap(),
                "--private-key",
                &key(&anvil, 4),
            ],
        )
        .await,
    );
    assert_eq!(posted["outcome"], "completed", "{posted}");
    assert_eq!(posted["check"]["kernel"], "model", "{posted}");
    assert_eq!(posted["check"]["method"], "sampled", "{posted}");
    assert_eq!(
        posted["check"]["false_accept"]["kind"], "never",
        "all 40 samples recomputed"
    );
    assert_eq!(
        posted["kernel_id"],
        format!("0x{}", stp_sdk::model::job::kernel_id(&model.id())),
        "the spec names the model"
    );
    assert!(
        posted["input_size"].as_u64().unwrap() < 40 * 64 + 200,
        "the model travels by hash"
    );
    let expected = stp_sdk::model::run_cpu(&model, &samples)
        .unwrap()
        .to_bytes();
    assert!(
        std::fs::read(&output_path).unwrap() == expected,
        "the CPU run's bytes"
    );
}
