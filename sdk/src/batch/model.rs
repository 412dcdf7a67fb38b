//! Splitting a model run by samples: each range of samples with the whole model is a model
//! job of its own, and the chunks' outputs, output by output, are the run over all of them.

use super::{Assembly, Batch, BatchError, Chunk, Result, SplitBy, ranges};
use crate::model::{ValidModel, job};

/// Splits `samples` (int8, back to back) of the model file `model` into chunks of whole
/// samples, each a model job ([`crate::model::job`]).
///
/// Every chunk carries the whole model; [`super::parts::share`] factors it out into one
/// blob for posting. Fails on a model that is not valid, samples that are not a whole
/// batch, and a split that does not fit the number of samples.
pub fn split_model(model: &[u8], samples: &[u8], by: SplitBy) -> Result<Batch> {
    let valid = ValidModel::decode(model).map_err(BatchError::Model)?;
    let batch = valid.batch_of(samples).map_err(BatchError::Model)?;
    let m = valid.model();
    let sample_bytes: Vec<u64> = m
        .outputs
        .iter()
        .map(|&o| m.tensors[o as usize].bytes())
        .collect();
    let size = valid.input().bytes() as usize;
    let ranges = ranges::linear(batch, by, "model", "samples")?;
    let chunk_samples = ranges.iter().map(|r| r.end - r.start).collect();
    let chunks = ranges
        .into_iter()
        .enumerate()
        .map(|(index, r)| Chunk {
            index: index as u32,
            input: job::encode(
                model,
                &samples[r.start as usize * size..r.end as usize * size],
            ),
            label: format!("samples {}..{}", r.start, r.end),
        })
        .collect();
    Ok(Batch {
        kernel: job::kernel_id(&valid.id()),
        chunks,
        assembly: Assembly::Samples {
            chunk_samples,
            sample_bytes,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::parts;
    use crate::kernels::cpu_reference;
    use crate::model::synth;
    use crate::verify::{Options, Outcome, Seed, Unit, verify};

    fn work() -> (Vec<u8>, Vec<u8>) {
        let model = ValidModel::new(synth::mlp(&[12, 6, 5], 9).unwrap()).unwrap();
        let samples = synth::input(model.model(), 10, 2);
        (model.model().encode(), samples)
    }

    #[test]
    fn the_chunks_outputs_assemble_into_the_run_over_every_sample() {
        let (model, samples) = work();
        let batch = split_model(&model, &samples, SplitBy::Rows(4)).unwrap();
        let labels: Vec<_> = batch.chunks.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["samples 0..4", "samples 4..8", "samples 8..10"]);
        let outputs: Vec<Vec<u8>> = batch
            .chunks
            .iter()
            .map(|c| cpu_reference(&batch.kernel, &c.input).unwrap())
            .collect();
        let whole = job::encode(&model, &samples);
        assert_eq!(
            batch.assembly.assemble(&outputs).unwrap(),
            cpu_reference(&batch.kernel, &whole).unwrap()
        );
    }

    #[test]
    fn the_model_travels_as_one_shared_blob() {
        let (model, samples) = work();
        let batch = split_model(&model, &samples, SplitBy::Chunks(3)).unwrap();
        let shared = parts::share(&batch).unwrap();
        assert_eq!(shared.blobs, vec![model.clone()]);
        for (c, p) in batch.chunks.iter().zip(&shared.inputs) {
            assert!(p.len() < c.input.len() - model.len() + 64);
            let segments = parts::decode(p).unwrap();
            let resolved = parts::resolve(&segments, |_| Some(model.clone())).unwrap();
            assert_eq!(resolved, c.input);
        }
    }

    #[test]
    fn a_wrong_sample_in_a_chunk_output_fails_its_check() {
        let (model, samples) = work();
        let batch = split_model(&model, &samples, SplitBy::Chunks(2)).unwrap();
        let c = &batch.chunks[1];
        let mut out = cpu_reference(&batch.kernel, &c.input).unwrap();
        let seed = Seed([3; 32]);
        let ok = verify(&batch.kernel, &c.input, &out, &Options::default(), &seed).unwrap();
        assert_eq!(ok.outcome, Outcome::Pass, "{ok}");
        // The int32 class of sample 2 of the chunk (after 5 samples' 5 int8 logits).
        out[5 * 5 + 2 * 4] ^= 1;
        let bad = verify(&batch.kernel, &c.input, &out, &Options::default(), &seed).unwrap();
        assert_eq!(
            bad.outcome,
            Outcome::Fail {
                unit: Unit::Sample { index: 2 }
            },
            "{bad}"
        );
    }

    #[test]
    fn bad_samples_and_splits_are_refused() {
        let (model, samples) = work();
        let err = split_model(&model, &samples[1..], SplitBy::Chunks(2)).unwrap_err();
        assert!(matches!(err, BatchError::Model(_)), "{err}");
        let err = split_model(&samples, &samples, SplitBy::Chunks(2)).unwrap_err();
        assert!(matches!(err, BatchError::Model(_)), "{err}");
        let err = split_model(&model, &samples, SplitBy::Chunks(11)).unwrap_err();
        assert!(matches!(err, BatchError::TooManyChunks { .. }), "{err}");
    }
}
