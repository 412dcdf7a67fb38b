//! The consumer's own check of a fetched output: the kernel's algebraic or sampled check
//! (`stp_sdk::verify`) with random choices drawn from the operating system after the output
//! arrived, so no provider can know them in advance. A passing hash agreement says the
//! replicas agreed; this says the agreed output is right (to the check's bound).

use std::path::Path;

use eyre::{WrapErr, bail};
use rand::TryRngCore;
use stp_sdk::kernels::KernelId;
use stp_sdk::verify::{Options, Outcome, Seed, Verdict, verify};

/// 32 random bytes from the operating system.
pub fn os_seed() -> eyre::Result<Seed> {
    let mut s = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut s)
        .wrap_err("drawing a verification seed from the operating system")?;
    Ok(Seed(s))
}

/// Checks the output of job `job_id` written at `output` against its `input`; an error if
/// it fails (the file is left for inspection).
pub fn check_output(
    job_id: u64,
    kernel: &KernelId,
    input: &[u8],
    output: &Path,
) -> eyre::Result<Verdict> {
    let bytes = std::fs::read(output).wrap_err_with(|| format!("reading {}", output.display()))?;
    let verdict = verify(kernel, input, &bytes, &Options::default(), &os_seed()?)
        .wrap_err_with(|| format!("checking the output of job {job_id}"))?;
    if let Outcome::Fail { .. } = verdict.outcome {
        bail!(
            "the agreed output of job {job_id} fails its check ({verdict}): the replicas that agreed on it computed it wrong; {} is kept for inspection, do not use it",
            output.display()
        );
    }
    Ok(verdict)
}
