//! The consumer's own check of an output written to a file (`stp job post --output`,
//! `stp job result --input`): [`crate::consumer::check_output`] on the file's bytes.

use std::path::Path;

use eyre::WrapErr;
use stp_sdk::kernels::KernelId;
use stp_sdk::verify::Verdict;

/// Checks the output of job `job_id` written at `output` against its `input`; an error if
/// it fails (the file is left for inspection).
pub fn check_output(
    job_id: u64,
    kernel: &KernelId,
    input: &[u8],
    output: &Path,
) -> eyre::Result<Verdict> {
    let bytes = std::fs::read(output).wrap_err_with(|| format!("reading {}", output.display()))?;
    crate::consumer::check_output(job_id, kernel, input, &bytes)
        .wrap_err_with(|| format!("{} is kept for inspection", output.display()))
}
