//! Posting a job: the order checked against the market's rules (what the escrow and the
//! providers' default policy would refuse is refused here, before anything is sent), the
//! input served over libp2p, the bounty escrowed.

use std::time::Duration;

use alloy::primitives::{
    B256, Bytes, TxHash, U256,
    aliases::{U40, U96},
};
use eyre::{bail, eyre};
use stp_sdk::kernels::{KernelId, find_kernel, job_name, max_output_size};
use stp_sdk::market::{JobKind, JobSpec, Market, PostedJob, Windows, announcement};
use stp_sdk::p2p::{ContentHash, MAX_PART_HINTS};

use crate::cli::common::{format_amount, max_replicas, paying, unit};
use crate::daemon::encode_input_location;
use crate::daemon::scheduler::CollateralPolicy;
use crate::p2p::P2pClient;
use stp_sdk::p2p::Naming;

/// What a consumer asks for: the fields of `stp job post`.
#[derive(Debug, Clone)]
pub struct Order {
    /// The kernel (built-in or custom).
    pub kernel: KernelId,
    /// The input, laid out as the kernel expects.
    pub input: Vec<u8>,
    /// What the job posts and serves instead of `input`, when it is a parts input
    /// (`stp_sdk::batch::parts`) that resolves to it; its shared blobs must be in the
    /// blob store already.
    pub served: Option<Vec<u8>>,
    /// Replicas k; the quorum is the strict majority k/2+1.
    pub replicas: u8,
    /// Total bounty in wei (token units in ERC-20 mode).
    pub bounty: U256,
    /// Collateral each replica locks.
    pub collateral: U256,
    /// Post even if the collateral is above what provider nodes take by default.
    pub force: bool,
    /// Minimum reputation score of a replica.
    pub min_reputation: u32,
    /// Seconds from now until commits close (default: safe for this chain).
    pub commit_secs: Option<u64>,
    /// Seconds after the commit deadline until reveals close (default: safe for this chain).
    pub reveal_secs: Option<u64>,
    /// Output size bound in bytes (default: the kernel's exact output size for the input).
    pub max_output: Option<u64>,
    /// Gossip the job to connected providers after posting (when bootstrapped).
    pub announce: bool,
    /// Post it as an optimistic job: one replica, paid after the challenge window unless
    /// the consumer's check fails and it challenges.
    pub optimistic: bool,
}

impl Order {
    /// The output size bound: `max_output`, or the exact size this input produces; an
    /// error if the input does not fit the kernel or the bound is too small.
    pub fn output_bound(&self) -> eyre::Result<u64> {
        let needed = max_output_size(&self.kernel, &self.input)?;
        match self.max_output {
            Some(m) if m < needed => {
                bail!("--max-output {m} is smaller than the {needed} bytes this input produces")
            }
            Some(m) => Ok(m),
            None => Ok(needed),
        }
    }

    /// Checks the order against `m`'s rules and the providers' default policy, as the
    /// escrow and the nodes would, so a bad order fails before anything is sent.
    pub async fn check(&self, m: &Market) -> eyre::Result<()> {
        self.output_bound()?;
        check_replicas(self.replicas)?;
        let unit = unit(m.deployment());
        match check_collateral(self.bounty, self.replicas, self.collateral, unit) {
            Err(why) if self.force => tracing::warn!("{why}; posting anyway (--force)"),
            Err(why) => bail!("{why}; or pass --force to post it anyway"),
            Ok(()) => {}
        }
        if self.optimistic {
            self.check_optimistic(m, unit).await?;
        }
        let max = max_replicas(m).await?;
        if u64::from(self.replicas) > max {
            bail!(
                "--replicas {} is above this market's maximum of {max} (its maxReplicas; see `stp market info`)",
                self.replicas
            );
        }
        Ok(())
    }

    /// An optimistic job has one replica, and a collateral whose slash covers the bond of a
    /// challenge (the escalation's m replicas, each paid the bounty).
    async fn check_optimistic(&self, m: &Market, unit: &str) -> eyre::Result<()> {
        if self.replicas != 1 {
            bail!(
                "an optimistic job has exactly one replica: pass --replicas 1 (a challenge brings in more)"
            );
        }
        let (_, escalation) = m.optimistic_params().await?;
        let bps = U256::from(m.slash_bps().await?.max(1));
        let bond = self.bounty * U256::from(escalation);
        let least = (bond * U256::from(10_000u64)).div_ceil(bps);
        if self.collateral < least {
            bail!(
                "an optimistic job's collateral must be at least {} {unit}: its slash ({}% of it) pays back a challenger's bond of {} {unit} ({escalation} x the bounty); pass --collateral {}",
                format_amount(least),
                bps / U256::from(100u64),
                format_amount(bond),
                format_amount(least)
            );
        }
        Ok(())
    }

    /// The commit and reveal windows: the order's, or defaults safe for this chain's block
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
}

/// A posted job.
#[derive(Debug, Clone)]
pub struct Posted {
    /// Its id.
    pub job_id: u64,
    /// The post transaction.
    pub tx: TxHash,
    /// The block the post was mined in (where following it starts).
    pub post_block: u64,
    /// The post's block timestamp.
    pub posted_at: u64,
    /// The spec as posted.
    pub spec: JobSpec,
    /// Where providers fetch the input, as posted.
    pub input_location: String,
    /// Which rules it follows.
    pub kind: JobKind,
    /// The shared blobs its parts input references (at most
    /// [`stp_sdk::p2p::MAX_PART_HINTS`]), gossiped with it as part hints.
    pub part_hints: Vec<ContentHash>,
}

/// Checks `order` ([`Order::check`]), serves its input from `p2p`, posts it and (if
/// `order.announce`) gossips it.
pub async fn post(m: &Market, p2p: &P2pClient, order: &Order) -> eyre::Result<Posted> {
    order.check(m).await?;
    send(m, p2p, order).await
}

/// Serves the input, posts the job and gossips it; [`Order::check`] must have passed.
pub async fn send(m: &Market, p2p: &P2pClient, order: &Order) -> eyre::Result<Posted> {
    let ready = prepare(m, p2p, order).await?;
    let spec = ready.spec.clone();
    let posted = if order.optimistic {
        paying(m, "bounty", order.bounty, m.post_optimistic_job(spec)).await?
    } else {
        paying(m, "bounty", order.bounty, m.post_job(spec)).await?
    };
    Ok(ready.posted(m, p2p, order, posted).await)
}

/// A job ready to post: its input served, its spec with deadlines from now.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The spec to post.
    pub spec: JobSpec,
    /// Where providers fetch the input (the spec's `inputLocation`).
    location: Vec<u8>,
    /// The blobs its parts input references, for the announcement.
    part_hints: Vec<ContentHash>,
}

impl Prepared {
    /// The job `posted` on-chain from this, gossiped first if `order.announce`.
    pub async fn posted(
        self,
        m: &Market,
        p2p: &P2pClient,
        order: &Order,
        posted: PostedJob,
    ) -> Posted {
        let job = self.into_posted(posted);
        if order.announce {
            announce_posted(m, p2p, &job).await;
        }
        tracing::info!(job = job.job_id, kernel = %job_name(&order.kernel, &order.input), "posted");
        job
    }

    /// The job `posted` on-chain from this (not gossiped).
    pub fn into_posted(self, posted: PostedJob) -> Posted {
        Posted {
            job_id: posted.job_id,
            tx: posted.tx,
            post_block: posted.post_block,
            posted_at: posted.posted_at,
            spec: self.spec,
            input_location: String::from_utf8_lossy(&self.location).into_owned(),
            kind: posted.kind,
            part_hints: self.part_hints,
        }
    }
}

/// Gossips `job` to connected providers (best effort; see [`announce`]).
pub async fn announce_posted(m: &Market, p2p: &P2pClient, job: &Posted) {
    announce(m, p2p, job).await;
}

/// Serves `order`'s input from `p2p` and builds its spec, deadlines counted from now.
pub async fn prepare(m: &Market, p2p: &P2pClient, order: &Order) -> eyre::Result<Prepared> {
    let mut ready = prepare_many(m, p2p, std::slice::from_ref(order)).await?;
    Ok(ready.remove(0))
}

/// [`prepare`] for orders that share their terms (a batch's chunks): the windows, the
/// chain's time and this node's addresses are read once, so every spec's deadlines count
/// from the same moment, just before they are posted together.
pub async fn prepare_many(
    m: &Market,
    p2p: &P2pClient,
    orders: &[Order],
) -> eyre::Result<Vec<Prepared>> {
    let Some(first) = orders.first() else {
        return Ok(Vec::new());
    };
    // Each input is stored under its BLAKE3 name, which is the job's inputHash.
    let mut names = Vec::with_capacity(orders.len());
    for order in orders {
        let served = order.served.as_ref().unwrap_or(&order.input);
        names.push(B256::from(
            p2p.add_blob(served.clone(), Naming::Blake3).await?,
        ));
    }
    let addrs = p2p.dialable_addrs().await?;
    let location = encode_input_location(&addrs);
    let (commit_secs, reveal_secs) = first.windows(m).await?;
    let commit = m.now().await? + commit_secs;
    orders
        .iter()
        .zip(names)
        .map(|(order, input_hash)| {
            let served = order.served.as_ref().unwrap_or(&order.input);
            let spec = JobSpec {
                consumer: m.account(),
                kernelId: B256::from(order.kernel.0),
                inputHash: input_hash,
                inputSize: served.len() as u64,
                maxOutputSize: order.output_bound()?,
                bounty: to_u96("--bounty", order.bounty)?,
                collateral: to_u96("--collateral", order.collateral)?,
                replicas: order.replicas,
                quorum: order.replicas / 2 + 1,
                minReputation: order.min_reputation,
                commitDeadline: U40::from(commit),
                revealDeadline: U40::from(commit + reveal_secs),
                inputLocation: Bytes::from(location.clone()),
            };
            let mut part_hints = order
                .served
                .as_deref()
                .map(stp_sdk::batch::parts::referenced)
                .unwrap_or_default();
            part_hints.truncate(MAX_PART_HINTS);
            Ok(Prepared {
                spec,
                location: location.clone(),
                part_hints,
            })
        })
        .collect()
}

/// Looks a kernel up by name or id; a 64-hex id that is not built in is taken as a custom
/// kernel (its input must then be the matching envelope).
pub fn resolve_kernel(query: &str) -> eyre::Result<KernelId> {
    match find_kernel(query) {
        Ok(def) => Ok(def.id),
        Err(e) => query.parse::<KernelId>().map_err(|_| eyre!(e)),
    }
}

/// Checks k as the escrow does (its quorum is always the strict majority k/2+1).
pub fn check_replicas(k: u8) -> eyre::Result<()> {
    if k == 0 {
        bail!("--replicas must be at least 1");
    }
    Ok(())
}

/// Checks that provider nodes with the default policy would take a job of `collateral`
/// per replica (the rule of `scheduler::consider`); the refusal names the limit.
pub fn check_collateral(
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
pub fn check_windows(commit: u64, reveal: u64, bounds: &Windows) -> eyre::Result<()> {
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
/// providers check it on-chain anyway and find it there without it. The announcement
/// carries the job's part hints, so providers holding those parts can take it first.
async fn announce(m: &Market, p2p: &P2pClient, job: &Posted) {
    let (job_id, spec, posted_at) = (job.job_id, &job.spec, job.posted_at);
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
    let mut ann = announcement(m.deployment(), job_id, spec, posted_at, root, location);
    ann.part_hints.clone_from(&job.part_hints);
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
    use crate::cli::common::parse_amount;

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
