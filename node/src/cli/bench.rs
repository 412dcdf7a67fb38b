//! `stp bench ...`: benchmarks that print figures (never timed assertions).
//! `stp bench kernels` measures every built-in kernel on the GPU backend and on the CPU
//! reference; `stp bench p2p` compares libp2p blob transfer with a plain TCP socket;
//! `stp bench model` measures quantized models (`bench_model`).

use clap::{Args, Subcommand};
use serde_json::json;

use super::bench_p2p::BenchP2pArgs;
use super::bench_scale::BenchScaleArgs;
use crate::cli::common::{out, out_json};
use crate::exec::bench::{bench_kernel, default_sizes};
use crate::exec::{Backend, ExecConfig, ExecError, Executor};

/// Benchmarks.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: BenchCommand,
}

/// `stp bench` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum BenchCommand {
    /// Throughput of each built-in kernel on the GPU and on the CPU reference.
    Kernels(BenchKernelsArgs),
    /// Blob transfer throughput: libp2p (TCP+noise+yamux, verified) vs a plain TCP socket.
    P2p(BenchP2pArgs),
    /// The engine under load: consumers post jobs at a steady rate to running provider
    /// nodes (see `scripts/bench-scale`); prints completed/lost, jobs per minute, latency
    /// and RPC requests per job.
    Scale(BenchScaleArgs),
    /// The consumer-side check of each built-in kernel (Freivalds, sampling) against
    /// recomputing the output with the CPU reference: times, ratio, false-accept bound.
    Verify(super::bench_verify::BenchVerifyArgs),
    /// Inferences per second of quantized models (`stp model`) on the GPU and on the CPU
    /// reference at batch sizes 1, 64 and 1024, outputs compared by hash.
    Model(super::bench_model::BenchModelArgs),
}

/// `stp bench kernels`.
#[derive(Debug, Clone, Args)]
pub struct BenchKernelsArgs {
    /// Only the two smallest sizes of each kernel.
    #[arg(long)]
    pub quick: bool,
    /// wgpu backends to search, e.g. `vulkan` or `gl` (default: `WGPU_BACKEND` or all).
    #[arg(long)]
    pub wgpu_backends: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    /// Runs the chosen benchmark.
    pub async fn run(self) -> eyre::Result<()> {
        match self.command {
            BenchCommand::Kernels(args) => args.run().await,
            BenchCommand::P2p(args) => args.run().await,
            BenchCommand::Scale(args) => args.run().await,
            BenchCommand::Verify(args) => args.run().await,
            BenchCommand::Model(args) => args.run().await,
        }
    }
}

/// `1234567.0` -> `1.23 M`.
fn si(value: f64) -> String {
    let units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    for (scale, suffix) in units {
        if value >= scale {
            return format!("{:.2} {suffix}", value / scale);
        }
    }
    format!("{value:.1} ")
}

impl BenchKernelsArgs {
    async fn run(self) -> eyre::Result<()> {
        let mut config = ExecConfig::new(Backend::Gpu)?;
        config.wgpu_backends = self.wgpu_backends.clone();
        let gpu = match Executor::new(config).await {
            Ok(exec) => Some(exec),
            Err(e @ ExecError::NoAdapter { .. }) => {
                tracing::warn!(error = %e, "no GPU adapter: measuring the CPU reference only");
                None
            }
            Err(e) => return Err(e.into()),
        };
        let adapter = gpu
            .as_ref()
            .map_or("none".to_owned(), |g| g.adapter_info().to_string());
        if !self.json {
            out(format_args!("adapter: {adapter}"));
            out(format_args!(
                "{:<17} {:<16} {:>15} {:>15} {:>9}  {:<6} unit",
                "kernel", "size", "GPU units/s", "CPU units/s", "GPU/CPU", "match"
            ));
        }
        let mut rows = Vec::new();
        for (kernel, size) in default_sizes(self.quick) {
            let row = bench_kernel(gpu.as_ref(), kernel, &size).await?;
            if !self.json {
                let gpu_rate = row.gpu_units_per_second.map_or("-".to_owned(), si);
                let ratio = row.ratio().map_or("-".to_owned(), |r| format!("{r:.2}x"));
                let matched = row
                    .outputs_match
                    .map_or("-", |m| if m { "yes" } else { "NO" });
                out(format_args!(
                    "{:<17} {:<16} {:>15} {:>15} {:>9}  {:<6} {}",
                    row.kernel,
                    row.size,
                    gpu_rate,
                    si(row.cpu_units_per_second),
                    ratio,
                    matched,
                    row.work_unit
                ));
            }
            rows.push(row);
        }
        let score = match &gpu {
            Some(exec) => Some(exec.benchmark_score().await?),
            None => None,
        };
        if self.json {
            let out = json!({ "adapter": adapter, "kernels": rows, "score": score });
            out_json(&out)?;
        } else if let Some(s) = score {
            out(format_args!(
                "hardware score: {} {}/s ({} {}, {} runs)",
                si(s.units_per_second),
                s.work_unit,
                s.kernel,
                s.size,
                s.runs
            ));
        }
        Ok(())
    }
}
