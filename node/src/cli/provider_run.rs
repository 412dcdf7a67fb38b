//! `stp provider run`: the provider daemon.

use alloy::primitives::U256;
use clap::Args;
use eyre::WrapErr;
use libp2p::Multiaddr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::common::{ChainArgs, parse_amount};
#[cfg(feature = "fault-injection")]
use crate::daemon::Fault;
use crate::daemon::scheduler::{CollateralPolicy, Schedule};
use crate::daemon::{self, DaemonConfig};
use crate::exec::Backend;

/// Run a provider node: find jobs, compute them on the GPU, commit, reveal, get paid.
///
/// The node keeps its state in --data-dir; after a crash or `kill -9`, start it again with
/// the same directory and it carries every job on from where it stood.
///
/// Options come from flags, then environment variables (named on each flag), then
/// `--config FILE` (TOML), then the defaults.
///
/// Examples:
///   stp provider run --private-key $KEY --data-dir ~/.stp/provider --price-floor 0.001
///   stp provider run --config provider.toml --metrics 127.0.0.1:9464
#[derive(Debug, Args)]
pub struct ProviderRunArgs {
    /// TOML file with any of these options under the flags' names (e.g. `price-floor =
    /// "0.001"`); flags and environment variables override it.
    #[arg(long, env = "STP_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    chain: ChainArgs,
    /// Directory for the job store, blobs and the libp2p identity.
    #[arg(long, env = "STP_DATA_DIR", default_value = ".stp/provider")]
    data_dir: PathBuf,
    /// libp2p listen address (repeatable).
    #[arg(
        long,
        env = "STP_LISTEN",
        value_delimiter = ',',
        default_value = "/ip4/127.0.0.1/tcp/0"
    )]
    listen: Vec<Multiaddr>,
    /// libp2p bootstrap peer with `/p2p/<peer id>` (repeatable).
    #[arg(long, env = "STP_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<Multiaddr>,
    /// Most peers this node uploads inputs and outputs to at once (it serves every chunk it
    /// verified, so consumers upload each byte about once).
    #[arg(long, env = "STP_MAX_UPLOAD_PEERS", default_value_t = 16)]
    max_upload_peers: usize,
    /// Most bytes per second this node uploads in all (default: unlimited).
    #[arg(long, env = "STP_MAX_UPLOAD_RATE", value_name = "BYTES_PER_SEC")]
    max_upload_rate: Option<u64>,
    /// Smallest bounty share per replica worth working for (ETH or token units).
    #[arg(long, env = "STP_PRICE_FLOOR", default_value = "0", value_parser = parse_amount)]
    price_floor: U256,
    /// Most collateral accepted per unit of bounty share: a job whose collateral exceeds
    /// this many times its per-replica share is refused (a consumer could otherwise make
    /// honest providers risk much for little).
    #[arg(long, env = "STP_MAX_COLLATERAL_RATIO", default_value_t = CollateralPolicy::DEFAULT_RATIO)]
    max_collateral_ratio: u64,
    /// Most collateral accepted for any one job (ETH or token units).
    #[arg(long, env = "STP_MAX_COLLATERAL", default_value = CollateralPolicy::DEFAULT_CAP, value_parser = parse_amount)]
    max_collateral: U256,
    /// Most jobs fetched or computed and not yet committed at once.
    #[arg(long, env = "STP_MAX_CONCURRENT", default_value_t = 2)]
    max_concurrent: usize,
    /// Most bytes of shared input parts (data batch chunks reference by hash, such as the
    /// B of a matmul batch) kept for later chunks and jobs; the least recently used go
    /// first.
    #[arg(long, env = "STP_PART_CACHE_BYTES", default_value_t = crate::daemon::DEFAULT_PART_CACHE_BYTES)]
    part_cache_bytes: u64,
    /// Where kernels run: a GPU adapter, the CPU references, or the GPU if one exists.
    #[arg(long, env = "STP_BACKEND", value_enum, default_value = "auto")]
    backend: Backend,
    /// Blocks to wait before acting on an event.
    #[arg(long, env = "STP_CONFIRMATIONS", default_value_t = 0)]
    confirmations: u64,
    /// Chain polling interval in milliseconds.
    #[arg(long, env = "STP_POLL_MS", default_value_t = 500)]
    poll_ms: u64,
    /// Hours (UTC) the GPU is shared, e.g. `22:00-07:00,12:00-13:00`; no new jobs outside
    /// them (jobs already taken are finished). Default: always.
    #[arg(
        long,
        env = "STP_SHARE_HOURS",
        value_name = "WINDOWS",
        default_value = ""
    )]
    share_hours: Schedule,
    /// Withdraw earnings to the wallet after each settled job.
    #[arg(long, env = "STP_AUTO_WITHDRAW")]
    auto_withdraw: bool,
    /// Serve Prometheus metrics on this address at `/metrics` (e.g. 127.0.0.1:9464): jobs
    /// by phase, stake, credited earnings, GPU busy time, transactions, failed polls.
    #[arg(long, env = "STP_METRICS", value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Misbehave on purpose (demos and tests of slashing and recovery; only in builds with
    /// the `fault-injection` feature).
    #[cfg(feature = "fault-injection")]
    #[arg(long, value_enum, hide = true)]
    fault: Option<Fault>,
}

impl ProviderRunArgs {
    /// Runs the daemon until Ctrl-C or SIGTERM.
    pub fn run(self) -> eyre::Result<()> {
        let runtime = tokio::runtime::Runtime::new().wrap_err("starting the async runtime")?;
        runtime.block_on(async move {
            let signer = self.chain.wallet.signer()?;
            let deployment = self.chain.deployment.load(&self.chain.rpc).await?;
            let config = DaemonConfig {
                rpc_url: self.chain.rpc.rpc_url.clone(),
                signer,
                deployment,
                data_dir: self.data_dir,
                listen: self.listen,
                bootstrap: self.bootstrap,
                max_upload_peers: self.max_upload_peers.max(1),
                max_upload_rate: self.max_upload_rate,
                price_floor: self.price_floor,
                collateral: CollateralPolicy {
                    ratio: self.max_collateral_ratio,
                    cap: self.max_collateral,
                },
                max_concurrent: self.max_concurrent.max(1),
                part_cache_bytes: self.part_cache_bytes,
                backend: self.backend,
                confirmations: self.confirmations,
                poll_interval: Duration::from_millis(self.poll_ms.max(50)),
                #[cfg(feature = "fault-injection")]
                fault: self.fault,
                metrics_addr: self.metrics,
                auto_withdraw: self.auto_withdraw,
                schedule: self.share_hours,
            };
            daemon::run(config, shutdown_signal()).await
        })
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
