//! The explorer's picture of the market, folded from the escrow's raw logs in chain order:
//! every job with its spec, replicas and timeline, every provider with its settlements.
//! Pure (no I/O): the sync task feeds it logs and block times, the API reads it.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U256};
use alloy::rpc::types::Log;
use alloy::sol_types::SolEventInterface;
use serde::Serialize;
use stp_sdk::bindings::JobEscrow::JobEscrowEvents;
use stp_sdk::market::{JobSpec, Outcome, job_id_u64, split_draw};

use crate::cli::common::ser_wei;

/// How one replica ended (the escrow's `Settlement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// Collateral back, nothing earned (the job went unfilled).
    Released,
    /// Revealed the winning hash: paid.
    Completed,
    /// Revealed another hash: slashed.
    Slashed,
    /// Never revealed (or held two slots): slashed.
    Missed,
}

impl Settlement {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Released,
            1 => Self::Completed,
            2 => Self::Slashed,
            3 => Self::Missed,
            _ => return None,
        })
    }
}

/// One escrow event, as the explorer shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A job was posted.
    Posted {
        /// Who posted it.
        consumer: Address,
        /// Its escrowed bounty.
        #[serde(serialize_with = "ser_wei")]
        bounty: U256,
    },
    /// A provider took a slot with its commitment.
    Committed {
        /// The provider.
        provider: Address,
        /// Its lane.
        lane: u64,
        /// Drawn at the base rate (counts for reputation).
        drawn: bool,
    },
    /// A provider revealed its result hash.
    Revealed {
        /// The provider.
        provider: Address,
        /// Its result hash.
        result_hash: B256,
    },
    /// A replica was settled.
    Settled {
        /// The provider.
        provider: Address,
        /// How it ended.
        settlement: Settlement,
        /// Credited to it.
        #[serde(serialize_with = "ser_wei")]
        payout: U256,
        /// Burned from its collateral.
        #[serde(serialize_with = "ser_wei")]
        slashed: U256,
    },
    /// The job was settled as a whole.
    Finalized {
        /// How it ended.
        outcome: Outcome,
        /// The agreed hash (zero without a quorum).
        result_hash: B256,
        /// Replicas that revealed it.
        winners: u64,
        /// Total burned.
        #[serde(serialize_with = "ser_wei")]
        slashed: U256,
    },
    /// The consumer challenged the optimistic job: an escalation job recomputes it.
    Challenged {
        /// The escalation job.
        escalation_id: u64,
        /// The job's one replica, excluded from the escalation.
        defendant: Address,
        /// The bond escrowed (the escalation's bounty).
        #[serde(serialize_with = "ser_wei")]
        bond: U256,
    },
    /// A balance was credited (a refund).
    Credited {
        /// Who.
        account: Address,
        /// How much.
        #[serde(serialize_with = "ser_wei")]
        amount: U256,
    },
    /// A provider staked.
    Staked {
        /// The provider.
        provider: Address,
        /// Added.
        #[serde(serialize_with = "ser_wei")]
        amount: U256,
        /// Its bonded stake after.
        #[serde(serialize_with = "ser_wei")]
        staked: U256,
    },
    /// A provider unstaked.
    Unstaked {
        /// The provider.
        provider: Address,
        /// Taken out.
        #[serde(serialize_with = "ser_wei")]
        amount: U256,
        /// Its bonded stake after.
        #[serde(serialize_with = "ser_wei")]
        staked: U256,
    },
    /// A balance was withdrawn.
    Withdrawn {
        /// Who.
        account: Address,
        /// How much.
        #[serde(serialize_with = "ser_wei")]
        amount: U256,
    },
}

/// Where and when an event happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct At {
    /// Block number.
    pub block: u64,
    /// Log index in the block.
    pub log_index: u64,
    /// Transaction hash.
    pub tx: Option<B256>,
    /// Block timestamp (unix seconds), when known.
    pub time: Option<u64>,
}

/// An event with its place in the chain and its job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Where and when.
    #[serde(flatten)]
    pub at: At,
    /// The job it concerns, if any.
    pub job_id: Option<u64>,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// One replica (slot) of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Replica {
    /// The provider.
    pub provider: Address,
    /// Its lane.
    pub lane: u64,
    /// Drawn at the base rate.
    pub drawn: bool,
    /// Its commit.
    pub committed: At,
    /// Its reveal: the hash and where.
    pub revealed: Option<(B256, At)>,
    /// Its settlement.
    pub settled: Option<ReplicaSettlement>,
}

/// How and where a replica was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReplicaSettlement {
    /// How it ended.
    pub settlement: Settlement,
    /// Credited.
    #[serde(serialize_with = "ser_wei")]
    pub payout: U256,
    /// Burned.
    #[serde(serialize_with = "ser_wei")]
    pub slashed: U256,
    /// Where.
    pub at: At,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Final {
    /// The outcome.
    pub outcome: Outcome,
    /// The agreed hash (zero without a quorum).
    pub result_hash: B256,
    /// Replicas that revealed it.
    pub winners: u64,
    /// Total burned.
    #[serde(serialize_with = "ser_wei")]
    pub slashed: U256,
    /// Where.
    pub at: At,
}

/// A job as the explorer knows it.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its id.
    pub id: u64,
    /// Its spec.
    pub spec: JobSpec,
    /// The post's block timestamp.
    pub posted_at: u64,
    /// Where it was posted.
    pub posted: At,
    /// Slots in commit order.
    pub replicas: Vec<Replica>,
    /// Every event of the job, oldest first.
    pub timeline: Vec<Entry>,
    /// How it ended, once settled.
    pub outcome: Option<Final>,
    /// The escalation job its consumer's challenge posted (an optimistic job).
    pub challenged: Option<u64>,
}

/// One settled replica of a provider: a point of its earnings chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Point {
    /// The job.
    pub job_id: u64,
    /// How it ended.
    pub settlement: Settlement,
    /// Earned.
    #[serde(serialize_with = "ser_wei")]
    pub payout: U256,
    /// Burned.
    #[serde(serialize_with = "ser_wei")]
    pub slashed: U256,
    /// Where and when.
    #[serde(flatten)]
    pub at: At,
}

/// A provider as the events describe it.
#[derive(Debug, Clone, Default)]
pub struct Provider {
    /// Bonded stake after its last stake or unstake event.
    pub staked: U256,
    /// Everything credited to it for work.
    pub earned: U256,
    /// Everything burned from its collateral.
    pub slashed: U256,
    /// Its settled replicas, oldest first.
    pub points: Vec<Point>,
    /// Jobs it held a slot of, ascending.
    pub jobs: Vec<u64>,
}

/// Market-wide sums.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// All bounties ever posted.
    #[serde(serialize_with = "ser_wei")]
    pub posted: U256,
    /// Bounties of jobs not settled yet (held by the escrow).
    #[serde(serialize_with = "ser_wei")]
    pub escrowed: U256,
    /// Paid to providers for work.
    #[serde(serialize_with = "ser_wei")]
    pub paid: U256,
    /// Refunded to consumers.
    #[serde(serialize_with = "ser_wei")]
    pub refunded: U256,
    /// Burned from slashed collateral.
    #[serde(serialize_with = "ser_wei")]
    pub slashed: U256,
}

/// The whole market, folded from its logs.
#[derive(Debug, Default)]
pub struct Model {
    /// Every posted job.
    pub jobs: BTreeMap<u64, Job>,
    /// Every provider seen staking or taking a slot.
    pub providers: BTreeMap<Address, Provider>,
    /// Sums.
    pub totals: Totals,
    /// Events folded so far.
    pub events: u64,
    /// The last log folded: (block, log index).
    pub cursor: Option<(u64, u64)>,
}

impl Model {
    /// Folds one log (the next in chain order) with its block's time. Logs that are not
    /// escrow events are skipped.
    pub fn apply(&mut self, log: &Log, time: Option<u64>) {
        let (Some(block), Some(log_index)) = (log.block_number, log.log_index) else {
            return;
        };
        self.cursor = Some((block, log_index));
        let at = At {
            block,
            log_index,
            tx: log.transaction_hash,
            time: log.block_timestamp.or(time),
        };
        let Ok(decoded) = JobEscrowEvents::decode_log(&log.inner) else {
            return;
        };
        let Some((job_id, event)) = self.fold(decoded.data, at) else {
            return;
        };
        self.events += 1;
        if let Some(job) = job_id.and_then(|id| self.jobs.get_mut(&id)) {
            job.timeline.push(Entry { at, job_id, event });
        }
    }

    /// Applies one decoded event; returns its job and its explorer form.
    fn fold(&mut self, e: JobEscrowEvents, at: At) -> Option<(Option<u64>, Event)> {
        use JobEscrowEvents as E;
        Some(match e {
            E::JobPosted(e) => {
                let id = job_id_u64(e.jobId)?;
                let (_, posted_at) = split_draw(e.draw);
                let bounty = U256::from(e.spec.bounty);
                self.totals.posted += bounty;
                self.totals.escrowed += bounty;
                let event = Event::Posted {
                    consumer: e.spec.consumer,
                    bounty,
                };
                self.jobs.insert(
                    id,
                    Job {
                        id,
                        spec: e.spec,
                        posted_at,
                        posted: at,
                        replicas: Vec::new(),
                        timeline: Vec::new(),
                        outcome: None,
                        challenged: None,
                    },
                );
                (Some(id), event)
            }
            E::ReplicaCommitted(e) => {
                let id = job_id_u64(e.jobId)?;
                let lane = u64::try_from(e.lane).ok()?;
                if let Some(job) = self.jobs.get_mut(&id) {
                    job.replicas.push(Replica {
                        provider: e.provider,
                        lane,
                        drawn: e.drawn,
                        committed: at,
                        revealed: None,
                        settled: None,
                    });
                }
                let p = self.providers.entry(e.provider).or_default();
                if p.jobs.last() != Some(&id) {
                    p.jobs.push(id);
                }
                let event = Event::Committed {
                    provider: e.provider,
                    lane,
                    drawn: e.drawn,
                };
                (Some(id), event)
            }
            E::JobChallenged(e) => {
                let id = job_id_u64(e.jobId)?;
                let escalation_id = job_id_u64(e.escalationId)?;
                if let Some(job) = self.jobs.get_mut(&id) {
                    job.challenged = Some(escalation_id);
                }
                let event = Event::Challenged {
                    escalation_id,
                    defendant: e.defendant,
                    bond: e.bond,
                };
                (Some(id), event)
            }
            E::ReplicaRevealed(e) => {
                let id = job_id_u64(e.jobId)?;
                if let Some(r) = self.replica(id, e.provider, |r| r.revealed.is_none()) {
                    r.revealed = Some((e.resultHash, at));
                }
                let event = Event::Revealed {
                    provider: e.provider,
                    result_hash: e.resultHash,
                };
                (Some(id), event)
            }
            E::ReplicaSettled(e) => {
                let id = job_id_u64(e.jobId)?;
                let settlement = Settlement::from_u8(e.settlement)?;
                let s = ReplicaSettlement {
                    settlement,
                    payout: e.payout,
                    slashed: e.slashed,
                    at,
                };
                if let Some(r) = self.replica(id, e.provider, |r| r.settled.is_none()) {
                    r.settled = Some(s);
                }
                self.totals.paid += e.payout;
                let p = self.providers.entry(e.provider).or_default();
                p.earned += e.payout;
                p.slashed += e.slashed;
                p.points.push(Point {
                    job_id: id,
                    settlement,
                    payout: e.payout,
                    slashed: e.slashed,
                    at,
                });
                let event = Event::Settled {
                    provider: e.provider,
                    settlement,
                    payout: e.payout,
                    slashed: e.slashed,
                };
                (Some(id), event)
            }
            E::JobFinalized(e) => {
                let id = job_id_u64(e.jobId)?;
                let outcome = outcome_from_u8(e.outcome)?;
                let winners = u64::try_from(e.winners).unwrap_or(u64::MAX);
                if let Some(job) = self.jobs.get_mut(&id) {
                    let bounty = U256::from(job.spec.bounty);
                    self.totals.escrowed = self.totals.escrowed.saturating_sub(bounty);
                    job.outcome = Some(Final {
                        outcome,
                        result_hash: e.resultHash,
                        winners,
                        slashed: e.slashed,
                        at,
                    });
                }
                self.totals.slashed += e.slashed;
                let event = Event::Finalized {
                    outcome,
                    result_hash: e.resultHash,
                    winners,
                    slashed: e.slashed,
                };
                (Some(id), event)
            }
            E::BalanceCredited(e) => {
                let id = job_id_u64(e.jobId)?;
                self.totals.refunded += e.amount;
                let event = Event::Credited {
                    account: e.account,
                    amount: e.amount,
                };
                (Some(id), event)
            }
            E::Staked(e) => {
                self.providers.entry(e.provider).or_default().staked = e.staked;
                let event = Event::Staked {
                    provider: e.provider,
                    amount: e.amount,
                    staked: e.staked,
                };
                (None, event)
            }
            E::Unstaked(e) => {
                self.providers.entry(e.provider).or_default().staked = e.staked;
                let event = Event::Unstaked {
                    provider: e.provider,
                    amount: e.amount,
                    staked: e.staked,
                };
                (None, event)
            }
            E::Withdrawn(e) => {
                let event = Event::Withdrawn {
                    account: e.account,
                    amount: e.amount,
                };
                (None, event)
            }
            _ => return None,
        })
    }

    /// The first replica of `provider` in job `id` that `pick` accepts.
    fn replica(
        &mut self,
        id: u64,
        provider: Address,
        pick: impl Fn(&Replica) -> bool,
    ) -> Option<&mut Replica> {
        self.jobs
            .get_mut(&id)?
            .replicas
            .iter_mut()
            .find(|r| r.provider == provider && pick(r))
    }
}

fn outcome_from_u8(v: u8) -> Option<Outcome> {
    Some(match v {
        0 => Outcome::Completed,
        1 => Outcome::NoQuorum,
        2 => Outcome::Unfilled,
        3 => Outcome::Overturned,
        _ => return None,
    })
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
