//! `stp kernel list|run|input`: inspect the built-in kernels, run one on a file, and make
//! sample inputs.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use eyre::{WrapErr, bail};
use serde_json::json;
use stp_sdk::kernels::custom::LOOP_BUDGET;
use stp_sdk::kernels::sample::{SampleSize, sample_input};
use stp_sdk::kernels::{self, KernelId, custom, find_kernel, mandelbrot, result_hash};

use crate::cli::common::{out, out_json};
use crate::exec::{Backend, ExecConfig, Executor};

/// Inspect and run compute kernels.
#[derive(Debug, Clone, Args)]
pub struct KernelArgs {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: KernelCommand,
}

/// `stp kernel` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum KernelCommand {
    /// List the built-in kernels: ids, names, byte layouts.
    List(ListArgs),
    /// Run a kernel on an input file, write the output, print its SHA-256.
    #[command(after_help = loop_budget_help())]
    Run(RunArgs),
    /// Write a valid random input for a built-in kernel.
    Input(InputArgs),
}

/// `stp kernel list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `stp kernel run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Built-in kernel name or id, `custom` (id taken from the envelope), or a custom id.
    pub kernel: String,
    /// Input file (layout per `stp kernel list`).
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the output bytes.
    #[arg(long)]
    pub output: PathBuf,
    /// Where to run: a GPU, the CPU reference, or the GPU with CPU fallback.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: Backend,
    /// wgpu backends to search, e.g. `vulkan` or `gl` (default: `WGPU_BACKEND` or all).
    #[arg(long)]
    pub wgpu_backends: Option<String>,
    /// Deadline in seconds; the job is killed when it passes.
    #[arg(long, default_value_t = 60.0)]
    pub deadline: f64,
    /// For mandelbrot-fixed: also write the picture as a PPM image here.
    #[arg(long)]
    pub ppm: Option<PathBuf>,
    /// Print JSON instead of the bare hash.
    #[arg(long)]
    pub json: bool,
}

/// `stp kernel input`.
#[derive(Debug, Clone, Args)]
pub struct InputArgs {
    /// Built-in kernel name or id.
    pub kernel: String,
    /// Where to write the input.
    #[arg(long)]
    pub output: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Matmul: rows of A.
    #[arg(long, default_value_t = 64)]
    pub m: u32,
    /// Matmul: columns of A / rows of B.
    #[arg(long, default_value_t = 64)]
    pub k: u32,
    /// Matmul: columns of B.
    #[arg(long, default_value_t = 64)]
    pub n: u32,
    /// sha256-batch: number of messages.
    #[arg(long, default_value_t = 1024)]
    pub count: u32,
    /// sha256-batch: bytes per message.
    #[arg(long, default_value_t = 64)]
    pub len: u32,
    /// mandelbrot-fixed: width in pixels.
    #[arg(long, default_value_t = 256)]
    pub width: u32,
    /// mandelbrot-fixed: height in pixels.
    #[arg(long, default_value_t = 256)]
    pub height: u32,
    /// mandelbrot-fixed: iteration cap.
    #[arg(long, default_value_t = 256)]
    pub max_iter: u32,
}

impl KernelArgs {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> eyre::Result<()> {
        match self.command {
            KernelCommand::List(args) => args.run(),
            KernelCommand::Run(args) => args.run().await,
            KernelCommand::Input(args) => args.run(),
        }
    }
}

impl ListArgs {
    fn run(self) -> eyre::Result<()> {
        let defs = kernels::builtin_kernels();
        if self.json {
            let list: Vec<_> = defs
                .iter()
                .map(|d| {
                    json!({
                        "name": d.name, "id": d.id.to_string(), "summary": d.summary,
                        "entry_point": d.entry_point, "input": d.input_layout,
                        "output": d.output_layout, "work_unit": d.work_unit,
                        "bindings": d.bindings.iter()
                            .map(|b| json!({"binding": b.binding, "kind": b.kind.wgsl()}))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            out_json(&list)?;
            return Ok(());
        }
        for d in defs {
            out(format_args!("{}  {}", d.name, d.id));
            out(format_args!("    {}", d.summary));
            out(format_args!("    input:  {}", d.input_layout));
            out(format_args!("    output: {}", d.output_layout));
        }
        out("custom  (id = SHA-256 of the envelope's WGSL, entry point and bindings)");
        out("    input:  envelope b\"STPCUST1\" + WGSL + entry point + bindings + dispatch");
        out("    output: the declared output binding's bytes");
        out(format_args!(
            "    loops:  metered, {LOOP_BUDGET} loop passes per invocation (all loops together; sized so a whole SIMD group stays under Mesa's 65,535 cap); past that the run fails as out of fuel on every GPU; a loop with no exit is rejected"
        ));
        Ok(())
    }
}

/// What `stp kernel run --help` says about custom kernels' loop budget.
fn loop_budget_help() -> String {
    format!(
        "Custom kernels run with their loops metered: each invocation may make {LOOP_BUDGET} loop \
         passes, all its loops and the functions it calls together (a pass is each start of a \
         loop body: a `for` loop of n iterations takes n + 1; each loop in code the invocation \
         skips, such as the other side of an `if`, costs one). An invocation that needs more is \
         stopped and the run fails as out of fuel, identically on every GPU. The budget is \
         per invocation and small on purpose: Mesa's software driver silently cuts loops once \
         a SIMD group of invocations (up to 16 lanes) has made 65,535 passes together, real \
         GPUs do not, and 16 x {LOOP_BUDGET} stays under that cap whatever neighbouring \
         invocations do. \
         A loop with no break, return or `break if` is rejected before it runs. Long loops: do \
         fewer iterations per invocation and dispatch more workgroups."
    )
}

/// Resolves the kernel argument of `stp kernel run` to an id.
fn resolve_kernel(arg: &str, input: &[u8]) -> eyre::Result<KernelId> {
    if arg == "custom" {
        return Ok(custom::decode(input)
            .wrap_err("input is not a valid custom envelope")?
            .kernel_id());
    }
    if let Ok(def) = find_kernel(arg) {
        return Ok(def.id);
    }
    match arg.parse::<KernelId>() {
        Ok(id) => Ok(id),
        Err(_) => bail!(
            "unknown kernel `{arg}`: use a name from `stp kernel list`, `custom` or a kernel id"
        ),
    }
}

impl RunArgs {
    async fn run(self) -> eyre::Result<()> {
        let input = std::fs::read(&self.input)
            .wrap_err_with(|| format!("cannot read input {}", self.input.display()))?;
        let kernel = resolve_kernel(&self.kernel, &input)?;
        if !(self.deadline > 0.0 && self.deadline.is_finite()) {
            bail!("--deadline must be a positive number of seconds");
        }
        let mut config = ExecConfig::new(self.backend)?;
        config.wgpu_backends = self.wgpu_backends.clone();
        let executor = Executor::new(config).await?;
        let job = executor
            .run_timed(&kernel, &input, Duration::from_secs_f64(self.deadline))
            .await?;
        std::fs::write(&self.output, &job.output)
            .wrap_err_with(|| format!("cannot write output {}", self.output.display()))?;
        if let Some(ppm) = &self.ppm {
            let tile =
                mandelbrot::parse(&input).wrap_err("--ppm needs a mandelbrot-fixed input")?;
            std::fs::write(
                ppm,
                mandelbrot::to_ppm(tile.width, tile.height, &job.output)?,
            )
            .wrap_err_with(|| format!("cannot write {}", ppm.display()))?;
        }
        let hash = hex::encode(result_hash(&job.output));
        if self.json {
            let out = json!({
                "kernel": kernels::kernel_name(&kernel), "id": kernel.to_string(),
                "output_sha256": hash, "output_bytes": job.output.len(),
                "compute_ms": job.compute_time.as_secs_f64() * 1e3,
                "adapter": executor.adapter_info(),
            });
            out_json(&out)?;
        } else {
            out(format_args!("{hash}"));
        }
        Ok(())
    }
}

impl InputArgs {
    fn run(self) -> eyre::Result<()> {
        let def = find_kernel(&self.kernel)?;
        let size = SampleSize {
            m: self.m,
            k: self.k,
            n: self.n,
            count: self.count,
            len: self.len,
            width: self.width,
            height: self.height,
            max_iter: self.max_iter,
        };
        let input = sample_input(def.builtin, &size, self.seed)?;
        std::fs::write(&self.output, &input)
            .wrap_err_with(|| format!("cannot write {}", self.output.display()))?;
        out(format_args!(
            "{} {} bytes ({} {}) -> {}",
            def.name,
            input.len(),
            size.describe(def.builtin),
            def.id,
            self.output.display()
        ));
        Ok(())
    }
}
