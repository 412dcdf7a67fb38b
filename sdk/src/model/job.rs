//! Model jobs: a model run over a batch of samples as an ordinary job of the market.
//!
//! The job's kernel id names its model, `SHA-256("stp-model-job-v1" ‖ model id)`
//! ([`kernel_id`]). The spec on chain therefore fixes which model must run, and a provider
//! checks the model it fetched against that id before running anything. The input, once
//! resolved, is laid out as follows (little-endian):
//!
//! ```text
//! "STPMJOB1"        8 bytes
//! u64 model_len     bytes of the model file that follow
//! model file        the .stpm bytes; their SHA-256 is the model id
//! samples           int8, back to back, each the model input's size (at least one)
//! ```
//!
//! A consumer posts it as a parts input ([`parts_input`]). The model file is then a blob
//! referenced by its hash, so each provider fetches a model once, whatever the number of
//! chunks and jobs that use it. The output is the model's outputs over the batch,
//! concatenated in [`super::Model::outputs`] order ([`ModelOutput::to_bytes`]), so
//! providers are compared by the hash of the very bytes [`super::run_cpu`] gives.

use sha2::{Digest, Sha256};

use super::{Limits, ModelError, ModelId, ModelOutput, ValidModel, run_cpu};
use crate::batch::parts::{self, Segment};
use crate::kernels::{KernelError, KernelId};

/// The first bytes of a model job's input.
pub const MAGIC: &[u8; 8] = b"STPMJOB1";
/// Domain of [`kernel_id`].
pub const KERNEL_DOMAIN: &[u8] = b"stp-model-job-v1";
/// Bytes before the model file: the magic and the model's length.
pub const HEADER_LEN: usize = 16;

/// The kernel id of jobs that run `model`.
pub fn kernel_id(model: &ModelId) -> KernelId {
    let mut h = Sha256::new();
    h.update(KERNEL_DOMAIN);
    h.update(model.0);
    KernelId(h.finalize().into())
}

/// True if `input` starts like a model job's input.
pub fn is_model_job(input: &[u8]) -> bool {
    input.starts_with(MAGIC)
}

/// The magic and the model length: what precedes the model file.
pub fn header(model_len: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..].copy_from_slice(&model_len.to_le_bytes());
    h
}

/// The resolved input of a job running the model file `model` over `samples`.
pub fn encode(model: &[u8], samples: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + model.len() + samples.len());
    out.extend_from_slice(&header(model.len() as u64));
    out.extend_from_slice(model);
    out.extend_from_slice(samples);
    out
}

/// The model file and the samples of a model job's input, split at the header's length
/// (nothing is validated); `None` if the input is not laid out as one.
pub fn split(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = input.strip_prefix(MAGIC)?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let len = usize::try_from(u64::from_le_bytes(*len)).ok()?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// The parts input to post for the same job: the model file referenced by its blob name
/// (its BLAKE3 hash; the blob to serve is the model file itself), the header and samples
/// inline.
pub fn parts_input(model_file: &[u8], samples: &[u8]) -> Vec<u8> {
    let model_len = model_file.len() as u64;
    parts::encode(&[
        Segment::Inline(&header(model_len)),
        Segment::Blob {
            hash: crate::p2p::input_hash(model_file),
            size: model_len,
        },
        Segment::Inline(samples),
    ])
}

/// A decoded model job: the model, checked against the job's kernel id, and its samples.
#[derive(Debug, Clone)]
pub struct ModelJob<'a> {
    /// The model, validated.
    pub model: ValidModel,
    /// The samples (int8, back to back).
    pub samples: &'a [u8],
    /// How many samples.
    pub batch: u32,
}

fn bad(reason: impl Into<String>) -> KernelError {
    KernelError::BadEnvelope {
        reason: reason.into(),
    }
}

/// Decodes a model job's input and checks it against `kernel`: the model file must hash to
/// the model `kernel` names, be a valid model, and the samples a whole batch of its input.
pub fn decode<'a>(kernel: &KernelId, input: &'a [u8]) -> Result<ModelJob<'a>, KernelError> {
    if !is_model_job(input) {
        return Err(bad("a model job's input starts with STPMJOB1"));
    }
    let (file, samples) = split(input).ok_or_else(|| {
        bad(format!(
            "the header is cut short or announces more model bytes than the {} that follow",
            input.len().saturating_sub(HEADER_LEN)
        ))
    })?;
    let limit = Limits::default().max_file_bytes;
    if file.len() as u64 > limit {
        return Err(bad(format!(
            "the header announces a {}-byte model, more than the {limit} allowed",
            file.len()
        )));
    }
    // Hashed once: the id is checked against the job's before the model is validated.
    let id = ModelId(Sha256::digest(file).into());
    let actual = kernel_id(&id);
    if actual != *kernel {
        return Err(KernelError::KernelIdMismatch {
            expected: *kernel,
            actual,
        });
    }
    let model = ValidModel::decode_hashed(file, id)?;
    let batch = model.batch_of(samples)?;
    Ok(ModelJob {
        model,
        samples,
        batch,
    })
}

impl ModelJob<'_> {
    /// Bytes of the output: every output tensor over the batch.
    pub fn output_len(&self) -> u64 {
        let m = self.model.model();
        let per_sample: u64 = m
            .outputs
            .iter()
            .map(|&o| m.tensors[o as usize].bytes())
            .sum();
        per_sample * u64::from(self.batch)
    }

    /// The output bytes on the CPU reference.
    pub fn cpu_reference(&self) -> Result<Vec<u8>, ModelError> {
        Ok(run_cpu(&self.model, self.samples)?.to_bytes())
    }
}

impl ModelOutput {
    /// All outputs' bytes concatenated in order: a model job's output.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.outputs.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::synth;

    fn model() -> (ValidModel, Vec<u8>) {
        let m = ValidModel::new(synth::mlp(&[16, 8, 4], 3).unwrap()).unwrap();
        let file = m.model().encode();
        (m, file)
    }

    #[test]
    fn a_job_decodes_against_its_models_kernel_id_only() {
        let (m, file) = model();
        let samples = vec![3u8; 16 * 5];
        let input = encode(&file, &samples);
        let kernel = kernel_id(&m.id());
        let job = decode(&kernel, &input).unwrap();
        assert_eq!(job.batch, 5);
        assert_eq!(job.samples, &samples[..]);
        assert_eq!(job.output_len(), job.cpu_reference().unwrap().len() as u64);
        let other = ValidModel::new(synth::mlp(&[16, 8, 4], 4).unwrap()).unwrap();
        let err = decode(&kernel_id(&other.id()), &input).unwrap_err();
        assert!(
            matches!(err, KernelError::KernelIdMismatch { actual, .. } if actual == kernel),
            "{err}"
        );
    }

    #[test]
    fn malformed_jobs_are_typed_errors() {
        let (m, file) = model();
        let kernel = kernel_id(&m.id());
        let good = encode(&file, &[1u8; 16]);
        for input in [
            b"STPMJOB".to_vec(),
            good[..12].to_vec(),
            [&header(u64::MAX)[..], &file].concat(),
            [&header(file.len() as u64 + 1)[..], &file].concat(),
            b"NOTAJOB1xxxxxxxx".to_vec(),
        ] {
            let err = decode(&kernel, &input).unwrap_err();
            assert!(matches!(err, KernelError::BadEnvelope { .. }), "{err}");
        }
        let err = decode(&kernel, &encode(&file, &[1u8; 17])).unwrap_err();
        assert!(
            matches!(err, KernelError::Model(ModelError::InputSize { .. })),
            "{err}"
        );
        let err = decode(&kernel, &encode(&file, &[])).unwrap_err();
        assert!(matches!(err, KernelError::Model(_)), "{err}");
    }

    #[test]
    fn the_parts_input_resolves_to_the_job_input() {
        let (m, file) = model();
        let samples = vec![7u8; 32];
        let p = parts_input(&file, &samples);
        let segments = parts::decode(&p).unwrap();
        let name = crate::p2p::input_hash(&file);
        assert_ne!(
            name,
            m.id().0,
            "the blob name is BLAKE3, the model id sha256"
        );
        assert_eq!(parts::blobs(&segments), [(name, file.len() as u64)]);
        let resolved = parts::resolve(&segments, |h| (*h == name).then(|| file.clone()));
        assert_eq!(resolved.unwrap(), encode(&file, &samples));
    }
}
