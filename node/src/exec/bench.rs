//! Benchmarks: the standard hardware score a provider publishes, and the per-kernel
//! GPU-vs-CPU throughput table of `stp bench kernels`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stp_sdk::kernels::sample::{SampleSize, sample_input};
use stp_sdk::kernels::{self, Builtin, KernelDef};

use super::{AdapterSummary, ExecError, Executor, Result};

/// Deadline of one benchmark job.
const JOB_DEADLINE: Duration = Duration::from_secs(120);
/// Timed runs stop after this much measured time (at least [`MIN_RUNS`] runs).
const TARGET_TIME: Duration = Duration::from_millis(500);
const MIN_RUNS: u32 = 3;
const MAX_RUNS: u32 = 20;

/// The standard benchmark's job: `matmul-u32`, 256×256×256, seed 1.
const STANDARD_SIZE: SampleSize = SampleSize {
    m: 256,
    k: 256,
    n: 256,
    count: 0,
    len: 0,
    width: 0,
    height: 0,
    max_iter: 0,
};

/// A hardware score for a provider to publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchScore {
    /// The kernel measured (`matmul-u32`).
    pub kernel: String,
    /// Its size, e.g. `256x256x256`.
    pub size: String,
    /// The work unit (`multiply-add`).
    pub work_unit: String,
    /// Work units per second (median of the timed runs).
    pub units_per_second: f64,
    /// Timed runs.
    pub runs: u32,
    /// What ran it.
    pub adapter: AdapterSummary,
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn rate(units: u64, time: Duration) -> f64 {
    units as f64 / time.as_secs_f64().max(1e-9)
}

/// Runs `job` (after one warm-up) until enough time is measured; returns the median time
/// and the output of the last run.
async fn measure<F, Fut>(mut job: F) -> Result<(Duration, u32, Vec<u8>)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<u8>, Duration)>>,
{
    let (mut output, _) = job().await?;
    let mut times = Vec::new();
    let mut total = Duration::ZERO;
    while (times.len() as u32) < MIN_RUNS
        || (total < TARGET_TIME && (times.len() as u32) < MAX_RUNS)
    {
        let (out, t) = job().await?;
        output = out;
        total += t;
        times.push(t);
    }
    let runs = times.len() as u32;
    Ok((median(times), runs, output))
}

fn def_of(kernel: Builtin) -> &'static KernelDef {
    kernels::builtin_kernels()
        .iter()
        .find(|d| d.builtin == kernel)
        .expect("every builtin has a definition")
}

impl Executor {
    /// The standard benchmark: `matmul-u32` 256³ on this executor's backend, output checked
    /// against the CPU reference. Returns multiply-adds per second.
    pub async fn benchmark_score(&self) -> Result<BenchScore> {
        let def = def_of(Builtin::MatmulU32);
        let input = sample_input(Builtin::MatmulU32, &STANDARD_SIZE, 1)?;
        let (time, runs, output) = measure(|| async {
            let job = self.run_timed(&def.id, &input, JOB_DEADLINE).await?;
            Ok((job.output, job.compute_time))
        })
        .await?;
        let id = def.id;
        let check_input = input.clone();
        let reference =
            tokio::task::spawn_blocking(move || kernels::cpu_reference(&id, &check_input))
                .await
                .map_err(|e| ExecError::Gpu {
                    message: format!("reference task failed: {e}"),
                })??;
        if reference != output {
            return Err(ExecError::ReferenceMismatch {
                kernel: def.name.to_owned(),
            });
        }
        Ok(BenchScore {
            kernel: def.name.to_owned(),
            size: STANDARD_SIZE.describe(Builtin::MatmulU32),
            work_unit: def.work_unit.to_owned(),
            units_per_second: rate(kernels::work_units(&def.id, &input)?, time),
            runs,
            adapter: self.adapter_info(),
        })
    }
}

/// One row of `stp bench kernels`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelBench {
    /// Kernel name.
    pub kernel: String,
    /// Job size.
    pub size: String,
    /// Work unit.
    pub work_unit: String,
    /// Units per second on the GPU backend (None when no GPU executor was given).
    pub gpu_units_per_second: Option<f64>,
    /// Units per second of the CPU reference (single thread, in-process).
    pub cpu_units_per_second: f64,
    /// Whether the GPU output equalled the CPU reference byte for byte.
    pub outputs_match: Option<bool>,
}

impl KernelBench {
    /// GPU throughput divided by CPU throughput.
    pub fn ratio(&self) -> Option<f64> {
        self.gpu_units_per_second
            .map(|g| g / self.cpu_units_per_second.max(f64::MIN_POSITIVE))
    }
}

/// The sizes `stp bench kernels` measures; `quick` keeps the two smallest of each kernel.
pub fn default_sizes(quick: bool) -> Vec<(Builtin, SampleSize)> {
    let d = SampleSize::default();
    let mm = |s: u32| SampleSize {
        m: s,
        k: s,
        n: s,
        ..d
    };
    let sha = |count: u32, len: u32| SampleSize { count, len, ..d };
    let mb = |side: u32, max_iter: u32| SampleSize {
        width: side,
        height: side,
        max_iter,
        ..d
    };
    let all = [
        (Builtin::MatmulU32, vec![mm(64), mm(256), mm(512)]),
        (Builtin::MatmulI8, vec![mm(64), mm(256), mm(512)]),
        (
            Builtin::Sha256Batch,
            vec![sha(1024, 64), sha(16_384, 64), sha(4096, 1024)],
        ),
        (
            Builtin::Mandelbrot,
            vec![mb(128, 256), mb(512, 256), mb(1024, 512)],
        ),
    ];
    all.into_iter()
        .flat_map(|(k, sizes)| {
            let keep = if quick { 2 } else { sizes.len() };
            sizes.into_iter().take(keep).map(move |s| (k, s))
        })
        .collect()
}

/// Measures one kernel at one size on `gpu` (if given) and on the CPU reference.
pub async fn bench_kernel(
    gpu: Option<&Executor>,
    kernel: Builtin,
    size: &SampleSize,
) -> Result<KernelBench> {
    let def = def_of(kernel);
    let input = sample_input(kernel, size, 7)?;
    let units = kernels::work_units(&def.id, &input)?;
    let (cpu_time, _, cpu_out) = measure(|| async {
        let started = Instant::now();
        let out = kernels::cpu_reference(&def.id, &input)?;
        Ok((out, started.elapsed()))
    })
    .await?;
    let (gpu_rate, outputs_match) = match gpu {
        Some(exec) => {
            let (time, _, out) = measure(|| async {
                let job = exec.run_timed(&def.id, &input, JOB_DEADLINE).await?;
                Ok((job.output, job.compute_time))
            })
            .await?;
            (Some(rate(units, time)), Some(out == cpu_out))
        }
        None => (None, None),
    };
    Ok(KernelBench {
        kernel: def.name.to_owned(),
        size: size.describe(kernel),
        work_unit: def.work_unit.to_owned(),
        gpu_units_per_second: gpu_rate,
        cpu_units_per_second: rate(units, cpu_time),
        outputs_match,
    })
}
