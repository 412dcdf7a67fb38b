//! Real provider nodes for end-to-end tests: `stp provider run` as a child process (so a
//! test can `kill -9` it), and a consumer-side libp2p node that serves a job's input.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use alloy::primitives::{B256, Bytes, aliases::U40, aliases::U96};
use stp_node::daemon::encode_input_location;
use stp_node::p2p::{self, P2pClient, P2pConfig, Role};
use stp_sdk::kernels::{cpu_reference, find_kernel};
use stp_sdk::market::{JobHistory, JobSpec, Market};

use crate::support::{Net, eth};

/// The workspace's `stp` binary, with the `fault-injection` feature (the tests crash nodes
/// at chosen points and run liars). `cargo nextest run --workspace` builds it so (this
/// crate's dev-dependency turns the feature on); when it is missing, older than the node's
/// or sdk's sources, or was built without the feature (`stp --version` lists it), it is
/// built here first. (Always calling `cargo build` would be slower than it looks: a build
/// of one package resolves features differently and relinks half the tree.)
pub(crate) fn stp_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/it-<hash> -> target/<profile>/stp
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps");
        let bin = profile_dir.join("stp");
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
        let sources = ["node/src", "sdk/src", "sdk/artifacts", "Cargo.lock"].map(|p| root.join(p));
        if modified(&bin).is_some_and(|built| sources.iter().all(|s| newest(s) <= built))
            && has_faults(&bin)
        {
            return bin;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "stp-node", "--bin", "stp"]);
        build.args(["--features", "fault-injection"]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build
            .current_dir(root)
            .status()
            .expect("run cargo build for the stp binary");
        assert!(status.success(), "building stp failed");
        assert!(
            has_faults(&bin),
            "{} was built without fault-injection",
            bin.display()
        );
        bin
    })
}

/// Whether the `stp` binary at `bin` was built with the `fault-injection` feature.
fn has_faults(bin: &Path) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("features: fault-injection"))
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Newest modification time of `path` or anything under it.
fn newest(path: &Path) -> std::time::SystemTime {
    let own = modified(path).unwrap_or(std::time::UNIX_EPOCH);
    match std::fs::read_dir(path) {
        Ok(entries) => entries
            .flatten()
            .map(|e| newest(&e.path()))
            .fold(own, std::cmp::max),
        Err(_) => own,
    }
}

/// `stp provider run` as a child process, logging to `<data_dir>.log`.
pub(crate) struct Daemon {
    child: Option<Child>,
    args: Vec<String>,
    log: PathBuf,
}

impl Daemon {
    /// Starts a provider node for dev account `idx`, talking to `rpc_url`: on the CPU
    /// references unless `extra` names a `--backend`.
    pub(crate) fn start(
        net: &Net,
        idx: usize,
        rpc_url: &str,
        data_dir: &Path,
        extra: &[&str],
    ) -> Self {
        let deployment = data_dir.with_extension("deployment.json");
        net.deployment
            .save(&deployment)
            .expect("write deployment file");
        let mut args: Vec<String> = ["provider", "run", "--rpc-url", rpc_url]
            .iter()
            .map(ToString::to_string)
            .collect();
        if !extra.contains(&"--backend") {
            args.extend(["--backend".into(), "cpu".into()]);
        }
        args.extend([
            "--deployment".into(),
            deployment.display().to_string(),
            "--private-key".into(),
            format!("0x{}", alloy::hex::encode(net.anvil.keys()[idx].to_bytes())),
            "--data-dir".into(),
            data_dir.display().to_string(),
        ]);
        args.extend(extra.iter().map(ToString::to_string));
        let mut daemon = Self {
            child: None,
            args,
            log: data_dir.with_extension("log"),
        };
        daemon.spawn();
        daemon
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open daemon log");
        let child = Command::new(stp_bin())
            .args(&self.args)
            .env("RUST_LOG", "info,libp2p=warn")
            // Poll fast unless the test passes --poll-ms (flags beat the environment).
            .env("STP_POLL_MS", "100")
            .env_remove("ETH_RPC_URL")
            .env_remove("STP_PRIVATE_KEY")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start stp provider run");
        self.child = Some(child);
    }

    /// SIGKILL: no chance to flush, close or say goodbye.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the daemon");
            child.wait().expect("reap the daemon");
        }
    }

    /// SIGTERM, then waits up to `timeout` for the process to exit; returns whether it
    /// exited successfully.
    pub(crate) async fn terminate(&mut self, timeout: Duration) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(term.success(), "kill -TERM failed");
        let start = tokio::time::Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("poll child") {
                return status.success();
            }
            if start.elapsed() > timeout {
                child.kill().ok();
                child.wait().ok();
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its exit status.
    pub(crate) async fn exited(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = tokio::time::Instant::now();
        loop {
            let child = self.child.as_mut().expect("the node was started");
            if let Some(status) = child.try_wait().expect("poll child") {
                self.child = None;
                return status;
            }
            assert!(
                start.elapsed() < timeout,
                "the node did not exit within {timeout:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the node again with the same arguments and data directory.
    pub(crate) fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Whether the process is still running.
    pub(crate) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().expect("poll child").is_none())
    }

    /// The node's libp2p address with `/p2p/<peer id>`, once it logged being up (waits up
    /// to 60 s).
    pub(crate) async fn p2p_addr(&self) -> String {
        for _ in 0..600 {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.contains("provider node up")) {
                let field = |name: &str| {
                    line.split(name)
                        .nth(1)
                        .map(|rest| rest.split([' ', ']', ',']).next().unwrap_or("").to_string())
                };
                if let (Some(peer), Some(addr)) = (field("peer_id="), field("addrs=[")) {
                    return format!("{addr}/p2p/{peer}");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the node never logged its address:\n{}", self.log());
    }

    /// The node's log so far (for assertion messages).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A consumer's libp2p node serving one job input, as `stp job post` does.
pub(crate) struct InputServer {
    client: P2pClient,
    /// The bytes served.
    pub input: Vec<u8>,
    /// The spec's `inputLocation`: this node's addresses with its peer id.
    pub location: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl InputServer {
    /// Starts a node on 127.0.0.1 holding `input`.
    pub(crate) async fn start(input: Vec<u8>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let keypair = p2p::load_or_create_keypair(&dir.path().join("p2p.key")).expect("keypair");
        let config = P2pConfig::new(keypair, dir.path().join("blobs"), Role::Consumer);
        let (client, _events, _task) = p2p::spawn(config).await.expect("start libp2p");
        client
            .add_blob(input.clone(), stp_sdk::p2p::Naming::Blake3)
            .await
            .expect("store input");
        let addrs = client.dialable_addrs().await.expect("listen addrs");
        Self {
            client,
            input,
            location: encode_input_location(&addrs),
            _dir: dir,
        }
    }

    /// A matmul-u32 job over this input with its commit deadline `secs[0]` after `now` and
    /// its reveal deadline `secs[1]` after that.
    pub(crate) fn matmul_spec(&self, m: &Market, now: u64, k: u8, secs: [u64; 2]) -> JobSpec {
        let kernel = find_kernel("matmul-u32").expect("built-in kernel");
        let output = cpu_reference(&kernel.id, &self.input).expect("valid matmul input");
        let commit = now + secs[0];
        JobSpec {
            consumer: m.account(),
            kernelId: B256::from(kernel.id.0),
            inputHash: B256::from(stp_sdk::p2p::input_hash(&self.input)),
            inputSize: self.input.len() as u64,
            maxOutputSize: output.len() as u64,
            bounty: U96::saturating_from(eth("0.02")),
            collateral: U96::saturating_from(eth("0.1")),
            replicas: k,
            quorum: k / 2 + 1,
            minReputation: 0,
            commitDeadline: U40::from(commit),
            revealDeadline: U40::from(commit + secs[1]),
            inputLocation: Bytes::from(self.location.clone()),
        }
    }

    /// The result hash of the correct output in job `id`, as honest providers commit to it.
    pub(crate) fn expected_result(&self, m: &Market, id: u64) -> B256 {
        let kernel = find_kernel("matmul-u32").expect("built-in kernel");
        let output = cpu_reference(&kernel.id, &self.input).expect("valid matmul input");
        m.result_domain(id).result_hash(&output)
    }

    /// Stops the node.
    pub(crate) async fn stop(self) {
        self.client.shutdown().await;
    }
}

/// A valid 8x8x8 matmul-u32 input.
pub(crate) fn matmul_input(seed: u32) -> Vec<u8> {
    let mut input = Vec::new();
    for v in [8u32, 8, 8] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..128u32 {
        input.extend_from_slice(&(i ^ seed).wrapping_mul(2_654_435_761).to_le_bytes());
    }
    input
}

/// Polls `job_history(id)` every 100 ms until `done` holds; panics after `timeout` with
/// the daemons' logs.
pub(crate) async fn wait_for(
    m: &Market,
    id: u64,
    timeout: Duration,
    what: &str,
    logs: &[&Daemon],
    done: impl Fn(&JobHistory) -> bool,
) -> JobHistory {
    let start = tokio::time::Instant::now();
    loop {
        let h = m.job_history(id).await.expect("job history");
        if done(&h) {
            return h;
        }
        if start.elapsed() > timeout {
            let logs: Vec<String> = logs.iter().map(|d| d.log()).collect();
            panic!(
                "timed out waiting for {what}; job: {h:?}\n--- node logs ---\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
