//! The transactions of a job's life (claim, commit, finalize, withdraw) and keeping the
//! store in step with the chain after a crash or a lost reply.

use alloy::primitives::{B256, U256};
use stp_sdk::market::{JobSpec, JobSpecExt, MarketError, ReplicaPhase};

use super::Driver;
use crate::daemon::Fault;
use crate::store::{JobPhase, JobRecord};

impl Driver {
    /// Fault injection: exits the process here, as `kill -9` would, when the node was
    /// started with `--fault <point>`.
    pub(super) fn crash_point(&self, point: Fault) {
        if self.config.fault == Some(point) {
            tracing::warn!(?point, "fault injection: exiting now");
            std::process::exit(137);
        }
    }

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
    pub(super) async fn sync_with_chain(
        &self,
        record: &mut JobRecord,
    ) -> Result<bool, MarketError> {
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

    /// Sends (or re-sends) the claim. A transport failure leaves the job in `Claiming`, to
    /// be tried again next tick: the claim may have been mined with its reply lost.
    pub(super) async fn claim(&self, record: &mut JobRecord, spec: &JobSpec) {
        let job_id = record.job_id;
        match self.market.claim(job_id, spec).await {
            Ok(tx) => {
                self.crash_point(Fault::CrashAfterClaimMined);
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

    pub(super) fn give_up(&self, mut record: JobRecord, why: &str) -> Result<(), MarketError> {
        tracing::warn!(job = record.job_id, why, "abandoning job");
        record.note = Some(why.to_string());
        record.advance(JobPhase::Abandoned);
        self.save(&record);
        Ok(())
    }

    /// Whether every replica of a live job committed (one `eth_call`, no log scan: this
    /// runs every tick for every committed job).
    pub(super) async fn all_committed(
        &self,
        job_id: u64,
        spec: &JobSpec,
    ) -> Result<bool, MarketError> {
        let counters = self.market.job_counters(job_id).await?;
        Ok(counters.is_some_and(|c| c.committed >= spec.replicas))
    }

    pub(super) async fn try_finalize(
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

    pub(super) async fn commit(
        &mut self,
        record: &mut JobRecord,
        spec: &JobSpec,
    ) -> Result<(), MarketError> {
        let (salt, result) = secrets(record)?;
        match self.market.commit(record.job_id, spec, result, salt).await {
            Ok(tx) => {
                self.crash_point(Fault::CrashAfterCommitMined);
                self.metrics.transaction("commit");
                record.txs.push(tx);
                record.advance(JobPhase::Committed);
                self.save(record);
                tracing::info!(job = record.job_id, %tx, result = %result, "committed");
                self.crash_point(Fault::CrashAfterCommit);
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
