//! `stp job post | status | list | finalize | result`: the consumer's side of the market.

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256, U256};
use clap::{Args, Subcommand};
use eyre::{WrapErr, bail, eyre};
use libp2p::Multiaddr;
use serde::Serialize;
use stp_sdk::kernels::{KernelId, kernel_name};
use stp_sdk::market::lifecycle::Phase;
use stp_sdk::market::{JobHistory, JobSpecExt, Market, Outcome};
use tokio::sync::mpsc;

use super::common::{ChainArgs, block_on, format_amount, out, out_json, ser_wei, unit};
use super::index::IndexArgs;
use super::job_post::PostArgs;
use crate::p2p::{self, P2pClient, P2pConfig, Role, load_or_create_keypair};

/// Post jobs and follow them.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: JobCommand,
}

/// Job subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Post a job: escrow the bounty, serve the input to providers, optionally wait for the
    /// verified output.
    ///
    /// Examples:
    ///   stp job post --kernel matmul-u32 --input a.bin --bounty 0.01
    ///   stp job post --kernel sha256-batch --input msgs.bin --replicas 3 --bounty 0.03 \
    ///       --collateral 0.01 --wait --output digests.bin
    #[command(verbatim_doc_comment)]
    Post(Box<PostArgs>),
    /// Show one job: spec, slots (commits), reveals, phase and outcome.
    ///
    /// Example: stp job status 3 --json
    #[command(verbatim_doc_comment)]
    Status(StatusArgs),
    /// List the market's jobs with their phase or outcome.
    ///
    /// Example: stp job list --json
    #[command(verbatim_doc_comment)]
    List(ListArgs),
    /// Settle a job whose deadline passed (anyone may): a job short of slots after its
    /// commit deadline refunds its consumer and releases every committer; a job with a
    /// reveal missing after its reveal deadline pays the winners and slashes the missing.
    /// Provider nodes do this for their own jobs; this is the same by hand.
    ///
    /// Example: stp job finalize 3
    #[command(verbatim_doc_comment)]
    Finalize(FinalizeArgs),
    /// Fetch a completed job's output from a winning provider and verify its hash.
    ///
    /// Example: stp job result 3 --output out.bin --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo...
    #[command(verbatim_doc_comment)]
    Result(ResultArgs),
}

/// Options of `stp job status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The job id.
    pub id: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where the local chain index lives.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `stp job list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Where the local chain index lives.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `stp job finalize`.
#[derive(Debug, Args)]
pub struct FinalizeArgs {
    /// The job id.
    pub id: u64,
    /// Where the local chain index lives.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `stp job result`.
#[derive(Debug, Args)]
pub struct ResultArgs {
    /// The job id.
    pub id: u64,
    /// Where to write the verified output.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// The job's input: with it, a built-in kernel's output is also checked against the
    /// input (Freivalds for the matmuls, sampled recomputation otherwise).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// libp2p options for moving inputs and outputs.
    #[command(flatten)]
    pub p2p: P2pArgs,
    /// Where the local chain index lives.
    #[command(flatten)]
    pub index: IndexArgs,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// The consumer's p2p node.
#[derive(Debug, Clone, Args)]
pub struct P2pArgs {
    /// libp2p listen address of the consumer node (providers fetch the input from it).
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/0")]
    pub listen: Vec<Multiaddr>,
    /// libp2p peer to connect to at start, with `/p2p/<peer id>` (repeatable), e.g. a
    /// provider node; needed to find providers for `--output`.
    #[arg(long)]
    pub bootstrap: Vec<Multiaddr>,
    /// Directory for the consumer's libp2p identity and blob store.
    #[arg(long, env = "STP_CONSUMER_DIR", default_value = ".stp/consumer")]
    pub data_dir: PathBuf,
}

impl P2pArgs {
    /// Starts the consumer node; its event stream is drained in the background.
    pub async fn spawn(&self) -> eyre::Result<P2pClient> {
        let keypair = load_or_create_keypair(&self.data_dir.join("node.key"))?;
        let mut config = P2pConfig::new(keypair, self.data_dir.join("blobs"), Role::Consumer);
        config.listen_addrs = self.listen.clone();
        config.bootstrap = self.bootstrap.clone();
        let (client, events, _handle) = p2p::spawn(config)
            .await
            .wrap_err("starting the consumer's p2p node")?;
        drain(events);
        Ok(client)
    }
}

fn drain(mut events: mpsc::Receiver<p2p::P2pEvent>) {
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            tracing::debug!(?e, "p2p event");
        }
    });
}

impl JobArgs {
    /// Runs the subcommand.
    pub fn run(self) -> eyre::Result<()> {
        match self.command {
            JobCommand::Post(a) => block_on(a.run()),
            JobCommand::Status(a) => block_on(a.run()),
            JobCommand::List(a) => block_on(a.run()),
            JobCommand::Finalize(a) => block_on(a.run()),
            JobCommand::Result(a) => block_on(a.run()),
        }
    }
}

pub use crate::consumer::phase;

/// One reveal in a job view.
#[derive(Debug, Serialize)]
pub struct RevealView {
    /// The revealer.
    pub provider: Address,
    /// The revealed result hash.
    pub result_hash: B256,
}

/// One slot in a job view.
#[derive(Debug, Serialize)]
pub struct SlotView {
    /// The provider.
    pub provider: Address,
    /// Its lane.
    pub lane: u64,
    /// Drawn at the base rate (counts for reputation).
    pub drawn: bool,
}

/// What `stp job status --json` prints (and `job list --json`, per job).
#[derive(Debug, Serialize)]
pub struct JobView {
    /// The job id.
    pub job_id: u64,
    /// Built-in kernel name or `custom`.
    pub kernel: String,
    /// The kernel id.
    pub kernel_id: B256,
    /// The consumer.
    pub consumer: Address,
    /// Total bounty (wei).
    #[serde(serialize_with = "ser_wei")]
    pub bounty: U256,
    /// Collateral per replica (wei).
    #[serde(serialize_with = "ser_wei")]
    pub collateral: U256,
    /// Replicas k.
    pub replicas: u8,
    /// Quorum q.
    pub quorum: u8,
    /// Minimum reputation score.
    pub min_reputation: u32,
    /// BLAKE3 hash of the input (its name in the blob store).
    pub input_hash: B256,
    /// Input size (bytes).
    pub input_size: u64,
    /// Output size bound (bytes).
    pub max_output_size: u64,
    /// When it was posted (unix seconds; the base of its draw).
    pub posted_at: u64,
    /// Last second to commit (unix seconds).
    pub commit_deadline: u64,
    /// Last second to reveal.
    pub reveal_deadline: u64,
    /// Current phase.
    pub phase: Phase,
    /// Slots taken, in commit order.
    pub slots: Vec<SlotView>,
    /// Reveals.
    pub reveals: Vec<RevealView>,
    /// How it ended, if it did.
    pub outcome: Option<Outcome>,
    /// The winning result hash, if completed.
    pub result_hash: Option<B256>,
}

impl JobView {
    /// Builds the view; `None` if the job was never posted.
    pub fn new(h: &JobHistory, now: u64) -> Option<Self> {
        let spec = h.spec.as_ref()?;
        Some(Self {
            job_id: h.job_id,
            kernel: kernel_name(&KernelId(spec.kernelId.0)).into_owned(),
            kernel_id: spec.kernelId,
            consumer: spec.consumer,
            bounty: spec.bounty_amount(),
            collateral: spec.collateral_amount(),
            replicas: spec.replicas,
            quorum: spec.quorum,
            min_reputation: spec.minReputation,
            input_hash: spec.inputHash,
            input_size: spec.inputSize,
            max_output_size: spec.maxOutputSize,
            posted_at: h.posted_at,
            commit_deadline: spec.commit_deadline(),
            reveal_deadline: spec.reveal_deadline(),
            phase: phase(h, now),
            slots: h
                .slots
                .iter()
                .map(|s| SlotView {
                    provider: s.provider,
                    lane: s.lane,
                    drawn: s.drawn,
                })
                .collect(),
            reveals: h
                .reveals
                .iter()
                .map(|(provider, result_hash)| RevealView {
                    provider: *provider,
                    result_hash: *result_hash,
                })
                .collect(),
            outcome: h.outcome.map(|(o, _)| o),
            result_hash: h
                .outcome
                .filter(|(o, _)| *o == Outcome::Completed)
                .map(|(_, hash)| hash),
        })
    }

    /// The phase or outcome as a short word.
    pub fn state(&self) -> String {
        match self.outcome {
            Some(o) => format!("{o:?}").to_lowercase(),
            None => format!("{:?}", self.phase).to_lowercase(),
        }
    }
}

/// Loads a job's history (from the local chain index when it is usable), failing clearly
/// if it was never posted.
pub async fn history(m: &Market, index: &IndexArgs, id: u64) -> eyre::Result<JobHistory> {
    let h = index.history(m, id).await?;
    if h.spec.is_none() {
        return Err(crate::consumer::ConsumerError::NotPosted {
            job_id: id,
            escrow: m.deployment().job_escrow,
        }
        .into());
    }
    Ok(h)
}

impl StatusArgs {
    async fn run(self) -> eyre::Result<()> {
        let m = self.chain.market_read_only().await?;
        let h = history(&m, &self.index, self.id).await?;
        let view = JobView::new(&h, m.now().await?).ok_or_else(|| eyre!("job vanished"))?;
        if self.json {
            return out_json(&view);
        }
        print_view(&view, unit(m.deployment()));
        Ok(())
    }
}

fn print_view(v: &JobView, unit: &str) {
    out(format!("job             {}", v.job_id));
    out(format!("state           {}", v.state()));
    out(format!("kernel          {} ({})", v.kernel, v.kernel_id));
    out(format!("consumer        {}", v.consumer));
    out(format!(
        "bounty          {} {unit}, collateral {} per replica",
        format_amount(v.bounty),
        format_amount(v.collateral)
    ));
    out(format!(
        "replicas        {} (quorum {}, min reputation {})",
        v.replicas, v.quorum, v.min_reputation
    ));
    out(format!(
        "input           {} ({} bytes; output at most {} bytes)",
        v.input_hash, v.input_size, v.max_output_size
    ));
    out(format!(
        "times           posted {}, commit by {}, reveal by {} (unix s)",
        v.posted_at, v.commit_deadline, v.reveal_deadline
    ));
    out(format!("slots           {}/{}", v.slots.len(), v.replicas));
    for s in &v.slots {
        let drawn = if s.drawn { "drawn" } else { "drawn late" };
        let revealed = v
            .reveals
            .iter()
            .find(|r| r.provider == s.provider)
            .map_or_else(
                || "not revealed".to_string(),
                |r| format!("revealed {}", r.result_hash),
            );
        out(format!(
            "  {}  lane {}, {drawn}, {revealed}",
            s.provider, s.lane
        ));
    }
    if let Some(hash) = v.result_hash {
        out(format!("result hash     {hash}"));
    }
}

impl ListArgs {
    async fn run(self) -> eyre::Result<()> {
        let m = self.chain.market_read_only().await?;
        let histories = self.index.all_histories(&m).await?;
        let now = m.now().await?;
        let views: Vec<JobView> = histories
            .iter()
            .filter_map(|h| JobView::new(h, now))
            .collect();
        if self.json {
            return out_json(&views);
        }
        if views.is_empty() {
            out("no jobs posted yet (post one with `stp job post`)");
            return Ok(());
        }
        let unit = unit(m.deployment());
        out(format!(
            "{:>6}  {:<16}  {:>14}  {:>5}  {:<12}",
            "ID",
            "KERNEL",
            format!("BOUNTY ({unit})"),
            "K/Q",
            "STATE"
        ));
        for v in &views {
            out(format!(
                "{:>6}  {:<16}  {:>14}  {:>5}  {:<12}",
                v.job_id,
                v.kernel,
                format_amount(v.bounty),
                format!("{}/{}", v.replicas, v.quorum),
                v.state()
            ));
        }
        Ok(())
    }
}

impl FinalizeArgs {
    async fn run(self) -> eyre::Result<()> {
        let m = self.chain.market().await?;
        history(&m, &self.index, self.id).await?;
        let tx = m.finalize(self.id).await?;
        let h = m.job_history(self.id).await?;
        let outcome = h
            .outcome
            .map_or_else(|| "settled".to_string(), |(o, _)| format!("{o:?}"));
        out(format!(
            "finalized job {} (tx {tx}): {outcome}; payouts and refunds are credited (`stp payout claim`)",
            self.id
        ));
        Ok(())
    }
}

impl ResultArgs {
    async fn run(self) -> eyre::Result<()> {
        let m = self.chain.market_read_only().await?;
        let h = history(&m, &self.index, self.id).await?;
        let p2p = self.p2p.spawn().await?;
        let hash = fetch_output(&m, &p2p, &h, &self.output).await;
        p2p.shutdown().await;
        let hash = hash?;
        out(format!(
            "wrote {} (result {hash}, verified against the on-chain result)",
            self.output.display()
        ));
        match (&self.input, &h.spec) {
            (Some(path), Some(spec)) => {
                let input = std::fs::read(path)
                    .wrap_err_with(|| format!("reading --input {}", path.display()))?;
                if stp_sdk::p2p::input_hash(&input) != spec.inputHash.0 {
                    bail!(
                        "--input {} is not job {}'s input (its BLAKE3 hash differs from the job's inputHash)",
                        path.display(),
                        self.id
                    );
                }
                let kernel = KernelId(spec.kernelId.0);
                let verdict = super::check::check_output(self.id, &kernel, &input, &self.output)?;
                out(format!("checked: {verdict}"));
            }
            _ => out("not checked against the input (pass --input FILE to check it)"),
        }
        Ok(())
    }
}

/// Fetches a completed job's agreed output ([`crate::consumer::fetch_output`]: from its
/// winning providers, checked against the on-chain hash and the job's identity) and writes
/// it to `path`. Returns the hash.
pub async fn fetch_output(
    m: &Market,
    p2p: &P2pClient,
    h: &JobHistory,
    path: &Path,
) -> eyre::Result<B256> {
    let (hash, output) = crate::consumer::fetch_output(m, p2p, h).await?;
    tokio::fs::write(path, output)
        .await
        .wrap_err_with(|| format!("writing {}", path.display()))?;
    Ok(hash)
}
