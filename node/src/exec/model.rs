//! Runs a quantized model ([`stp_sdk::model`]) on a [`GpuRuntime`]: one dispatch per op,
//! one after another, each op's output read back and passed to the next op as input (the
//! simple form; keeping intermediates on the device is left for later). The bytes equal
//! [`stp_sdk::model::run_cpu`]'s on every backend.
//!
//! Providers run model jobs ([`stp_sdk::model::job`]) through it in the killable worker,
//! like every other job; `stp model run` and the benchmarks call it in-process, which is
//! safe because every model kernel is bounded (loops of at most
//! [`stp_sdk::model::Limits::max_reduction`] passes).

use std::time::Duration;

use stp_sdk::model::{self, ModelOutput, ValidModel, gpu::plan_op};

use super::Result;
use super::gpu::GpuRuntime;

/// Runs `model` over `input` (a batch of int8 samples) on `rt`; returns the outputs and
/// the device time of all dispatches together.
pub fn run_gpu(
    rt: &mut GpuRuntime,
    model: &ValidModel,
    input: &[u8],
) -> Result<(ModelOutput, Duration)> {
    let mut device_time = Duration::ZERO;
    let output = model::run(model, input, |op, values| {
        let plan = plan_op(model.model(), op, values).ok_or_else(|| super::ExecError::Gpu {
            message: format!("no kernel for op {}", op.name()),
        })?;
        let (out, took) = rt.run(&plan)?;
        device_time += took;
        Ok::<_, super::ExecError>(out)
    })?;
    Ok((output, device_time))
}
