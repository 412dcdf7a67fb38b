//! The transactions of a job's life (commit, reveal, finalize, withdraw), settlement
//! (serving the output only once the job completed with our hash) and keeping the store in
//! step with the chain after a crash or a lost reply.

use alloy::primitives::{B256, TxHash, U256};
use stp_sdk::market::lifecycle::{self, Action, Ours, Timing};
use stp_sdk::market::{
    Draw, JobKind, JobSpec, JobSpecExt, MarketError, Outcome, ReplicaPhase, Revealed,
};

use super::send::Step;
use super::{Driver, MAX_FETCH_ATTEMPTS, job_ref};
#[cfg(feature = "fault-injection")]
use crate::daemon::Fault;
use crate::daemon::scheduler;
use crate::store::{JobPhase, JobRecord};
use stp_sdk::p2p::Naming;

impl Driver {
    /// Reconciles stored jobs with the chain after a (re)start.
    pub(in crate::daemon) async fn recover(&mut self) {
        let active = match self.store.active_jobs() {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the job store");
                return;
            }
        };
        for mut record in active {
            if !record.phase.holds_slot() {
                continue;
            }
            match self.sync_with_chain(&mut record).await {
                Ok(_) => tracing::info!(job = record.job_id, phase = ?record.phase, "resuming job"),
                Err(e) => {
                    tracing::warn!(job = record.job_id, error = %e, "cannot check job on start");
                }
            }
        }
    }

    /// Moves `record` to where the chain says our slot stands (a transaction may have been
    /// mined while we crashed or while its reply was lost). Returns whether it moved.
    pub(super) async fn sync_with_chain(
        &mut self,
        record: &mut JobRecord,
    ) -> Result<bool, MarketError> {
        let Some(lane) = record.lane else {
            return Ok(false);
        };
        let status = self
            .market
            .replica_status(record.job_id, self.account(), lane)
            .await?;
        let phase = match (record.phase, status) {
            (JobPhase::Computed, ReplicaPhase::Committed) => JobPhase::Committed,
            (JobPhase::Computed | JobPhase::Committed, ReplicaPhase::Revealed) => {
                JobPhase::Revealed
            }
            // Our lane holds nothing of this job: it was settled (e.g. by our own last
            // reveal whose reply was lost), or our commit never landed.
            (phase, ReplicaPhase::None) if phase.holds_slot() => {
                if self.market.job_counters(record.job_id).await?.is_some() {
                    return Ok(false);
                }
                return self.settle_from_history(record.clone()).await;
            }
            (phase, _) => phase,
        };
        if phase == record.phase {
            return Ok(false);
        }
        tracing::info!(job = record.job_id, from = ?record.phase, to = ?phase, "caught up with the chain");
        record.advance(phase);
        self.save(record);
        Ok(true)
    }

    /// A job that is no longer live: settles our record from its history (served output if
    /// it completed with our hash), or abandons it if we never held a slot.
    async fn settle_from_history(&mut self, record: JobRecord) -> Result<bool, MarketError> {
        // The index has it if it saw the settlement; else one bounded scan from the post.
        let history = match self.store.indexed_history(record.job_id) {
            Ok(h) if h.outcome.is_some() => h,
            _ => {
                self.market
                    .job_history_since(record.job_id, record.post_block)
                    .await?
            }
        };
        let ours = history
            .slots
            .iter()
            .any(|s| s.provider == self.account() && Some(s.lane) == record.lane);
        match history.outcome {
            Some((outcome, winning)) if ours => self.finish(record, outcome, winning).await,
            Some(_) => self.give_up(record, "filled", "the job settled without our slot")?,
            None => return Ok(false),
        }
        Ok(true)
    }

    /// A `JobFinalized` event for `job_id` seen on-chain.
    pub(super) async fn settled_on_chain(&mut self, job_id: u64, outcome: Outcome, winning: B256) {
        let Ok(Some(record)) = self.store.get(job_id) else {
            return;
        };
        if !record.phase.is_active() {
            return;
        }
        match record.phase {
            JobPhase::Committed | JobPhase::Revealed => self.finish(record, outcome, winning).await,
            // Settled already; only serving the output is left (retried on its own).
            JobPhase::Serving => {}
            // Our commit may or may not have landed: the job's slots say.
            JobPhase::Computed => {
                if let Err(e) = self.settle_from_history(record).await {
                    tracing::warn!(job = job_id, error = %e, "cannot read the settled job");
                }
            }
            _ => {
                let _ = self.give_up(record, "filled", "the job settled without us");
            }
        }
    }

    /// Marks our record settled. The output is served from now on only if the job completed
    /// with our hash; otherwise the held result is deleted (a NoQuorum must not hand the
    /// consumer the output for free). A record finished already is left alone: the chain
    /// watcher and a transaction's reply (or a finalize) may both report one settlement,
    /// in either order, and its output is served once.
    pub(super) async fn finish(&mut self, mut record: JobRecord, outcome: Outcome, winning: B256) {
        if matches!(record.phase, JobPhase::Serving | JobPhase::Settled) {
            return;
        }
        let job_id = record.job_id;
        // An optimistic job upheld by an escalation without a quorum reports no hash: ours
        // stands, unchallenged in effect.
        let upheld = record.kind == JobKind::Optimistic && winning.is_zero();
        let won = outcome == Outcome::Completed && (record.result_hash == Some(winning) || upheld);
        record.note = Some(format!(
            "settled: {outcome:?}{}",
            if won { ", our result won" } else { "" }
        ));
        tracing::info!(job = job_id, ?outcome, won, "job settled");
        if won {
            // Paid for an output consumers must be able to fetch: serve it, or keep the
            // held result and try again until it is served.
            record.advance(JobPhase::Serving);
            self.save(&record);
            self.serve_output(record).await;
        } else {
            self.held.drop_result(job_id);
            record.advance(JobPhase::Settled);
            self.save(&record);
        }
        if self.config.auto_withdraw {
            self.withdraw().await;
        }
    }

    /// Adds the held output of a job that completed with our result to the blob store,
    /// which serves it; on failure the job stays `Serving` and is tried again after
    /// [`SERVE_RETRY`].
    pub(super) async fn serve_output(&mut self, mut record: JobRecord) {
        let job_id = record.job_id;
        match self
            .p2p
            .add_blob_file(&self.held.path(job_id), Naming::Sha256)
            .await
        {
            Ok(_) => {
                self.retry_at.remove(&job_id);
                self.held.drop_result(job_id);
                record.advance(JobPhase::Settled);
                self.save(&record);
                tracing::info!(
                    job = job_id,
                    "job completed with our result; serving the output"
                );
            }
            Err(e) => {
                self.retry_at
                    .insert(job_id, tokio::time::Instant::now() + SERVE_RETRY);
                tracing::warn!(job = job_id, error = %e, retry_in = ?SERVE_RETRY, "cannot serve the output yet; will retry");
            }
        }
    }

    /// Gives up a job before anything of ours is at stake (or after it was released),
    /// counting `reason` in the refusal metric.
    pub(super) fn give_up(
        &mut self,
        mut record: JobRecord,
        reason: &str,
        why: &str,
    ) -> Result<(), MarketError> {
        tracing::warn!(job = record.job_id, reason, why, "abandoning job");
        self.metrics.refused(reason);
        self.held.drop_result(record.job_id);
        self.fetch_failures.remove(&record.job_id);
        self.retry_at.remove(&record.job_id);
        record.note = Some(why.to_string());
        record.advance(JobPhase::Abandoned);
        self.save(&record);
        Ok(())
    }

    /// A `Waiting` job: once the draw makes us eligible and a slot is still free, start.
    pub(super) async fn wake(
        &mut self,
        mut record: JobRecord,
        spec: JobSpec,
        now: u64,
    ) -> Result<(), MarketError> {
        if record.eligible_from.is_some_and(|t| now < t) {
            return Ok(());
        }
        let live = self.live_counters(record.job_id).await?;
        if !matches!(
            lifecycle::phase(&Timing::from(&spec), live, now),
            lifecycle::Phase::Open
        ) {
            return self.give_up(
                record,
                "filled",
                "the job filled or closed before we were drawn",
            );
        }
        // The draw may not have been fixed when we first asked (the post's own block).
        let draw = self
            .market
            .draw_of(&job_ref(&record, &spec), self.account())
            .await?;
        if !draw.eligible && !self.greedy() {
            return match eligible_in_time(&draw, &spec) {
                Some(at) => {
                    record.eligible_from = Some(at);
                    self.save(&record);
                    Ok(())
                }
                None => self.give_up(record, "not_drawn", "not drawn for this job in time"),
            };
        }
        record.eligible_from = None;
        record.advance(JobPhase::Fetching);
        self.save(&record);
        tracing::info!(job = record.job_id, "drawn now; fetching the input");
        self.start_execution(record.job_id, spec, now);
        Ok(())
    }

    /// An input fetch failed: try again after [`fetch_retry_delay`], up to
    /// [`MAX_FETCH_ATTEMPTS`] in all; then the job is given up as `input_unavailable`
    /// (nothing of ours is at stake yet).
    pub(super) fn fetch_failed(&mut self, mut record: JobRecord, why: String) {
        let n = self.fetch_failures.entry(record.job_id).or_default();
        *n += 1;
        let attempt = *n;
        if attempt >= MAX_FETCH_ATTEMPTS {
            self.retry_at.remove(&record.job_id);
            let why = format!("input unavailable after {MAX_FETCH_ATTEMPTS} tries: {why}");
            let _ = self.give_up(record, "input_unavailable", &why);
            return;
        }
        let delay = fetch_retry_delay(attempt);
        self.retry_at
            .insert(record.job_id, tokio::time::Instant::now() + delay);
        tracing::warn!(job = record.job_id, attempt, retry_in = ?delay, error = %why, "input fetch failed; will retry");
        record.note = Some(why);
        self.save(&record);
    }

    /// Sends (or re-sends) the commit that takes our slot, from its own task; the result
    /// comes back to [`Driver::committed`]. A one-replica plain job's only slot is taken
    /// with the result in the clear, which settles it ([`Driver::committed_result`]).
    pub(super) fn commit(&mut self, record: &JobRecord, spec: &JobSpec) -> Result<(), MarketError> {
        secrets(record)?;
        let lane = record.lane.ok_or_else(|| {
            MarketError::Unexpected(format!("job {} has no stored lane", record.job_id))
        })?;
        let step = if job_ref(record, spec).is_solo() {
            Step::CommitResult { lane }
        } else {
            Step::Commit { lane }
        };
        self.send_step(record, spec, step);
        Ok(())
    }

    /// The result of a commit that carried the result and settled a one-replica job. A
    /// transport failure leaves the job in `Computed`, as a commit's does.
    pub(super) async fn committed_result(
        &mut self,
        record: &mut JobRecord,
        spec: &JobSpec,
        sent: Result<Revealed, MarketError>,
    ) -> Result<(), MarketError> {
        let done = match sent {
            Ok(done) => done,
            Err(e) => return self.commit_failed(record, spec, e).await,
        };
        self.metrics.transaction("commit_result");
        self.fetch_failures.remove(&record.job_id);
        self.retry_at.remove(&record.job_id);
        record.txs.push(done.tx);
        self.save(record);
        tracing::info!(job = record.job_id, tx = %done.tx, lane = record.lane, result = ?record.result_hash, "committed the result: slot taken and job settled");
        #[cfg(feature = "fault-injection")]
        self.crash_point(Fault::CrashAfterCommit);
        match done.settled {
            Some((outcome, winning)) => self.finish(record.clone(), outcome, winning).await,
            // The escrow settles the job in this transaction; if its event was not read,
            // the chain's history says how it ended.
            None => {
                self.sync_with_chain(record).await?;
            }
        }
        Ok(())
    }

    /// The commit's result. A transport failure leaves the job in `Computed`, to be tried
    /// again next tick (the commit may have been mined with its reply lost: the chain is
    /// asked before anything else is concluded).
    pub(super) async fn committed(
        &mut self,
        record: &mut JobRecord,
        spec: &JobSpec,
        sent: Result<TxHash, MarketError>,
    ) -> Result<(), MarketError> {
        let lane = record.lane.unwrap_or_default();
        match sent {
            Ok(tx) => {
                self.metrics.transaction("commit");
                self.fetch_failures.remove(&record.job_id);
                self.retry_at.remove(&record.job_id);
                record.txs.push(tx);
                // An optimistic job's commit carries the result hash: revealed at once.
                record.advance(match record.kind {
                    JobKind::Optimistic => JobPhase::Revealed,
                    JobKind::Plain | JobKind::Escalation => JobPhase::Committed,
                });
                self.save(record);
                tracing::info!(job = record.job_id, %tx, lane, result = ?record.result_hash, "committed: slot taken");
                #[cfg(feature = "fault-injection")]
                self.crash_point(Fault::CrashAfterCommit);
                Ok(())
            }
            Err(e) => self.commit_failed(record, spec, e).await,
        }
    }

    /// A commit (or commit with the result) that failed: refused or dropped, the chain says
    /// whether it landed after all, else [`Driver::commit_rejected`] decides; any other
    /// error is retried next tick.
    async fn commit_failed(
        &mut self,
        record: &mut JobRecord,
        spec: &JobSpec,
        e: MarketError,
    ) -> Result<(), MarketError> {
        if !(e.is_rejection() || matches!(e, MarketError::TxDropped { .. })) {
            return Err(e);
        }
        if self.sync_with_chain(record).await? || !record.phase.is_active() {
            return Ok(());
        }
        let lane = record.lane.unwrap_or_default();
        self.commit_rejected(record, spec, lane, e).await
    }

    /// The chain refused our commit and our lane does not hold the job: pick another lane,
    /// wait for the draw, or give up (nothing of ours is locked).
    async fn commit_rejected(
        &mut self,
        record: &mut JobRecord,
        spec: &JobSpec,
        lane: u64,
        e: MarketError,
    ) -> Result<(), MarketError> {
        use stp_sdk::bindings::JobEscrow::JobEscrowErrors as Refusal;
        match e.revert() {
            Some(Refusal::EscrowLaneBusy(_)) => {
                // A lane our store does not know as busy (e.g. a wiped data dir): next one.
                record.lane = Some(self.free_lane(lane + 1));
                self.save(record);
                Ok(())
            }
            Some(Refusal::EscrowNotDrawn(_)) => {
                let draw = self
                    .market
                    .draw_of(&job_ref(record, spec), self.account())
                    .await?;
                match eligible_in_time(&draw, spec).filter(|_| !draw.eligible && !self.greedy()) {
                    Some(at) => {
                        tracing::info!(
                            job = record.job_id,
                            eligible_from = at,
                            "not drawn yet; will commit then"
                        );
                        record.eligible_from = Some(at);
                        self.save(record);
                        Ok(())
                    }
                    None => {
                        tracing::warn!(job = record.job_id, error = %e, "commit refused on-chain: not drawn for this job");
                        self.give_up(record.clone(), "not_drawn", &e.to_string())
                    }
                }
            }
            // Sent in the post's own block: the draw is fixed from the next one.
            Some(Refusal::EscrowDrawNotFixed(_)) => Ok(()),
            Some(refusal) => {
                let reason = match refusal {
                    Refusal::EscrowJobFull(_) => "filled",
                    Refusal::EscrowCommitClosed(_) | Refusal::EscrowJobNotFound(_) => "closed",
                    _ => "commit_refused",
                };
                tracing::warn!(job = record.job_id, error = %e, "commit refused on-chain");
                self.give_up(record.clone(), reason, &e.to_string())
            }
            // Mined and failed without a decodable reason: try again next tick.
            None => Err(e),
        }
    }

    /// The lowest lane at or above `from` that no job of ours in the store may hold.
    pub(super) fn free_lane(&self, from: u64) -> u64 {
        let busy: Vec<u64> = self
            .store
            .active_jobs()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.phase.holds_slot())
            .filter_map(|r| r.lane)
            .collect();
        (from..).find(|l| !busy.contains(l)).unwrap_or(from)
    }

    /// A job we hold a slot in: reveal, finalize or wait, as the lifecycle rules say.
    pub(super) async fn advance_slot(
        &mut self,
        record: JobRecord,
        spec: &JobSpec,
        now: u64,
    ) -> Result<(), MarketError> {
        let live = self.live_counters(record.job_id).await?;
        let ours = if record.phase == JobPhase::Committed {
            Ours::Committed
        } else {
            Ours::Revealed
        };
        if record.kind == JobKind::Optimistic {
            self.publish_early(record.job_id).await;
        }
        let timing = self.timing(&record, spec).await?;
        match lifecycle::next(&timing, live, ours, now).1 {
            Action::Reveal if !self.withholds_reveals() => self.reveal(&record, spec),
            Action::Finalize => {
                self.send_step(&record, spec, Step::Finalize);
                Ok(())
            }
            Action::Done => {
                self.settle_from_history(record).await?;
                Ok(())
            }
            Action::Reveal | Action::Commit | Action::Wait { .. } => Ok(()),
        }
    }

    /// The timing rules of `record`'s job (an optimistic one waits out the challenge
    /// window, read from the chain once).
    async fn timing(&mut self, record: &JobRecord, spec: &JobSpec) -> Result<Timing, MarketError> {
        let window = match (record.kind, self.challenge_window) {
            (JobKind::Optimistic, None) => {
                let w = self.market.optimistic_params().await?.0;
                *self.challenge_window.insert(w)
            }
            (_, w) => w.unwrap_or_default(),
        };
        Ok(Timing::of(spec, record.kind, window))
    }

    /// Serves an optimistic job's output right after our commit: its consumer must be able
    /// to check it within the challenge window (it pays either way, unless it proves us
    /// wrong, so serving it early gives nothing away). Retried next tick on failure.
    async fn publish_early(&mut self, job_id: u64) {
        if self.published.contains(&job_id) {
            return;
        }
        match self
            .p2p
            .add_blob_file(&self.held.path(job_id), Naming::Sha256)
            .await
        {
            Ok(_) => {
                self.published.insert(job_id);
                tracing::info!(
                    job = job_id,
                    "optimistic job: serving the output for its check"
                );
            }
            Err(e) => {
                tracing::warn!(job = job_id, error = %e, "cannot serve the output yet; will retry")
            }
        }
    }

    fn reveal(&mut self, record: &JobRecord, spec: &JobSpec) -> Result<(), MarketError> {
        secrets(record)?;
        let lane = record.lane.unwrap_or_default();
        self.send_step(record, spec, Step::Reveal { lane });
        Ok(())
    }

    /// Our reveal's result.
    pub(super) async fn revealed(
        &mut self,
        mut record: JobRecord,
        sent: Result<Revealed, MarketError>,
    ) -> Result<(), MarketError> {
        let revealed = match sent {
            Ok(r) => r,
            Err(e) if e.is_rejection() || matches!(e, MarketError::TxDropped { .. }) => {
                self.sync_with_chain(&mut record).await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let job_id = record.job_id;
        self.metrics.transaction("reveal");
        record.txs.push(revealed.tx);
        match revealed.settled {
            // The last reveal settles the job in the same transaction.
            Some((outcome, winning)) => {
                tracing::info!(job = job_id, tx = %revealed.tx, ?outcome, "revealed last: job settled");
                self.finish(record, outcome, winning).await;
            }
            None => {
                record.advance(JobPhase::Revealed);
                self.save(&record);
                tracing::info!(job = job_id, tx = %revealed.tx, "revealed");
            }
        }
        Ok(())
    }

    /// Our finalize's result: settle our record from the job's history either way (it may
    /// have been settled by someone else, or by a reply we lost).
    pub(super) async fn finalized(
        &mut self,
        mut record: JobRecord,
        sent: Result<TxHash, MarketError>,
    ) -> Result<(), MarketError> {
        match sent {
            Ok(tx) => {
                self.metrics.transaction("finalize");
                record.txs.push(tx);
                self.save(&record);
                tracing::info!(job = record.job_id, %tx, "finalized");
            }
            // Settled meanwhile, by someone else or a reply we lost.
            Err(MarketError::AlreadySettled(_) | MarketError::TxDropped { .. }) => {}
            Err(e)
                if matches!(
                    e.revert(),
                    Some(stp_sdk::bindings::JobEscrow::JobEscrowErrors::EscrowJobNotFound(_))
                ) => {}
            Err(e) => return Err(e),
        }
        self.settle_from_history(record).await?;
        Ok(())
    }

    pub(super) async fn withdraw(&self) {
        match self.market.balance_of(self.account()).await {
            Ok(balance) if balance > U256::ZERO => match self.market.withdraw().await {
                Ok(tx) => {
                    self.metrics.transaction("withdraw");
                    tracing::info!(%tx, %balance, "earnings withdrawn");
                }
                Err(e) => tracing::warn!(error = %e, "auto-withdraw failed"),
            },
            _ => {}
        }
    }
}

impl Driver {
    /// A job's live counters from the chain index when it holds the job (no request; at
    /// most `confirmations` blocks behind, which only delays a step, never hastens one),
    /// else from the escrow.
    async fn live_counters(
        &self,
        job_id: u64,
    ) -> Result<Option<stp_sdk::market::JobCounters>, MarketError> {
        match self.store.indexed_history(job_id) {
            Ok(h) if h.spec.is_some() => Ok(h.counters()),
            _ => self.market.job_counters(job_id).await,
        }
    }
}

/// How long to wait before adding a won job's output to the blob store again.
pub(super) const SERVE_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// How long to wait before fetching a job's input again after its `failures`-th failure:
/// 2 s, then doubling (a peer that is restarting gets time; a dead one is not asked on
/// every poll).
pub(super) fn fetch_retry_delay(failures: u32) -> std::time::Duration {
    std::time::Duration::from_secs(2u64 << failures.saturating_sub(1).min(5))
}

/// When `draw` will admit us, if that is still in time to send the commit before the job's
/// commit deadline.
fn eligible_in_time(draw: &Draw, spec: &JobSpec) -> Option<u64> {
    let latest = spec
        .commit_deadline()
        .saturating_sub(scheduler::COMMIT_MARGIN_SECS);
    draw.eligible_from.filter(|at| *at < latest)
}

pub(super) fn secrets(record: &JobRecord) -> Result<(B256, B256), MarketError> {
    match (record.salt, record.result_hash) {
        (Some(salt), Some(result)) => Ok((salt, result)),
        _ => Err(MarketError::Unexpected(format!(
            "job {} has no stored secrets",
            record.job_id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::fetch_retry_delay;
    use std::time::Duration;

    #[test]
    fn input_fetches_back_off_doubling_from_two_seconds() {
        let delays: Vec<Duration> = (1..=4).map(fetch_retry_delay).collect();
        assert_eq!(
            delays,
            [2, 4, 8, 16].map(Duration::from_secs),
            "each retry waits twice as long"
        );
        assert_eq!(fetch_retry_delay(60), Duration::from_secs(64), "bounded");
    }
}
