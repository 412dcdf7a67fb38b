//! The worker: the child process (`stp exec-worker`) that owns the GPU device and the
//! pipeline cache and runs one job at a time. A runaway shader cannot be cancelled inside a
//! process, so the parent kills this process when a job's deadline passes.

use std::io::{self, BufReader, BufWriter};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stp_sdk::kernels::{self, KernelError, KernelId};
use stp_sdk::model::job::ModelJob;

use super::gpu::GpuRuntime;
use super::protocol::{Hello, Request, Response, WireError, read_frame, write_frame};
use super::{AdapterSummary, Backend, ExecError, Result};

/// The worker's configuration, passed as one JSON argument by the parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerConfig {
    /// Where kernels run.
    pub backend: Backend,
    /// wgpu backends to search, e.g. `vulkan` or `gl` (`None`: `WGPU_BACKEND` or all).
    pub wgpu_backends: Option<String>,
    /// Largest input frame accepted.
    pub max_input_bytes: u64,
}

/// Runs jobs on a GPU device or on the CPU references. Used by the worker process, and
/// directly (in-process) by tests and benchmarks that trust their kernels to terminate.
pub enum Engine {
    /// wgpu on the chosen adapter.
    Gpu(Box<GpuRuntime>),
    /// The CPU references.
    Cpu,
}

impl Engine {
    /// Opens the engine for `backend`. Under [`Backend::Auto`] a missing adapter falls back
    /// to the CPU; the second value then says why.
    pub fn open(backend: Backend, wgpu_backends: Option<&str>) -> Result<(Self, Option<String>)> {
        match backend {
            Backend::Cpu => Ok((Self::Cpu, None)),
            Backend::Gpu => Ok((Self::Gpu(Box::new(GpuRuntime::open(wgpu_backends)?)), None)),
            Backend::Auto => match GpuRuntime::open(wgpu_backends) {
                Ok(rt) => Ok((Self::Gpu(Box::new(rt)), None)),
                Err(e) => {
                    tracing::warn!(error = %e, "no usable GPU: running kernels on the CPU references (slow)");
                    Ok((Self::Cpu, Some(e.to_string())))
                }
            },
        }
    }

    /// What jobs run on.
    pub fn summary(&self) -> AdapterSummary {
        match self {
            Self::Gpu(rt) => rt.summary().clone(),
            Self::Cpu => AdapterSummary::cpu_reference(),
        }
    }

    /// Runs one job; returns the output and the compute time.
    pub fn run(&mut self, kernel: &KernelId, input: &[u8]) -> Result<(Vec<u8>, Duration)> {
        if let Some(job) = kernels::model_job(kernel, input) {
            return self.run_model(&job?);
        }
        match self {
            Self::Gpu(rt) => {
                let plan = kernels::plan(kernel, input)?;
                rt.run(&plan)
            }
            Self::Cpu => {
                let started = Instant::now();
                let out = kernels::cpu_reference(kernel, input)?;
                Ok((out, started.elapsed()))
            }
        }
    }
}

impl Engine {
    /// Runs a model job op by op ([`super::model::run_gpu`]) or on the CPU reference.
    fn run_model(&mut self, job: &ModelJob<'_>) -> Result<(Vec<u8>, Duration)> {
        match self {
            Self::Gpu(rt) => {
                let (out, took) = super::model::run_gpu(rt, &job.model, job.samples)?;
                Ok((out.to_bytes(), took))
            }
            Self::Cpu => {
                let started = Instant::now();
                let out = job.cpu_reference()?;
                Ok((out, started.elapsed()))
            }
        }
    }
}

fn protocol_error(e: io::Error) -> ExecError {
    ExecError::WorkerDied {
        message: format!("worker protocol: {e}"),
    }
}

/// Serves jobs on stdin/stdout until stdin closes. Returns an error only when the
/// protocol itself breaks; job failures are answered as [`Response::Failed`].
pub fn serve(config: &WorkerConfig) -> Result<()> {
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = BufWriter::new(io::stdout().lock());
    let mut engine = match Engine::open(config.backend, config.wgpu_backends.as_deref()) {
        Ok((engine, fallback)) => {
            let hello = Hello::Ready {
                adapter: engine.summary(),
                fallback,
            };
            write_frame(&mut output, &hello, &[]).map_err(protocol_error)?;
            engine
        }
        Err(e) => {
            let hello = Hello::Failed {
                error: WireError::from(e),
            };
            return write_frame(&mut output, &hello, &[]).map_err(protocol_error);
        }
    };
    while let Some((request, job_input)) =
        read_frame::<Request>(&mut input, config.max_input_bytes).map_err(protocol_error)?
    {
        let response = match engine.run(&request.kernel, &job_input) {
            Ok((out, elapsed)) => {
                let done = Response::Done {
                    elapsed_ns: elapsed.as_nanos() as u64,
                };
                write_frame(&mut output, &done, &out)
            }
            Err(e) => {
                tracing::debug!(error = %e, kernel = %request.kernel, "job failed");
                write_frame(&mut output, &Response::Failed { error: wire(e) }, &[])
            }
        };
        response.map_err(protocol_error)?;
    }
    Ok(())
}

fn wire(e: ExecError) -> WireError {
    match e {
        ExecError::Kernel(KernelError::NoCpuReference { id }) => WireError::Gpu {
            message: format!("custom kernel {id} has no CPU reference; this worker has no GPU"),
        },
        other => WireError::from(other),
    }
}
