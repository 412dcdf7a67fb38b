//! Shared helpers: adapter-or-skip and executor construction.

use std::time::Duration;

use stp_node::exec::gpu::GpuRuntime;
use stp_node::exec::{Backend, ExecConfig, ExecError, ExecLimits, Executor, WorkerCommand};

/// Deadline for jobs that must finish.
pub(crate) const OK_DEADLINE: Duration = Duration::from_secs(60);

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Handles a missing adapter: panics in CI, prints a skip message locally.
#[allow(
    clippy::print_stderr,
    reason = "a skipped GPU test says so in the test output"
)]
pub(crate) fn no_adapter(what: &str, err: &ExecError) {
    if in_ci() {
        panic!("CI must have a {what} adapter (scripts/setup installs Mesa), but: {err}");
    }
    eprintln!("SKIPPED: no {what} adapter ({err}); install mesa-vulkan-drivers to run GPU tests");
}

/// An in-process runtime on `backends` (`vulkan` or `gl`), or `None` when skipping.
pub(crate) fn runtime(backends: &str) -> Option<GpuRuntime> {
    match GpuRuntime::new(wgpu::Backends::from_comma_list(backends)) {
        Ok(rt) => Some(rt),
        Err(e @ ExecError::NoAdapter { .. }) => {
            no_adapter(backends, &e);
            None
        }
        Err(e) => panic!("opening a {backends} device failed: {e}"),
    }
}

/// Executor config using the test build of `stp` as worker.
pub(crate) fn config(backend: Backend, limits: ExecLimits) -> ExecConfig {
    ExecConfig {
        backend,
        wgpu_backends: None,
        worker: WorkerCommand::stp(env!("CARGO_BIN_EXE_stp")),
        limits,
    }
}

/// A GPU executor with `limits`, or `None` when skipping.
pub(crate) async fn gpu_executor(limits: ExecLimits) -> Option<Executor> {
    match Executor::new(config(Backend::Gpu, limits)).await {
        Ok(exec) => Some(exec),
        Err(e @ ExecError::NoAdapter { .. }) => {
            no_adapter("GPU", &e);
            None
        }
        Err(e) => panic!("starting the executor failed: {e}"),
    }
}
