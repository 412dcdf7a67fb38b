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
