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
    /// The output of `scripts/gas-report` (a file): adds the price of a verified result,
    /// the replicas' gas plus the check, for k=3 replication against an optimistic k=1
    /// job checked with Freivalds (the largest matmul-u32 size measured).
    #[arg(long, value_name = "FILE")]
    pub gas_report: Option<std::path::PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The price of a verified matmul-u32 result both ways.
#[derive(Debug, Clone, Serialize)]
struct Price {
    size: String,
    /// Gas of a whole k=3 lifecycle (post, 3 commits, 3 reveals, 3 withdrawals).
    replicated_gas: u64,
    /// Computations a k=3 result costs the network.
    replicated_computations: u32,
    /// Gas of an optimistic lifecycle (post, commit, finalize after the window, withdraw).
    optimistic_gas: u64,
    /// The consumer's Freivalds check of the one result, seconds.
    check_seconds: f64,
    /// One computation on the CPU reference, seconds.
    compute_seconds: f64,
}

/// The figure after `label` on its line of a gas-report output.
fn gas_figure(report: &str, label: &str) -> eyre::Result<u64> {
    report
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
        .ok_or_else(|| {
            eyre::eyre!("no line `{label} N` in the gas report (run scripts/gas-report > FILE)")
        })
}

fn price(report: &str, rows: &[Row]) -> eyre::Result<Price> {
    let row = rows
        .iter()
        .rfind(|r| r.kernel == "matmul-u32")
        .ok_or_else(|| eyre::eyre!("no matmul-u32 size was measured"))?;
    Ok(Price {
        size: row.size.clone(),
        replicated_gas: gas_figure(report, "lifecycle gas, 3 replicas:")?,
        replicated_computations: 3,
        optimistic_gas: gas_figure(report, "optimistic lifecycle gas:")?,
        check_seconds: row.check_seconds,
        compute_seconds: row.compute_seconds,
    })
}

fn print_price(p: &Price) {
    out(format!(
        "\nprice of a verified matmul-u32 {} result:",
        p.size
    ));
    out(format!(
        "  k=3 replication:   {:>9} gas, {} computations ({}), no check",
        p.replicated_gas,
        p.replicated_computations,
        seconds(p.compute_seconds * f64::from(p.replicated_computations))
    ));
    out(format!(
        "  k=1 + Freivalds:   {:>9} gas, 1 computation ({}) + the consumer's check {} ({:.1} % of the gas, {:.1} % of the compute)",
        p.optimistic_gas,
        seconds(p.compute_seconds),
        seconds(p.check_seconds),
        100.0 * p.optimistic_gas as f64 / p.replicated_gas.max(1) as f64,
        100.0 * (p.compute_seconds + p.check_seconds) / (3.0 * p.compute_seconds).max(1e-9)
    ));
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
        let price = match &self.gas_report {
            Some(path) => {
                let report = std::fs::read_to_string(path)
                    .map_err(|e| eyre::eyre!("reading --gas-report {}: {e}", path.display()))?;
                Some(price(&report, &rows)?)
            }
            None => None,
        };
        if self.json {
            out_json(&json!({ "rows": rows, "price": price }))?;
        } else if let Some(p) = &price {
            print_price(p);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_price_reads_both_lifecycles_from_a_gas_report() {
        let report = "postJob 67151\noptimistic lifecycle gas: 199293\nchallenge + escalation gas, m=3: 433743\nlifecycle gas, 1 replica: 198013\nlifecycle gas, 3 replicas: 478002\n";
        let row = Row {
            kernel: "matmul-u32",
            size: "1024x1024x1024".into(),
            compute_seconds: 2.0,
            check_seconds: 0.1,
            ratio: 0.05,
            method: String::new(),
            false_accept: String::new(),
            corrupted_caught: true,
        };
        let p = price(report, &[row]).unwrap();
        assert_eq!((p.replicated_gas, p.optimistic_gas), (478_002, 199_293));
        assert!(price("lifecycle gas, 3 replicas: 1\n", &[]).is_err());
        assert!(gas_figure("optimistic lifecycle gas: x", "optimistic lifecycle gas:").is_err());
    }
}
