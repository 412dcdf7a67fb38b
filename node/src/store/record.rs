use alloy::primitives::{B256, Bytes};
use serde::{Deserialize, Serialize};

/// Where a job stands for this provider. The order is the order of a job's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// A claim transaction is about to be (or was) sent; not yet confirmed.
    Claiming,
    /// The claim is confirmed: a slot and collateral are ours.
    Claimed,
    /// The output is computed; salt and result hash are stored. The commit may be in flight.
    Computed,
    /// Our commitment is on-chain.
    Committed,
    /// Our result is revealed; waiting for finalization.
    Revealed,
    /// Finalized on-chain; nothing left to do for this job.
    Settled,
    /// Given up (lost the claim race, execution failed, or deadlines passed).
    Abandoned,
}

impl JobPhase {
    /// Whether the daemon still has work to do for a job in this phase.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Settled | Self::Abandoned)
    }
}

/// Everything this node knows and must remember about one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// On-chain job id.
    pub job_id: u64,
    /// The job spec, ABI-encoded exactly as the escrow hashes it; passed back as calldata.
    pub spec: Bytes,
    /// Where the job stands.
    pub phase: JobPhase,
    /// Commit salt: chosen and stored before the commit transaction is sent.
    pub salt: Option<B256>,
    /// SHA-256 of our output bytes.
    pub result_hash: Option<B256>,
    /// Hashes of the transactions sent for this job, oldest first (for diagnostics).
    pub txs: Vec<B256>,
    /// Why the job was abandoned or what last went wrong, for `stp provider status`.
    pub note: Option<String>,
    /// Unix time of the last update.
    pub updated_at: u64,
}

impl JobRecord {
    /// A fresh record for a job we are about to claim.
    pub fn claiming(job_id: u64, spec: Bytes) -> Self {
        Self {
            job_id,
            spec,
            phase: JobPhase::Claiming,
            salt: None,
            result_hash: None,
            txs: Vec::new(),
            note: None,
            updated_at: now_secs(),
        }
    }

    /// Moves the record to `phase`, stamping the update time.
    pub fn advance(&mut self, phase: JobPhase) {
        self.phase = phase;
        self.updated_at = now_secs();
    }
}

/// Wall-clock unix time in seconds (0 if the clock is before 1970).
pub(crate) fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
