//! `stp job post`: validate the input, serve it over libp2p, post the job and follow it.

use std::path::PathBuf;
use std::time::Duration;

use alloy::primitives::{
    B256, Bytes, U256,
    aliases::{U40, U96},
};
use clap::Args;
use eyre::{WrapErr, bail, eyre};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use stp_sdk::kernels::{KernelId, find_kernel, kernel_name, max_output_size};
use stp_sdk::market::{JobHistory, JobSpec, Market, Outcome, Windows, announcement};

use super::check::check_output;
use super::common::{
    ChainArgs, format_amount, max_replicas, out, out_json, parse_amount, parse_positive_amount,
    paying, unit,
};
use super::job::{P2pArgs, fetch_output, phase};
use crate::daemon::encode_input_location;
use crate::daemon::scheduler::CollateralPolicy;
use crate::p2p::P2pClient;
use stp_sdk::market::lifecycle::Phase;

/// Options of `stp job post`.
#[derive(Debug, Args)]
pub struct PostArgs {
    /// Kernel name (`stp kernel list`) or 64-hex kernel id (custom kernels: the input is
    /// the custom envelope).
    #[arg(long)]
    pub kernel: String,
    /// Input file, laid out as the kernel expects (checked before posting).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Independent replicas k that compute the job; a strict majority (k/2+1) of them must
    /// agree on the result hash.
    #[arg(long, default_value_t = 1)]
    pub replicas: u8,
    /// Total bounty in ETH units (tokens in ERC-20 mode), more than 0, split among the
    /// winners.
    #[arg(long, default_value = "0.01", value_parser = parse_positive_amount)]
    pub bounty: U256,
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
    /// Skip the check of the output against the input (keep only the hash agreement).
    #[arg(long)]
    pub no_check: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Seconds between chain polls while following the job.
    #[arg(long, default_value_t = 1.0)]
    pub poll_secs: f64,
    /// libp2p options for moving inputs and outputs.
    #[command(flatten)]
    pub p2p: P2pArgs,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// What `stp job post --json` prints.
#[derive(Debug, Serialize)]
struct Posted {
    job_id: u64,
    tx: B256,
    kernel: String,
    kernel_id: B256,
    input_hash: B256,
    input_size: u64,
    max_output_size: u64,
    replicas: u8,
    quorum: u8,
    #[serde(serialize_with = "super::common::ser_wei")]
    bounty: U256,
    posted_at: u64,
    commit_deadline: u64,
    reveal_deadline: u64,
    input_location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_hash: Option<B256>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<PathBuf>,
    /// The consumer's own check of the output (with `--output`).
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<stp_sdk::verify::Verdict>,
}

impl PostArgs {
    /// Runs `stp job post`.
    pub async fn run(self) -> eyre::Result<()> {
        let input = std::fs::read(&self.input)
            .wrap_err_with(|| format!("reading --input {}", self.input.display()))?;
        let kernel = resolve_kernel(&self.kernel)?;
        let needed = max_output_size(&kernel, &input).wrap_err_with(|| {
            format!(
                "--input {} does not fit kernel {}",
                self.input.display(),
                self.kernel
            )
        })?;
        let max_output = match self.max_output {
            Some(m) if m < needed => {
                bail!("--max-output {m} is smaller than the {needed} bytes this input produces")
            }
            Some(m) => m,
            None => needed,
        };
        check_replicas(self.replicas)?;
        let quorum = self.replicas / 2 + 1;
        let m = self.chain.market().await?;
        let unit = unit(m.deployment());
        match check_collateral(self.bounty, self.replicas, self.collateral, unit) {
            Err(why) if self.force => tracing::warn!("{why}; posting anyway (--force)"),
            Err(why) => bail!("{why}; or pass --force to post it anyway"),
            Ok(()) => {}
        }
        let max = max_replicas(&m).await?;
        if u64::from(self.replicas) > max {
            bail!(
                "--replicas {} is above this market's maximum of {max} (its maxReplicas; see `stp market info`)",
                self.replicas
            );
        }
        let p2p = self.p2p.spawn().await?;
        let result = self
            .post_and_follow(&m, &p2p, kernel, input, max_output, quorum)
            .await;
        p2p.shutdown().await;
        result
    }

    async fn post_and_follow(
        &self,
        m: &Market,
        p2p: &P2pClient,
        kernel: KernelId,
        input: Vec<u8>,
        max_output: u64,
        quorum: u8,
    ) -> eyre::Result<()> {
        let input_hash = B256::from(stp_sdk::p2p::sha256(&input));
        let input_size = input.len() as u64;
        let stored = p2p.add_blob(input).await?;
        if stored != input_hash.0 {
            bail!("blob store hashed the input differently; this is a bug");
        }
        let addrs = p2p.dialable_addrs().await?;
        let location = encode_input_location(&addrs);
        let (commit_secs, reveal_secs) = self.windows(m).await?;
        let base = m.now().await?;
        let commit = base + commit_secs;
        let reveal = commit + reveal_secs;
        let spec = JobSpec {
            consumer: m.account(),
            kernelId: B256::from(kernel.0),
            inputHash: input_hash,
            inputSize: input_size,
            maxOutputSize: max_output,
            bounty: to_u96("--bounty", self.bounty)?,
            collateral: to_u96("--collateral", self.collateral)?,
            replicas: self.replicas,
            quorum,
            minReputation: self.min_reputation,
            commitDeadline: U40::from(commit),
            revealDeadline: U40::from(reveal),
            inputLocation: Bytes::from(location.clone()),
        };
        let posted_job = paying(m, "bounty", self.bounty, m.post_job(spec.clone())).await?;
        let (job_id, tx) = (posted_job.job_id, posted_job.tx);
        if !self.p2p.bootstrap.is_empty() {
            announce(m, p2p, job_id, &spec, posted_job.posted_at).await;
        }
        let mut posted = Posted {
            job_id,
            tx,
            kernel: kernel_name(&kernel).into_owned(),
            kernel_id: spec.kernelId,
            input_hash,
            input_size,
            max_output_size: max_output,
            replicas: self.replicas,
            quorum,
            bounty: self.bounty,
            posted_at: posted_job.posted_at,
            commit_deadline: commit,
            reveal_deadline: reveal,
            input_location: String::from_utf8_lossy(&location).into_owned(),
            outcome: None,
            result_hash: None,
            output: None,
            check: None,
        };
        if !self.json {
            out(format!(
                "posted job {job_id} (tx {tx}): {} x{} quorum {}, bounty {} {}",
                posted.kernel,
                self.replicas,
                quorum,
                format_amount(self.bounty),
                unit(m.deployment())
            ));
        }
        let wait = self.wait || self.output.is_some();
        let h = self
            .follow(m, p2p, &spec, (job_id, posted_job.post_block), wait)
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
            if !self.no_check {
                let input = std::fs::read(&self.input)
                    .wrap_err_with(|| format!("reading --input {}", self.input.display()))?;
                let verdict = check_output(job_id, &kernel, &input, path)?;
                if !self.json {
                    out(format!("checked: {verdict}"));
                }
                posted.check = Some(verdict);
            }
        } else if let (false, Some(hash)) = (self.json, posted.result_hash) {
            out(format!("result hash {hash}"));
        }
        if self.json {
            out_json(&posted)?;
        }
        Ok(())
    }

    /// The commit and reveal windows: the flags, or defaults safe for this chain's block
    /// time, checked against the market's bounds so a bad choice fails here, not on-chain.
    async fn windows(&self, m: &Market) -> eyre::Result<(u64, u64)> {
        let bounds = m.windows().await?;
        let block = m.block_time_estimate(16).await?.clamp(1, 60);
        let commit = self
            .commit_secs
            .unwrap_or((30 + 10 * block).max(bounds.min_commit));
        let reveal = self
            .reveal_secs
            .unwrap_or((20 + 5 * block).max(bounds.min_reveal));
        check_windows(commit, reveal, &bounds)?;
        Ok((commit, reveal))
    }

    /// Serves the input while the job needs it, showing progress. Without `wait` it returns
    /// once every replica committed (or the job can no longer use the input); with `wait` it
    /// finalizes the job when allowed and returns its settled history.
    async fn follow(
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
            r = follow_loop(m, (job_id, post_block), wait, &bar, poll) => r,
            () = watch_replication(p2p, spec, &bar, self.json) => unreachable!("never returns"),
            _ = tokio::signal::ctrl_c() => Err(eyre!(
                "interrupted: stopped serving the input; job {job_id} stays on-chain (`stp job status {job_id}`)"
            )),
        };
        bar.finish_and_clear();
        result
    }
}

/// Follows the job from its post block: each poll is one bounded log request, however long
/// the chain's history.
async fn follow_loop(
    m: &Market,
    (job_id, post_block): (u64, u64),
    wait: bool,
    bar: &ProgressBar,
    poll: Duration,
) -> eyre::Result<JobHistory> {
    loop {
        let h = m.job_history_since(job_id, post_block).await?;
        let k = h
            .spec
            .as_ref()
            .ok_or_else(|| eyre!("job {job_id} is not on-chain"))?
            .replicas;
        let now = m.now().await?;
        let p = phase(&h, now);
        bar.set_message(format!(
            "job {job_id}: {p:?} - slots {}/{k}, revealed {}/{k}",
            h.slots.len(),
            h.reveals.len()
        ));
        if h.outcome.is_some() {
            return Ok(h);
        }
        // Drawn providers fetch the input until every slot is taken.
        let input_needed = p == Phase::Open;
        if !wait && !input_needed {
            return Ok(h);
        }
        if matches!(p, Phase::Unfilled | Phase::Expired) {
            match m.finalize_since(job_id, post_block).await {
                Ok(tx) => {
                    tracing::info!(job_id, %tx, "finalized");
                    continue;
                }
                // Another party may have finalized first, or the chain's clock lags.
                Err(e) => tracing::debug!(job_id, error = %e, "finalize not accepted yet"),
            }
        }
        tokio::time::sleep(poll).await;
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

/// Looks a kernel up by name or id; a 64-hex id that is not built in is taken as a custom
/// kernel (its input must then be the matching envelope).
fn resolve_kernel(query: &str) -> eyre::Result<KernelId> {
    match find_kernel(query) {
        Ok(def) => Ok(def.id),
        Err(e) => query.parse::<KernelId>().map_err(|_| eyre!(e)),
    }
}

/// Checks k as the escrow does (its quorum is always the strict majority k/2+1).
fn check_replicas(k: u8) -> eyre::Result<()> {
    if k == 0 {
        bail!("--replicas must be at least 1");
    }
    Ok(())
}

/// Checks that provider nodes with the default policy would take a job of `collateral`
/// per replica (the rule of `scheduler::consider`); the refusal names the limit.
fn check_collateral(
    bounty: U256,
    replicas: u8,
    collateral: U256,
    unit: &str,
) -> Result<(), String> {
    let policy = CollateralPolicy::default_flags();
    let share = bounty / U256::from(replicas.max(1));
    let limit = policy.limit(share);
    if collateral <= limit {
        return Ok(());
    }
    let times = if share.is_zero() {
        String::new()
    } else {
        format!(" is {} times the bounty share and", collateral / share)
    };
    let plural = if replicas == 1 { "" } else { "s" };
    Err(format!(
        "--collateral {} {unit} per replica{times} is more than provider nodes take by default: at most {} times the bounty share ({} {unit}: --bounty {} over {replicas} replica{plural}) and at most {} {unit} (their --max-collateral-ratio and --max-collateral), here {} {unit}, so none of them would take this job; lower --collateral or raise --bounty",
        format_amount(collateral),
        policy.ratio,
        format_amount(share),
        format_amount(bounty),
        format_amount(policy.cap),
        format_amount(limit),
    ))
}

/// Checks the windows against the market's bounds, as the escrow would at post.
fn check_windows(commit: u64, reveal: u64, bounds: &Windows) -> eyre::Result<()> {
    if commit < bounds.min_commit {
        bail!(
            "--commit-secs {commit} is below this market's minimum commit window of {} s",
            bounds.min_commit
        );
    }
    if reveal < bounds.min_reveal {
        bail!(
            "--reveal-secs {reveal} is below this market's minimum reveal window of {} s",
            bounds.min_reveal
        );
    }
    if commit + reveal > bounds.max_horizon {
        bail!(
            "--commit-secs + --reveal-secs = {} s is beyond this market's horizon of {} s",
            commit + reveal,
            bounds.max_horizon
        );
    }
    Ok(())
}

fn to_u96(flag: &str, v: U256) -> eyre::Result<U96> {
    if v.bit_len() > 96 {
        bail!("{flag} {} is too large", format_amount(v));
    }
    Ok(U96::saturating_from(v))
}

/// Longest wait for a gossip peer before announcing a job.
const ANNOUNCE_WAIT: Duration = Duration::from_secs(5);

/// Gossips the posted job so connected providers learn of it before their next chain
/// poll, waiting up to [`ANNOUNCE_WAIT`] for a peer on the jobs topic. Best effort:
/// providers check it on-chain anyway and find it there without it.
async fn announce(m: &Market, p2p: &P2pClient, job_id: u64, spec: &JobSpec, posted_at: u64) {
    let deadline = tokio::time::Instant::now() + ANNOUNCE_WAIT;
    while p2p.topic_peers().await.unwrap_or(0) == 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let root = match p2p.blob_manifest(&spec.inputHash.0) {
        Ok(Some(manifest)) => manifest.root(),
        _ => return,
    };
    let location = match p2p.listen_addrs().await {
        Ok(addrs) => crate::p2p::records::to_location(&p2p.peer_id(), &addrs),
        Err(_) => return,
    };
    let ann = announcement(m.deployment(), job_id, spec, posted_at, root, location);
    match p2p.announce_job(&ann).await {
        Ok(()) => tracing::debug!(job = job_id, "job announced over gossip"),
        Err(e) => {
            tracing::debug!(job = job_id, error = %e, "not announced over gossip; providers find it on-chain")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_and_windows_follow_the_escrow_rules() {
        assert!(check_replicas(1).is_ok());
        assert!(check_replicas(3).is_ok());
        assert!(check_replicas(0).is_err());
        let bounds = Windows {
            min_commit: 10,
            min_reveal: 10,
            max_horizon: 100,
        };
        assert!(check_windows(10, 10, &bounds).is_ok());
        assert!(check_windows(90, 10, &bounds).is_ok());
        assert!(check_windows(9, 10, &bounds).is_err());
        assert!(check_windows(10, 9, &bounds).is_err());
        assert!(check_windows(91, 10, &bounds).is_err());
    }

    #[test]
    fn collateral_beyond_the_default_provider_policy_is_refused_naming_the_limit() {
        let eth = |s: &str| parse_amount(s).unwrap();
        // Share 0.01: up to 20 times it, 0.2, is taken.
        assert!(check_collateral(eth("0.01"), 1, eth("0.2"), "ETH").is_ok());
        assert!(check_collateral(eth("0.01"), 1, U256::ZERO, "ETH").is_ok());
        assert!(check_collateral(eth("0.03"), 3, eth("0.2"), "ETH").is_ok());
        let over = check_collateral(eth("0.03"), 3, eth("0.21"), "ETH").unwrap_err();
        assert!(over.contains("over 3 replicas"), "{over}");
        let err = check_collateral(eth("0.01"), 1, eth("10000"), "ETH").unwrap_err();
        assert!(err.contains("1000000 times the bounty share"), "{err}");
        assert!(err.contains("at most 20 times the bounty share"), "{err}");
        assert!(err.contains("here 0.2 ETH"), "{err}");
        // The cap holds whatever the bounty: 1 by default.
        assert!(check_collateral(eth("10"), 1, eth("1"), "tokens").is_ok());
        let capped = check_collateral(eth("10"), 1, eth("1.5"), "tokens").unwrap_err();
        assert!(capped.contains("at most 1 tokens"), "{capped}");
        assert!(capped.contains("here 1 tokens"), "{capped}");
    }

    #[test]
    fn kernels_resolve_by_name_and_id() {
        let def = find_kernel("matmul-u32").unwrap();
        assert_eq!(resolve_kernel("matmul-u32").unwrap(), def.id);
        assert_eq!(resolve_kernel(&def.id.to_string()).unwrap(), def.id);
        assert!(resolve_kernel("no-such-kernel").is_err());
    }
}
