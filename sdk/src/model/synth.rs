//! Synthetic models for tests and demos: a multilayer perceptron with deterministic
//! pseudo-random int8 weights and int32 biases (SplitMix64 from a seed) and a real
//! requantization per layer. Not trained: its classes mean nothing, but every backend must
//! compute them alike, which is what the tests and demos check.

use super::fixedpoint::{Requant, reciprocal_multiplier};
use super::format::{DType, Model, Op, Tensor};
use super::ops::{fully_connected, i32s};
use super::{Limits, ModelError, Result};

/// Samples of the pseudo-random batch each layer's requantization is calibrated on.
const CALIBRATION_SAMPLES: usize = 8;

/// Most layers (sizes) of a synthetic model.
pub const MAX_LAYERS: usize = 32;

use crate::kernels::sample::SplitMix64;

/// `n` pseudo-random bytes, one per draw (the low byte): what every synthetic model and
/// input is made of, so a seed keeps giving the same model.
fn draws(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn bad(detail: String) -> ModelError {
    ModelError::BadParameter {
        site: "synthetic model".into(),
        detail,
    }
}

/// A perceptron with layer sizes `layers` (input first, e.g. `[784, 1024, 1024, 10]`):
/// per layer fully-connected (input zero point 0, symmetric weights) then requantize with
/// ReLU on hidden layers; then argmax. Each requantization is calibrated, in integers, on
/// a pseudo-random batch of 8 inputs: the scale maps the largest accumulator to about ±100. Outputs: the int8 logits of
/// the last layer and the int32 class.
pub fn mlp(layers: &[u32], seed: u64) -> Result<Model> {
    let limits = Limits::default();
    if !(2..=MAX_LAYERS).contains(&layers.len()) {
        return Err(bad(format!(
            "needs 2 to {MAX_LAYERS} layer sizes (input first), found {}",
            layers.len()
        )));
    }
    if let Some(&k) = layers
        .iter()
        .find(|&&k| k == 0 || k as u64 > limits.max_reduction)
    {
        return Err(bad(format!(
            "layer sizes must be 1 to {}, found {k}",
            limits.max_reduction
        )));
    }
    let mut rng = SplitMix64::new(seed);
    let mut calibration = draws(&mut rng, CALIBRATION_SAMPLES * layers[0] as usize);
    let activation = |n: u32, dtype| Tensor {
        dtype,
        shape: vec![n],
        data: None,
    };
    let mut tensors = vec![activation(layers[0], DType::I8)];
    let mut ops = Vec::new();
    let mut x = 0u32;
    for (i, pair) in layers.windows(2).enumerate() {
        let (k, n) = (pair[0], pair[1]);
        let base = tensors.len() as u32;
        let bias: Vec<u8> = (0..n)
            .flat_map(|_| ((rng.next_u64() % (1 << 15)) as i32 - (1 << 14)).to_le_bytes())
            .collect();
        tensors.push(Tensor {
            dtype: DType::I8,
            shape: vec![n, k],
            data: Some(draws(&mut rng, k as usize * n as usize)),
        });
        tensors.push(Tensor {
            dtype: DType::I32,
            shape: vec![n],
            data: Some(bias),
        });
        tensors.push(activation(n, DType::I32));
        tensors.push(activation(n, DType::I8));
        // Calibrate on the sample batch: the largest |accumulator| maps to about ±100.
        let weights = tensors[base as usize].data.as_deref().unwrap_or(&[]);
        let acc = i32s(&fully_connected(
            &calibration,
            weights,
            &i32s(&bias_of(&tensors, base)),
            k as usize,
            (0, 0),
        ));
        let peak = acc
            .iter()
            .map(|v| v.unsigned_abs() as u64)
            .max()
            .unwrap_or(0);
        let (multiplier, shift) = reciprocal_multiplier((peak / 100).max(2))
            .ok_or_else(|| bad(format!("no multiplier for a peak of {peak}")))?;
        let hidden = i + 2 < layers.len();
        ops.push(Op::FullyConnected {
            input: x,
            weights: base,
            bias: base + 1,
            output: base + 2,
            input_zero_point: 0,
            weight_zero_point: 0,
        });
        ops.push(Op::Requantize {
            input: base + 2,
            output: base + 3,
            requant: Requant {
                multiplier,
                shift,
                output_zero_point: 0,
                act_min: if hidden { 0 } else { -128 },
                act_max: 127,
            },
        });
        if let Op::Requantize { requant, .. } = ops[ops.len() - 1] {
            calibration = acc.iter().map(|&v| requant.apply(v) as u8).collect();
        }
        x = base + 3;
    }
    let classes = tensors.len() as u32;
    tensors.push(activation(1, DType::I32));
    ops.push(Op::Argmax {
        input: x,
        output: classes,
    });
    Ok(Model {
        tensors,
        input: 0,
        outputs: vec![x, classes],
        ops,
    })
}

fn bias_of(tensors: &[Tensor], base: u32) -> Vec<u8> {
    tensors[base as usize + 1].data.clone().unwrap_or_default()
}

/// `batch` pseudo-random int8 samples for `model`'s input, from `seed`.
pub fn input(model: &Model, batch: u32, seed: u64) -> Vec<u8> {
    let sample = model.tensors[model.input as usize].bytes();
    draws(&mut SplitMix64::new(seed), (sample * batch as u64) as usize)
}
