use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;

/// A job's specification, exactly as the escrow hashes it. Only its hash is stored
/// on-chain; the full spec travels in the `JobPosted` event and as calldata.
pub type JobSpec = crate::bindings::IJobEscrow::JobSpec;

/// `keccak256(abi.encode(spec))`, the escrow's `specHashOf`.
pub fn spec_hash(spec: &JobSpec) -> B256 {
    keccak256(spec.abi_encode())
}

/// `keccak256(abi.encode(jobId, provider, resultHash, salt))`: what a provider commits.
pub fn commitment(job_id: u64, provider: Address, result_hash: B256, salt: B256) -> B256 {
    keccak256((U256::from(job_id), provider, result_hash, salt).abi_encode())
}

/// Plain-integer views of a [`JobSpec`]'s packed fields.
pub trait JobSpecExt {
    /// Last second (inclusive) to claim.
    fn claim_deadline(&self) -> u64;
    /// Last second (inclusive) to commit.
    fn commit_deadline(&self) -> u64;
    /// Last second (inclusive) to reveal.
    fn reveal_deadline(&self) -> u64;
    /// Total bounty.
    fn bounty_amount(&self) -> U256;
    /// Collateral per replica.
    fn collateral_amount(&self) -> U256;
}

impl JobSpecExt for JobSpec {
    fn claim_deadline(&self) -> u64 {
        self.claimDeadline.to()
    }
    fn commit_deadline(&self) -> u64 {
        self.commitDeadline.to()
    }
    fn reveal_deadline(&self) -> u64 {
        self.revealDeadline.to()
    }
    fn bounty_amount(&self) -> U256 {
        U256::from(self.bounty)
    }
    fn collateral_amount(&self) -> U256 {
        U256::from(self.collateral)
    }
}

/// A provider's phase in a live job, as `replicaOf` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum ReplicaPhase {
    /// No slot (or the job is no longer live).
    None,
    /// Claimed, not committed.
    Claimed,
    /// Committed, not revealed.
    Committed,
    /// Revealed.
    Revealed,
}

impl ReplicaPhase {
    /// From the contract's enum value.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Claimed,
            2 => Self::Committed,
            3 => Self::Revealed,
            _ => return None,
        })
    }
}
