//! A job's on-chain history, folded from its events: what the last reveal and finalize
//! pass back (every slot), what `stp job status` shows, where a consumer finds its output.

use alloy::primitives::{Address, B256, U256};

use super::{EventKind, JobKind, JobSpec, MarketError, MarketEvent, Outcome, Result, slot_key};

/// One slot of a job: a provider's lane holding its commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The provider.
    pub provider: Address,
    /// Its lane.
    pub lane: u64,
    /// Drawn at the base rate (counts for reputation).
    pub drawn: bool,
}

/// A job's on-chain history, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobHistory {
    /// The job.
    pub job_id: u64,
    /// Its spec, from `JobPosted`.
    pub spec: Option<JobSpec>,
    /// The post's block timestamp, from `JobPosted`.
    pub posted_at: u64,
    /// The post's block number (its hash fixes the draw), from `JobPosted`.
    pub post_block: u64,
    /// Which rules it follows, from `JobPosted`.
    pub kind: JobKind,
    /// The escalation job its consumer's challenge posted, from `JobChallenged`.
    pub escalation: Option<u64>,
    /// Block of `JobPosted`.
    pub posted_block: Option<u64>,
    /// Slots in commit order.
    pub slots: Vec<Slot>,
    /// Reveals in order.
    pub reveals: Vec<(Address, B256)>,
    /// How it ended, with the winning hash, once settled.
    pub outcome: Option<(Outcome, B256)>,
}

impl JobHistory {
    /// Folds `events` (oldest first) that concern `job_id` into its history.
    pub fn from_events(job_id: u64, events: Vec<MarketEvent>) -> Self {
        let mut h = Self {
            job_id,
            ..Self::default()
        };
        for MarketEvent { block, kind } in events {
            match kind {
                EventKind::JobPosted {
                    spec,
                    posted_at,
                    post_block,
                    kind,
                    ..
                } => {
                    h.spec = Some(spec);
                    h.posted_at = posted_at;
                    h.post_block = post_block;
                    h.kind = kind;
                    h.posted_block = Some(block);
                }
                EventKind::Challenged { escalation_id, .. } => h.escalation = Some(escalation_id),
                EventKind::Committed {
                    provider,
                    lane,
                    drawn,
                    ..
                } => h.slots.push(Slot {
                    provider,
                    lane,
                    drawn,
                }),
                EventKind::Revealed {
                    provider,
                    result_hash,
                    ..
                } => h.reveals.push((provider, result_hash)),
                EventKind::Finalized {
                    outcome,
                    result_hash,
                    ..
                } => h.outcome = Some((outcome, result_hash)),
                EventKind::Credited { .. } | EventKind::Withdrawn { .. } => {}
            }
        }
        h
    }

    /// The job as the escrow's calls name it, or an error if it was never posted.
    pub fn job_ref(&self) -> Result<super::JobRef<'_>> {
        self.spec
            .as_ref()
            .map(|spec| super::JobRef {
                id: self.job_id,
                spec,
                posted_at: self.posted_at,
                post_block: self.post_block,
                kind: self.kind,
            })
            .ok_or_else(|| MarketError::Unexpected(format!("job {} was never posted", self.job_id)))
    }

    /// The live counters the escrow would report, from the events (`None` once settled or
    /// if never posted): what [`super::lifecycle`] needs without another call.
    pub fn counters(&self) -> Option<super::JobCounters> {
        if self.spec.is_none() || self.outcome.is_some() {
            return None;
        }
        let revealed = match self.escalation {
            Some(_) => super::lifecycle::CHALLENGED,
            None => u8::try_from(self.reveals.len()).unwrap_or(u8::MAX - 1),
        };
        Some(super::JobCounters {
            committed: u8::try_from(self.slots.len()).unwrap_or(u8::MAX),
            revealed,
        })
    }

    /// Providers holding a slot, in commit order.
    pub fn committers(&self) -> Vec<Address> {
        self.slots.iter().map(|s| s.provider).collect()
    }

    /// Every slot as the escrow's finalize takes them (`slot_key`), ascending.
    pub fn all_keys(&self) -> Vec<U256> {
        let mut keys: Vec<U256> = self
            .slots
            .iter()
            .map(|s| slot_key(s.provider, s.lane))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Every slot but `me`'s in `lane`, ascending: what the last reveal takes.
    pub fn other_keys(&self, me: Address, lane: u64) -> Vec<U256> {
        let mine = slot_key(me, lane);
        self.all_keys().into_iter().filter(|k| *k != mine).collect()
    }

    /// The hint a reveal of `mine` by `me` passes as `quorumHash`: the hash other replicas
    /// revealed most often, if it is not `mine` (zero otherwise). The escrow only reads it
    /// when this reveal is the last one and `mine` lacks the quorum.
    pub fn likely_quorum_hash(&self, me: Address, mine: B256) -> B256 {
        tally(
            self.reveals
                .iter()
                .filter(|(who, hash)| *who != me && *hash != mine),
        )
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map_or(B256::ZERO, |(h, _)| h)
    }

    /// The result hash revealed by at least `quorum` replicas, if any.
    pub fn majority_result(&self, quorum: u8) -> Option<B256> {
        tally(self.reveals.iter())
            .into_iter()
            .find(|(_, n)| *n >= usize::from(quorum))
            .map(|(h, _)| h)
    }

    /// Providers that revealed `hash`.
    pub fn revealers_of(&self, hash: B256) -> Vec<Address> {
        self.reveals
            .iter()
            .filter(|(_, r)| *r == hash)
            .map(|(a, _)| *a)
            .collect()
    }
}

/// How often each hash occurs, in first-seen order.
fn tally<'a>(reveals: impl Iterator<Item = &'a (Address, B256)>) -> Vec<(B256, usize)> {
    let mut counts: Vec<(B256, usize)> = Vec::new();
    for (_, hash) in reveals {
        match counts.iter_mut().find(|(h, _)| h == hash) {
            Some((_, n)) => *n += 1,
            None => counts.push((*hash, 1)),
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(n: u8) -> Address {
        Address::repeat_byte(n)
    }

    #[test]
    fn keys_are_sorted_slots_and_exclude_the_caller() {
        let h = JobHistory {
            slots: vec![
                Slot {
                    provider: a(3),
                    lane: 0,
                    drawn: true,
                },
                Slot {
                    provider: a(1),
                    lane: 7,
                    drawn: false,
                },
                Slot {
                    provider: a(2),
                    lane: 1,
                    drawn: true,
                },
            ],
            ..JobHistory::default()
        };
        let keys = h.all_keys();
        assert_eq!(
            keys,
            vec![slot_key(a(1), 7), slot_key(a(2), 1), slot_key(a(3), 0)]
        );
        assert_eq!(
            h.other_keys(a(2), 1),
            vec![slot_key(a(1), 7), slot_key(a(3), 0)]
        );
        // The lane sits below the address: a low address with a high lane sorts first.
        assert!(slot_key(a(1), u64::MAX) < slot_key(a(2), 0));
    }

    #[test]
    fn quorum_hint_and_majority() {
        let (x, y) = (B256::repeat_byte(0xaa), B256::repeat_byte(0xbb));
        let h = JobHistory {
            reveals: vec![(a(1), x), (a(2), y), (a(3), y)],
            ..JobHistory::default()
        };
        assert_eq!(h.majority_result(2), Some(y));
        assert_eq!(h.majority_result(3), None);
        assert_eq!(h.likely_quorum_hash(a(1), x), y);
        assert_eq!(h.likely_quorum_hash(a(4), y), x);
        assert_eq!(h.revealers_of(y), vec![a(2), a(3)]);
    }
}
