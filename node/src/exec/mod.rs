//! Kernel execution: a wgpu runtime with the CPU references as fallback, run inside a
//! long-lived child process that is killed when a job's deadline passes.
//!
//! - [`Executor`]: what the node calls. Async, `Send + Sync`, jobs serialised to one worker.
//! - [`gpu::GpuRuntime`]: adapter choice, device, pipeline cache, error scopes.
//! - [`meter`]: custom kernels' loops metered against one per-invocation budget, so every
//!   backend computes them alike or fails them alike ([`ExecError::OutOfFuel`]).
//! - [`worker`]: the child process (`stp exec-worker`) and its framed stdin/stdout protocol.
//! - [`model`]: a quantized model run on the GPU, one dispatch per op in sequence.
//! - [`bench`]: the standard benchmark (hardware score) and the per-kernel throughput table.

pub mod bench;
pub mod chain;
mod error;
mod executor;
pub mod gpu;
pub mod meter;
pub mod model;
mod protocol;
pub mod worker;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use bench::BenchScore;
pub use error::{ExecError, Result};
pub use executor::{Executor, JobOutput};

/// Where kernels run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A GPU adapter (wgpu); fail if there is none.
    Gpu,
    /// The plain-Rust CPU references (built-in kernels only).
    Cpu,
    /// The GPU if an adapter exists, else the CPU references with a warning.
    Auto,
}

/// Limits checked before anything is allocated for a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecLimits {
    /// Largest accepted input, in bytes.
    pub max_input_bytes: u64,
    /// Largest accepted output, in bytes.
    pub max_output_bytes: u64,
    /// Most workgroups in any one dispatch dimension.
    pub max_workgroups_per_dim: u32,
    /// Most workgroups in a dispatch (x·y·z).
    pub max_workgroups_total: u64,
    /// Most device memory a job's buffers may take together (read-back included).
    pub max_device_bytes: u64,
}

impl Default for ExecLimits {
    fn default() -> Self {
        Self {
            max_input_bytes: 256 << 20,
            max_output_bytes: 256 << 20,
            max_workgroups_per_dim: 65_535,
            max_workgroups_total: 1 << 22,
            max_device_bytes: 1 << 30,
        }
    }
}

/// How to start the worker child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCommand {
    /// The program (the `stp` binary).
    pub program: PathBuf,
    /// Arguments placed before the worker's own (`exec-worker` for `stp`).
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// `<program> exec-worker`.
    pub fn stp(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: vec!["exec-worker".to_owned()],
        }
    }

    /// The running `stp` binary itself (`std::env::current_exe()`).
    pub fn current_exe() -> std::io::Result<Self> {
        Ok(Self::stp(std::env::current_exe()?))
    }
}

/// Executor configuration.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// Where kernels run.
    pub backend: Backend,
    /// wgpu backends to search (`None`: `WGPU_BACKEND` or all); e.g. `Some("gl")`.
    pub wgpu_backends: Option<String>,
    /// How to start the worker process.
    pub worker: WorkerCommand,
    /// Size and dispatch limits.
    pub limits: ExecLimits,
}

impl ExecConfig {
    /// Defaults for `backend` with the current executable as worker.
    pub fn new(backend: Backend) -> std::io::Result<Self> {
        Ok(Self {
            backend,
            wgpu_backends: None,
            worker: WorkerCommand::current_exe()?,
            limits: ExecLimits::default(),
        })
    }
}

/// What the executor runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterSummary {
    /// Adapter name, e.g. `NVIDIA GeForce RTX 4090` or `llvmpipe (LLVM 15.0.6, 256 bits)`;
    /// `cpu reference` when no GPU is used.
    pub name: String,
    /// wgpu backend (`Vulkan`, `Gl`, ...) or `cpu`.
    pub backend: String,
    /// Device type (`DiscreteGpu`, `Cpu` for software rasterisers, ...) or `cpu reference`.
    pub device_type: String,
    /// Driver name and version, when known.
    pub driver: String,
    /// True when jobs run on the CPU references, not through wgpu.
    pub cpu_reference: bool,
}

impl AdapterSummary {
    /// The summary for the CPU reference backend.
    pub fn cpu_reference() -> Self {
        Self {
            name: "cpu reference".to_owned(),
            backend: "cpu".to_owned(),
            device_type: "cpu reference".to_owned(),
            driver: String::new(),
            cpu_reference: true,
        }
    }

    pub(crate) fn from_wgpu(info: &wgpu::AdapterInfo) -> Self {
        Self {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_owned(),
            cpu_reference: false,
        }
    }
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cpu_reference {
            return f.write_str("cpu reference");
        }
        write!(f, "{} ({}, {})", self.name, self.backend, self.device_type)
    }
}
