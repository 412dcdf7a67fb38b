//! The devnet the `stp` binary tests run against: anvil on a free port with a market
//! deployed by account 0 and its deployment file written. Shared by the test binaries
//! (each uses what it needs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use stp_sdk::market::{DeployParams, Deployment, Market, deploy, find_anvil};

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// anvil with a devnet market and its deployment file in `dir`.
pub(crate) async fn devnet(dir: &Path) -> (AnvilInstance, PathBuf) {
    devnet_with(dir, |_| DeployParams::devnet()).await
}

/// anvil with a market deployed with `params(anvil)` and its deployment file in `dir`.
pub(crate) async fn devnet_with(
    dir: &Path,
    params: impl FnOnce(&AnvilInstance) -> DeployParams,
) -> (AnvilInstance, PathBuf) {
    let path = find_anvil(&[repo_root()])
        .unwrap_or_else(|| panic!("anvil not found: run `npm ci` at the repository root"));
    let anvil = Anvil::at(path).port(0u16).spawn();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(PrivateKeySigner::from(
            anvil.keys()[0].clone(),
        )))
        .connect_http(anvil.endpoint_url())
        .erased();
    let deployment: Deployment = deploy(&provider, &params(&anvil)).await.unwrap();
    let file = dir.join("deployment.json");
    deployment.save(&file).unwrap();
    (anvil, file)
}

/// A market handle on `anvil`'s deployment signing as dev account `idx`.
pub(crate) async fn market(anvil: &AnvilInstance, dep: &Path, idx: usize) -> Market {
    let signer = PrivateKeySigner::from(anvil.keys()[idx].clone());
    Market::connect(&anvil.endpoint(), signer, Deployment::load(dep).unwrap())
        .await
        .unwrap()
}

/// Stakes 1 ETH for each of `providers` and waits a block, so their stake is in the draw
/// of jobs posted from now.
pub(crate) async fn stake(anvil: &AnvilInstance, dep: &Path, providers: &[usize]) {
    for &i in providers {
        market(anvil, dep, i).await.stake(eth("1")).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
}

/// `s` ETH in wei.
pub(crate) fn eth(s: &str) -> U256 {
    alloy::primitives::utils::parse_ether(s).unwrap()
}

/// Dev account `idx`'s private key as `--private-key` takes it.
pub(crate) fn key(anvil: &AnvilInstance, idx: usize) -> String {
    format!("0x{}", alloy::hex::encode(anvil.keys()[idx].to_bytes()))
}

/// `stp ARGS` against `anvil` and its `deployment`, with the caller's STP_* and RPC
/// environment cleared and the chain index next to the deployment file.
pub(crate) fn stp_cmd(
    anvil: &AnvilInstance,
    deployment: &Path,
    args: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_stp"));
    cmd.args(args)
        .arg("--rpc-url")
        .arg(anvil.endpoint())
        .arg("--deployment")
        .arg(deployment)
        .env_remove("STP_PRIVATE_KEY")
        .env_remove("ETH_RPC_URL")
        .env("RUST_BACKTRACE", "0")
        .env("STP_INDEX_DIR", deployment.with_extension("index"))
        .kill_on_drop(true);
    cmd
}

/// The JSON a successful `stp … --json` printed (panics with its stderr otherwise).
pub(crate) fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "stp failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// A `stp provider run` child process of dev account `idx` (data in `dir/provider<idx>`,
/// CPU backend, `--fault` if given), killed on drop.
pub(crate) struct ProviderProc {
    child: tokio::process::Child,
    log: Option<PathBuf>,
}

impl ProviderProc {
    pub(crate) fn start(
        anvil: &AnvilInstance,
        dep: &Path,
        idx: usize,
        dir: &Path,
        fault: Option<&str>,
    ) -> Self {
        Self::spawn(anvil, dep, idx, dir, fault, None, &[])
    }

    /// As [`Self::start`], with the node's info log in `dir/provider<idx>.log` (for
    /// [`Self::addr`]).
    pub(crate) fn start_logged(anvil: &AnvilInstance, dep: &Path, idx: usize, dir: &Path) -> Self {
        Self::start_logged_with(anvil, dep, idx, dir, &[])
    }

    /// As [`Self::start_logged`], with `extra` arguments to `stp provider run`.
    pub(crate) fn start_logged_with(
        anvil: &AnvilInstance,
        dep: &Path,
        idx: usize,
        dir: &Path,
        extra: &[&str],
    ) -> Self {
        let log = dir.join(format!("provider{idx}.log"));
        Self::spawn(anvil, dep, idx, dir, None, Some(log), extra)
    }

    fn spawn(
        anvil: &AnvilInstance,
        dep: &Path,
        idx: usize,
        dir: &Path,
        fault: Option<&str>,
        log: Option<PathBuf>,
        extra: &[&str],
    ) -> Self {
        let args = ["provider", "run", "--backend", "cpu", "--poll-ms", "100"];
        let mut cmd = stp_cmd(anvil, dep, &args);
        cmd.arg("--private-key")
            .arg(key(anvil, idx))
            .arg("--data-dir")
            .arg(dir.join(format!("provider{idx}")))
            .args(extra)
            .stdout(std::process::Stdio::null());
        match &log {
            Some(path) => {
                let file = std::fs::File::create(path).expect("create the node's log");
                cmd.env("RUST_LOG", "warn,stp_node=info")
                    .env("NO_COLOR", "1")
                    .stderr(file)
            }
            None => cmd
                .env("RUST_LOG", "warn")
                .stderr(std::process::Stdio::null()),
        };
        if let Some(f) = fault {
            cmd.args(["--fault", f]);
        }
        Self {
            child: cmd.spawn().expect("start stp provider run"),
            log,
        }
    }

    /// The node's full libp2p address (`/ip4/.../tcp/N/p2p/ID`) once it is up (nodes
    /// started with [`Self::start_logged`]).
    pub(crate) async fn addr(&self) -> String {
        let log = self.log.as_ref().expect("a node started with start_logged");
        for _ in 0..600 {
            let text = strip_ansi(&std::fs::read_to_string(log).unwrap_or_default());
            if let Some(line) = text.lines().find(|l| l.contains("provider node up")) {
                let peer = line
                    .split("peer_id=")
                    .nth(1)
                    .and_then(|r| r.split(' ').next());
                let addr = line
                    .split("addrs=[")
                    .nth(1)
                    .and_then(|r| r.split([',', ']']).next());
                if let (Some(peer), Some(addr)) = (peer, addr) {
                    return format!("{addr}/p2p/{peer}");
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the node never logged its address: {}", log.display());
    }

    /// The node's log so far, without colours (nodes started with [`Self::start_logged`]).
    pub(crate) fn log_text(&self) -> String {
        let log = self.log.as_ref().expect("a node started with start_logged");
        strip_ansi(&std::fs::read_to_string(log).unwrap_or_default())
    }

    /// Kills the node with SIGKILL (`kill -9`): no shutdown, nothing flushed.
    pub(crate) async fn kill(&mut self) {
        self.child.kill().await.expect("kill the provider node");
    }
}

/// `text` without ANSI colour sequences (`ESC [ ... m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
