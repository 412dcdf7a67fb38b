//! `stp model info|run|synth|input|import`: inspect a quantized model (`.stpm`), run it on
//! a batch of int8 inputs on the GPU or the CPU reference, make synthetic models and inputs
//! for tests and demos, and import int8 QDQ ONNX models.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use eyre::{WrapErr, bail};
use serde_json::json;
use stp_sdk::model::{DType, ModelOutput, Op, ValidModel, onnx, ops::i32s, run_cpu, synth};

use crate::cli::common::{out, out_json};
use crate::exec::gpu::GpuRuntime;
use crate::exec::model::run_gpu;

/// Inspect, run and synthesize quantized integer-only models.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: ModelCommand,
}

/// `stp model` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ModelCommand {
    /// Show a model's id, tensors and ops.
    Info(InfoArgs),
    /// Run a model on a batch of int8 inputs; print classes / logits and the outputs' SHA-256.
    Run(RunArgs),
    /// Write a synthetic (untrained, deterministic random) perceptron model.
    Synth(SynthArgs),
    /// Write a batch of random int8 inputs for a model.
    Input(InputArgs),
    /// Import an int8 QDQ-quantized ONNX model; print its id and the scale conversion's error.
    Import(ImportArgs),
    /// Score a model's outputs (of `stp model run --output`, a job's or a batch's output)
    /// against labels: the predicted class of each sample and the accuracy.
    ///
    /// Example: stp model score digits.stpm --outputs predictions.bin \
    ///     --labels models/digits/heldout_labels.bin
    #[command(verbatim_doc_comment)]
    Score(ScoreArgs),
}

/// `stp model score`.
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// The model file (`.stpm`) the outputs came from.
    pub model: PathBuf,
    /// The outputs' bytes: every model output over the batch, concatenated in order.
    #[arg(long)]
    pub outputs: PathBuf,
    /// The true class of each sample, one byte each.
    #[arg(long)]
    pub labels: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `stp model info`.
#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// The model file (`.stpm`).
    pub model: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where `stp model run` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelBackend {
    /// A GPU adapter through wgpu (fails if there is none).
    Gpu,
    /// The plain-Rust CPU reference.
    Cpu,
}

/// `stp model run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The model file (`.stpm`).
    pub model: PathBuf,
    /// Input file: a batch of int8 samples back to back, each the input tensor's size.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to run.
    #[arg(long, value_enum, default_value = "gpu")]
    pub backend: ModelBackend,
    /// wgpu backends to search, e.g. `vulkan` or `gl` (default: `WGPU_BACKEND`, else Vulkan/Metal/DX12, then GL).
    #[arg(long)]
    pub wgpu_backends: Option<String>,
    /// Also write the outputs' bytes (concatenated in order) here.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `stp model synth`.
#[derive(Debug, Clone, Args)]
pub struct SynthArgs {
    /// Layer sizes, input first, e.g. `784,1024,1024,10`.
    #[arg(long, value_delimiter = ',', required = true)]
    pub layers: Vec<u32>,
    /// Seed of the pseudo-random weights.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the model.
    #[arg(long)]
    pub output: PathBuf,
}

/// `stp model input`.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// The model file (`.stpm`).
    pub model: PathBuf,
    /// Samples in the batch.
    #[arg(long, default_value_t = 1)]
    pub batch: u32,
    /// Seed of the pseudo-random bytes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the input.
    #[arg(long)]
    pub output: PathBuf,
}

/// `stp model import`.
#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The ONNX file (int8, QDQ format, per-tensor scales).
    pub onnx: PathBuf,
    /// Where to write the model (`.stpm`).
    #[arg(long)]
    pub output: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl ModelArgs {
    /// Runs the chosen subcommand.
    pub fn run(self) -> eyre::Result<()> {
        match self.command {
            ModelCommand::Info(a) => a.run(),
            ModelCommand::Run(a) => a.run(),
            ModelCommand::Synth(a) => a.run(),
            ModelCommand::Input(a) => a.run(),
            ModelCommand::Import(a) => a.run(),
            ModelCommand::Score(a) => a.run(),
        }
    }
}

fn load(path: &Path) -> eyre::Result<ValidModel> {
    let bytes =
        std::fs::read(path).wrap_err_with(|| format!("cannot read model {}", path.display()))?;
    ValidModel::decode(&bytes).wrap_err_with(|| format!("{} is not a valid model", path.display()))
}

fn describe(model: &ValidModel, t: u32) -> String {
    let tensor = &model.model().tensors[t as usize];
    let kind = if tensor.data.is_some() { " const" } else { "" };
    format!("t{t} {}{:?}{kind}", tensor.dtype.name(), tensor.shape)
}

fn op_line(model: &ValidModel, op: &Op) -> String {
    let inputs: Vec<String> = op.inputs().iter().map(|&t| describe(model, t)).collect();
    let detail = match op {
        Op::FullyConnected {
            input_zero_point,
            weight_zero_point,
            ..
        } => format!(" zp_in={input_zero_point} zp_w={weight_zero_point}"),
        Op::Requantize { requant: q, .. } => format!(
            " multiplier={} shift={} zp_out={} range={}..={}",
            q.multiplier, q.shift, q.output_zero_point, q.act_min, q.act_max
        ),
        Op::Conv2d {
            input_zero_point,
            filter_zero_point,
            geometry: g,
            ..
        } => format!(
            " zp_in={input_zero_point} zp_f={filter_zero_point} stride={}x{} pad(t,l,b,r)={},{},{},{}",
            g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.pad_bottom, g.pad_right
        ),
        Op::Add {
            a_zero_point,
            b_zero_point,
            left_shift,
            requant: q,
            ..
        } => format!(
            " zp_a={a_zero_point} zp_b={b_zero_point} left_shift={left_shift} zp_out={} range={}..={}",
            q.output_zero_point, q.act_min, q.act_max
        ),
        Op::MaxPool2d { pool, .. } | Op::AvgPool2d { pool, .. } => format!(
            " window={}x{} stride={}x{}",
            pool.kernel_h, pool.kernel_w, pool.stride_h, pool.stride_w
        ),
        _ => String::new(),
    };
    format!(
        "{} ({}) -> {}{detail}",
        op.name(),
        inputs.join(", "),
        describe(model, op.output())
    )
}

impl InfoArgs {
    fn run(self) -> eyre::Result<()> {
        let model = load(&self.model)?;
        let m = model.model();
        let ops: Vec<String> = m.ops.iter().map(|op| op_line(&model, op)).collect();
        let outputs: Vec<String> = m.outputs.iter().map(|&t| describe(&model, t)).collect();
        let constant_bytes: u64 = m
            .tensors
            .iter()
            .filter(|t| t.data.is_some())
            .map(|t| t.bytes())
            .sum();
        if self.json {
            return out_json(&json!({
                "id": model.id().to_string(), "input": describe(&model, m.input),
                "outputs": outputs, "ops": ops, "tensors": m.tensors.len(),
                "constant_bytes": constant_bytes,
            }));
        }
        out(format_args!("id       {}", model.id()));
        out(format_args!("input    {}", describe(&model, m.input)));
        out(format_args!("outputs  {}", outputs.join(", ")));
        out(format_args!(
            "tensors  {} ({constant_bytes} bytes of constants)",
            m.tensors.len()
        ));
        for (i, line) in ops.iter().enumerate() {
            out(format_args!("op {i:<3}  {line}"));
        }
        Ok(())
    }
}

/// The values of one output, per sample: int8 or int32 numbers.
fn per_sample(model: &ValidModel, t: u32, bytes: &[u8], batch: u32) -> Vec<Vec<i32>> {
    let values: Vec<i32> = match model.model().tensors[t as usize].dtype {
        DType::I8 => bytes.iter().map(|&b| b as i8 as i32).collect(),
        DType::I32 => i32s(bytes),
    };
    let per = (values.len() / batch.max(1) as usize).max(1);
    values.chunks(per).map(<[i32]>::to_vec).collect()
}

impl RunArgs {
    fn run(self) -> eyre::Result<()> {
        let model = load(&self.model)?;
        let input = std::fs::read(&self.input)
            .wrap_err_with(|| format!("cannot read input {}", self.input.display()))?;
        model.batch_of(&input)?;
        let (result, backend, took) = match self.backend {
            ModelBackend::Cpu => {
                let started = Instant::now();
                let result = run_cpu(&model, &input)?;
                (result, "cpu reference".to_owned(), started.elapsed())
            }
            ModelBackend::Gpu => {
                let mut rt = GpuRuntime::open(self.wgpu_backends.as_deref())?;
                let name = rt.summary().to_string();
                let (result, device_time) = run_gpu(&mut rt, &model, &input)?;
                (result, name, device_time)
            }
        };
        tracing::info!(
            ms = took.as_secs_f64() * 1e3,
            "computed (device time: uploads, dispatches, read-backs; compilation excluded)"
        );
        if let Some(path) = &self.output {
            std::fs::write(path, result.outputs.concat())
                .wrap_err_with(|| format!("cannot write {}", path.display()))?;
        }
        self.print(&model, &result, &backend)
    }

    fn print(&self, model: &ValidModel, result: &ModelOutput, backend: &str) -> eyre::Result<()> {
        let hash = hex::encode(result.sha256());
        let outputs: Vec<_> = model
            .model()
            .outputs
            .iter()
            .zip(&result.outputs)
            .map(|(&t, bytes)| (t, per_sample(model, t, bytes, result.batch)))
            .collect();
        if self.json {
            let list: Vec<_> = outputs
                .iter()
                .map(|(t, v)| json!({"tensor": t, "values": v}))
                .collect();
            return out_json(&json!({
                "model": model.id().to_string(), "backend": backend, "batch": result.batch,
                "outputs": list, "sha256": hash,
            }));
        }
        out(format_args!(
            "model {} on {backend}, batch {}",
            model.id(),
            result.batch
        ));
        for (t, samples) in &outputs {
            let shape = &model.model().tensors[*t as usize].shape;
            if shape == &[1] {
                let classes: Vec<i32> = samples.iter().map(|s| s[0]).collect();
                out(format_args!("t{t} classes: {classes:?}"));
            } else {
                for (i, s) in samples.iter().enumerate() {
                    out(format_args!("t{t} sample {i}: {s:?}"));
                }
            }
        }
        out(format_args!("sha256 {hash}"));
        Ok(())
    }
}

/// The predicted class of each sample: the model's class output (an int32 output of one
/// element per sample, as argmax gives), else the largest value of its first output.
fn classes(model: &ValidModel, outputs: &[u8]) -> eyre::Result<Vec<i32>> {
    let m = model.model();
    let per: u64 = m
        .outputs
        .iter()
        .map(|&o| m.tensors[o as usize].bytes())
        .sum();
    let len = outputs.len() as u64;
    if len == 0 || !len.is_multiple_of(per) {
        bail!(
            "{len} bytes of outputs are not a whole batch of this model's outputs ({per} bytes a sample): were they made by another model?"
        );
    }
    let batch = (len / per) as u32;
    let mut at = 0usize;
    let mut first = None;
    for &t in &m.outputs {
        let bytes = &outputs[at..at + (m.tensors[t as usize].bytes() * u64::from(batch)) as usize];
        at += bytes.len();
        let samples = per_sample(model, t, bytes, batch);
        if m.tensors[t as usize].shape == [1] {
            return Ok(samples.iter().map(|s| s[0]).collect());
        }
        first.get_or_insert(samples);
    }
    let samples = first.unwrap_or_default();
    Ok(samples
        .iter()
        .map(|s| {
            (0..s.len())
                .max_by_key(|&i| (s[i], std::cmp::Reverse(i)))
                .unwrap_or(0) as i32
        })
        .collect())
}

impl ScoreArgs {
    fn run(self) -> eyre::Result<()> {
        let model = load(&self.model)?;
        let outputs = std::fs::read(&self.outputs)
            .wrap_err_with(|| format!("cannot read --outputs {}", self.outputs.display()))?;
        let labels = std::fs::read(&self.labels)
            .wrap_err_with(|| format!("cannot read --labels {}", self.labels.display()))?;
        let predicted = classes(&model, &outputs)?;
        if labels.len() != predicted.len() {
            bail!(
                "{} labels for {} samples: the labels must give one byte per sample",
                labels.len(),
                predicted.len()
            );
        }
        let correct = predicted
            .iter()
            .zip(&labels)
            .filter(|&(&p, &l)| p == i32::from(l))
            .count();
        let accuracy = correct as f64 / predicted.len() as f64;
        if self.json {
            return out_json(&json!({
                "model": model.id().to_string(), "samples": predicted.len(),
                "correct": correct, "accuracy": accuracy,
            }));
        }
        out(format_args!(
            "accuracy {:.2} % ({correct} of {} samples), model {}",
            accuracy * 100.0,
            predicted.len(),
            model.id()
        ));
        Ok(())
    }
}

impl SynthArgs {
    fn run(self) -> eyre::Result<()> {
        let model = ValidModel::new(synth::mlp(&self.layers, self.seed)?)?;
        std::fs::write(&self.output, model.model().encode())
            .wrap_err_with(|| format!("cannot write {}", self.output.display()))?;
        out(format_args!(
            "wrote synthetic (untrained) model {} to {}",
            model.id(),
            self.output.display()
        ));
        Ok(())
    }
}

impl InputArgs {
    fn run(self) -> eyre::Result<()> {
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        let model = load(&self.model)?;
        let input = synth::input(model.model(), self.batch, self.seed);
        model.batch_of(&input)?;
        std::fs::write(&self.output, &input)
            .wrap_err_with(|| format!("cannot write {}", self.output.display()))?;
        out(format_args!(
            "wrote {} samples ({} bytes) to {}",
            self.batch,
            input.len(),
            self.output.display()
        ));
        Ok(())
    }
}

impl ImportArgs {
    fn run(self) -> eyre::Result<()> {
        let bytes = std::fs::read(&self.onnx)
            .wrap_err_with(|| format!("cannot read {}", self.onnx.display()))?;
        let imported = onnx::import(&bytes)
            .wrap_err_with(|| format!("cannot import {}", self.onnx.display()))?;
        let model = &imported.model;
        std::fs::write(&self.output, model.model().encode())
            .wrap_err_with(|| format!("cannot write {}", self.output.display()))?;
        let scales: Vec<_> = imported
            .scales
            .iter()
            .map(|s| {
                json!({"node": s.node, "ratio": s.fixed.ratio, "multiplier": s.fixed.multiplier,
                    "shift": s.fixed.shift, "relative_error": s.fixed.relative_error})
            })
            .collect();
        if self.json {
            return out_json(&json!({
                "id": model.id().to_string(), "output": self.output.display().to_string(),
                "ops": model.model().ops.len(), "scales": scales,
                "max_scale_error": imported.max_scale_error(),
            }));
        }
        out(format_args!(
            "imported {} as model {} ({} ops) to {}",
            self.onnx.display(),
            model.id(),
            model.model().ops.len(),
            self.output.display()
        ));
        for s in &imported.scales {
            out(format_args!(
                "scale {}: {:e} -> multiplier {} shift {} (relative error {:.2e})",
                s.node, s.fixed.ratio, s.fixed.multiplier, s.fixed.shift, s.fixed.relative_error
            ));
        }
        out(format_args!(
            "largest relative scale error {:.2e}",
            imported.max_scale_error()
        ));
        Ok(())
    }
}
