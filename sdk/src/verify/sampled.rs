//! Sampled re-computation for kernels without algebraic structure (`sha256-batch`,
//! `mandelbrot-fixed`, model jobs): recompute s distinct units (messages, pixels, samples
//! of a batch) chosen at random
//! after the output arrived, with the CPU reference of just those units.
//!
//! *Bound.* Let the output have U units of which W ≥ f·U are wrong. The i-th distinct
//! sample misses every wrong unit, given the earlier ones did, with probability
//! `(U − W − i)/(U − i) ≤ (U − W)/U ≤ 1 − f`, so all s samples miss with probability
//! at most `(1 − f)ˢ`: the output is caught with probability at least `1 − (1 − f)ˢ`.
//! At f = 1 %, s = 459 ([`super::DEFAULT_SAMPLES`]) gives ≥ 99 % (0.99⁴⁵⁹ ≈ 0.0099). When
//! s ≥ U every unit is recomputed and no wrong output passes.
//!
//! An output with only a few wrong units (one bad digest among millions) passes sampling
//! with high probability; that is what the bound says, and replication or a challenge
//! covers it.

use super::{Checked, DESIGN_FRACTION, FalseAccept, Method, Outcome, Seed, Unit, length_mismatch};
use crate::kernels::{Result, mandelbrot, sha256_batch};
use crate::model::job::ModelJob;
use crate::model::run_cpu;

/// `samples` distinct indices in `0..units`, ascending (all of them if `samples >= units`),
/// by Floyd's algorithm.
fn choose(units: u64, samples: u32, seed: &Seed, purpose: &str) -> Vec<u64> {
    let s = samples as u64;
    if s >= units {
        return (0..units).collect();
    }
    let mut stream = seed.stream(purpose);
    let mut chosen = std::collections::BTreeSet::new();
    for j in units - s..units {
        let t = stream.below(j + 1);
        if !chosen.insert(t) {
            chosen.insert(j);
        }
    }
    chosen.into_iter().collect()
}

fn sampled(units: u64, samples: usize, outcome: Outcome) -> Checked {
    let samples = samples as u64;
    let false_accept = if samples >= units {
        FalseAccept::Never
    } else {
        FalseAccept::WrongFraction {
            fraction: DESIGN_FRACTION,
            probability: (1.0 - DESIGN_FRACTION).powf(samples as f64),
        }
    };
    Checked {
        method: Method::Sampled { samples, units },
        false_accept,
        outcome,
    }
}

/// Recomputes `samples` random digests.
pub(crate) fn check_sha256(
    input: &[u8],
    output: &[u8],
    samples: u32,
    seed: &Seed,
) -> Result<Checked> {
    let parsed = sha256_batch::parse(input)?;
    let units = parsed.count as u64;
    let picks = choose(units, samples, seed, "sample sha256-batch");
    if let Some(outcome) = length_mismatch(units * 32, output) {
        return Ok(sampled(units, picks.len(), outcome));
    }
    let wrong = picks.iter().map(|&i| i as u32).find(|&i| {
        let at = i as usize * 32;
        parsed.digest(i)[..] != output[at..at + 32]
    });
    let outcome = wrong.map_or(Outcome::Pass, |index| Outcome::Fail {
        unit: Unit::Message { index },
    });
    Ok(sampled(units, picks.len(), outcome))
}

/// Recomputes `samples` random pixels.
pub(crate) fn check_mandelbrot(
    input: &[u8],
    output: &[u8],
    samples: u32,
    seed: &Seed,
) -> Result<Checked> {
    let tile = mandelbrot::parse(input)?;
    let units = tile.width as u64 * tile.height as u64;
    let picks = choose(units, samples, seed, "sample mandelbrot-fixed");
    if let Some(outcome) = length_mismatch(units * 4, output) {
        return Ok(sampled(units, picks.len(), outcome));
    }
    let wrong = picks.iter().copied().find(|&i| {
        let (x, y) = (
            (i % tile.width as u64) as u32,
            (i / tile.width as u64) as u32,
        );
        let at = i as usize * 4;
        tile.pixel(x, y)[..] != output[at..at + 4]
    });
    let outcome = wrong.map_or(Outcome::Pass, |i| Outcome::Fail {
        unit: Unit::Pixel {
            x: (i % tile.width as u64) as u32,
            y: (i / tile.width as u64) as u32,
        },
    });
    Ok(sampled(units, picks.len(), outcome))
}

/// Recomputes `samples` random samples of a model job on the CPU reference (one run over
/// just the chosen samples) and compares every output of each.
pub(crate) fn check_model(
    job: &ModelJob<'_>,
    output: &[u8],
    samples: u32,
    seed: &Seed,
) -> Result<Checked> {
    let units = u64::from(job.batch);
    let picks = choose(units, samples, seed, "sample model job");
    if let Some(outcome) = length_mismatch(job.output_len(), output) {
        return Ok(sampled(units, picks.len(), outcome));
    }
    let sample = job.model.input().bytes() as usize;
    let chosen: Vec<u8> = picks
        .iter()
        .flat_map(|&i| &job.samples[i as usize * sample..(i as usize + 1) * sample])
        .copied()
        .collect();
    let recomputed = run_cpu(&job.model, &chosen)?;
    let m = job.model.model();
    let mut at = 0usize;
    let mut wrong = None;
    for (&tensor, mine) in m.outputs.iter().zip(&recomputed.outputs) {
        let per = m.tensors[tensor as usize].bytes() as usize;
        let theirs = &output[at..at + per * job.batch as usize];
        let bad = picks.iter().enumerate().find(|&(j, &i)| {
            mine[j * per..(j + 1) * per] != theirs[i as usize * per..(i as usize + 1) * per]
        });
        if let Some((_, &i)) = bad {
            wrong = Some(wrong.map_or(i, |w: u64| w.min(i)));
        }
        at += per * job.batch as usize;
    }
    let outcome = wrong.map_or(Outcome::Pass, |i| Outcome::Fail {
        unit: Unit::Sample { index: i as u32 },
    });
    Ok(sampled(units, picks.len(), outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choose_returns_distinct_sorted_indices_in_range() {
        for seed in 0..50u8 {
            let picks = choose(1000, 459, &Seed([seed; 32]), "t");
            assert_eq!(picks.len(), 459);
            assert!(picks.windows(2).all(|w| w[0] < w[1]));
            assert!(picks.iter().all(|&i| i < 1000));
        }
        assert_eq!(choose(5, 459, &Seed([0; 32]), "t"), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn choose_covers_the_range_evenly() {
        // 2,000 draws of 10 out of 100: each index is expected 200 times.
        let mut hits = [0u32; 100];
        for seed in 0..2000u32 {
            let mut s = [0u8; 32];
            s[..4].copy_from_slice(&seed.to_le_bytes());
            for i in choose(100, 10, &Seed(s), "t") {
                hits[i as usize] += 1;
            }
        }
        assert!(hits.iter().all(|&h| (120..=280).contains(&h)), "{hits:?}");
    }
}
