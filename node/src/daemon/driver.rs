//! The daemon's loop: watch the chain, claim, hand work to executors, commit, reveal,
//! finalize. All transactions are sent from here, one at a time.

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolValue;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use stp_sdk::kernels::KernelId;
use stp_sdk::market::{
    EventKind, JobSpec, JobSpecExt, Market, MarketError, ReplicaPhase, announced_job_id,
};
use tokio::sync::mpsc;

use super::gossip;
use super::scheduler::{self, ProviderView};
use super::{DaemonConfig, Fault, Metrics, parse_input_location};
use crate::exec::Executor;
use crate::p2p::{P2pClient, P2pEvent, Verdict};
use crate::store::{JobPhase, JobRecord, JobStore};

/// Time kept in hand before the commit deadline for sending the commit itself.
const COMMIT_MARGIN_SECS: u64 = 3;
/// How often the stake and balance gauges are read from the chain.
const ACCOUNT_METRICS_EVERY: Duration = Duration::from_secs(10);
/// Longest wait between chain polls while the RPC keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What an execution task reports back.
pub(super) struct Computed {
    job_id: u64,
    result: Result<Vec<u8>, String>,
}

pub(super) struct Driver {
    config: DaemonConfig,
    market: Market,
    store: Arc<JobStore>,
    executor: Arc<Executor>,
    p2p: P2pClient,
    metrics: Metrics,
    results: mpsc::Sender<Computed>,
    /// Jobs whose input fetch or execution is running now.
    executing: HashSet<u64>,
    /// When the account gauges were last read from the chain.
    account_read: Option<tokio::time::Instant>,
}

impl Driver {
    pub(super) fn new(
        config: DaemonConfig,
        market: Market,
        store: Arc<JobStore>,
        executor: Arc<Executor>,
        p2p: P2pClient,
        metrics: Metrics,
        results: mpsc::Sender<Computed>,
    ) -> Self {
        Self {
            config,
            market,
            store,
            executor,
            p2p,
            metrics,
            results,
            executing: HashSet::new(),
            account_read: None,
        }
    }

    /// Reconciles stored jobs with the chain after a (re)start.
    pub(super) async fn recover(&mut self) {
        let active = match self.store.active_jobs() {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the job store");
                return;
            }
        };
        for mut record in active {
            match self.sync_with_chain(&mut record).await {
                Ok(_) => tracing::info!(job = record.job_id, phase = ?record.phase, "resuming job"),
                Err(e) => {
                    tracing::warn!(job = record.job_id, error = %e, "cannot check job on start");
                }
            }
        }
    }

    /// Moves `record` to where the chain says our replica stands (a transaction may have
    /// been mined while we crashed or while its reply was lost). Returns whether it moved.
    async fn sync_with_chain(&self, record: &mut JobRecord) -> Result<bool, MarketError> {
        let status = self
            .market
            .replica_status(record.job_id, self.account())
            .await?;
        let phase = match (record.phase, status) {
            // (Claiming, None): the claim never landed; `drive` sends it again.
            (JobPhase::Claiming, ReplicaPhase::None) => JobPhase::Claiming,
            (JobPhase::Claiming, _) => JobPhase::Claimed,
            (JobPhase::Computed, ReplicaPhase::Committed) => JobPhase::Committed,
            (JobPhase::Computed | JobPhase::Committed, ReplicaPhase::Revealed) => {
                JobPhase::Revealed
            }
            // Our lane was freed: the job was settled, e.g. by our own last reveal whose
            // reply was lost (the last reveal settles the job in the same transaction).
            (JobPhase::Committed | JobPhase::Revealed, ReplicaPhase::None)
                if self.market.job_counters(record.job_id).await?.is_none() =>
            {
                record.note = Some("settled".into());
                JobPhase::Settled
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

    /// Runs until a fatal error. Transient failures (RPC down, a revert) are logged and
    /// retried, polling less often (up to [`MAX_BACKOFF`]) while the RPC keeps failing.
    pub(super) async fn run(
        &mut self,
        results: &mut mpsc::Receiver<Computed>,
        p2p_events: &mut mpsc::Receiver<P2pEvent>,
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
                            self.refresh_account_metrics().await;
                        }
                        Err(e) => {
                            self.metrics.poll_failed();
                            let retry_in = backoff.failed();
                            tracing::warn!(error = %e, ?retry_in, "chain poll failed; retrying");
                        }
                    }
                }
                Some(done) = results.recv() => self.on_computed(done).await,
                Some(event) = p2p_events.recv() => self.on_p2p_event(event).await,
            }
        }
    }

    /// Acts on a job announcement the p2p layer accepted, after reading the job's spec
    /// from the chain once more (the announcement itself is never trusted).
    async fn on_p2p_event(&mut self, event: P2pEvent) {
        match event {
            P2pEvent::Announcement { from, ann, .. } => {
                let Some(job_id) = announced_job_id(&ann) else {
                    return;
                };
                if matches!(self.store.get(job_id), Ok(Some(_))) {
                    return;
                }
                if self.config.confirmations > 0 {
                    // The chain watcher picks it up once it has its confirmations.
                    return;
                }
                if let (Verdict::Accept, Some((job_id, spec))) =
                    gossip::verify(&self.market, &ann).await
                {
                    tracing::info!(job = job_id, %from, "job announced over gossip, checked on-chain");
                    self.consider(job_id, spec).await;
                }
            }
            P2pEvent::PeerPenalized { peer, offence } => {
                tracing::debug!(%peer, ?offence, "peer penalised");
            }
            P2pEvent::PeerBlocked(peer) => tracing::info!(%peer, "peer blocked for misbehaviour"),
        }
    }

    /// On shutdown: sends the commits, reveals and finalizations that are due now, so a
    /// stop costs no stake. Jobs not started yet are left for the next start.
    pub(super) async fn wind_down(&mut self) {
        if let Err(e) = self.poll_chain().await {
            tracing::warn!(error = %e, "cannot reach the chain while shutting down");
            return;
        }
        self.drive_all(true).await;
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

    fn save(&self, record: &JobRecord) {
        if let Err(e) = self.store.put(record) {
            // Without the store the crash-safety guarantee is gone: stop loudly.
            tracing::error!(job = record.job_id, error = %e, "cannot persist job state");
            std::process::exit(70);
        }
    }

    /// Reads confirmed events since the last processed block and acts on new jobs.
    async fn poll_chain(&mut self) -> Result<(), MarketError> {
        let head = self.market.block_number().await?;
        let to = head.saturating_sub(self.config.confirmations);
        let from = match self.store.last_processed_block() {
            Ok(Some(b)) => b + 1,
            _ => self.market.deployment().deploy_block,
        };
        if from > to {
            return Ok(());
        }
        for event in self.market.events(from, to).await? {
            match event.kind {
                EventKind::JobPosted { job_id, spec } => self.consider(job_id, spec).await,
                EventKind::Finalized {
                    job_id, outcome, ..
                } => {
                    self.settle(job_id, &format!("finalized: {outcome:?}"));
                }
                EventKind::Cancelled { job_id } => self.settle(job_id, "cancelled"),
                _ => {}
            }
        }
        if let Err(e) = self.store.set_last_processed_block(to) {
            tracing::error!(error = %e, "cannot persist the chain cursor");
        }
        Ok(())
    }

    fn settle(&self, job_id: u64, note: &str) {
        if let Ok(Some(mut record)) = self.store.get(job_id)
            && record.phase.is_active()
        {
            record.note = Some(note.to_string());
            record.advance(JobPhase::Settled);
            self.save(&record);
            tracing::info!(job = job_id, note, "job settled");
        }
    }

    async fn consider(&mut self, job_id: u64, spec: JobSpec) {
        if matches!(self.store.get(job_id), Ok(Some(_))) {
            return;
        }
        let view = match self.provider_view().await {
            Ok(v) => v,
            Err(e) => return tracing::warn!(job = job_id, error = %e, "cannot evaluate job"),
        };
        if let Err(skip) = scheduler::consider(&spec, &view) {
            return tracing::info!(job = job_id, reason = ?skip, "skipping job");
        }
        let mut record = JobRecord::claiming(job_id, spec.abi_encode().into());
        self.save(&record);
        self.claim(&mut record, &spec).await;
    }

    /// Sends (or re-sends) the claim. A transport failure leaves the job in `Claiming`, to
    /// be tried again next tick: the claim may have been mined with its reply lost.
    async fn claim(&self, record: &mut JobRecord, spec: &JobSpec) {
        let job_id = record.job_id;
        match self.market.claim(job_id, spec).await {
            Ok(tx) => {
                self.metrics.transaction("claim");
                record.txs.push(tx);
                record.advance(JobPhase::Claimed);
                tracing::info!(job = job_id, %tx, "claimed");
            }
            Err(e) if e.is_rejection() => {
                let ours = self.market.replica_status(job_id, self.account()).await;
                if matches!(ours, Ok(s) if s != ReplicaPhase::None) {
                    tracing::info!(job = job_id, "our earlier claim had landed");
                    record.advance(JobPhase::Claimed);
                } else {
                    tracing::info!(job = job_id, error = %e, "claim failed");
                    record.note = Some(e.to_string());
                    record.advance(JobPhase::Abandoned);
                }
            }
            Err(e) => {
                tracing::warn!(job = job_id, error = %e, "claim not confirmed; retrying");
                record.note = Some(e.to_string());
            }
        }
        self.save(record);
    }

    async fn provider_view(&self) -> Result<ProviderView, MarketError> {
        let account = self.account();
        let in_flight = self
            .store
            .active_jobs()
            .map(|jobs| jobs.iter().filter(|r| r.phase <= JobPhase::Claimed).count())
            .unwrap_or(0);
        Ok(ProviderView {
            stake: self.market.stake_of(account).await?,
            reputation: self.market.reputation_of(account).await?,
            min_stake: self.market.min_stake().await?,
            price_floor: self.config.price_floor,
            in_flight,
            max_concurrent: self.config.max_concurrent,
            now: self.market.now().await?,
            max_input_bytes: self.executor.config().limits.max_input_bytes,
            max_output_bytes: self.executor.config().limits.max_output_bytes,
            schedule: self.config.schedule.clone(),
        })
    }

    /// Moves every active job one step if it can move; `finishing`: only send due
    /// transactions, start no new execution.
    async fn drive_all(&mut self, finishing: bool) {
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
            if finishing && record.phase <= JobPhase::Claimed {
                continue;
            }
            let mut stored = record.clone();
            match self.drive(record, now).await {
                Ok(()) => {}
                // A revert may mean the step already happened (its reply was lost).
                Err(e @ MarketError::Reverted { .. }) => {
                    match self.sync_with_chain(&mut stored).await {
                        Ok(true) => {}
                        _ => {
                            tracing::warn!(job = stored.job_id, error = %e, "job step reverted; retrying next tick")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(job = stored.job_id, error = %e, "job step failed; retrying next tick")
                }
            }
        }
    }

    async fn drive(&mut self, mut record: JobRecord, now: u64) -> Result<(), MarketError> {
        let spec = decode_spec(&record)?;
        let job_id = record.job_id;
        match record.phase {
            JobPhase::Claiming => self.claim(&mut record, &spec).await,
            JobPhase::Claimed if !self.executing.contains(&job_id) => {
                if now > spec.commit_deadline() {
                    return self.give_up(record, "commit deadline passed before the result");
                }
                self.start_execution(job_id, spec, now);
            }
            JobPhase::Computed => self.commit(&mut record, &spec).await?,
            JobPhase::Committed => {
                if self.config.fault == Some(Fault::NoReveal) {
                    return Ok(());
                }
                let all_committed = self.all_committed(job_id, &spec).await?;
                let open = all_committed || now > spec.commit_deadline();
                if open && now <= spec.reveal_deadline() {
                    let (salt, result) = secrets(&record)?;
                    let revealed = self.market.reveal(job_id, &spec, result, salt).await?;
                    let tx = revealed.tx;
                    self.metrics.transaction("reveal");
                    record.txs.push(tx);
                    match revealed.settled {
                        // The last reveal settles the job in the same transaction.
                        Some((outcome, _)) => {
                            record.note = Some(format!("settled by our reveal: {outcome:?}"));
                            record.advance(JobPhase::Settled);
                            self.save(&record);
                            tracing::info!(job = job_id, %tx, ?outcome, "revealed last: job settled");
                            if self.config.auto_withdraw {
                                self.withdraw().await;
                            }
                        }
                        None => {
                            record.advance(JobPhase::Revealed);
                            self.save(&record);
                            tracing::info!(job = job_id, %tx, "revealed");
                        }
                    }
                }
            }
            JobPhase::Revealed => self.try_finalize(record, &spec, now).await?,
            _ => {}
        }
        Ok(())
    }

    fn give_up(&self, mut record: JobRecord, why: &str) -> Result<(), MarketError> {
        tracing::warn!(job = record.job_id, why, "abandoning job");
        record.note = Some(why.to_string());
        record.advance(JobPhase::Abandoned);
        self.save(&record);
        Ok(())
    }

    /// Whether every replica of a live job committed (one `eth_call`, no log scan: this
    /// runs every tick for every committed job).
    async fn all_committed(&self, job_id: u64, spec: &JobSpec) -> Result<bool, MarketError> {
        let counters = self.market.job_counters(job_id).await?;
        Ok(counters.is_some_and(|c| c.committed >= spec.replicas))
    }

    async fn try_finalize(
        &self,
        mut record: JobRecord,
        spec: &JobSpec,
        now: u64,
    ) -> Result<(), MarketError> {
        let Some(counters) = self.market.job_counters(record.job_id).await? else {
            // The escrow deletes settled jobs: the last reveal or a finalize settled it.
            self.settle(record.job_id, "finalized");
            return Ok(());
        };
        // One `eth_call` per tick, no log scan until finalize is allowed: a filled job whose
        // replicas all revealed was settled by the last reveal, so a live filled job waits
        // for the reveal deadline (a replica is missing); an unfilled one for the claim
        // deadline.
        let filled = counters.claimed >= spec.replicas;
        let deadline = if filled {
            spec.reveal_deadline()
        } else {
            spec.claim_deadline()
        };
        if now <= deadline {
            return Ok(());
        }
        match self.market.finalize(record.job_id).await {
            Ok(tx) => {
                self.metrics.transaction("finalize");
                record.txs.push(tx);
                record.note = Some("finalized by us".into());
                record.advance(JobPhase::Settled);
                self.save(&record);
                tracing::info!(job = record.job_id, %tx, "finalized");
                if self.config.auto_withdraw {
                    self.withdraw().await;
                }
            }
            Err(e) if e.revert_name() == Some("EscrowJobNotFound") => {
                self.settle(record.job_id, "finalized by someone else");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }

    async fn withdraw(&self) {
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

    async fn commit(&mut self, record: &mut JobRecord, spec: &JobSpec) -> Result<(), MarketError> {
        let (salt, result) = secrets(record)?;
        match self.market.commit(record.job_id, spec, result, salt).await {
            Ok(tx) => {
                self.metrics.transaction("commit");
                record.txs.push(tx);
                record.advance(JobPhase::Committed);
                self.save(record);
                tracing::info!(job = record.job_id, %tx, result = %result, "committed");
                if self.config.fault == Some(Fault::CrashAfterCommit) {
                    tracing::warn!("fault injection: exiting right after the commit");
                    std::process::exit(137);
                }
                Ok(())
            }
            Err(e) if e.revert_name() == Some("EscrowCommitClosed") => {
                self.give_up(record.clone(), "commit deadline passed")
            }
            Err(e) if e.revert_name() == Some("EscrowJobUnfilled") => {
                // Too few claims: nothing to reveal; finalizing releases our collateral.
                record.note = Some("job unfilled".into());
                record.advance(JobPhase::Revealed);
                self.save(record);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Fetches the input and runs the kernel in a task; the result comes back on `results`.
    fn start_execution(&mut self, job_id: u64, spec: JobSpec, now: u64) {
        self.executing.insert(job_id);
        let budget = spec
            .commit_deadline()
            .saturating_sub(now + COMMIT_MARGIN_SECS);
        let deadline = Duration::from_secs(budget.max(1));
        let (p2p, executor, results) = (
            self.p2p.clone(),
            self.executor.clone(),
            self.results.clone(),
        );
        let fault = self.config.fault;
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let result = fetch_and_run(&p2p, &executor, &metrics, &spec, deadline)
                .await
                .map(|mut out| {
                    if fault == Some(Fault::WrongResult) {
                        corrupt(&mut out);
                    }
                    out
                });
            let _ = results.send(Computed { job_id, result }).await;
        });
    }

    async fn on_computed(&mut self, done: Computed) {
        self.executing.remove(&done.job_id);
        let Ok(Some(mut record)) = self.store.get(done.job_id) else {
            return;
        };
        let output = match done.result {
            Ok(output) => output,
            Err(e) => {
                tracing::warn!(job = done.job_id, error = %e, "execution failed");
                record.note = Some(e);
                self.save(&record);
                return;
            }
        };
        // Serve the output before committing to it, so the consumer can fetch it.
        if let Err(e) = self.p2p.add_blob(output.clone()).await {
            tracing::warn!(job = done.job_id, error = %e, "cannot store the output blob");
        }
        let result = B256::from(<[u8; 32]>::from(Sha256::digest(&output)));
        record.salt = Some(B256::from(rand::random::<[u8; 32]>()));
        record.result_hash = Some(result);
        record.advance(JobPhase::Computed);
        // Durable before the commit transaction exists: a crash now loses nothing.
        self.save(&record);
        tracing::info!(job = done.job_id, result = %result, bytes = output.len(), "computed");
        if let Ok(spec) = decode_spec(&record)
            && let Err(e) = self.commit(&mut record, &spec).await
        {
            tracing::warn!(job = done.job_id, error = %e, "commit failed; retrying next tick");
        }
    }
}

async fn fetch_and_run(
    p2p: &P2pClient,
    executor: &Executor,
    metrics: &Metrics,
    spec: &JobSpec,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    let sources = parse_input_location(&spec.inputLocation);
    if sources.is_empty() {
        return Err("the job's inputLocation names no reachable peer".into());
    }
    let mut peers = Vec::new();
    for (peer, addr) in sources {
        if let Err(e) = p2p.dial(addr.clone()).await {
            tracing::debug!(%addr, error = %e, "dial failed");
        }
        peers.push(peer);
    }
    let report = p2p
        .fetch_blob(spec.inputHash.0, peers)
        .await
        .map_err(|e| e.to_string())?;
    let input = tokio::fs::read(&report.path)
        .await
        .map_err(|e| e.to_string())?;
    if u64::try_from(input.len()).ok() != Some(spec.inputSize) {
        return Err(format!(
            "input is {} bytes, the spec says {}",
            input.len(),
            spec.inputSize
        ));
    }
    let started = std::time::Instant::now();
    let output = executor
        .run(&KernelId(spec.kernelId.0), &input, deadline)
        .await;
    metrics.executed(started.elapsed().as_secs_f64(), output.is_ok());
    let output = output.map_err(|e| e.to_string())?;
    if output.len() as u64 > spec.maxOutputSize {
        return Err(format!(
            "output {} bytes exceeds the job's bound",
            output.len()
        ));
    }
    Ok(output)
}

/// An amount in asset units (18 decimals) for a gauge; precision beyond f64 is not needed.
fn units(amount: U256) -> f64 {
    alloy::primitives::utils::format_units(amount, 18)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(f64::NAN)
}

fn corrupt(output: &mut Vec<u8>) {
    match output.first_mut() {
        Some(b) => *b ^= 0xff,
        None => output.push(0),
    }
}

fn decode_spec(record: &JobRecord) -> Result<JobSpec, MarketError> {
    JobSpec::abi_decode(&record.spec)
        .map_err(|e| MarketError::Unexpected(format!("stored spec of job {}: {e}", record.job_id)))
}

fn secrets(record: &JobRecord) -> Result<(B256, B256), MarketError> {
    match (record.salt, record.result_hash) {
        (Some(salt), Some(result)) => Ok((salt, result)),
        _ => Err(MarketError::Unexpected(format!(
            "job {} has no stored secrets",
            record.job_id
        ))),
    }
}

/// Exponential backoff of chain polls while the RPC fails: doubles from the poll interval
/// up to [`MAX_BACKOFF`], back to every tick after one success.
struct Backoff {
    base: Duration,
    wait: Duration,
    next: Option<tokio::time::Instant>,
}

impl Backoff {
    fn new(base: Duration) -> Self {
        Self {
            base,
            wait: base,
            next: None,
        }
    }

    /// Whether a poll should be tried now.
    fn due(&self) -> bool {
        self.next.is_none_or(|t| tokio::time::Instant::now() >= t)
    }

    /// Records a failure; returns how long until the next try.
    fn failed(&mut self) -> Duration {
        let wait = self.wait;
        self.next = Some(tokio::time::Instant::now() + wait);
        self.wait = (self.wait * 2).min(MAX_BACKOFF);
        wait
    }

    /// Records a success; returns whether it ends a run of failures.
    fn succeeded(&mut self) -> bool {
        self.wait = self.base;
        self.next.take().is_some()
    }
}
