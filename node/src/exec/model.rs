//! Runs a quantized model ([`stp_sdk::model`]) on a [`GpuRuntime`]: one dispatch per op,
//! all in one submission ([`GpuRuntime::run_chain`]). The input and the constants are
//! uploaded once, every intermediate stays on the device, and only the model's outputs
//! are read back. The bytes equal [`stp_sdk::model::run_cpu`]'s on every backend.
//!
//! Providers run model jobs ([`stp_sdk::model::job`]) through it in the killable worker,
//! like every other job; `stp model run` and the benchmarks call it in-process, which is
//! safe because every model kernel is bounded (loops of at most
//! [`stp_sdk::model::Limits::max_reduction`] passes).

use std::collections::HashMap;
use std::time::Duration;

use stp_sdk::model::{ModelOutput, Op, ValidModel, gpu::plan_op_with};

use super::chain::Step;
use super::gpu::GpuRuntime;
use super::{ExecError, Result};

/// Where a tensor's value is during a run.
#[derive(Debug, Clone, Copy)]
enum At<'a> {
    /// Bytes on the host: the input or a constant (uploaded by each op that reads it).
    Host(&'a [u8]),
    /// An op's output, in this slot on the device.
    Slot(usize),
}

/// Runs `model` over `input` (a batch of int8 samples) on `rt`; returns the outputs and
/// the device time of the whole chain.
pub fn run_gpu(
    rt: &mut GpuRuntime,
    model: &ValidModel,
    input: &[u8],
) -> Result<(ModelOutput, Duration)> {
    let batch = model.batch_of(input)?;
    let m = model.model();
    let mut at: HashMap<u32, At<'_>> = m
        .tensors
        .iter()
        .enumerate()
        .filter_map(|(t, tensor)| Some((t as u32, At::Host(tensor.data.as_deref()?))))
        .collect();
    at.insert(m.input, At::Host(input));
    let mut steps = Vec::with_capacity(m.ops.len());
    for op in &m.ops {
        if let Op::Reshape { input, output } = *op {
            let value = *at.get(&input).ok_or_else(|| unplanned(op))?;
            at.insert(output, value);
            continue;
        }
        let host = |t: u32| match at.get(&t) {
            Some(At::Host(bytes)) => *bytes,
            _ => &[],
        };
        let plan = plan_op_with(m, op, batch, host).ok_or_else(|| unplanned(op))?;
        // Binding 0 holds the parameters, then one per operand, then the output.
        let mut bound = vec![None];
        for t in op.inputs() {
            bound.push(match at.get(&t) {
                Some(At::Slot(slot)) => Some(*slot),
                _ => None,
            });
        }
        bound.push(None);
        let output_slot = steps.len();
        at.insert(op.output(), At::Slot(output_slot));
        steps.push(Step {
            plan,
            bound,
            output_slot,
        });
    }
    // The outputs an op computed are read back; one that is the input or a constant is
    // copied from the host.
    let reads: Vec<(u32, (usize, u64))> = m
        .outputs
        .iter()
        .filter_map(|&o| match at.get(&o) {
            Some(&At::Slot(slot)) => {
                Some((o, (slot, m.tensors[o as usize].bytes() * u64::from(batch))))
            }
            _ => None,
        })
        .collect();
    let slots: Vec<(usize, u64)> = reads.iter().map(|r| r.1).collect();
    let (read, took) = rt.run_chain(&steps, &slots)?;
    let read: HashMap<u32, Vec<u8>> = reads.iter().map(|r| r.0).zip(read).collect();
    let outputs = m
        .outputs
        .iter()
        .map(|o| match at.get(o) {
            Some(At::Host(bytes)) => bytes.to_vec(),
            _ => read.get(o).cloned().unwrap_or_default(),
        })
        .collect();
    Ok((ModelOutput { batch, outputs }, took))
}

fn unplanned(op: &Op) -> ExecError {
    ExecError::Gpu {
        message: format!("no kernel for op {}", op.name()),
    }
}
