//! The market the explorer tests look at: anvil with the market deployed, three staked
//! provider nodes (the third lies: `--fault wrong-result`), jobs posted by a consumer
//! through `stp job post`, and `stp explorer` itself, all real processes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::node_bindings::AnvilInstance;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::devnet::{devnet, key};

/// Index of the lying provider's dev account.
pub(crate) const LIAR: usize = 3;
/// Index of the consumer's dev account.
pub(crate) const CONSUMER: usize = 4;

/// A devnet with three staked provider nodes and an explorer watching it.
pub(crate) struct Market {
    /// Killed on drop; `None` once the test killed it.
    pub(crate) anvil: Option<AnvilInstance>,
    /// The deployment file.
    pub(crate) deployment: PathBuf,
    /// The explorer's base URL (`http://127.0.0.1:port`).
    pub(crate) url: String,
    /// Provider 1's libp2p peer id.
    pub(crate) peer1: String,
    /// Scratch space.
    pub(crate) dir: tempfile::TempDir,
    _children: Vec<Child>,
}

fn stp() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stp"));
    cmd.env_remove("STP_PRIVATE_KEY")
        .env_remove("ETH_RPC_URL")
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    cmd
}

impl Market {
    /// Starts everything; returns once the explorer serves.
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (anvil, deployment) = devnet(dir.path()).await;
        for idx in 1..=3 {
            let out = stp()
                .args(["provider", "stake", "--amount", "1", "--private-key"])
                .arg(key(&anvil, idx))
                .args(chain_args(&anvil, &deployment))
                .output()
                .await
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // Stake counts in the draw of jobs posted after the block it was bonded in.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // Provider 1 listens on a known address with a known identity: the explorer reads
        // provider records from the p2p network through it.
        let port = free_port();
        let key1 =
            stp_node::p2p::load_or_create_keypair(&dir.path().join("provider1/p2p.key")).unwrap();
        let peer1 = key1.public().to_peer_id().to_string();
        let mut children = Vec::new();
        for idx in 1..=3 {
            let mut cmd = stp();
            cmd.args(["provider", "run", "--backend", "cpu", "--poll-ms", "100"])
                .args(chain_args(&anvil, &deployment))
                .arg("--private-key")
                .arg(key(&anvil, idx))
                .arg("--data-dir")
                .arg(dir.path().join(format!("provider{idx}")))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if idx == LIAR {
                cmd.args(["--fault", "wrong-result"]);
            }
            if idx == 1 {
                cmd.arg("--listen")
                    .arg(format!("/ip4/127.0.0.1/tcp/{port}"));
            }
            children.push(cmd.spawn().expect("start stp provider run"));
        }
        let mut explorer = stp()
            .args(["explorer", "--listen", "127.0.0.1:0", "--poll-ms", "200"])
            .arg("--index-dir")
            .arg(dir.path().join("explorer"))
            .arg("--bootstrap")
            .arg(format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer1}"))
            .args(chain_args(&anvil, &deployment))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start stp explorer");
        let stdout = explorer.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("stp explorer prints its URL")
            .unwrap()
            .expect("stp explorer exited before serving");
        let url = first
            .strip_prefix("explorer at ")
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .trim_end_matches('/')
            .to_string();
        children.push(explorer);
        Self {
            anvil: Some(anvil),
            deployment,
            url,
            peer1,
            dir,
            _children: children,
        }
    }

    fn anvil(&self) -> &AnvilInstance {
        self.anvil.as_ref().expect("anvil is running")
    }

    /// Address of dev account `idx`, as the API writes it (lowercase hex).
    pub(crate) fn address(&self, idx: usize) -> String {
        self.anvil().addresses()[idx].to_string().to_lowercase()
    }

    /// Starts `stp job post --wait` of a 3-replica matmul as the consumer, with `extra`
    /// flags; the child ends once the job is settled.
    pub(crate) fn post(&self, name: &str, extra: &[&str]) -> Child {
        let input = self.dir.path().join(format!("{name}.in"));
        std::fs::write(&input, matmul_input(8)).unwrap();
        stp()
            .args(["job", "post", "--kernel", "matmul-u32", "--input"])
            .arg(&input)
            .args(["--replicas", "3", "--bounty", "0.03", "--collateral", "0.1"])
            .args([
                "--reveal-secs",
                "30",
                "--poll-secs",
                "0.2",
                "--wait",
                "--json",
            ])
            .args(extra)
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("consumer-{name}")))
            .arg("--private-key")
            .arg(key(self.anvil(), CONSUMER))
            .args(chain_args(self.anvil(), &self.deployment))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stp job post")
    }

    /// GET `path` of the explorer: (status, body).
    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        request(&self.url, "GET", path).await
    }

    /// GET `path` of the API, expecting 200 and JSON.
    pub(crate) async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Polls `path` until `done` holds of its JSON (or panics after `within`).
    pub(crate) async fn until(
        &self,
        path: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let v = self.json(path).await;
            if done(&v) {
                return v;
            }
            assert!(start.elapsed() < within, "GET {path} never got there: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Waits for a `stp job post` child and returns its JSON report.
pub(crate) async fn posted(child: Child) -> Value {
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("stp job post settles")
        .unwrap();
    assert!(
        out.status.success(),
        "stp job post: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chain_args(anvil: &AnvilInstance, deployment: &Path) -> Vec<String> {
    vec![
        "--rpc-url".into(),
        anvil.endpoint(),
        "--deployment".into(),
        deployment.display().to_string(),
    ]
}

/// A matmul-u32 input of `n`×`n` times `n`×`n`.
fn matmul_input(n: u32) -> Vec<u8> {
    let mut input = Vec::new();
    for v in [n, n, n] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..(2 * n * n) {
        input.extend_from_slice(&i.wrapping_mul(2_654_435_761).to_le_bytes());
    }
    input
}

/// One HTTP/1.1 request with `method` to `base` + `path`: (status, body).
pub(crate) async fn request(base: &str, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host)
        .await
        .expect("explorer is up");
    s.write_all(
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    (
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    )
}

/// The body of a chunked response.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}
