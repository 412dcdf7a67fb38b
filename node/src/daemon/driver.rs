//! The daemon's loop: watch the chain, claim, hand work to executors, commit, reveal,
//! finalize. All transactions are sent from here, one at a time.

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolValue;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use stp_sdk::kernels::KernelId;
use stp_sdk::market::{EventKind, JobSpec, JobSpecExt, Market, MarketError, ReplicaPhase};
use tokio::sync::mpsc;

use super::scheduler::{self, ProviderView};
use super::{DaemonConfig, Fault, parse_input_location};
use crate::exec::Executor;
use crate::p2p::P2pClient;
use crate::store::{JobPhase, JobRecord, JobStore};

/// Time kept in hand before the commit deadline for sending the commit itself.
const COMMIT_MARGIN_SECS: u64 = 3;

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
    results: mpsc::Sender<Computed>,
    /// Jobs whose input fetch or execution is running now.
    executing: HashSet<u64>,
}

impl Driver {
    pub(super) fn new(
        config: DaemonConfig,
        market: Market,
        store: Arc<JobStore>,
        executor: Arc<Executor>,
        p2p: P2pClient,
        results: mpsc::Sender<Computed>,
    ) -> Self {
        Self {
            config,
            market,
            store,
            executor,
            p2p,
            results,
            executing: HashSet::new(),
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
            let status = match self
                .market
                .replica_status(record.job_id, self.account())
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(job = record.job_id, error = %e, "cannot check job on start");
                    continue;
                }
            };
            let phase = match (record.phase, status) {
                (JobPhase::Claiming, ReplicaPhase::None) => JobPhase::Abandoned,
                (JobPhase::Claiming, _) => JobPhase::Claimed,
                (JobPhase::Computed, ReplicaPhase::Committed) => JobPhase::Committed,
                (JobPhase::Computed | JobPhase::Committed, ReplicaPhase::Revealed) => {
                    JobPhase::Revealed
                }
                (phase, _) => phase,
            };
            tracing::info!(job = record.job_id, from = ?record.phase, to = ?phase, "resuming job");
            if phase != record.phase {
                record.advance(phase);
                self.save(&record);
            }
        }
    }

    /// Runs until a fatal error. Transient failures (RPC down, a revert) are logged and
    /// retried on the next tick.
    pub(super) async fn run(&mut self, mut results: mpsc::Receiver<Computed>) -> eyre::Result<()> {
        let mut tick = tokio::time::interval(self.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = self.poll_chain().await {
                        tracing::warn!(error = %e, "chain poll failed; retrying");
                    }
                    self.drive_all().await;
                }
                Some(done) = results.recv() => self.on_computed(done).await,
            }
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
        match self.market.claim(job_id, &spec).await {
            Ok(tx) => {
                record.txs.push(tx);
                record.advance(JobPhase::Claimed);
                tracing::info!(job = job_id, %tx, "claimed");
            }
            Err(e) => {
                record.note = Some(e.to_string());
                record.advance(JobPhase::Abandoned);
                tracing::info!(job = job_id, error = %e, "claim failed");
            }
        }
        self.save(&record);
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
            now: self.market.chain_time().await?,
        })
    }

    /// Moves every active job one step if it can move.
    async fn drive_all(&mut self) {
        let Ok(active) = self.store.active_jobs() else {
            return;
        };
        if active.is_empty() {
            return;
        }
        let now = match self.market.chain_time().await {
            Ok(t) => t,
            Err(e) => return tracing::warn!(error = %e, "cannot read chain time"),
        };
        for record in active {
            if let Err(e) = self.drive(record, now).await {
                tracing::warn!(error = %e, "job step failed; retrying next tick");
            }
        }
    }

    async fn drive(&mut self, mut record: JobRecord, now: u64) -> Result<(), MarketError> {
        let spec = decode_spec(&record)?;
        let job_id = record.job_id;
        match record.phase {
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
                    let tx = self.market.reveal(job_id, &spec, result, salt).await?;
                    record.txs.push(tx);
                    record.advance(JobPhase::Revealed);
                    self.save(&record);
                    tracing::info!(job = job_id, %tx, "revealed");
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
            // The escrow deletes settled jobs: someone finalized it already.
            self.settle(record.job_id, "finalized");
            return Ok(());
        };
        if counters.committed < spec.replicas && now <= spec.reveal_deadline() {
            return Ok(()); // not everyone committed: wait for the reveal deadline
        }
        if now <= spec.reveal_deadline() {
            // Reveals are not counted on-chain: read them from the job's logs, only once
            // every replica committed (so at most a few scans per job).
            let revealed = self.market.job_history(record.job_id).await?.reveals.len();
            if revealed < usize::from(spec.replicas) {
                return Ok(());
            }
        }
        match self.market.finalize(record.job_id).await {
            Ok(tx) => {
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
                Ok(tx) => tracing::info!(%tx, %balance, "earnings withdrawn"),
                Err(e) => tracing::warn!(error = %e, "auto-withdraw failed"),
            },
            _ => {}
        }
    }

    async fn commit(&mut self, record: &mut JobRecord, spec: &JobSpec) -> Result<(), MarketError> {
        let (salt, result) = secrets(record)?;
        match self.market.commit(record.job_id, spec, result, salt).await {
            Ok(tx) => {
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
        tokio::spawn(async move {
            let result = fetch_and_run(&p2p, &executor, &spec, deadline)
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
    let output = executor
        .run(&KernelId(spec.kernelId.0), &input, deadline)
        .await
        .map_err(|e| e.to_string())?;
    if output.len() as u64 > spec.maxOutputSize {
        return Err(format!(
            "output {} bytes exceeds the job's bound",
            output.len()
        ));
    }
    Ok(output)
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
