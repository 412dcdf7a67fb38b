//! "What now?" for a job: one pure function from the spec's deadlines, the escrow's live
//! counters, our replica's phase and the time to the job's phase and the next action.
//!
//! The protocol v2 timing rules live here and nowhere else (the daemon's driver, `stp job
//! status`, `stp job finalize` and the SDK's finalize all ask this module):
//! - commits (a slot taken with its commitment) while `now <= commitDeadline` and a slot
//!   is free;
//! - reveals once every slot is taken, while `now <= revealDeadline`;
//! - the last reveal settles the job; otherwise anyone finalizes a job short of slots once
//!   `now > commitDeadline` (unfilled: refund, committers released), or a filled one once
//!   `now > revealDeadline` (a reveal missing);
//! - an optimistic job (its one slot revealed by its commit) waits out its challenge window
//!   too: it is finalized once `now > revealDeadline + challengeWindow`; a challenged one
//!   (`revealed` = 255) is settled by its escalation, nothing else;
//! - a settled job is deleted on-chain: no live counters.

use serde::Serialize;

use super::{JobKind, JobSpec, JobSpecExt};

/// The deadlines and size of a job: what the timing rules read from its spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Slots (replicas) the job needs.
    pub replicas: u8,
    /// Last second (inclusive) to commit.
    pub commit_deadline: u64,
    /// Last second (inclusive) to reveal.
    pub reveal_deadline: u64,
    /// Last second (inclusive) before a filled job may be finalized: the reveal deadline,
    /// plus the challenge window for an optimistic job.
    pub settles_after: u64,
}

impl From<&JobSpec> for Timing {
    fn from(spec: &JobSpec) -> Self {
        Self {
            replicas: spec.replicas,
            commit_deadline: spec.commit_deadline(),
            reveal_deadline: spec.reveal_deadline(),
            settles_after: spec.reveal_deadline(),
        }
    }
}

impl Timing {
    /// The timing of a job of `kind` with `spec`: an optimistic one waits out the market's
    /// `challenge_window` too.
    pub fn of(spec: &JobSpec, kind: JobKind, challenge_window: u64) -> Self {
        let timing = Self::from(spec);
        match kind {
            JobKind::Optimistic => timing.with_challenge_window(challenge_window),
            JobKind::Plain | JobKind::Escalation => timing,
        }
    }

    /// The timing of an optimistic job: finalized only after `challenge_window` more
    /// seconds.
    pub fn with_challenge_window(mut self, challenge_window: u64) -> Self {
        self.settles_after = self.reveal_deadline.saturating_add(challenge_window);
        self
    }
}

/// `Counters::revealed` of an optimistic job under challenge (the escrow's sentinel).
pub const CHALLENGED: u8 = u8::MAX;

/// A live job's counters, as the escrow's `jobState` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Slots taken (each with its commitment).
    pub committed: u8,
    /// Reveals made; always below `replicas` on a live job (the last reveal settles it).
    pub revealed: u8,
}

/// Our replica's phase in the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ours {
    /// We hold no slot (not taken part, or an observer).
    Outside,
    /// We hold a slot with our commitment.
    Committed,
    /// We revealed.
    Revealed,
}

/// Where a job stands as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Slots are open: commits are accepted.
    Open,
    /// Every slot is taken: reveals are accepted.
    Revealing,
    /// The commit deadline passed short of slots: only finalize (a refund) is left.
    Unfilled,
    /// The reveal deadline passed with a reveal missing: only finalize is left.
    Expired,
    /// An optimistic job under challenge: its escalation's settlement settles it.
    Challenged,
    /// Settled (or never posted): the escrow holds nothing for it any more.
    Settled,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// A commit is allowed now (for a provider that is drawn and has its result).
    Commit,
    /// Reveal now.
    Reveal,
    /// Finalize now (anyone may).
    Finalize,
    /// Nothing to send before `until` (unix seconds), unless the chain moves first.
    Wait {
        /// When the rules next change for this job.
        until: u64,
    },
    /// Nothing left to do for this party.
    Done,
}

/// The job's phase at `now`; `live` is `None` once the job is settled.
pub fn phase(t: &Timing, live: Option<Counters>, now: u64) -> Phase {
    let Some(c) = live else {
        return Phase::Settled;
    };
    if c.revealed == CHALLENGED {
        return Phase::Challenged;
    }
    match (
        c.committed >= t.replicas,
        now <= t.commit_deadline,
        now <= t.settles_after,
    ) {
        (false, true, _) => Phase::Open,
        (false, false, _) => Phase::Unfilled,
        (true, _, true) => Phase::Revealing,
        (true, _, false) => Phase::Expired,
    }
}

/// The job's phase and what `ours` should do next at `now`.
pub fn next(t: &Timing, live: Option<Counters>, ours: Ours, now: u64) -> (Phase, Action) {
    let phase = phase(t, live, now);
    let action = match (phase, ours) {
        (Phase::Settled, _) => Action::Done,
        // Nothing to send: the escalation's replicas (or anyone, once it expires) settle it.
        (Phase::Challenged, _) => Action::Wait { until: u64::MAX },
        (Phase::Unfilled | Phase::Expired, _) => Action::Finalize,
        (Phase::Open, Ours::Outside) => Action::Commit,
        // Reveals open when the last slot is taken, or the job goes unfilled at the deadline.
        (Phase::Open, _) => Action::Wait {
            until: t.commit_deadline + 1,
        },
        (Phase::Revealing, Ours::Committed) => Action::Reveal,
        (Phase::Revealing, Ours::Revealed) => Action::Wait {
            until: t.settles_after + 1,
        },
        (Phase::Revealing, Ours::Outside) => Action::Done,
    };
    (phase, action)
}

/// The first second at which anyone may finalize the live job, `None` if it is settled.
pub fn finalizable_from(t: &Timing, live: Option<Counters>) -> Option<u64> {
    let c = live?;
    if c.revealed == CHALLENGED {
        return None;
    }
    Some(if c.committed >= t.replicas {
        t.settles_after + 1
    } else {
        t.commit_deadline + 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        replicas: 3,
        commit_deadline: 100,
        reveal_deadline: 200,
        settles_after: 200,
    };

    fn live(committed: u8, revealed: u8) -> Option<Counters> {
        Some(Counters {
            committed,
            revealed,
        })
    }

    #[test]
    fn the_table_of_phases_and_actions() {
        use Action::*;
        use Ours::*;
        let wait = |until| Wait { until };
        #[rustfmt::skip]
        let table: &[(Option<Counters>, Ours, u64, Phase, Action)] = &[
            // open: outsiders may commit, committers wait for the last slot or the deadline
            (live(0, 0), Outside, 0, Phase::Open, Commit),
            (live(2, 0), Outside, 100, Phase::Open, Commit),
            (live(2, 0), Committed, 100, Phase::Open, wait(101)),
            // the deadline passes short of slots: unfilled, finalize (refund)
            (live(2, 0), Outside, 101, Phase::Unfilled, Finalize),
            (live(2, 0), Committed, 101, Phase::Unfilled, Finalize),
            (live(0, 0), Outside, 150, Phase::Unfilled, Finalize),
            // filled early: reveals open before the commit deadline
            (live(3, 0), Committed, 50, Phase::Revealing, Reveal),
            (live(3, 1), Revealed, 50, Phase::Revealing, wait(201)),
            (live(3, 0), Outside, 50, Phase::Revealing, Done),
            (live(3, 2), Committed, 200, Phase::Revealing, Reveal),
            // a reveal missing at the reveal deadline: finalize
            (live(3, 2), Revealed, 201, Phase::Expired, Finalize),
            (live(3, 2), Committed, 201, Phase::Expired, Finalize),
            (live(3, 0), Outside, 500, Phase::Expired, Finalize),
            // settled (deleted on-chain)
            (None, Revealed, 50, Phase::Settled, Done),
            (None, Outside, 500, Phase::Settled, Done),
        ];
        for &(counters, ours, now, phase, action) in table {
            assert_eq!(
                next(&T, counters, ours, now),
                (phase, action),
                "{counters:?} {ours:?} at {now}"
            );
        }
    }

    #[test]
    fn an_optimistic_job_waits_out_its_window_and_a_challenged_one_waits_for_its_escalation() {
        let t = Timing { replicas: 1, ..T }.with_challenge_window(30);
        // The one slot is revealed by its commit.
        assert_eq!(
            next(&t, live(1, 1), Ours::Revealed, 200),
            (Phase::Revealing, Action::Wait { until: 231 })
        );
        assert_eq!(
            next(&t, live(1, 1), Ours::Revealed, 230).0,
            Phase::Revealing
        );
        assert_eq!(
            next(&t, live(1, 1), Ours::Revealed, 231),
            (Phase::Expired, Action::Finalize)
        );
        assert_eq!(finalizable_from(&t, live(1, 1)), Some(231));
        let challenged = live(1, CHALLENGED);
        assert_eq!(
            next(&t, challenged, Ours::Revealed, 10_000),
            (Phase::Challenged, Action::Wait { until: u64::MAX })
        );
        assert_eq!(finalizable_from(&t, challenged), None);
    }

    #[test]
    fn finalizable_from_follows_the_fill() {
        assert_eq!(finalizable_from(&T, live(1, 0)), Some(101));
        assert_eq!(finalizable_from(&T, live(3, 1)), Some(201));
        assert_eq!(finalizable_from(&T, None), None);
        // and it agrees with the phase table at that second and the one before
        for c in [live(1, 0), live(3, 1)] {
            let at = finalizable_from(&T, c).unwrap();
            assert_eq!(next(&T, c, Ours::Outside, at).1, Action::Finalize);
            assert_ne!(next(&T, c, Ours::Outside, at - 1).1, Action::Finalize);
        }
    }
}
