//! `stp bench model`: inferences per second of quantized models on the GPU backend and on
//! the CPU reference, at several batch sizes, with the two outputs' SHA-256 compared on
//! every row (a figure, never a timed assertion).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use eyre::WrapErr;
use serde::Serialize;
use stp_sdk::model::{ModelOutput, ValidModel, run_cpu, synth};

use crate::cli::common::{out, out_json};
use crate::exec::ExecError;
use crate::exec::gpu::GpuRuntime;
use crate::exec::model::run_gpu;

/// The models measured when none is named: the shipped digits classifier (imported from
/// its ONNX file when run from the repository) and a larger synthetic perceptron.
const DEFAULT_MODELS: [&str; 3] = [
    "models/digits/digits_int8.onnx",
    "models/digits_cnn/digits_cnn_qdq.onnx",
    "synth:784,1024,1024,10",
];

/// `stp bench model`.
#[derive(Debug, Clone, Args)]
pub struct BenchModelArgs {
    /// A model to measure: a `.stpm` file, an int8 `.onnx` file (imported first), or
    /// `synth:L0,L1,...` for a synthetic (untrained) perceptron with those layer widths.
    /// Repeat for several. Default: `models/digits/digits_int8.onnx` and
    /// `models/digits_cnn/digits_cnn_qdq.onnx` (the shipped classifiers; run from the
    /// repository) and `synth:784,1024,1024,10`.
    #[arg(long)]
    pub model: Vec<String>,
    /// Batch sizes (samples per run).
    #[arg(long, value_delimiter = ',', default_value = "1,64,1024")]
    pub batches: Vec<u32>,
    /// Timed runs per row; the median is reported (one untimed GPU run first compiles the
    /// shaders).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    pub runs: u32,
    /// wgpu backends to search, e.g. `vulkan` or `gl` (default: `WGPU_BACKEND`, else Vulkan/Metal/DX12, then GL).
    #[arg(long)]
    pub wgpu_backends: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One model at one batch size.
#[derive(Debug, Serialize)]
struct Row {
    model: String,
    batch: u32,
    cpu_inferences_per_second: f64,
    gpu_inferences_per_second: Option<f64>,
    outputs_match: Option<bool>,
}

impl BenchModelArgs {
    /// Runs the benchmark.
    pub async fn run(self) -> eyre::Result<()> {
        let mut gpu = match GpuRuntime::open(self.wgpu_backends.as_deref()) {
            Ok(rt) => Some(rt),
            Err(e @ ExecError::NoAdapter { .. }) => {
                tracing::warn!(error = %e, "no GPU adapter: measuring the CPU reference only");
                None
            }
            Err(e) => return Err(e.into()),
        };
        let adapter = gpu
            .as_ref()
            .map_or("none".to_owned(), |g| g.summary().to_string());
        if !self.json {
            out(format_args!("adapter: {adapter}"));
            out(format_args!(
                "{:<38} {:>6} {:>14} {:>14} {:>9}  match",
                "model", "batch", "GPU inf/s", "CPU inf/s", "GPU/CPU"
            ));
        }
        let names: Vec<String> = if self.model.is_empty() {
            DEFAULT_MODELS.iter().map(ToString::to_string).collect()
        } else {
            self.model.clone()
        };
        let mut rows = Vec::new();
        for name in &names {
            let model = load(name)?;
            for &batch in &self.batches {
                let row = self.measure(gpu.as_mut(), name, &model, batch)?;
                if !self.json {
                    print_row(&row);
                }
                rows.push(row);
            }
        }
        if self.json {
            out_json(&serde_json::json!({ "adapter": adapter, "rows": rows }))?;
        }
        Ok(())
    }

    fn measure(
        &self,
        gpu: Option<&mut GpuRuntime>,
        name: &str,
        model: &ValidModel,
        batch: u32,
    ) -> eyre::Result<Row> {
        let input = synth::input(model.model(), batch, u64::from(batch));
        let (cpu_out, cpu_time) = median(self.runs, || {
            let started = Instant::now();
            Ok((run_cpu(model, &input)?, started.elapsed()))
        })?;
        let (gpu_rate, matched) = match gpu {
            Some(rt) => {
                run_gpu(rt, model, &input)?; // compiles the shaders
                let (gpu_out, gpu_time) = median(self.runs, || {
                    let started = Instant::now();
                    let (o, _) = run_gpu(rt, model, &input)?;
                    Ok((o, started.elapsed()))
                })?;
                (
                    Some(rate(batch, gpu_time)),
                    Some(gpu_out.sha256() == cpu_out.sha256()),
                )
            }
            None => (None, None),
        };
        Ok(Row {
            model: name.to_owned(),
            batch,
            cpu_inferences_per_second: rate(batch, cpu_time),
            gpu_inferences_per_second: gpu_rate,
            outputs_match: matched,
        })
    }
}

/// `synth:L0,L1,...` or a `.stpm` file.
fn load(name: &str) -> eyre::Result<ValidModel> {
    if let Some(layers) = name.strip_prefix("synth:") {
        let layers: Vec<u32> = layers
            .split(',')
            .map(|l| l.trim().parse())
            .collect::<Result<_, _>>()
            .wrap_err_with(|| format!("{name}: layer widths are comma-separated integers"))?;
        return Ok(ValidModel::new(synth::mlp(&layers, 7)?)?);
    }
    let path = PathBuf::from(name);
    let bytes = std::fs::read(&path).wrap_err_with(|| format!("cannot read {name}"))?;
    if path.extension().is_some_and(|e| e == "onnx") {
        let imported = stp_sdk::model::onnx::import(&bytes)
            .wrap_err_with(|| format!("cannot import {name}"))?;
        return Ok(imported.model);
    }
    ValidModel::decode(&bytes).wrap_err_with(|| format!("{name} is not a valid model"))
}

/// Runs `f` `runs` times; the output of the last run and the median time.
fn median(
    runs: u32,
    mut f: impl FnMut() -> eyre::Result<(ModelOutput, Duration)>,
) -> eyre::Result<(ModelOutput, Duration)> {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let (o, t) = f()?;
        times.push(t);
        last = Some(o);
    }
    times.sort_unstable();
    let out = last.expect("at least one run");
    Ok((out, times[times.len() / 2]))
}

fn rate(batch: u32, took: Duration) -> f64 {
    f64::from(batch) / took.as_secs_f64().max(1e-9)
}

fn print_row(row: &Row) {
    let gpu = row
        .gpu_inferences_per_second
        .map_or("-".to_owned(), |r| format!("{r:.1}"));
    let ratio = row.gpu_inferences_per_second.map_or("-".to_owned(), |g| {
        format!("{:.2}x", g / row.cpu_inferences_per_second)
    });
    let matched = row
        .outputs_match
        .map_or("-", |m| if m { "yes" } else { "NO" });
    out(format_args!(
        "{:<38} {:>6} {:>14} {:>14.1} {:>9}  {matched}",
        row.model, row.batch, gpu, row.cpu_inferences_per_second, ratio
    ));
}
