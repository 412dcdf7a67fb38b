//! `stp bench verify`: what the consumer-side check of each built-in kernel costs next to
//! computing the output again with the CPU reference, measured in the same process: the
//! reference's time, the check's time, their ratio and the check's false-accept bound.
//! Each size also runs the check once on a corrupted output (one matrix element off by
//! 2³¹; 1 % of the messages or pixels) and reports whether it was caught.

use std::time::{Duration, Instant};

use clap::Args;
use eyre::bail;
use serde::Serialize;
use serde_json::json;
use stp_sdk::kernels::sample::{SampleSize, SplitMix64, sample_input};
use stp_sdk::kernels::{self, Builtin, KernelDef};
use stp_sdk::verify::{self, Options, Outcome};

use super::common::{out, out_json};
use crate::consumer::os_seed;

/// Arguments of `stp bench verify`.
#[derive(Debug, Clone, Args)]
pub struct BenchVerifyArgs {
    /// Small sizes only (a smoke run of a few seconds).
    #[arg(long)]
    pub quick: bool,
    /// Units recomputed by the sampled checks.
    #[arg(long, default_value_t = verify::DEFAULT_SAMPLES)]
    pub samples: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One measured kernel and size.
#[derive(Debug, Clone, Serialize)]
struct Row {
    kernel: &'static str,
    size: String,
    /// Median seconds of the CPU reference.
    compute_seconds: f64,
    /// Median seconds of the check.
    check_seconds: f64,
    /// `check_seconds / compute_seconds`.
    ratio: f64,
    method: String,
    false_accept: String,
    /// Whether the corrupted output failed the check.
    corrupted_caught: bool,
}

fn matmul(m: u32) -> SampleSize {
    SampleSize {
        m,
        k: m,
        n: m,
        ..SampleSize::default()
    }
}

fn sha(count: u32, len: u32) -> SampleSize {
    SampleSize {
        count,
        len,
        ..SampleSize::default()
    }
}

fn tile(side: u32, max_iter: u32) -> SampleSize {
    SampleSize {
        width: side,
        height: side,
        max_iter,
        ..SampleSize::default()
    }
}

fn sizes(quick: bool) -> Vec<(Builtin, SampleSize)> {
    use Builtin::*;
    if quick {
        return vec![
            (MatmulU32, matmul(64)),
            (MatmulU32, matmul(128)),
            (MatmulI8, matmul(128)),
            (Sha256Batch, sha(4096, 64)),
            (Mandelbrot, tile(128, 64)),
        ];
    }
    vec![
        (MatmulU32, matmul(256)),
        (MatmulU32, matmul(512)),
        (MatmulU32, matmul(1024)),
        (MatmulU32, matmul(2048)),
        (MatmulI8, matmul(512)),
        (MatmulI8, matmul(1024)),
        (Sha256Batch, sha(65_536, 64)),
        (Sha256Batch, sha(4096, 4096)),
        (Mandelbrot, tile(512, 256)),
        (Mandelbrot, tile(1024, 1024)),
    ]
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// Runs `f` at least `min_runs` times and until `target` is spent; the median time.
fn measure<T>(
    min_runs: usize,
    target: Duration,
    mut f: impl FnMut() -> eyre::Result<T>,
) -> eyre::Result<(Duration, T)> {
    let mut times = Vec::new();
    let mut total = Duration::ZERO;
    loop {
        let start = Instant::now();
        let value = f()?;
        let t = start.elapsed();
        times.push(t);
        total += t;
        if times.len() >= min_runs && total >= target {
            return Ok((median(times), value));
        }
    }
}

/// The output with a wrong result a check must catch: one matrix element off by 2³¹
/// (the hardest error for ℤ/2³²), or a flipped byte in 1 % of the digests or pixels.
fn corrupt(kernel: Builtin, good: &[u8]) -> Vec<u8> {
    let mut bad = good.to_vec();
    match kernel {
        Builtin::MatmulU32 | Builtin::MatmulI8 => bad[good.len() / 2 + 3] ^= 0x80,
        Builtin::Sha256Batch | Builtin::Mandelbrot => {
            let unit = if kernel == Builtin::Sha256Batch {
                32
            } else {
                4
            };
            let units = good.len() / unit;
            let mut rng = SplitMix64::new(7);
            let mut wrong = vec![false; units];
            let mut done = 0;
            while done < units.div_ceil(100) {
                let u = (rng.next_u64() % units as u64) as usize;
                if !wrong[u] {
                    wrong[u] = true;
                    bad[u * unit] ^= 1;
                    done += 1;
                }
            }
        }
    }
    bad
}

fn def_of(kernel: Builtin) -> &'static KernelDef {
    kernels::builtin_kernels()
        .iter()
        .find(|d| d.builtin == kernel)
        .expect("every built-in has a definition")
}

fn bench_one(kernel: Builtin, size: &SampleSize, options: &Options) -> eyre::Result<Row> {
    let def = def_of(kernel);
    let input = sample_input(kernel, size, 1)?;
    let (compute, good) = measure(1, Duration::from_millis(500), || {
        Ok(kernels::cpu_reference(&def.id, &input)?)
    })?;
    let check = |output: &[u8]| -> eyre::Result<verify::Verdict> {
        Ok(verify::verify(
            &def.id,
            &input,
            output,
            options,
            &os_seed()?,
        )?)
    };
    let first = check(&good)?;
    if first.outcome != Outcome::Pass {
        bail!(
            "{}: the CPU reference's own output failed: {first}",
            def.name
        );
    }
    let (check_time, verdict) = measure(3, Duration::from_millis(300), || check(&good))?;
    let caught = matches!(
        check(&corrupt(kernel, &good))?.outcome,
        Outcome::Fail { .. }
    );
    Ok(Row {
        kernel: def.name,
        size: size.describe(kernel),
        compute_seconds: compute.as_secs_f64(),
        check_seconds: check_time.as_secs_f64(),
        ratio: check_time.as_secs_f64() / compute.as_secs_f64().max(1e-9),
        method: verdict.method.to_string(),
        false_accept: verdict.false_accept.to_string(),
        corrupted_caught: caught,
    })
}

fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.2} ms", s * 1e3)
    }
}

impl BenchVerifyArgs {
    /// Runs the benchmark and prints its figures.
    pub async fn run(self) -> eyre::Result<()> {
        let samples = std::num::NonZeroU32::new(self.samples)
            .ok_or_else(|| eyre::eyre!("--samples must be at least 1"))?;
        let options = Options { samples };
        if !self.json {
            out(format!(
                "{:<17} {:<16} {:>11} {:>11} {:>8}  {:<7} {:<40} false accept",
                "kernel", "size", "CPU ref", "check", "ratio", "caught", "method"
            ));
        }
        let mut rows = Vec::new();
        for (kernel, size) in sizes(self.quick) {
            let row = bench_one(kernel, &size, &options)?;
            if !self.json {
                out(format!(
                    "{:<17} {:<16} {:>11} {:>11} {:>7.2}%  {:<7} {:<40} {}",
                    row.kernel,
                    row.size,
                    seconds(row.compute_seconds),
                    seconds(row.check_seconds),
                    row.ratio * 100.0,
                    if row.corrupted_caught { "yes" } else { "NO" },
                    row.method,
                    row.false_accept
                ));
            }
            rows.push(row);
        }
        if self.json {
            out_json(&json!({ "rows": rows }))?;
        }
        Ok(())
    }
}
