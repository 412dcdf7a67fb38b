//! The parent side: checks limits, hands jobs to the worker process and kills it when a
//! deadline passes. A fresh worker is started lazily for the next job.

use std::process::Stdio;
use std::time::{Duration, Instant};

use stp_sdk::kernels::{self, KernelError, KernelId};
use stp_sdk::model::job::ModelJob;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use super::protocol::{Hello, Request, Response, read_frame_async, write_frame_async};
use super::worker::WorkerConfig;
use super::{AdapterSummary, ExecConfig, ExecError, Result};

/// How long a new worker may take to open its device and say hello.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// A job's output and the time the device spent computing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOutput {
    /// The output bytes.
    pub output: Vec<u8>,
    /// Device time (upload, dispatch, read-back) or CPU-reference time, as the worker
    /// measured it; process and pipe overhead excluded.
    pub compute_time: Duration,
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn died(message: impl Into<String>) -> ExecError {
    ExecError::WorkerDied {
        message: message.into(),
    }
}

/// Re-emits the worker's log lines through this process's `tracing` (until it exits).
async fn forward_logs(stderr: ChildStderr) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::info!(target: "stp_exec_worker", "{line}");
    }
}

impl Worker {
    async fn spawn(config: &ExecConfig) -> Result<(Self, AdapterSummary, Option<String>)> {
        let worker_config = WorkerConfig {
            backend: config.backend,
            wgpu_backends: config.wgpu_backends.clone(),
            max_input_bytes: config.limits.max_input_bytes,
        };
        let json = serde_json::to_string(&worker_config).map_err(|e| died(e.to_string()))?;
        let program = config.worker.program.display().to_string();
        let mut child = Command::new(&config.worker.program)
            .args(&config.worker.args)
            .arg("--config")
            .arg(json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ExecError::WorkerSpawn { program, source })?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(died("worker started without pipes"));
        };
        tokio::spawn(forward_logs(stderr));
        let mut worker = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let hello = tokio::time::timeout(
            STARTUP_TIMEOUT,
            read_frame_async::<Hello>(&mut worker.stdout, 0),
        )
        .await
        .map_err(|_| died(format!("worker did not start within {STARTUP_TIMEOUT:?}")))?;
        match hello {
            Ok((Hello::Ready { adapter, fallback }, _)) => Ok((worker, adapter, fallback)),
            Ok((Hello::Failed { error }, _)) => Err(error.into()),
            Err(e) => Err(worker.failure(e).await),
        }
    }

    /// Sends one job. The outer error means the worker is unusable; the inner one is the
    /// job's own failure (the worker stays healthy).
    async fn call(
        &mut self,
        kernel: &KernelId,
        input: &[u8],
        max_output: u64,
    ) -> Result<Result<JobOutput>> {
        let request = Request { kernel: *kernel };
        if let Err(e) = write_frame_async(&mut self.stdin, &request, input).await {
            return Err(self.failure(e).await);
        }
        match read_frame_async::<Response>(&mut self.stdout, max_output).await {
            Ok((Response::Done { elapsed_ns }, output)) => Ok(Ok(JobOutput {
                output,
                compute_time: Duration::from_nanos(elapsed_ns),
            })),
            Ok((Response::Failed { error }, _)) => Ok(Err(error.into())),
            Err(e) => Err(self.failure(e).await),
        }
    }

    /// Describes a broken pipe, with the worker's exit status when it has one.
    async fn failure(&mut self, e: std::io::Error) -> ExecError {
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        match status {
            Ok(Ok(status)) => died(format!("worker exited ({status}) ({e})")),
            _ => died(format!("worker stopped answering ({e})")),
        }
    }

    async fn kill(mut self) {
        if let Err(e) = self.child.start_kill() {
            tracing::warn!(error = %e, "could not kill the kernel worker");
            return;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// The limits of a model job: its output, and the device memory of its widest op (every
/// activation of the batch as int32, plus all constants, bounds what one op binds).
fn check_model(job: &ModelJob<'_>, limits: &super::ExecLimits) -> Result<u64> {
    let output_len = job.output_len();
    if output_len > limits.max_output_bytes {
        return Err(ExecError::OutputTooLarge {
            size: output_len,
            limit: limits.max_output_bytes,
        });
    }
    let m = job.model.model();
    let constants: u64 = m
        .tensors
        .iter()
        .filter_map(|t| t.data.as_ref())
        .map(|d| d.len() as u64)
        .sum();
    let widest = m
        .tensors
        .iter()
        .filter(|t| t.data.is_none())
        .map(|t| t.elements() * 4 * u64::from(job.batch))
        .max()
        .unwrap_or(0);
    let device = constants + 3 * widest;
    if device > limits.max_device_bytes {
        return Err(ExecError::DeviceMemoryTooLarge {
            size: device,
            limit: limits.max_device_bytes,
        });
    }
    Ok(output_len)
}

/// Runs kernel jobs in a killable worker process. `Send + Sync`; jobs from concurrent tasks
/// are run one after another on the single worker.
pub struct Executor {
    config: ExecConfig,
    adapter: AdapterSummary,
    worker: Mutex<Option<Worker>>,
}

impl Executor {
    /// Starts the first worker, which opens the device (or the CPU fallback under `auto`).
    pub async fn new(config: ExecConfig) -> Result<Self> {
        let (worker, adapter, fallback) = Worker::spawn(&config).await?;
        if let Some(reason) = fallback {
            tracing::warn!(%reason, "no GPU adapter: kernels run on the CPU references");
        }
        tracing::info!(%adapter, "executor ready");
        Ok(Self {
            config,
            adapter,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// What jobs run on.
    pub fn adapter_info(&self) -> AdapterSummary {
        self.adapter.clone()
    }

    /// The configuration this executor was built with.
    pub fn config(&self) -> &ExecConfig {
        &self.config
    }

    /// Checks a job against the limits without running it; returns its output size.
    /// Nothing is allocated for the job before this passes.
    pub fn check(&self, kernel: &KernelId, input: &[u8]) -> Result<u64> {
        let limits = &self.config.limits;
        let size = input.len() as u64;
        if size > limits.max_input_bytes {
            return Err(ExecError::InputTooLarge {
                size,
                limit: limits.max_input_bytes,
            });
        }
        if let Some(job) = kernels::model_job(kernel, input) {
            return check_model(&job?, limits);
        }
        let plan = kernels::plan(kernel, input)?;
        if plan.output_len > limits.max_output_bytes {
            let limit = limits.max_output_bytes;
            return Err(ExecError::OutputTooLarge {
                size: plan.output_len,
                limit,
            });
        }
        if plan.device_bytes() > limits.max_device_bytes {
            let limit = limits.max_device_bytes;
            return Err(ExecError::DeviceMemoryTooLarge {
                size: plan.device_bytes(),
                limit,
            });
        }
        let workgroups = plan.workgroups;
        if workgroups
            .iter()
            .any(|&w| w > limits.max_workgroups_per_dim)
        {
            let limit = format!("{} per dimension", limits.max_workgroups_per_dim);
            return Err(ExecError::DispatchTooLarge { workgroups, limit });
        }
        if plan.total_workgroups() > limits.max_workgroups_total {
            let limit = format!("{} in total", limits.max_workgroups_total);
            return Err(ExecError::DispatchTooLarge { workgroups, limit });
        }
        if self.adapter.cpu_reference && kernels::builtin(kernel).is_none() {
            return Err(KernelError::NoCpuReference { id: *kernel }.into());
        }
        Ok(plan.output_len)
    }

    /// Runs a job under a wall-clock deadline and returns its output bytes.
    pub async fn run(
        &self,
        kernel: &KernelId,
        input: &[u8],
        deadline: Duration,
    ) -> Result<Vec<u8>> {
        Ok(self.run_timed(kernel, input, deadline).await?.output)
    }

    /// Like [`Executor::run`], also returning the compute time the worker measured.
    ///
    /// The deadline covers waiting for the worker, starting one if needed, and the job.
    /// When it passes, the worker is killed and [`ExecError::DeadlineExceeded`] returned;
    /// the next job starts a fresh worker.
    pub async fn run_timed(
        &self,
        kernel: &KernelId,
        input: &[u8],
        deadline: Duration,
    ) -> Result<JobOutput> {
        let started = Instant::now();
        let output_len = self.check(kernel, input)?;
        let expired = || ExecError::DeadlineExceeded { deadline };
        let mut slot = tokio::time::timeout(deadline, self.worker.lock())
            .await
            .map_err(|_| expired())?;
        // Taken out of the slot while the job runs: if this future is dropped mid-job, the
        // worker is dropped with it and killed (kill_on_drop), so no stale reply survives.
        let mut worker = match slot.take() {
            Some(worker) => worker,
            None => {
                let remaining = deadline.saturating_sub(started.elapsed());
                let spawned = tokio::time::timeout(remaining, Worker::spawn(&self.config)).await;
                let (worker, adapter, _) = spawned.map_err(|_| expired())??;
                if adapter != self.adapter {
                    tracing::warn!(%adapter, previous = %self.adapter, "restarted worker uses a different adapter");
                }
                worker
            }
        };
        let remaining = deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(remaining, worker.call(kernel, input, output_len)).await {
            Ok(Ok(job)) => {
                *slot = Some(worker);
                job
            }
            Ok(Err(broken)) => {
                tracing::warn!(error = %broken, "kernel worker failed; a new one starts with the next job");
                worker.kill().await;
                Err(broken)
            }
            Err(_) => {
                tracing::warn!(?deadline, %kernel, "job exceeded its deadline; killing the kernel worker");
                worker.kill().await;
                Err(expired())
            }
        }
    }
}
