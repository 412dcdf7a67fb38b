//! The op-by-op runner shared by the CPU reference and the GPU: a table of tensor values
//! over the batch, filled in dataflow order.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::format::Op;
use super::{ModelError, ValidModel, ops};

/// Every tensor's bytes over the batch (constants: one copy for all samples), as far as
/// the run has got.
#[derive(Debug)]
pub struct Values<'a> {
    values: Vec<Option<Cow<'a, [u8]>>>,
    batch: u32,
}

impl<'a> Values<'a> {
    fn new(model: &'a ValidModel, input: &'a [u8], batch: u32) -> Self {
        let m = model.model();
        let mut values: Vec<_> = m
            .tensors
            .iter()
            .map(|t| t.data.as_deref().map(Cow::Borrowed))
            .collect();
        values[m.input as usize] = Some(Cow::Borrowed(input));
        Self { values, batch }
    }

    /// Samples in the batch.
    pub fn batch(&self) -> u32 {
        self.batch
    }

    /// The bytes of tensor `t`. Validation guarantees that an op's operands exist when it
    /// runs; an absent tensor reads as empty.
    pub fn get(&self, t: u32) -> &[u8] {
        self.values
            .get(t as usize)
            .and_then(|v| v.as_deref())
            .unwrap_or(&[])
    }
}

/// The outputs of one run over a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelOutput {
    /// Samples in the batch.
    pub batch: u32,
    /// The bytes of each of the model's outputs, in [`super::Model::outputs`] order; each
    /// is `batch` samples back to back (int32 little-endian).
    pub outputs: Vec<Vec<u8>>,
}

impl ModelOutput {
    /// SHA-256 of all outputs' bytes concatenated in order: what backends are compared by.
    pub fn sha256(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        self.outputs.iter().for_each(|o| h.update(o));
        h.finalize().into()
    }
}

/// Runs `model` over `input` (a batch of int8 samples), computing each op with `exec`
/// (given the op and the values so far, it returns the op's output bytes). Reshapes pass
/// their bytes through without calling `exec`.
pub fn run<E: From<ModelError>>(
    model: &ValidModel,
    input: &[u8],
    mut exec: impl FnMut(&Op, &Values<'_>) -> Result<Vec<u8>, E>,
) -> Result<ModelOutput, E> {
    let batch = model.batch_of(input)?;
    let mut values = Values::new(model, input, batch);
    for op in &model.model().ops {
        let out = match op {
            Op::Reshape { input, .. } => values.get(*input).to_vec(),
            _ => exec(op, &values)?,
        };
        values.values[op.output() as usize] = Some(Cow::Owned(out));
    }
    let outputs = model
        .model()
        .outputs
        .iter()
        .map(|&o| values.get(o).to_vec())
        .collect();
    Ok(ModelOutput { batch, outputs })
}

/// Runs `model` on the CPU references: the bytes every backend must produce.
pub fn run_cpu(model: &ValidModel, input: &[u8]) -> Result<ModelOutput, ModelError> {
    run(model, input, |op, values| {
        Ok::<_, ModelError>(ops::eval(model.model(), op, values))
    })
}
