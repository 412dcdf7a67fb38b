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
    let (steps, at) = chain(model, input, batch)?;
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

/// The chain of dispatches of a run, and where each tensor is at its end.
fn chain<'a>(
    model: &'a ValidModel,
    input: &'a [u8],
    batch: u32,
) -> Result<(Vec<Step<'a>>, HashMap<u32, At<'a>>)> {
    let m = model.model();
    let mut at: HashMap<u32, At<'a>> = m
        .tensors
        .iter()
        .enumerate()
        .filter_map(|(t, tensor)| Some((t as u32, At::Host(tensor.data.as_deref()?))))
        .collect();
    at.insert(m.input, At::Host(input));
    let last = last_reads(model);
    let mut slots = Slots::default();
    let mut steps = Vec::with_capacity(m.ops.len());
    for (i, op) in m.ops.iter().enumerate() {
        if let Op::Reshape { input, output } = *op {
            let value = *at.get(&input).ok_or_else(|| unplanned(op))?;
            if let At::Slot(slot) = value {
                slots.keep(slot, last[output as usize]);
            }
            at.insert(output, value);
            slots.release(i);
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
        // Taken before this op's operands are released: it never overwrites what it reads.
        let output_slot = slots.take(last[op.output() as usize]);
        at.insert(op.output(), At::Slot(output_slot));
        slots.release(i);
        steps.push(Step {
            plan,
            bound,
            output_slot,
        });
    }
    Ok((steps, at))
}

/// For each tensor, the index of the last op that reads it (of the op that writes it, if
/// none reads it); `usize::MAX` for the model's outputs (read back at the end).
fn last_reads(model: &ValidModel) -> Vec<usize> {
    let m = model.model();
    let mut last = vec![0; m.tensors.len()];
    for (i, op) in m.ops.iter().enumerate() {
        for t in op.inputs() {
            last[t as usize] = i;
        }
        last[op.output() as usize] = i;
    }
    for &o in &m.outputs {
        last[o as usize] = usize::MAX;
    }
    last
}

/// Device slots of a run: each holds one live intermediate until the last op that reads
/// it (or an alias of it) has been encoded, then it is free for a later op's output. So a
/// deep model keeps only its live activations' buffers, not one per op.
#[derive(Debug, Default)]
struct Slots {
    /// Per slot, the last op index that reads what it holds (`None`: free).
    until: Vec<Option<usize>>,
}

impl Slots {
    /// A free slot (or a new one) for a value last read by op `until`.
    fn take(&mut self, until: usize) -> usize {
        match self.until.iter().position(Option::is_none) {
            Some(slot) => {
                self.until[slot] = Some(until);
                slot
            }
            None => {
                self.until.push(Some(until));
                self.until.len() - 1
            }
        }
    }

    /// Keeps `slot` live until op `until` at least (an alias is read later).
    fn keep(&mut self, slot: usize, until: usize) {
        if let Some(Some(u)) = self.until.get_mut(slot) {
            *u = (*u).max(until);
        }
    }

    /// Frees the slots whose values op `i` was the last to read.
    fn release(&mut self, i: usize) {
        for u in &mut self.until {
            if *u == Some(i) {
                *u = None;
            }
        }
    }
}

fn unplanned(op: &Op) -> ExecError {
    ExecError::Gpu {
        message: format!("no kernel for op {}", op.name()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use stp_sdk::model::synth;

    use super::*;

    fn model(layers: &[u32]) -> ValidModel {
        ValidModel::new(synth::mlp(layers, 3).unwrap()).unwrap()
    }

    #[test]
    fn a_deep_model_keeps_only_its_live_activations_on_the_device() {
        let m = model(&[32, 16, 16, 16, 16, 16, 16, 10]);
        let input = synth::input(m.model(), 2, 1);
        let (steps, at) = chain(&m, &input, 2).unwrap();
        assert_eq!(steps.len(), m.model().ops.len(), "no reshape in an MLP");
        let slots: HashSet<usize> = steps.iter().map(|s| s.output_slot).collect();
        // Live at once: an accumulator and its int8 requantization, plus the two outputs
        // (logits, class) that stay until the read-back.
        assert!(
            slots.len() <= 4,
            "{} slots for {} ops",
            slots.len(),
            steps.len()
        );
        // No step writes a slot it reads, and every output has a slot of its own.
        for s in &steps {
            assert!(!s.bound.contains(&Some(s.output_slot)), "{s:?}");
        }
        let outs: Vec<_> = m
            .model()
            .outputs
            .iter()
            .map(|o| match at[o] {
                At::Slot(slot) => slot,
                At::Host(_) => panic!("an output computed on the host"),
            })
            .collect();
        assert_eq!(outs.iter().collect::<HashSet<_>>().len(), outs.len());
    }

    /// input → fc → requantize (a) → fc → requantize (b) → add(a, b): `a` is read two ops
    /// after it is written.
    fn residual() -> ValidModel {
        use stp_sdk::model::fixedpoint::Requant;
        use stp_sdk::model::{DType, Model, Scale, Tensor};
        let act = |dtype| Tensor {
            dtype,
            shape: vec![8],
            data: None,
        };
        let weights = || Tensor {
            dtype: DType::I8,
            shape: vec![8, 8],
            data: Some((0..64u8).map(|v| v.wrapping_mul(37)).collect()),
        };
        let bias = || Tensor {
            dtype: DType::I32,
            shape: vec![8],
            data: Some(vec![0; 32]),
        };
        let requant = Requant {
            multiplier: 1 << 30,
            shift: 4,
            output_zero_point: 0,
            act_min: -128,
            act_max: 127,
        };
        let scale = Scale {
            multiplier: 1 << 30,
            shift: 1,
        };
        let tensors = vec![
            act(DType::I8),
            weights(),
            bias(),
            act(DType::I32),
            act(DType::I8),
            weights(),
            bias(),
            act(DType::I32),
            act(DType::I8),
            act(DType::I8),
        ];
        let fc = |input, weights, bias, output| Op::FullyConnected {
            input,
            weights,
            bias,
            output,
            input_zero_point: 0,
            weight_zero_point: 0,
        };
        let ops = vec![
            fc(0, 1, 2, 3),
            Op::Requantize {
                input: 3,
                output: 4,
                requant,
            },
            fc(4, 5, 6, 7),
            Op::Requantize {
                input: 7,
                output: 8,
                requant,
            },
            Op::Add {
                a: 4,
                b: 8,
                output: 9,
                a_zero_point: 0,
                b_zero_point: 0,
                left_shift: 20,
                a_scale: scale,
                b_scale: scale,
                requant,
            },
        ];
        ValidModel::new(Model {
            tensors,
            input: 0,
            outputs: vec![9],
            ops,
        })
        .unwrap()
    }

    #[test]
    fn a_value_is_not_overwritten_before_its_last_reader() {
        let m = residual();
        let ops = &m.model().ops;
        let input = synth::input(m.model(), 3, 2);
        let (steps, _) = chain(&m, &input, 3).unwrap();
        for (i, (step, op)) in steps.iter().zip(ops).enumerate() {
            for (k, t) in op.inputs().into_iter().enumerate() {
                let Some(producer) = ops.iter().position(|o| o.output() == t) else {
                    assert_eq!(
                        step.bound[k + 1],
                        None,
                        "a constant or the input is uploaded"
                    );
                    continue;
                };
                let slot = steps[producer].output_slot;
                assert_eq!(
                    step.bound[k + 1],
                    Some(slot),
                    "op {i} binds its operand's slot"
                );
                // Neither an op in between nor this op itself writes the slot it reads.
                assert!(
                    steps[producer + 1..=i]
                        .iter()
                        .all(|s| s.output_slot != slot),
                    "op {i} reads slot {slot} after it was overwritten"
                );
            }
        }
    }
}
