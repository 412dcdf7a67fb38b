//! Quantized integer-only models: a small graph format (`.stpm`), its validation, the ops'
//! CPU references, and the WGSL kernels and dispatch plans that run them on a GPU with
//! the very same bytes.
//!
//! - [`format`](mod@format): tensors (int8 / int32, per-sample shapes, constants inline), ops, and the
//!   canonical, versioned, bounded binary encoding. The [`ModelId`] is SHA-256 of it.
//! - [`fixedpoint`]: gemmlowp / TFLite requantization (`MultiplyByQuantizedMultiplier`).
//! - [`ops`]: the CPU reference of every op (fully-connected, conv-2d, requantize, add,
//!   max / average pool, reshape, argmax); the semantics are written on [`Op`].
//! - [`gpu`]: one WGSL kernel per op and a [`crate::kernels::DispatchPlan`] per op of a
//!   run; the node executes them one after another, each op's output read back and passed
//!   on as the next op's input.
//! - [`job`]: a model over a batch of samples as a market job (its kernel id names the
//!   model; the model file travels as a shared blob).
//! - [`synth`]: deterministic synthetic models (random weights, real requantization) for
//!   tests and demos; not trained.
//!
//! No floats anywhere: a model's outputs are integers that every backend computes alike,
//! so providers can be compared by the hash of the outputs ([`ModelOutput::sha256`]).
//! Like [`crate::kernels`], this module has no GPU dependency.

mod codec;
mod error;
pub mod fixedpoint;
pub mod format;
pub mod gpu;
pub mod job;
pub mod onnx;
pub mod ops;
mod run;
pub mod synth;
mod validate;

use std::fmt;

use sha2::{Digest, Sha256};

pub use error::{ModelError, Result};
pub use format::{Conv2dGeometry, DType, Model, Op, Pool2d, Scale, Tensor};
pub use run::{ModelOutput, Values, run, run_cpu};

/// Bounds a model file must keep. The defaults are what every node accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest model file.
    pub max_file_bytes: u64,
    /// Most tensors.
    pub max_tensors: u64,
    /// Most ops.
    pub max_ops: u64,
    /// Most output tensors.
    pub max_outputs: u64,
    /// Most elements of one tensor (per sample).
    pub max_tensor_elements: u64,
    /// Most bytes of all constants together.
    pub max_constant_bytes: u64,
    /// Longest reduction (fully-connected `K`, argmax `C`): one GPU invocation loops over
    /// it, and Mesa's software driver stops loops after 65,535 passes.
    pub max_reduction: u64,
    /// Most elements of any tensor over a whole batch (batch × per-sample elements).
    pub max_batch_elements: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_file_bytes: 256 << 20,
            max_tensors: 1024,
            max_ops: 512,
            max_outputs: 8,
            max_tensor_elements: 1 << 24,
            max_constant_bytes: 256 << 20,
            max_reduction: 16_384,
            max_batch_elements: 1 << 24,
        }
    }
}

/// A model's identity: SHA-256 of its canonical bytes, shown as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelId(pub [u8; 32]);

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelId({self})")
    }
}

/// A model checked whole against the default [`Limits`]: the only kind the runtimes take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidModel {
    model: Model,
    id: ModelId,
}

impl ValidModel {
    /// Validates a model built in memory (by the same checks as a file: it is encoded and
    /// decoded).
    pub fn new(model: Model) -> Result<Self> {
        // Through the encoding, so a model built in memory meets every bound a file must.
        let decoded = Self::decode(&model.encode())?;
        if decoded.model != model {
            return Err(ModelError::BadParameter {
                site: "model".into(),
                detail: "the model does not survive its own encoding: a tensor has more than 4 dimensions or constant data that does not match its shape".into(),
            });
        }
        Ok(decoded)
    }

    /// Decodes and validates a model file.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::decode_hashed(bytes, ModelId(Sha256::digest(bytes).into()))
    }

    /// [`ValidModel::decode`] of a file whose SHA-256 the caller computed already.
    pub(crate) fn decode_hashed(bytes: &[u8], id: ModelId) -> Result<Self> {
        let limits = Limits::default();
        let model = Model::decode_unvalidated(bytes, &limits)?;
        validate::validate(&model, &limits)?;
        Ok(Self { model, id })
    }

    /// The graph.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The model id (SHA-256 of [`Model::encode`], which is the file's bytes).
    pub fn id(&self) -> ModelId {
        self.id
    }

    /// The input tensor.
    pub fn input(&self) -> &Tensor {
        &self.model.tensors[self.model.input as usize]
    }

    /// How many samples `input` holds: its length must be a positive multiple of one
    /// sample, and the largest activation (constants are not batched) over the batch must
    /// stay within [`Limits::max_batch_elements`].
    pub fn batch_of(&self, input: &[u8]) -> Result<u32> {
        let sample = self.input().bytes();
        let len = input.len() as u64;
        if len == 0 || !len.is_multiple_of(sample) {
            return Err(ModelError::InputSize {
                len: input.len(),
                sample_bytes: sample,
                shape: self.input().shape.clone(),
            });
        }
        let batch = len / sample;
        let widest = self
            .model
            .tensors
            .iter()
            .filter(|t| t.data.is_none())
            .map(Tensor::elements)
            .max()
            .unwrap_or(1);
        let limit = Limits::default().max_batch_elements;
        if batch * widest > limit {
            return Err(format::too_large(
                format!("a batch of {batch} samples' widest tensor ({widest} elements each)"),
                batch * widest,
                limit,
            ));
        }
        Ok(batch as u32)
    }
}
