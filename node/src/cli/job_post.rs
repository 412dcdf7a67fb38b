//! `stp job post`: validate the input, serve it over libp2p, post the job and follow it.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{B256, U256};
use clap::Args;
use eyre::{WrapErr, eyre};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use stp_sdk::kernels::{KernelId, kernel_name};
use stp_sdk::market::{JobHistory, JobSpec, Market, Outcome};

use super::check::check_output;
use super::common::{
    ChainArgs, format_amount, out, out_json, parse_amount, parse_positive_amount, unit,
};
use super::job::{P2pArgs, fetch_output};
use super::job_optimistic::{ChallengeReport, VerifyMode};
use super::receipt::Receipt;
use crate::consumer::{self, ModelWork, Order, resolve_kernel};
use crate::p2p::P2pClient;
use stp_sdk::p2p::Naming;

/// Options of `stp job post`.
#[derive(Debug, Args)]
pub struct PostArgs {
    /// Kernel name (`stp kernel list`) or 64-hex kernel id (custom kernels: the input is
    /// the custom envelope).
    #[arg(long, required_unless_present = "model", conflicts_with = "model")]
    pub kernel: Option<String>,
    /// Run this quantized model (`.stpm`, see `stp model`) over the samples in --input: the
    /// job's kernel id names the model, and providers fetch the model file once, by hash.
    #[arg(long, value_name = "MODEL")]
    pub model: Option<PathBuf>,
    /// Input file, laid out as the kernel expects (checked before posting); with --model,
    /// int8 samples back to back, each the model input's size.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Total bounty in ETH units (tokens in ERC-20 mode), more than 0, split among the
    /// winners.
    #[arg(long, default_value = "0.01", value_parser = parse_positive_amount)]
    pub bounty: U256,
    /// The terms the job is offered on.
    #[command(flatten)]
    pub terms: TermsArgs,
    /// Output size bound in bytes (default: the kernel's exact output size for this input).
    #[arg(long, value_name = "BYTES")]
    pub max_output: Option<u64>,
    /// Wait until the job is finalized (finalizing it once a deadline allows).
    #[arg(long)]
    pub wait: bool,
    /// Write the verified output here (implies --wait). Built-in kernels' outputs are then
    /// also checked against the input (Freivalds for the matmuls, sampled recomputation
    /// for sha256-batch and mandelbrot-fixed), with random choices drawn after the output
    /// arrived; a failing output is an error.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Skip the check of the output against the input (keep only the hash agreement);
    /// the same as `--verify none`.
    #[arg(long)]
    pub no_check: bool,
    /// How the output is checked against the input: `auto` picks the kernel's check
    /// (Freivalds for matmul-u32 / matmul-i8, sampled recomputation for sha256-batch and
    /// mandelbrot-fixed; custom kernels have none: replication is their guarantee).
    #[arg(long, value_enum, default_value_t = VerifyMode::Auto)]
    pub verify: VerifyMode,
    /// Post an optimistic job: one replica (--replicas 1), paid only after the market's
    /// challenge window. Its output is fetched and checked as soon as the replica commits;
    /// if the check fails the job is challenged on-chain (a bond of m x the bounty): m
    /// fresh drawn replicas recompute it, and if their quorum disagrees the replica is
    /// slashed and the bounty and bond come back. The collateral must be at least the bond
    /// divided by the market's slash fraction.
    #[arg(long)]
    pub optimistic: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds between chain polls while following the job.
    #[arg(long, default_value_t = 1.0, value_parser = super::common::parse_poll_secs)]
    pub poll_secs: f64,
    /// libp2p options for moving inputs and outputs.
    #[command(flatten)]
    pub p2p: P2pArgs,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// The terms every job of a post is offered on (`stp job post`, `stp batch post`).
#[derive(Debug, Args)]
pub struct TermsArgs {
    /// Independent replicas k that compute each job; a strict majority (k/2+1) of them must
    /// agree on the result hash.
    #[arg(long, default_value_t = 1)]
    pub replicas: u8,
    /// Stake each replica locks as collateral (slashed if it disagrees or vanishes).
    /// Provider nodes refuse collateral above 20 times the bounty share per replica or
    /// above 1 (their default --max-collateral-ratio and --max-collateral).
    #[arg(long, default_value = "0", value_parser = parse_amount)]
    pub collateral: U256,
    /// Post even if the collateral is above what provider nodes accept by default.
    #[arg(long)]
    pub force: bool,
    /// Minimum reputation score of a replica.
    #[arg(long, default_value_t = 0)]
    pub min_reputation: u32,
    /// Seconds from now until commits close: drawn providers fetch, run and commit in this
    /// window, and the draw widens over it. Default: safe for this chain (30 s plus 10
    /// blocks, at least the market's minimum).
    #[arg(long)]
    pub commit_secs: Option<u64>,
    /// Seconds after the commit deadline until reveals close. Default: safe for this chain
    /// (20 s plus 5 blocks, at least the market's minimum).
    #[arg(long)]
    pub reveal_secs: Option<u64>,
}

impl TermsArgs {
    /// An order of `kernel` on `input` with these terms and `bounty`.
    pub fn order(&self, kernel: KernelId, input: Vec<u8>, bounty: U256) -> Order {
        Order {
            kernel,
            input,
            served: None,
            replicas: self.replicas,
            bounty,
            collateral: self.collateral,
            force: self.force,
            min_reputation: self.min_reputation,
            commit_secs: self.commit_secs,
            reveal_secs: self.reveal_secs,
            max_output: None,
            announce: false,
            optimistic: false,
        }
    }
}

/// What `stp job post --json` prints.
#[derive(Debug, Serialize)]
pub(super) struct Posted {
    pub(super) job_id: u64,
    pub(super) tx: B256,
    pub(super) kernel: String,
    pub(super) kernel_id: B256,
    pub(super) input_hash: B256,
    pub(super) input_size: u64,
    pub(super) max_output_size: u64,
    pub(super) replicas: u8,
    pub(super) quorum: u8,
    #[serde(serialize_with = "super::common::ser_wei")]
    pub(super) bounty: U256,
    pub(super) posted_at: u64,
    pub(super) commit_deadline: u64,
    pub(super) reveal_deadline: u64,
    pub(super) input_location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) result_hash: Option<B256>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) output: Option<PathBuf>,
    /// The consumer's own check of the output (with `--output`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) check: Option<stp_sdk::verify::Verdict>,
    /// What was verified, once the job settled (or its claimed output was checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) receipt: Option<Receipt>,
    /// The challenge of an optimistic job whose output failed its check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) challenge: Option<ChallengeReport>,
}

impl PostArgs {
    /// Runs `stp job post`.
    pub async fn run(self) -> eyre::Result<()> {
        let (order, model) = self.order()?;
        self.verify_mode_fits(&order.kernel)?;
        consumer::check_replicas(order.replicas)?;
        let m = self.chain.market().await?;
        order.check(&m).await?;
        let p2p = self.p2p.spawn().await?;
        if let Some(model) = &model {
            p2p.add_blob(model.file.clone(), Naming::Blake3).await?;
        }
        let result = self.post_and_follow(&m, &p2p, &order).await;
        p2p.shutdown().await;
        result
    }

    /// The order from the command line (a model's, with the model to serve, under
    /// --model), its input checked against the kernel.
    fn order(&self) -> eyre::Result<(Order, Option<ModelWork>)> {
        let base = |kernel, input| Order {
            max_output: self.max_output,
            announce: !self.p2p.bootstrap.is_empty(),
            optimistic: self.optimistic,
            ..self.terms.order(kernel, input, self.bounty)
        };
        if let Some(path) = &self.model {
            let work = ModelWork::read(path, &self.input)?;
            let order = work.order(base(work.kernel(), Vec::new()));
            order.output_bound()?;
            return Ok((order, Some(work)));
        }
        let name = self.kernel.as_deref().unwrap_or_default();
        let input = std::fs::read(&self.input)
            .wrap_err_with(|| format!("reading --input {}", self.input.display()))?;
        let order = base(resolve_kernel(name)?, input);
        order.output_bound().wrap_err_with(|| {
            format!(
                "--input {} does not fit kernel {name}",
                self.input.display()
            )
        })?;
        Ok((order, None))
    }

    async fn post_and_follow(
        &self,
        m: &Market,
        p2p: &P2pClient,
        order: &Order,
    ) -> eyre::Result<()> {
        let job = consumer::send(m, p2p, order).await?;
        let (job_id, spec) = (job.job_id, &job.spec);
        let quorum = spec.quorum;
        let kernel = order.kernel;
        let mut posted = Posted {
            job_id,
            tx: job.tx,
            kernel: match &self.model {
                Some(path) => format!("model {}", path.display()),
                None => kernel_name(&kernel).into_owned(),
            },
            kernel_id: spec.kernelId,
            input_hash: spec.inputHash,
            input_size: spec.inputSize,
            max_output_size: spec.maxOutputSize,
            replicas: self.terms.replicas,
            quorum,
            bounty: self.bounty,
            posted_at: job.posted_at,
            commit_deadline: spec.commitDeadline.to(),
            reveal_deadline: spec.revealDeadline.to(),
            input_location: job.input_location.clone(),
            outcome: None,
            result_hash: None,
            output: None,
            check: None,
            receipt: None,
            challenge: None,
        };
        if !self.json {
            out(format!(
                "posted job {job_id} (tx {}): {} x{} quorum {}, bounty {} {}",
                job.tx,
                posted.kernel,
                self.terms.replicas,
                quorum,
                format_amount(self.bounty),
                unit(m.deployment())
            ));
        }
        if order.optimistic {
            return self.follow_optimistic(m, p2p, order, &job, posted).await;
        }
        let wait = self.wait || self.output.is_some();
        let h = self
            .follow(m, p2p, spec, (job_id, job.post_block), wait)
            .await?;
        if let Some((outcome, hash)) = h.outcome {
            posted.outcome = Some(outcome);
            posted.result_hash = (outcome == Outcome::Completed).then_some(hash);
            if !self.json {
                out(format!("job {job_id} ended: {outcome:?}"));
            }
        }
        if let Some(path) = &self.output {
            let hash = fetch_output(m, p2p, &h, path).await?;
            posted.output = Some(path.clone());
            if !self.json {
                out(format!(
                    "wrote {} (result {hash}, verified against the on-chain result)",
                    path.display()
                ));
            }
            if self.checks() {
                let verdict = check_output(job_id, &kernel, &order.input, path)?;
                if !self.json {
                    out(format!("checked: {verdict}"));
                }
                posted.check = Some(verdict);
            }
        } else if let (false, Some(hash)) = (self.json, posted.result_hash) {
            out(format!("result hash {hash}"));
        }
        if let Some((_, hash)) = h.outcome {
            let receipt = Receipt::of(&h, hash, posted.check.clone());
            if !self.json {
                out(format!("receipt: {receipt}"));
            }
            posted.receipt = Some(receipt);
        }
        if self.json {
            out_json(&posted)?;
        }
        Ok(())
    }

    /// Serves the input while the job needs it, showing progress. Without `wait` it returns
    /// once every replica committed (or the job can no longer use the input); with `wait` it
    /// finalizes the job when allowed and returns its settled history.
    pub(super) async fn follow(
        &self,
        m: &Market,
        p2p: &P2pClient,
        spec: &JobSpec,
        (job_id, post_block): (u64, u64),
        wait: bool,
    ) -> eyre::Result<JobHistory> {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or(ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        let poll = Duration::from_secs_f64(self.poll_secs.clamp(0.05, 60.0));
        let result = tokio::select! {
            r = consumer::follow(m, (job_id, post_block), wait, poll, |p| bar.set_message(p.to_string())) => r,
            () = watch_replication(p2p, spec, &bar, self.json) => unreachable!("never returns"),
            _ = tokio::signal::ctrl_c() => Err(eyre!(
                "interrupted: stopped serving the input; job {job_id} stays on-chain (`stp job status {job_id}`)"
            )),
        };
        bar.finish_and_clear();
        result
    }
}

/// How often the input's spread over the providers is asked.
const REPLICATION_POLL: Duration = Duration::from_secs(2);

/// Reports, once, when `spec.replicas` providers hold the whole input: from then on they
/// serve it to each other and the consumer may go offline. Never returns.
async fn watch_replication(p2p: &P2pClient, spec: &JobSpec, bar: &ProgressBar, json: bool) {
    loop {
        tokio::time::sleep(REPLICATION_POLL).await;
        let Ok(r) = p2p.replication(spec.inputHash.0).await else {
            continue;
        };
        if r.complete() >= usize::from(spec.replicas) {
            tracing::info!(
                copies = r.complete(),
                "input fully replicated to the providers"
            );
            if !json {
                bar.println(format!(
                    "input fully replicated: {} providers hold all of it and serve it to each other (this node may go offline)",
                    r.complete()
                ));
            }
            return std::future::pending().await;
        }
    }
}
