//! A job's transactions leave the driver's loop: each commit, reveal or finalize is sent
//! from its own task (the market's transaction manager gives it the account's next nonce
//! and keeps it in flight with the others), and its result comes back as a [`StepDone`].
//! The driver never waits on one job's transaction to act on another; a job with a
//! transaction in flight is not driven again until its result is back.

use alloy::primitives::TxHash;
use stp_sdk::market::{JobSpec, Market, MarketError, Revealed};

use super::Driver;
use crate::store::JobRecord;

/// Which transaction a job sent, with its result.
pub(in crate::daemon) enum Sent {
    /// The commit that takes our slot.
    Commit(Result<TxHash, MarketError>),
    /// The commit that takes a one-replica job's only slot with the result and settles it.
    CommitResult(Result<Revealed, MarketError>),
    /// Our reveal (the last one settles the job).
    Reveal(Result<Revealed, MarketError>),
    /// A finalize after a deadline.
    Finalize(Result<TxHash, MarketError>),
}

/// A job's transaction, back from its task.
pub(in crate::daemon) struct StepDone {
    pub(super) job_id: u64,
    pub(super) sent: Sent,
}

/// What to send for a job.
pub(super) enum Step {
    Commit { lane: u64 },
    CommitResult { lane: u64 },
    Reveal { lane: u64 },
    Finalize,
}

impl Driver {
    /// Sends `step` of `record`'s job from a task of its own; the result comes back on the
    /// steps channel. A job already waiting on a transaction is left alone.
    pub(super) fn send_step(&mut self, record: &JobRecord, spec: &JobSpec, step: Step) {
        let job_id = record.job_id;
        if !self.in_flight.insert(job_id) {
            return;
        }
        let (market, done) = (self.market.clone(), self.steps.clone());
        let (salt, result) = (
            record.salt.unwrap_or_default(),
            record.result_hash.unwrap_or_default(),
        );
        let (spec, posted_at, post_block, kind) = (
            spec.clone(),
            record.posted_at,
            record.post_block,
            record.kind,
        );
        tokio::spawn(async move {
            let job = stp_sdk::market::JobRef {
                id: job_id,
                spec: &spec,
                posted_at,
                post_block,
                kind,
            };
            let sent = send(&market, &job, step, result, salt).await;
            let _ = done.send(StepDone { job_id, sent }).await;
        });
    }

    /// Waits for every transaction in flight to come back and acts on it (on shutdown).
    pub(in crate::daemon) async fn drain_steps(
        &mut self,
        steps: &mut tokio::sync::mpsc::Receiver<StepDone>,
    ) {
        while !self.in_flight.is_empty() {
            match steps.recv().await {
                Some(done) => self.on_step_done(done).await,
                None => return,
            }
        }
    }
}

async fn send(
    market: &Market,
    job: &stp_sdk::market::JobRef<'_>,
    step: Step,
    result: alloy::primitives::B256,
    salt: alloy::primitives::B256,
) -> Sent {
    match step {
        Step::Commit { lane } => Sent::Commit(market.commit(job, lane, result, salt).await),
        Step::CommitResult { lane } => {
            Sent::CommitResult(market.commit_result(job, lane, result).await)
        }
        Step::Reveal { lane } => Sent::Reveal(market.reveal(job, lane, result, salt).await),
        Step::Finalize => Sent::Finalize(market.finalize_since(job.id, job.post_block).await),
    }
}
