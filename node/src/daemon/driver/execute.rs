//! Running a claimed job: fetch its input over libp2p, run the kernel in the executor,
//! then store the result hash and salt before committing to it.

use alloy::primitives::B256;
use sha2::{Digest, Sha256};
use std::time::Duration;
use stp_sdk::kernels::KernelId;
use stp_sdk::market::{JobSpec, JobSpecExt};

use super::{COMMIT_MARGIN_SECS, Computed, Driver, decode_spec};
use crate::daemon::{Fault, Metrics, parse_input_location};
use crate::exec::Executor;
use crate::p2p::P2pClient;
use crate::store::JobPhase;

impl Driver {
    /// Fetches the input and runs the kernel in a task; the result comes back on `results`.
    pub(super) fn start_execution(&mut self, job_id: u64, spec: JobSpec, now: u64) {
        self.executing.insert(job_id);
        let budget = spec
            .commit_deadline()
            .saturating_sub(now + COMMIT_MARGIN_SECS);
        let deadline = Duration::from_secs(budget.max(1));
        let (p2p, executor, results) = (
            self.p2p.clone(),
            self.executor.clone(),
            self.results.clone(),
        );
        let fault = self.config.fault;
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            let result = fetch_and_run(&p2p, &executor, &metrics, &spec, deadline)
                .await
                .map(|mut out| {
                    if fault == Some(Fault::WrongResult) {
                        corrupt(&mut out);
                    }
                    out
                });
            let _ = results.send(Computed { job_id, result }).await;
        });
    }

    pub(super) async fn on_computed(&mut self, done: Computed) {
        self.executing.remove(&done.job_id);
        let Ok(Some(mut record)) = self.store.get(done.job_id) else {
            return;
        };
        let output = match done.result {
            Ok(output) => output,
            Err(e) => {
                tracing::warn!(job = done.job_id, error = %e, "execution failed");
                record.note = Some(e);
                self.save(&record);
                return;
            }
        };
        // Serve the output before committing to it, so the consumer can fetch it.
        if let Err(e) = self.p2p.add_blob(output.clone()).await {
            tracing::warn!(job = done.job_id, error = %e, "cannot store the output blob");
        }
        let result = B256::from(<[u8; 32]>::from(Sha256::digest(&output)));
        record.salt = Some(B256::from(rand::random::<[u8; 32]>()));
        record.result_hash = Some(result);
        record.advance(JobPhase::Computed);
        // Durable before the commit transaction exists: a crash now loses nothing.
        self.save(&record);
        tracing::info!(job = done.job_id, result = %result, bytes = output.len(), "computed");
        self.crash_point(Fault::CrashAfterComputed);
        if let Ok(spec) = decode_spec(&record)
            && let Err(e) = self.commit(&mut record, &spec).await
        {
            tracing::warn!(job = done.job_id, error = %e, "commit failed; retrying next tick");
        }
    }
}

async fn fetch_and_run(
    p2p: &P2pClient,
    executor: &Executor,
    metrics: &Metrics,
    spec: &JobSpec,
    deadline: Duration,
) -> Result<Vec<u8>, String> {
    let sources = parse_input_location(&spec.inputLocation);
    if sources.is_empty() {
        return Err("the job's inputLocation names no reachable peer".into());
    }
    let mut peers = Vec::new();
    for (peer, addr) in sources {
        if let Err(e) = p2p.dial(addr.clone()).await {
            tracing::debug!(%addr, error = %e, "dial failed");
        }
        peers.push(peer);
    }
    let report = p2p
        .fetch_blob(spec.inputHash.0, peers)
        .await
        .map_err(|e| e.to_string())?;
    let input = tokio::fs::read(&report.path)
        .await
        .map_err(|e| e.to_string())?;
    if u64::try_from(input.len()).ok() != Some(spec.inputSize) {
        return Err(format!(
            "input is {} bytes, the spec says {}",
            input.len(),
            spec.inputSize
        ));
    }
    let started = std::time::Instant::now();
    let output = executor
        .run(&KernelId(spec.kernelId.0), &input, deadline)
        .await;
    metrics.executed(started.elapsed().as_secs_f64(), output.is_ok());
    let output = output.map_err(|e| e.to_string())?;
    if output.len() as u64 > spec.maxOutputSize {
        return Err(format!(
            "output {} bytes exceeds the job's bound",
            output.len()
        ));
    }
    Ok(output)
}

fn corrupt(output: &mut Vec<u8>) {
    match output.first_mut() {
        Some(b) => *b ^= 0xff,
        None => output.push(0),
    }
}
