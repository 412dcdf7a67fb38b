//! Which waiting job to take first: those whose shared input parts this node already
//! holds, since they cost it no download. A pure rule over what the node knows of each
//! job's parts (the part hints of its announcement), and the bounded table of those hints.
//!
//! Hints come from gossip and are not trusted: a false one can only move a job ahead of or
//! behind others in this order. Whether a job is taken at all is the scheduler's rule, and
//! what the node computes comes from the input the chain's input hash names.

use std::collections::{HashMap, VecDeque};

use stp_sdk::p2p::ContentHash;

/// Jobs whose part hints are kept at most (the oldest go first).
const HINTS_CAP: usize = 1024;

/// How many of a job's hinted parts the node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct PartsHeld {
    /// Parts the job's announcement named.
    pub(super) hinted: usize,
    /// Of those, the parts in this node's blob store.
    pub(super) held: usize,
}

impl PartsHeld {
    /// The sort key, smallest first: jobs whose every hinted part is held, then jobs by
    /// how many hinted parts are held, most first (jobs without hints hold none).
    fn rank(self) -> (bool, std::cmp::Reverse<usize>) {
        let all = self.hinted > 0 && self.held >= self.hinted;
        (!all, std::cmp::Reverse(self.held))
    }
}

/// Orders `jobs` so that those whose parts this node holds (`held` of each) go first. The
/// sort is stable: jobs that rank the same keep their order (oldest first, as queued).
pub(super) fn order<T>(jobs: &mut [T], held: impl Fn(&T) -> PartsHeld) {
    jobs.sort_by_key(|j| held(j).rank());
}

/// The part hints of recently announced jobs, bounded.
#[derive(Debug, Default)]
pub(super) struct PartHints {
    hints: HashMap<u64, Vec<ContentHash>>,
    order: VecDeque<u64>,
}

impl PartHints {
    /// Records `hints` for `job_id` (replacing earlier ones), dropping the oldest job's
    /// beyond [`HINTS_CAP`]. Empty hints record nothing.
    pub(super) fn record(&mut self, job_id: u64, hints: Vec<ContentHash>) {
        if hints.is_empty() {
            return;
        }
        if self.hints.insert(job_id, hints).is_none() {
            self.order.push_back(job_id);
        }
        while self.order.len() > HINTS_CAP {
            if let Some(old) = self.order.pop_front() {
                self.hints.remove(&old);
            }
        }
    }

    /// How many of `job_id`'s hinted parts `has` says the node holds.
    pub(super) fn held(&self, job_id: u64, has: impl Fn(&ContentHash) -> bool) -> PartsHeld {
        let hinted = self.hints.get(&job_id).map_or(&[][..], Vec::as_slice);
        PartsHeld {
            hinted: hinted.len(),
            held: hinted.iter().filter(|h| has(h)).count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(hinted: usize, held: usize) -> PartsHeld {
        PartsHeld { hinted, held }
    }

    #[test]
    fn jobs_whose_parts_are_held_go_first_and_ties_keep_their_order() {
        // (job id, what the node holds of its parts), oldest first.
        let mut jobs = vec![
            (1, held(0, 0)), // no hints: a plain job, or one announced without them
            (2, held(1, 0)), // its part must be fetched
            (3, held(1, 1)), // its part is held
            (4, held(2, 1)), // one of two held
            (5, held(2, 2)), // both held
            (6, held(0, 0)),
            (7, held(1, 1)),
        ];
        order(&mut jobs, |(_, h)| *h);
        let ids: Vec<u32> = jobs.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![5, 3, 7, 4, 1, 2, 6]);
    }

    #[test]
    fn without_held_parts_the_order_is_unchanged() {
        let mut jobs: Vec<(u32, PartsHeld)> =
            (0..6).map(|i| (i, held(i as usize % 2, 0))).collect();
        let before = jobs.clone();
        order(&mut jobs, |(_, h)| *h);
        assert_eq!(jobs, before);
    }

    #[test]
    fn hints_are_counted_against_the_store_and_bounded() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let mut hints = PartHints::default();
        hints.record(1, vec![a, b]);
        hints.record(2, Vec::new());
        let has = |h: &ContentHash| *h == a;
        assert_eq!(hints.held(1, has), held(2, 1));
        assert_eq!(hints.held(2, has), held(0, 0), "no hints recorded");
        assert_eq!(hints.held(9, has), held(0, 0), "never announced");
        hints.record(1, vec![a]);
        assert_eq!(hints.held(1, has), held(1, 1), "replaced");
        for id in 10..(10 + HINTS_CAP as u64) {
            hints.record(id, vec![b]);
        }
        assert_eq!(hints.hints.len(), HINTS_CAP);
        assert_eq!(hints.held(1, has), held(0, 0), "the oldest went first");
        assert_eq!(hints.held(10 + HINTS_CAP as u64 - 1, has), held(1, 0));
    }
}
