//! Batches of custom-kernel envelopes: one chunk per envelope, outputs concatenated.

use super::{Batch, BatchError, Result};
use crate::kernels::custom;

/// Makes one chunk of each custom-kernel envelope, all of the same kernel id (the batch's).
///
/// Fails on an empty list, an input that is not a valid envelope and an input of another
/// kernel than input 0, naming the input's index.
pub fn split_custom(inputs: Vec<Vec<u8>>) -> Result<Batch> {
    let mut kernel = None;
    let mut parts = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        let (id, output_len) = {
            let job = custom::decode(&input)
                .map_err(|source| BatchError::CustomInput { index, source })?;
            let id = job.kernel_id();
            let plan = job
                .into_plan()
                .map_err(|source| BatchError::CustomInput { index, source })?;
            (id, plan.output_len)
        };
        let expected = *kernel.get_or_insert(id);
        if id != expected {
            return Err(BatchError::MixedKernels {
                index,
                expected,
                actual: id,
            });
        }
        parts.push((input, format!("input {index}"), output_len));
    }
    let kernel = kernel.ok_or(BatchError::EmptyBatch)?;
    Ok(Batch::concat(kernel, parts))
}
