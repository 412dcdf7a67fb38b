//! The daemon's loop: watch the chain, take the jobs the draw picks this node for, hand
//! work to executors, commit (which takes the slot), reveal, finalize. Each transaction is
//! sent from a task of its own (`send`), many in flight at once; the market's transaction
//! manager owns the nonce.
//!
//! Protocol v2 order: a job the scheduler accepts is fetched and run first; only with the
//! result held durably (result blob, hash, salt and lane in the store) is the commit sent.
//! A job whose input cannot be fetched or whose kernel fails is abandoned before anything
//! is at stake. What to do with a committed job comes from `stp_sdk::market::lifecycle`.

mod advertise;
mod execute;
mod faults;
mod send;
mod steps;

pub(super) use execute::Failure;
pub(super) use send::StepDone;

use alloy::primitives::U256;
use alloy::sol_types::SolValue;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use stp_sdk::bindings::JobEscrow::JobEscrowErrors;
use stp_sdk::market::{
    EventKind, JobKind, JobRef, JobSpec, JobSpecExt, Market, MarketError, announced_job_id,
};
use tokio::sync::mpsc;

use super::backoff::Backoff;
use super::gossip::ChainCheck;
use super::results::HeldResults;
use super::scheduler::{self, ProviderView};
use super::{DaemonConfig, Metrics};
use crate::daemon::parts::PartCache;
use crate::daemon::prefer::{self, PartHints};
use crate::exec::Executor;
use crate::p2p::{P2pClient, P2pEvent};
use crate::store::{JobPhase, JobRecord, JobStore, sync_index};

/// How often the stake and balance gauges are read from the chain.
const ACCOUNT_METRICS_EVERY: Duration = Duration::from_secs(10);
/// How often the block time estimate is refreshed.
const BLOCK_TIME_EVERY: Duration = Duration::from_secs(60);
/// Input fetches tried per job before it is abandoned (nothing is at stake yet).
const MAX_FETCH_ATTEMPTS: u32 = 3;
/// Jobs passed over at capacity, kept to be considered again when a slot frees.
const MAX_DEFERRED: usize = 256;
/// How long the account's stake and reputation, read for the scheduler, are reused.
const ACCOUNT_VIEW_FRESH: Duration = Duration::from_secs(2);

/// Stake, reputation, the market's minimum stake and the chain time, as last read.
type AccountView = (
    stp_sdk::market::StakeInfo,
    stp_sdk::market::Reputation,
    U256,
    u64,
);

/// What an execution task reports back.
pub(super) struct Computed {
    job_id: u64,
    result: Result<Vec<u8>, execute::Failure>,
}

pub(super) struct Driver {
    config: DaemonConfig,
    market: Market,
    store: Arc<JobStore>,
    executor: Arc<Executor>,
    p2p: P2pClient,
    metrics: Metrics,
    results: mpsc::Sender<Computed>,
    steps: mpsc::Sender<StepDone>,
    held: HeldResults,
    /// Shared input parts held for chunks and jobs to come.
    parts: PartCache,
    /// The part hints of announced jobs, to take first those whose parts we hold.
    hints: PartHints,
    /// The provider record as last published (`None`: never re-published).
    advertised: Option<advertise::Advertised>,
    /// Jobs whose input fetch or execution is running now.
    executing: HashSet<u64>,
    /// Jobs with a transaction in flight.
    in_flight: HashSet<u64>,
    /// Failed input fetches per job.
    fetch_failures: HashMap<u64, u32>,
    /// When a job whose input fetch (or, once won, output serving) failed may be tried
    /// again.
    retry_at: HashMap<u64, tokio::time::Instant>,
    /// Jobs passed over at capacity, oldest first, to be considered again.
    deferred: VecDeque<(u64, JobSpec, (u64, u64, JobKind))>,
    /// When the account gauges were last read from the chain.
    account_read: Option<tokio::time::Instant>,
    /// The chain's block time estimate (seconds) and when it was made.
    block_time: (u64, Option<tokio::time::Instant>),
    /// The scheduler's view of our account and when it was read; `None`: read it again.
    account_view: Option<(tokio::time::Instant, AccountView)>,
    /// A store write failed: [`Driver::run`] returns this once the current event is handled.
    fatal: Option<eyre::Report>,
    /// The market's challenge window (read once, when an optimistic job first needs it).
    challenge_window: Option<u64>,
    /// Optimistic jobs whose output we serve already (before settlement: the consumer
    /// checks it within the challenge window).
    published: HashSet<u64>,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        config: DaemonConfig,
        market: Market,
        store: Arc<JobStore>,
        executor: Arc<Executor>,
        p2p: P2pClient,
        metrics: Metrics,
        results: mpsc::Sender<Computed>,
        steps: mpsc::Sender<StepDone>,
        held: HeldResults,
    ) -> Self {
        let parts = PartCache::new(
            config.part_cache_bytes,
            crate::exec::ExecLimits::default().max_input_bytes,
        );
        Self {
            config,
            market,
            store,
            executor,
            p2p,
            metrics,
            results,
            steps,
            held,
            parts,
            hints: PartHints::default(),
            advertised: None,
            executing: HashSet::new(),
            in_flight: HashSet::new(),
            challenge_window: None,
            published: HashSet::new(),
            fetch_failures: HashMap::new(),
            retry_at: HashMap::new(),
            deferred: VecDeque::new(),
            account_read: None,
            block_time: (1, None),
            account_view: None,
            fatal: None,
        }
    }

    /// Runs until a fatal error (the job store refused a write), which it returns for the
    /// caller to wind down and report. Transient failures (RPC down, a revert) are logged
    /// and retried, polling less often (up to `backoff::MAX_BACKOFF`) while the RPC fails.
    pub(super) async fn run(
        &mut self,
        results: &mut mpsc::Receiver<Computed>,
        steps: &mut mpsc::Receiver<StepDone>,
        p2p_events: &mut mpsc::Receiver<P2pEvent>,
        gossip: &ChainCheck,
    ) -> eyre::Result<()> {
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = Backoff::new(self.config.poll_interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if !backoff.due() {
                        continue;
                    }
                    match self.poll_chain().await {
                        Ok(()) => {
                            if backoff.succeeded() {
                                tracing::info!("chain reachable again");
                            }
                            self.drive_all(false).await;
                            self.advertise_parts().await;
                            self.refresh_account_metrics().await;
                            self.metrics.set_rpc_requests(self.market.rpc_requests());
                        }
                        Err(e) => {
                            self.metrics.poll_failed();
                            let retry_in = backoff.failed();
                            tracing::warn!(error = %e, ?retry_in, "chain poll failed; retrying");
                        }
                    }
                }
                Some(done) = results.recv() => self.on_computed(done).await,
                Some(done) = steps.recv() => self.on_step_done(done).await,
                Some(event) = p2p_events.recv() => self.on_p2p_event(event, gossip).await,
            }
            if let Some(fatal) = self.fatal.take() {
                return Err(fatal);
            }
        }
    }

    /// Acts on a job announcement the p2p layer accepted, with the spec `gossip` (the check
    /// that accepted it) read from the chain: the announcement itself is never trusted.
    async fn on_p2p_event(&mut self, event: P2pEvent, gossip: &ChainCheck) {
        match event {
            P2pEvent::Announcement { from, ann, .. } => {
                let Some(job_id) = announced_job_id(&ann) else {
                    return;
                };
                // Only an order hint, kept even when the job is taken from the chain.
                self.record_hints(job_id, ann.part_hints);
                if matches!(self.store.get(job_id), Ok(Some(_))) {
                    return;
                }
                if self.config.confirmations > 0 {
                    // The chain watcher picks it up once it has its confirmations.
                    return;
                }
                // Not held (evicted): the chain watcher finds the job anyway.
                if let Some((spec, posted)) = gossip.take_verified(job_id) {
                    tracing::info!(job = job_id, %from, "job announced over gossip, checked on-chain");
                    self.consider(job_id, spec, posted).await;
                }
            }
            P2pEvent::PeerPenalized { peer, offence } => {
                tracing::debug!(%peer, ?offence, "peer penalised");
            }
            P2pEvent::PeerBlocked(peer) => tracing::info!(%peer, "peer blocked for misbehaviour"),
        }
    }

    /// On shutdown: sends the commits, reveals and finalizations that are due now and
    /// waits for them (and those already in flight), so a stop costs no stake. Jobs not
    /// computed yet are left for the next start.
    pub(super) async fn wind_down(&mut self, steps: &mut mpsc::Receiver<StepDone>) {
        self.drain_steps(steps).await;
        if let Err(e) = self.poll_chain().await {
            tracing::warn!(error = %e, "cannot reach the chain while shutting down");
            return;
        }
        self.drive_all(true).await;
        self.drain_steps(steps).await;
    }

    /// A job's transaction came back: carry the job on from its stored record.
    async fn on_step_done(&mut self, done: StepDone) {
        self.in_flight.remove(&done.job_id);
        // Our locked stake (and after a settlement, reputation) may have changed.
        self.account_view = None;
        // Crash points right after a mined transaction, before anything is recorded (the
        // chain watcher may already have seen the job settle by it).
        #[cfg(feature = "fault-injection")]
        match &done.sent {
            send::Sent::Commit(Ok(_)) => self.crash_point(super::Fault::CrashAfterCommitMined),
            send::Sent::Reveal(Ok(_)) => self.crash_point(super::Fault::CrashAfterRevealMined),
            // It commits and reveals: both points are right after it.
            send::Sent::CommitResult(Ok(_)) => {
                self.crash_point(super::Fault::CrashAfterCommitMined);
                self.crash_point(super::Fault::CrashAfterRevealMined);
            }
            _ => {}
        }
        let job_id = done.job_id;
        let Ok(Some(mut record)) = self.store.get(job_id) else {
            return;
        };
        if !record.phase.is_active() {
            // A one-replica job's commitResult settles it, and the chain watcher may have
            // recorded that settlement before this reply came back.
            #[cfg(feature = "fault-injection")]
            if matches!(done.sent, send::Sent::CommitResult(Ok(_))) {
                self.crash_point(super::Fault::CrashAfterCommit);
            }
            return;
        }
        let outcome = match done.sent {
            send::Sent::Commit(sent) => match decode_spec(&record) {
                Ok(spec) => self.committed(&mut record, &spec, sent).await,
                Err(e) => Err(e),
            },
            send::Sent::CommitResult(sent) => match decode_spec(&record) {
                Ok(spec) => self.committed_result(&mut record, &spec, sent).await,
                Err(e) => Err(e),
            },
            send::Sent::Reveal(sent) => self.revealed(record, sent).await,
            send::Sent::Finalize(sent) => self.finalized(record, sent).await,
        };
        if let Err(e) = outcome {
            tracing::warn!(job = job_id, error = %e, "job step failed; retrying next tick");
        }
    }

    /// Reads stake and credited balance into the metrics, at most every
    /// [`ACCOUNT_METRICS_EVERY`].
    async fn refresh_account_metrics(&mut self) {
        if self
            .account_read
            .is_some_and(|t| t.elapsed() < ACCOUNT_METRICS_EVERY)
        {
            return;
        }
        self.account_read = Some(tokio::time::Instant::now());
        let account = self.account();
        self.metrics.set_served_bytes(self.p2p.served_bytes());
        if let (Ok(stake), Ok(credited)) = (
            self.market.stake_of(account).await,
            self.market.balance_of(account).await,
        ) {
            self.metrics
                .set_account(units(stake.staked), units(stake.locked), units(credited));
        }
    }

    fn account(&self) -> alloy::primitives::Address {
        self.market.account()
    }

    /// Writes `record` to the store. A failed write is fatal: without the store the
    /// crash-safety guarantee is gone, so the error is kept for [`Driver::run`] to return
    /// once the current event is handled (see [`Driver::stopping`]).
    fn save(&mut self, record: &JobRecord) {
        if let Err(e) = self.write(record) {
            tracing::error!(job = record.job_id, error = %e, "cannot persist job state; stopping");
            let fatal = eyre::Report::new(e)
                .wrap_err(format!("cannot persist the state of job {}", record.job_id));
            self.fatal.get_or_insert(fatal);
        }
    }

    /// Whether a store write failed: nothing the failed write was meant to make durable
    /// may be acted on (a commit must never go out with its salt unsaved).
    fn stopping(&self) -> bool {
        self.fatal.is_some()
    }

    /// Ingests confirmed events into the store's chain index (after undoing any blocks a
    /// reorg replaced) and acts on new jobs and settlements. A constant number of requests
    /// per poll, however long the chain's history. The jobs posted since the last poll
    /// compete for our slots: they are considered after the other events, those whose
    /// parts we hold first.
    async fn poll_chain(&mut self) -> Result<(), MarketError> {
        let update = sync_index(&self.store, &self.market, self.config.confirmations).await?;
        if let Some((from, back_to)) = update.rolled_back {
            tracing::warn!(from, back_to, jobs = ?update.undone, "chain reorganised; index rolled back");
            self.metrics.reorg();
        }
        for job_id in update.undone {
            if let Ok(Some(mut record)) = self.store.get(job_id)
                && record.phase.is_active()
            {
                self.sync_with_chain(&mut record).await?;
            }
        }
        let mut posted = Vec::new();
        for event in update.events {
            match event.kind {
                EventKind::JobPosted {
                    job_id,
                    spec,
                    posted_at,
                    post_block,
                    kind,
                } => posted.push((job_id, spec, (posted_at, post_block, kind))),
                EventKind::Finalized {
                    job_id,
                    outcome,
                    result_hash,
                    ..
                } => self.settled_on_chain(job_id, outcome, result_hash).await,
                _ => {}
            }
        }
        prefer::order(&mut posted, |(id, ..)| self.parts_held(*id));
        for (job_id, spec, posted) in posted {
            self.consider(job_id, spec, posted).await;
        }
        Ok(())
    }

    /// A job seen on-chain (or announced and checked there), posted at `posted` = (block
    /// timestamp, block number).
    async fn consider(&mut self, job_id: u64, spec: JobSpec, posted: (u64, u64, JobKind)) {
        if matches!(self.store.get(job_id), Ok(Some(_))) {
            return;
        }
        let view = match self.provider_view().await {
            Ok(v) => v,
            Err(e) => return tracing::warn!(job = job_id, error = %e, "cannot evaluate job"),
        };
        if let Err(skip) = scheduler::consider(&spec, &view) {
            if skip == scheduler::Skip::AtCapacity {
                // Busy now, not unwilling: look again when a job of ours moves on.
                if !self.deferred.iter().any(|(id, ..)| *id == job_id) {
                    if self.deferred.len() >= MAX_DEFERRED {
                        self.deferred.pop_front();
                    }
                    self.deferred.push_back((job_id, spec, posted));
                }
                return tracing::debug!(job = job_id, "at capacity; job deferred");
            }
            self.metrics.refused(skip.label());
            return tracing::info!(job = job_id, reason = ?skip, "skipping job");
        }
        let job = JobRef {
            id: job_id,
            spec: &spec,
            posted_at: posted.0,
            post_block: posted.1,
            kind: posted.2,
        };
        let draw = match self.market.draw_of(&job, self.account()).await {
            Ok(d) => d,
            // Settled before this node got to it (a node catching up on a busy chain).
            Err(e) if matches!(e.revert(), Some(JobEscrowErrors::EscrowJobNotFound(_))) => {
                return tracing::debug!(job = job_id, "job settled before it was considered");
            }
            Err(e) => return tracing::warn!(job = job_id, error = %e, "cannot read the job's draw"),
        };
        let greedy = self.greedy();
        let latest_start = spec
            .commit_deadline()
            .saturating_sub(scheduler::commit_window_needed(
                spec.inputSize,
                view.block_time,
            ));
        let eligible_from = match draw.eligible_from {
            _ if draw.eligible || greedy => None,
            Some(at) if at <= latest_start => Some(at),
            _ => {
                self.metrics.refused("not_drawn");
                return tracing::info!(job = job_id, "not drawn for this job in time; skipping");
            }
        };
        let mut record =
            JobRecord::accepted(job_id, spec.abi_encode().into(), posted, eligible_from);
        if posted.2 == JobKind::Escalation {
            // Its replicas hash their output under the challenged job's identity.
            match self.market.escalation_of(job_id).await {
                Ok(Some(e)) => record.identity = Some(e.job_id),
                Ok(None) => return tracing::debug!(job = job_id, "escalation settled already"),
                Err(e) => {
                    return tracing::warn!(job = job_id, error = %e, "cannot read the escalation");
                }
            }
        }
        self.save(&record);
        match eligible_from {
            Some(at) => tracing::info!(
                job = job_id,
                eligible_from = at,
                "accepted; waiting for the draw"
            ),
            None => {
                tracing::info!(
                    job = job_id,
                    drawn = draw.drawn,
                    "accepted; fetching the input"
                );
                self.start_execution(job_id, spec, view.now);
            }
        }
    }

    async fn provider_view(&mut self) -> Result<ProviderView, MarketError> {
        let (stake, reputation, min_stake, now) = self.account_view().await?;
        Ok(ProviderView {
            stake,
            reputation,
            min_stake,
            price_floor: self.config.price_floor,
            in_flight: self.busy(),
            max_concurrent: self.config.max_concurrent,
            now,
            max_input_bytes: self.executor.config().limits.max_input_bytes,
            max_output_bytes: self.executor.config().limits.max_output_bytes,
            schedule: self.config.schedule.clone(),
            collateral: self.config.collateral,
            block_time: self.block_time().await,
        })
    }

    /// Our stake, reputation, the market's minimum stake and the chain time, read at most
    /// every [`ACCOUNT_VIEW_FRESH`] (a burst of posted jobs costs four requests, not four
    /// per job) and again after any of our commits or settlements changed them. A view
    /// that is a little stale can only accept a job whose commit the escrow then refuses,
    /// with nothing at stake.
    async fn account_view(&mut self) -> Result<AccountView, MarketError> {
        if let Some((at, view)) = &self.account_view
            && at.elapsed() < ACCOUNT_VIEW_FRESH
        {
            let mut view = *view;
            view.3 += at.elapsed().as_secs();
            return Ok(view);
        }
        let account = self.account();
        let view = (
            self.market.stake_of(account).await?,
            self.market.reputation_of(account).await?,
            self.market.min_stake().await?,
            self.market.now().await?,
        );
        self.account_view = Some((tokio::time::Instant::now(), view));
        Ok(view)
    }

    /// Jobs using the GPU or waiting to commit (one waiting for the draw uses nothing).
    fn busy(&self) -> usize {
        self.store
            .active_jobs()
            .map(|jobs| {
                jobs.iter()
                    .filter(|r| matches!(r.phase, JobPhase::Fetching | JobPhase::Computed))
                    .count()
            })
            .unwrap_or(0)
    }

    /// Considers the jobs passed over at capacity again: those whose parts we hold
    /// first, then oldest first (each goes back to the queue if the node is still busy).
    async fn reconsider_deferred(&mut self) {
        if self.deferred.is_empty() || self.busy() >= self.config.max_concurrent {
            return;
        }
        let mut waiting: Vec<_> = self.deferred.drain(..).collect();
        prefer::order(&mut waiting, |(id, ..)| self.parts_held(*id));
        for (job_id, spec, posted) in waiting {
            self.consider(job_id, spec, posted).await;
        }
    }

    /// The chain's block time: the median gap of the last 16 blocks (robust to the idle
    /// gaps of a chain that mines on demand), 1..=15 s, refreshed every minute.
    async fn block_time(&mut self) -> u64 {
        if let (secs, Some(at)) = self.block_time
            && at.elapsed() < BLOCK_TIME_EVERY
        {
            return secs;
        }
        if let Ok(secs) = self.market.block_time_estimate(16).await {
            self.block_time = (secs.clamp(1, 15), Some(tokio::time::Instant::now()));
        }
        self.block_time.0
    }

    /// Moves every active job one step if it can move; `finishing`: only send due
    /// transactions, start no new execution.
    async fn drive_all(&mut self, finishing: bool) {
        if !finishing {
            self.reconsider_deferred().await;
        }
        let Ok(active) = self.store.active_jobs() else {
            return;
        };
        if active.is_empty() {
            return;
        }
        let now = match self.market.now().await {
            Ok(t) => t,
            Err(e) => return tracing::warn!(error = %e, "cannot read chain time"),
        };
        for record in active {
            if (finishing && record.phase < JobPhase::Computed)
                || self.in_flight.contains(&record.job_id)
            {
                continue;
            }
            let job_id = record.job_id;
            match self.drive(record, now).await {
                Ok(()) => {}
                // The chain said no: the step may already have happened (its reply lost).
                // Catch up from the stored record, which `drive` may have moved on.
                Err(e) if e.is_rejection() => {
                    let caught_up = match self.store.get(job_id) {
                        Ok(Some(mut stored)) => self.sync_with_chain(&mut stored).await,
                        _ => Ok(false),
                    };
                    if !matches!(caught_up, Ok(true)) {
                        tracing::warn!(job = job_id, error = %e, "job step rejected; retrying next tick");
                    }
                }
                Err(e) => {
                    tracing::warn!(job = job_id, error = %e, "job step failed; retrying next tick")
                }
            }
        }
    }

    async fn drive(&mut self, record: JobRecord, now: u64) -> Result<(), MarketError> {
        let spec = decode_spec(&record)?;
        let job_id = record.job_id;
        match record.phase {
            JobPhase::Waiting => self.wake(record, spec, now).await?,
            JobPhase::Fetching
                if !self.executing.contains(&job_id)
                    && self
                        .retry_at
                        .get(&job_id)
                        .is_none_or(|at| tokio::time::Instant::now() >= *at) =>
            {
                let latest = spec
                    .commit_deadline()
                    .saturating_sub(scheduler::COMMIT_MARGIN_SECS);
                if now >= latest {
                    return self.give_up(
                        record,
                        "no_time",
                        "commit deadline too close to run the job",
                    );
                }
                self.start_execution(job_id, spec, now);
            }
            JobPhase::Computed if record.eligible_from.is_none_or(|t| t <= now) => {
                self.commit(&record, &spec)?;
            }
            JobPhase::Committed | JobPhase::Revealed => {
                self.advance_slot(record, &spec, now).await?
            }
            JobPhase::Serving
                if self
                    .retry_at
                    .get(&job_id)
                    .is_none_or(|at| tokio::time::Instant::now() >= *at) =>
            {
                self.serve_output(record).await
            }
            _ => {}
        }
        Ok(())
    }
}

/// An amount in asset units (18 decimals) for a gauge; precision beyond f64 is not needed.
fn units(amount: U256) -> f64 {
    alloy::primitives::utils::format_units(amount, 18)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

/// The job a record is about, as the escrow's calls name it.
fn job_ref<'a>(record: &JobRecord, spec: &'a JobSpec) -> JobRef<'a> {
    JobRef {
        id: record.job_id,
        spec,
        posted_at: record.posted_at,
        post_block: record.post_block,
        kind: record.kind,
    }
}

fn decode_spec(record: &JobRecord) -> Result<JobSpec, MarketError> {
    JobSpec::abi_decode(&record.spec)
        .map_err(|e| MarketError::Unexpected(format!("stored spec of job {}: {e}", record.job_id)))
}
