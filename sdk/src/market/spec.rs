use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;

/// A job's specification, as posted. Only a hash of its [`JobTerms`] is stored on-chain;
/// the full spec travels in the `JobPosted` event.
pub type JobSpec = crate::bindings::IJobEscrow::JobSpec;

/// What every call after `postJob` passes back: the spec's rule fields packed into two
/// words plus a hash of the rest (the escrow's `termsOf`, layout in `JobTermsLib.sol`).
pub type JobTerms = crate::bindings::IJobEscrow::JobTerms;

/// The escrow's `termsOf(spec)`, computed locally.
pub fn terms(spec: &JobSpec) -> JobTerms {
    let payment = (U256::from_be_slice(spec.consumer.as_slice()) << 96) | U256::from(spec.bounty);
    let rules = (U256::from(spec.revealDeadline) << 208)
        | (U256::from(spec.commitDeadline) << 176)
        | (U256::from(spec.claimDeadline) << 144)
        | (U256::from(spec.minReputation) << 112)
        | (U256::from(spec.quorum) << 104)
        | (U256::from(spec.replicas) << 96)
        | U256::from(spec.collateral);
    let details = (
        spec.kernelId,
        spec.inputHash,
        spec.inputSize,
        spec.maxOutputSize,
        spec.inputLocation.clone(),
    )
        .abi_encode_params();
    JobTerms {
        payment,
        rules,
        detailsHash: keccak256(details),
    }
}

/// `keccak256(abi.encode(termsOf(spec)))`, the escrow's `specHashOf` (its first 24 bytes
/// are stored per job).
pub fn spec_hash(spec: &JobSpec) -> B256 {
    keccak256(terms(spec).abi_encode())
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
