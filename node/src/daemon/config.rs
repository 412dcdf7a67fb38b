use alloy::primitives::U256;
use alloy::signers::local::PrivateKeySigner;
use libp2p::Multiaddr;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use stp_sdk::market::Deployment;

use crate::exec::Backend;

/// Deliberate misbehaviour, for demos and tests of slashing and recovery. Only in builds
/// with the `fault-injection` feature.
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Commit and reveal the hash of a corrupted output.
    WrongResult,
    /// Commit, then never reveal.
    NoReveal,
    /// Exit the process right after the commit transaction is confirmed and recorded.
    CrashAfterCommit,
    /// Greedy: try to take slots of jobs the draw did not pick this node for (the escrow
    /// refuses them with EscrowNotDrawn).
    IgnoreDraw,
    /// Exit after the result and salt are stored, before the commit is sent.
    CrashAfterComputed,
    /// Exit as soon as the commit is mined, before the node records it.
    CrashAfterCommitMined,
    /// Exit as soon as the reveal is mined, before the node records it.
    CrashAfterRevealMined,
    /// The job store refuses to record a computed result, as a full or failing disk would:
    /// the node must stop (winding down) without committing it.
    StoreFailsAtComputed,
}

/// Everything the provider daemon needs to run.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// JSON-RPC endpoint of the chain.
    pub rpc_url: String,
    /// The provider's account.
    pub signer: PrivateKeySigner,
    /// The market to serve.
    pub deployment: Deployment,
    /// Where the job store, blobs and the p2p identity live.
    pub data_dir: PathBuf,
    /// libp2p listen addresses.
    pub listen: Vec<Multiaddr>,
    /// libp2p bootstrap peers (with `/p2p/<id>`).
    pub bootstrap: Vec<Multiaddr>,
    /// Most peers this node uploads to at once.
    pub max_upload_peers: usize,
    /// Most bytes per second this node uploads in all (`None`: unlimited).
    pub max_upload_rate: Option<u64>,
    /// Smallest bounty share per replica worth working for (wei or token units).
    pub price_floor: U256,
    /// What collateral the node accepts for a job's bounty share.
    pub collateral: super::scheduler::CollateralPolicy,
    /// Most jobs fetched or computed and not yet committed at once.
    pub max_concurrent: usize,
    /// Most bytes of shared input parts kept for later chunks and jobs.
    pub part_cache_bytes: u64,
    /// Compute backend.
    pub backend: Backend,
    /// Blocks to wait before acting on an event.
    pub confirmations: u64,
    /// How often to poll the chain.
    pub poll_interval: Duration,
    /// Deliberate misbehaviour (demos and tests only).
    #[cfg(feature = "fault-injection")]
    pub fault: Option<Fault>,
    /// Serve Prometheus metrics on this address.
    pub metrics_addr: Option<SocketAddr>,
    /// Withdraw earnings after each settled job.
    pub auto_withdraw: bool,
    /// When the GPU is shared (new jobs only inside these hours).
    pub schedule: super::scheduler::Schedule,
}
