//! The consumer's own check of a fetched output: the kernel's algebraic or sampled check
//! (`stp_sdk::verify`) with random choices drawn from the operating system after the output
//! arrived, so no provider can know them in advance. A passing hash agreement says the
//! replicas agreed; this says the agreed output is right (to the check's bound).

use eyre::WrapErr;
use rand::TryRngCore;
use stp_sdk::kernels::KernelId;
use stp_sdk::verify::{Options, Outcome, Seed, Verdict, verify};

use super::ConsumerError;

/// 32 random bytes from the operating system.
pub fn os_seed() -> eyre::Result<Seed> {
    let mut s = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut s)
        .wrap_err("drawing a verification seed from the operating system")?;
    Ok(Seed(s))
}

/// Checks `output` of job `job_id` against its `input` with randomness drawn now; a failure
/// is a verdict, not an error (what an optimistic job's challenge answers).
pub fn judge(job_id: u64, kernel: &KernelId, input: &[u8], output: &[u8]) -> eyre::Result<Verdict> {
    verify(kernel, input, output, &Options::default(), &os_seed()?)
        .wrap_err_with(|| format!("checking the output of job {job_id}"))
}

/// Checks `output`, the agreed output of job `job_id`, against its `input`; a
/// [`ConsumerError::CheckFailed`] if it fails.
pub fn check_output(
    job_id: u64,
    kernel: &KernelId,
    input: &[u8],
    output: &[u8],
) -> eyre::Result<Verdict> {
    let verdict = judge(job_id, kernel, input, output)?;
    if let Outcome::Fail { .. } = verdict.outcome {
        return Err(ConsumerError::CheckFailed {
            job_id,
            verdict: Box::new(verdict),
        }
        .into());
    }
    Ok(verdict)
}
