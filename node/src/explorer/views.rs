//! The JSON shapes the API answers with, built from the [`State`]: job summaries and
//! details, provider summaries and details, network totals. Pure functions of the state.

use alloy::primitives::{Address, B256, U256};
use serde::Serialize;
use stp_sdk::kernels::{KernelId, kernel_name};
use stp_sdk::market::lifecycle::{self, Phase, Timing};
use stp_sdk::market::{JobCounters, Outcome, Reputation};

use super::model::{Entry, Final, Job, Point, Replica};
use super::state::{ChainView, RecordView, State, SyncStatus};
use crate::cli::common::ser_wei;

/// Where a job stands, in one word: its live phase, or how it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Slots are open.
    Open,
    /// Every slot taken; reveals accepted.
    Revealing,
    /// A deadline passed: anyone may finalize it.
    Finalizable,
    /// An optimistic job under challenge: its escalation decides.
    Challenged,
    /// Settled: a quorum agreed.
    Completed,
    /// Settled: replicas disagreed, consumer refunded.
    NoQuorum,
    /// Settled: not every slot taken, consumer refunded.
    Unfilled,
    /// Settled: an optimistic job's escalation found another result; its replica slashed.
    Overturned,
}

impl Status {
    /// Parses a filter value; `settled` is not a status but a filter of three.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "revealing" => Self::Revealing,
            "finalizable" => Self::Finalizable,
            "completed" => Self::Completed,
            "no_quorum" => Self::NoQuorum,
            "unfilled" => Self::Unfilled,
            "challenged" => Self::Challenged,
            "overturned" => Self::Overturned,
            _ => return None,
        })
    }

    /// Whether the job is settled.
    pub fn is_settled(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::NoQuorum | Self::Unfilled | Self::Overturned
        )
    }
}

/// `job`'s status at chain time `now`.
pub fn status(job: &Job, now: u64) -> Status {
    if let Some(f) = &job.outcome {
        return match f.outcome {
            Outcome::Completed => Status::Completed,
            Outcome::NoQuorum => Status::NoQuorum,
            Outcome::Unfilled => Status::Unfilled,
            Outcome::Overturned => Status::Overturned,
        };
    }
    if job.challenged.is_some() {
        return Status::Challenged;
    }
    let live = JobCounters {
        committed: u8::try_from(job.replicas.len()).unwrap_or(u8::MAX),
        revealed: u8::try_from(job.replicas.iter().filter(|r| r.revealed.is_some()).count())
            .unwrap_or(u8::MAX),
    };
    match lifecycle::phase(&Timing::from(&job.spec), Some(live), now) {
        Phase::Open => Status::Open,
        Phase::Revealing => Status::Revealing,
        Phase::Unfilled | Phase::Expired | Phase::Settled => Status::Finalizable,
        Phase::Challenged => Status::Challenged,
    }
}

/// A job in a list.
#[derive(Debug, Serialize)]
pub struct JobSummary {
    /// Its id.
    pub id: u64,
    /// Where it stands.
    pub status: Status,
    /// Who posted it.
    pub consumer: Address,
    /// Kernel id.
    pub kernel_id: B256,
    /// Kernel name (built-in) or short id.
    pub kernel: String,
    /// Replicas wanted.
    pub replicas: u8,
    /// Quorum.
    pub quorum: u8,
    /// Slots taken.
    pub committed: usize,
    /// Reveals made.
    pub revealed: usize,
    /// Bounty.
    #[serde(serialize_with = "ser_wei")]
    pub bounty: U256,
    /// Post time (unix seconds).
    pub posted_at: u64,
    /// Post block.
    pub posted_block: u64,
}

/// `job` as a list row.
pub fn summary(job: &Job, now: u64) -> JobSummary {
    JobSummary {
        id: job.id,
        status: status(job, now),
        consumer: job.spec.consumer,
        kernel_id: job.spec.kernelId,
        kernel: kernel_label(job.spec.kernelId),
        replicas: job.spec.replicas,
        quorum: job.spec.quorum,
        committed: job.replicas.len(),
        revealed: job.replicas.iter().filter(|r| r.revealed.is_some()).count(),
        bounty: U256::from(job.spec.bounty),
        posted_at: job.posted_at,
        posted_block: job.posted.block,
    }
}

/// A built-in kernel's name, else its id.
pub fn kernel_label(id: B256) -> String {
    kernel_name(&KernelId(id.0)).into_owned()
}

/// The spec's fields, for the job page.
#[derive(Debug, Serialize)]
pub struct SpecView {
    /// Input hash (BLAKE3).
    pub input_hash: B256,
    /// Input size in bytes.
    pub input_size: u64,
    /// Output size bound.
    pub max_output_size: u64,
    /// Collateral per replica.
    #[serde(serialize_with = "ser_wei")]
    pub collateral: U256,
    /// Least reputation score of a replica.
    pub min_reputation: u32,
    /// Last second to commit.
    pub commit_deadline: u64,
    /// Last second to reveal.
    pub reveal_deadline: u64,
    /// Where the input is fetched (as text when it is text).
    pub input_location: String,
}

/// One job in full.
#[derive(Debug, Serialize)]
pub struct JobDetail<'a> {
    /// The row fields.
    #[serde(flatten)]
    pub summary: JobSummary,
    /// The spec.
    pub spec: SpecView,
    /// Replicas in commit order.
    pub replica_list: &'a [Replica],
    /// How it ended, with the agreed hash.
    pub outcome: Option<&'a Final>,
    /// Every event, oldest first.
    pub timeline: &'a [Entry],
}

/// `job` in full.
pub fn detail(job: &Job, now: u64) -> JobDetail<'_> {
    let s = &job.spec;
    JobDetail {
        summary: summary(job, now),
        spec: SpecView {
            input_hash: s.inputHash,
            input_size: s.inputSize,
            max_output_size: s.maxOutputSize,
            collateral: U256::from(s.collateral),
            min_reputation: s.minReputation,
            commit_deadline: s.commitDeadline.to(),
            reveal_deadline: s.revealDeadline.to(),
            input_location: String::from_utf8(s.inputLocation.to_vec())
                .unwrap_or_else(|_| alloy::hex::encode_prefixed(&s.inputLocation)),
        },
        replica_list: &job.replicas,
        outcome: job.outcome.as_ref(),
        timeline: &job.timeline,
    }
}

/// A provider in a list.
#[derive(Debug, Serialize)]
pub struct ProviderSummary {
    /// Payout address.
    pub address: Address,
    /// Bonded stake (the chain's view when known, else the last stake event).
    #[serde(serialize_with = "ser_wei")]
    pub staked: U256,
    /// Locked collateral (the chain's view; absent before the first refresh).
    pub locked: Option<String>,
    /// Reputation (the chain's view).
    pub reputation: Option<Reputation>,
    /// Earned for work.
    #[serde(serialize_with = "ser_wei")]
    pub earned: U256,
    /// Burned from its collateral.
    #[serde(serialize_with = "ser_wei")]
    pub slashed: U256,
    /// Settled replicas.
    pub settled: usize,
    /// Jobs it held a slot of.
    pub jobs: usize,
    /// Its p2p record, when found.
    pub record: Option<RecordView>,
}

/// Provider `address`'s row, if the market has seen it.
pub fn provider_summary(state: &State, address: Address) -> Option<ProviderSummary> {
    let p = state.model.providers.get(&address)?;
    let chain: Option<&ChainView> = state.chain.get(&address);
    Some(ProviderSummary {
        address,
        staked: chain.map_or(p.staked, |c| c.staked),
        locked: chain.map(|c| c.locked.to_string()),
        reputation: chain.map(|c| c.reputation),
        earned: p.earned,
        slashed: p.slashed,
        settled: p.points.len(),
        jobs: p.jobs.len(),
        record: state.records.get(&address).cloned(),
    })
}

/// One provider in full.
#[derive(Debug, Serialize)]
pub struct ProviderDetail<'a> {
    /// The row fields.
    #[serde(flatten)]
    pub summary: ProviderSummary,
    /// One point per settled replica, oldest first: the earnings chart.
    pub points: &'a [Point],
    /// Its most recent jobs, newest first.
    pub recent_jobs: Vec<JobSummary>,
}

/// Jobs shown on a provider's page.
const RECENT_JOBS: usize = 20;

/// Provider `address` in full.
pub fn provider_detail(state: &State, address: Address) -> Option<ProviderDetail<'_>> {
    let row = provider_summary(state, address)?;
    let p = state.model.providers.get(&address)?;
    let now = state.sync.chain_time.unwrap_or(0);
    let recent_jobs = p
        .jobs
        .iter()
        .rev()
        .take(RECENT_JOBS)
        .filter_map(|id| state.model.jobs.get(id))
        .map(|j| summary(j, now))
        .collect();
    Some(ProviderDetail {
        summary: row,
        points: &p.points,
        recent_jobs,
    })
}

/// Jobs by how they stand.
#[derive(Debug, Default, Serialize)]
pub struct JobCounts {
    /// Not settled yet.
    pub live: u64,
    /// Settled with a quorum.
    pub completed: u64,
    /// Settled without a quorum.
    pub no_quorum: u64,
    /// Optimistic jobs overturned by their escalation.
    pub overturned: u64,
    /// Settled short of slots.
    pub unfilled: u64,
}

/// Jobs posted in one hour.
#[derive(Debug, Serialize)]
pub struct HourCount {
    /// Start of the hour (unix seconds).
    pub hour: u64,
    /// Jobs posted in it.
    pub jobs: u64,
}

/// The network page.
#[derive(Debug, Serialize)]
pub struct Network<'a> {
    /// Freshness.
    pub sync: &'a SyncStatus,
    /// Jobs by outcome.
    pub jobs: JobCounts,
    /// Value sums.
    pub totals: &'a super::model::Totals,
    /// Providers seen.
    pub providers: usize,
    /// Events folded.
    pub events: u64,
    /// Jobs posted per hour over the last day, oldest first.
    pub jobs_per_hour: Vec<HourCount>,
}

/// Hours in the jobs-per-hour series.
const HOURS: u64 = 24;

/// The network totals.
pub fn network(state: &State) -> Network<'_> {
    let now = state.sync.chain_time.unwrap_or(0);
    let mut jobs = JobCounts::default();
    let this_hour = now - now % 3600;
    let first = this_hour.saturating_sub((HOURS - 1) * 3600);
    let mut per_hour: Vec<HourCount> = (0..HOURS)
        .map(|i| first + i * 3600)
        .filter(|h| *h >= first && *h <= this_hour)
        .map(|hour| HourCount { hour, jobs: 0 })
        .collect();
    for job in state.model.jobs.values() {
        match job.outcome.map(|f| f.outcome) {
            None => jobs.live += 1,
            Some(Outcome::Completed) => jobs.completed += 1,
            Some(Outcome::NoQuorum) => jobs.no_quorum += 1,
            Some(Outcome::Unfilled) => jobs.unfilled += 1,
            Some(Outcome::Overturned) => jobs.overturned += 1,
        }
        if job.posted_at >= first
            && let Some(slot) = per_hour
                .iter_mut()
                .find(|h| job.posted_at - job.posted_at % 3600 == h.hour)
        {
            slot.jobs += 1;
        }
    }
    Network {
        sync: &state.sync,
        jobs,
        totals: &state.model.totals,
        providers: state.model.providers.len(),
        events: state.model.events,
        jobs_per_hour: per_hour,
    }
}
