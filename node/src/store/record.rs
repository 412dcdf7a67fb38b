use alloy::primitives::{B256, Bytes};
use serde::{Deserialize, Serialize};
use stp_sdk::market::JobKind;

/// Where a job stands for this provider (protocol v2: a slot is only taken together with
/// the commitment, after the input was fetched and the kernel run). The order is the order
/// of a job's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobPhase {
    /// Accepted by the scheduler, not yet eligible in the job's draw (`eligible_from`).
    Waiting,
    /// Eligible: the input fetch and the execution run (or are about to, after a restart).
    /// Nothing is at stake yet.
    Fetching,
    /// The result is computed; result blob, result hash, salt and lane are stored. The
    /// commit (which takes the slot and locks collateral) may be in flight.
    Computed,
    /// Our slot and commitment are on-chain.
    Committed,
    /// Our result is revealed; waiting for settlement.
    Revealed,
    /// Settled: completed with our result, but the output is not in the blob store yet
    /// (adding it failed, e.g. disk full): retried until consumers can fetch it.
    Serving,
    /// Settled on-chain; nothing left to do for this job.
    Settled,
    /// Given up before committing (not drawn in time, job filled, input or kernel
    /// unusable, deadline passed): nothing was at stake.
    Abandoned,
}

impl JobPhase {
    /// Whether the daemon still has work to do for a job in this phase.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Settled | Self::Abandoned)
    }

    /// Whether collateral of ours may be locked in the job (a commit may have landed).
    pub fn holds_slot(self) -> bool {
        matches!(self, Self::Computed | Self::Committed | Self::Revealed)
    }
}

/// Everything this node knows and must remember about one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// On-chain job id.
    pub job_id: u64,
    /// The job spec, ABI-encoded exactly as posted; passed back (as terms) to every call.
    pub spec: Bytes,
    /// The post's block timestamp (part of the job's terms).
    pub posted_at: u64,
    /// The post's block number (its hash fixes the draw; part of the terms).
    pub post_block: u64,
    /// Which rules the job follows (part of the terms); plain for records written before
    /// optimistic jobs existed.
    #[serde(default)]
    pub kind: JobKind,
    /// For an escalation job: the challenged job, whose identity our result hash uses.
    #[serde(default)]
    pub identity: Option<u64>,
    /// Where the job stands.
    pub phase: JobPhase,
    /// When the draw makes us eligible (unix seconds), for a `Waiting` job.
    pub eligible_from: Option<u64>,
    /// Our lane for the slot: chosen and stored before the commit is sent, so a re-send
    /// after a crash goes to the same lane (two slots in one job would both be slashed).
    pub lane: Option<u64>,
    /// Commit salt: chosen and stored before the commit transaction is sent.
    pub salt: Option<B256>,
    /// Our result hash: sha256 of the job's identity followed by our output.
    pub result_hash: Option<B256>,
    /// Hashes of the transactions sent for this job, oldest first (for diagnostics).
    pub txs: Vec<B256>,
    /// Why the job was abandoned or what last went wrong, for `stp provider status`.
    pub note: Option<String>,
    /// Unix time of the last update.
    pub updated_at: u64,
}

impl JobRecord {
    /// A fresh record for a job the scheduler accepted: `Fetching` if we are eligible now,
    /// else `Waiting` until `eligible_from`.
    pub fn accepted(
        job_id: u64,
        spec: Bytes,
        (posted_at, post_block, kind): (u64, u64, JobKind),
        eligible_from: Option<u64>,
    ) -> Self {
        Self {
            job_id,
            spec,
            posted_at,
            post_block,
            kind,
            identity: None,
            phase: if eligible_from.is_some() {
                JobPhase::Waiting
            } else {
                JobPhase::Fetching
            },
            eligible_from,
            lane: None,
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
