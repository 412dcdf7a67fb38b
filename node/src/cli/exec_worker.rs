//! `stp exec-worker` (hidden): the kernel worker process started by the executor.

use clap::Args;
use eyre::WrapErr;

use crate::exec::worker::{WorkerConfig, serve};

/// Runs the kernel worker on stdin/stdout (started by the executor, not by people).
#[derive(Debug, Clone, Args)]
pub struct ExecWorkerArgs {
    /// Worker configuration as JSON.
    #[arg(long)]
    pub config: String,
}

impl ExecWorkerArgs {
    /// Serves jobs until stdin closes.
    pub fn run(self) -> eyre::Result<()> {
        let config: WorkerConfig =
            serde_json::from_str(&self.config).wrap_err("invalid --config for exec-worker")?;
        serve(&config)?;
        Ok(())
    }
}
