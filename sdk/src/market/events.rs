use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolEventInterface;

use super::{JobKind, JobSpec};
use crate::bindings::JobEscrow::JobEscrowEvents;

/// How a job ended, as the escrow reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A quorum agreed; winners paid.
    Completed,
    /// Replicas disagreed; consumer refunded.
    NoQuorum,
    /// Not every slot taken by the commit deadline; consumer refunded.
    Unfilled,
    /// An optimistic job whose escalation's quorum found another result: its replica
    /// slashed, the consumer refunded its bounty and its bond.
    Overturned,
}

impl Outcome {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Completed,
            1 => Self::NoQuorum,
            2 => Self::Unfilled,
            3 => Self::Overturned,
            _ => return None,
        })
    }
}

/// A decoded escrow event, with the block it was mined in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketEvent {
    /// Block number of the log.
    pub block: u64,
    /// What happened.
    pub kind: EventKind,
}

/// The escrow events the node and the CLI act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    /// A job was posted with its full spec.
    JobPosted {
        /// The job.
        job_id: u64,
        /// Its spec (pass it back to every later call, with `posted_at`).
        spec: JobSpec,
        /// The post's block timestamp (part of the job's terms).
        posted_at: u64,
        /// The post's block number: its hash fixes the job's draw (part of the terms).
        post_block: u64,
        /// Which rules it follows (part of the terms).
        kind: JobKind,
    },
    /// The consumer challenged an optimistic job: an escalation job recomputes it.
    Challenged {
        /// The challenged job.
        job_id: u64,
        /// The escalation job, posted in the same transaction.
        escalation_id: u64,
        /// The challenged job's one replica, excluded from the escalation.
        defendant: Address,
        /// The bond escrowed (the escalation's bounty).
        bond: U256,
    },
    /// A provider took a slot with its commitment.
    Committed {
        /// The job.
        job_id: u64,
        /// The committer.
        provider: Address,
        /// The provider's lane holding the slot.
        lane: u64,
        /// Whether it was drawn at the base rate (counts for reputation).
        drawn: bool,
    },
    /// A provider revealed its result hash.
    Revealed {
        /// The job.
        job_id: u64,
        /// The revealer.
        provider: Address,
        /// Its result hash (`ResultDomain::result_hash`).
        result_hash: B256,
    },
    /// The job was settled.
    Finalized {
        /// The job.
        job_id: u64,
        /// How it ended.
        outcome: Outcome,
        /// The winning result hash (zero without a quorum).
        result_hash: B256,
        /// How many replicas revealed the winning hash.
        winners: u64,
        /// Total collateral slashed (burned).
        slashed: U256,
    },
    /// A balance was credited (a consumer's refund, a winner's payout).
    Credited {
        /// Who.
        account: Address,
        /// For which job.
        job_id: u64,
        /// How much.
        amount: U256,
    },
    /// A balance was withdrawn.
    Withdrawn {
        /// Who.
        account: Address,
        /// How much.
        amount: U256,
    },
}

impl EventKind {
    /// The job this event is about, if any.
    pub fn job_id(&self) -> Option<u64> {
        match self {
            Self::JobPosted { job_id, .. }
            | Self::Committed { job_id, .. }
            | Self::Revealed { job_id, .. }
            | Self::Finalized { job_id, .. }
            | Self::Challenged { job_id, .. }
            | Self::Credited { job_id, .. } => Some(*job_id),
            Self::Withdrawn { .. } => None,
        }
    }
}

/// Converts an on-chain job id to `u64` (ids are a counter from 1).
pub fn job_id_u64(id: U256) -> Option<u64> {
    u64::try_from(id).ok()
}

/// `JobPosted`'s `draw` = kind << 64 | postBlock << 32 | postedAt, split into (postBlock,
/// postedAt); [`JobKind::of_draw`] reads the kind.
pub fn split_draw(draw: U256) -> (u64, u64) {
    let low = |v: U256| u64::try_from(v & U256::from(u32::MAX)).unwrap_or_default();
    (low(draw >> 32), low(draw))
}

/// Decodes one escrow log; `None` for logs the node does not act on or cannot decode.
pub fn decode(log: &alloy::rpc::types::Log) -> Option<MarketEvent> {
    let block = log.block_number?;
    let event = JobEscrowEvents::decode_log(&log.inner).ok()?.data;
    let kind = match event {
        JobEscrowEvents::JobPosted(e) => {
            let (post_block, posted_at) = split_draw(e.draw);
            EventKind::JobPosted {
                job_id: job_id_u64(e.jobId)?,
                spec: e.spec,
                posted_at,
                post_block,
                kind: JobKind::of_draw(e.draw)?,
            }
        }
        JobEscrowEvents::JobChallenged(e) => EventKind::Challenged {
            job_id: job_id_u64(e.jobId)?,
            escalation_id: job_id_u64(e.escalationId)?,
            defendant: e.defendant,
            bond: e.bond,
        },
        JobEscrowEvents::ReplicaCommitted(e) => EventKind::Committed {
            job_id: job_id_u64(e.jobId)?,
            provider: e.provider,
            lane: u64::try_from(e.lane).ok()?,
            drawn: e.drawn,
        },
        JobEscrowEvents::ReplicaRevealed(e) => EventKind::Revealed {
            job_id: job_id_u64(e.jobId)?,
            provider: e.provider,
            result_hash: e.resultHash,
        },
        JobEscrowEvents::JobFinalized(e) => EventKind::Finalized {
            job_id: job_id_u64(e.jobId)?,
            outcome: Outcome::from_u8(e.outcome)?,
            result_hash: e.resultHash,
            winners: u64::try_from(e.winners).ok()?,
            slashed: e.slashed,
        },
        JobEscrowEvents::BalanceCredited(e) => EventKind::Credited {
            account: e.account,
            job_id: job_id_u64(e.jobId)?,
            amount: e.amount,
        },
        // A winner's payout is credited in its settlement event.
        JobEscrowEvents::ReplicaSettled(e) if !e.payout.is_zero() => EventKind::Credited {
            account: e.provider,
            job_id: job_id_u64(e.jobId)?,
            amount: e.payout,
        },
        JobEscrowEvents::Withdrawn(e) => EventKind::Withdrawn {
            account: e.account,
            amount: e.amount,
        },
        _ => return None,
    };
    Some(MarketEvent { block, kind })
}
