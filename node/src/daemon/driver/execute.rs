//! Running an accepted job: fetch its input over libp2p, run the kernel in the executor,
//! then hold the result blob and store its hash, the salt and our lane before the commit
//! that takes the slot is sent.

use alloy::primitives::B256;
use std::time::{Duration, Instant};
use stp_sdk::kernels::KernelId;
use stp_sdk::market::{JobSpec, JobSpecExt};

use super::{Computed, Driver, decode_spec};
#[cfg(feature = "fault-injection")]
use crate::daemon::Fault;
use crate::daemon::parts::PartCache;
use crate::daemon::scheduler::COMMIT_MARGIN_SECS;
use crate::daemon::{Metrics, parse_input_location};
use crate::exec::{ExecError, Executor};
use crate::p2p::P2pClient;
use crate::store::JobPhase;

/// Why a job could not be run; nothing is at stake yet, so each ends in a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::daemon) enum Failure {
    /// The input could not be fetched (may work on a later try).
    InputUnavailable(String),
    /// The input does not match the spec (size, or the kernel's layout).
    InputMismatch(String),
    /// The kernel failed: invalid WGSL, a loop that cannot exit, a custom kernel out of
    /// loop fuel (the same on every GPU), a runaway shader past the deadline, a crash.
    Kernel(String),
    /// The output exceeds the job's bound.
    OutputTooLarge(u64),
    /// No time was left after the fetch.
    NoTime,
}

impl Failure {
    /// The failure of a job the executor could not run. Nothing is committed for it: the
    /// job is abandoned and the node goes on with the next one.
    fn of_exec(e: &ExecError) -> Self {
        if e.is_input_error() {
            Self::InputMismatch(e.to_string())
        } else {
            Self::Kernel(e.to_string())
        }
    }

    /// The refusal metric label.
    fn label(&self) -> &'static str {
        match self {
            Self::InputUnavailable(_) => "input_unavailable",
            Self::InputMismatch(_) => "input_mismatch",
            Self::Kernel(_) => "kernel_failed",
            Self::OutputTooLarge(_) => "output_too_large",
            Self::NoTime => "no_time",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InputUnavailable(e) => write!(f, "input unavailable: {e}"),
            Self::InputMismatch(e) => write!(f, "input does not match the job: {e}"),
            Self::Kernel(e) => write!(f, "kernel failed: {e}"),
            Self::OutputTooLarge(n) => write!(f, "output of {n} bytes exceeds the job's bound"),
            Self::NoTime => write!(f, "no time left before the commit deadline after the fetch"),
        }
    }
}

impl Driver {
    /// Fetches the input and runs the kernel in a task; the result comes back on `results`.
    /// The execution gets the time really left before the commit deadline, measured after
    /// the fetch.
    pub(super) fn start_execution(&mut self, job_id: u64, spec: JobSpec, now: u64) {
        self.executing.insert(job_id);
        let budget = spec
            .commit_deadline()
            .saturating_sub(now + COMMIT_MARGIN_SECS);
        let commit_by = Instant::now() + Duration::from_secs(budget);
        let (p2p, executor, results) = (
            self.p2p.clone(),
            self.executor.clone(),
            self.results.clone(),
        );
        #[cfg(feature = "fault-injection")]
        let corrupts = self.corrupts_results();
        let metrics = self.metrics.clone();
        let parts = self.parts.clone();
        tokio::spawn(async move {
            let result = fetch_and_run(&p2p, &parts, &executor, &metrics, &spec, commit_by).await;
            #[cfg(feature = "fault-injection")]
            let result = result.map(|mut out| {
                if corrupts {
                    corrupt(&mut out);
                }
                out
            });
            let _ = results.send(Computed { job_id, result }).await;
        });
    }

    pub(super) async fn on_computed(&mut self, done: Computed) {
        self.executing.remove(&done.job_id);
        let job_id = done.job_id;
        let Ok(Some(mut record)) = self.store.get(job_id) else {
            return;
        };
        if record.phase != JobPhase::Fetching {
            return;
        }
        let output = match done.result {
            Ok(output) => output,
            Err(Failure::InputUnavailable(why)) => return self.fetch_failed(record, why),
            Err(failure) => {
                let _ = self.give_up(record, failure.label(), &failure.to_string());
                return;
            }
        };
        // An escalation's replicas hash under the challenged job's identity.
        let domain = self.market.result_domain(record.identity.unwrap_or(job_id));
        let blob = domain.blob(&output);
        // Held, not served: the output is served only once the job completed with it.
        if let Err(e) = self.held.hold(job_id, &blob) {
            let _ = self.give_up(
                record,
                "store_failed",
                &format!("cannot hold the result: {e}"),
            );
            return;
        }
        let result = domain.result_hash(&output);
        record.salt = Some(B256::from(rand::random::<[u8; 32]>()));
        record.result_hash = Some(result);
        record.lane = Some(self.free_lane(0));
        record.advance(JobPhase::Computed);
        // Durable before the commit transaction exists: a crash now loses nothing, and a
        // re-send goes to the same lane.
        self.save(&record);
        if self.stopping() {
            return;
        }
        tracing::info!(job = job_id, result = %result, bytes = output.len(), "computed");
        #[cfg(feature = "fault-injection")]
        self.crash_point(Fault::CrashAfterComputed);
        if let Ok(spec) = decode_spec(&record)
            && let Err(e) = self.commit(&record, &spec)
        {
            tracing::warn!(job = job_id, error = %e, "commit failed; retrying next tick");
        }
    }
}

async fn fetch_and_run(
    p2p: &P2pClient,
    part_cache: &PartCache,
    executor: &Executor,
    metrics: &Metrics,
    spec: &JobSpec,
    commit_by: Instant,
) -> Result<Vec<u8>, Failure> {
    let sources = parse_input_location(&spec.inputLocation);
    if sources.is_empty() {
        return Err(Failure::InputUnavailable(
            "the job's inputLocation names no reachable peer".into(),
        ));
    }
    let mut peers = Vec::new();
    for (peer, addr) in sources {
        if let Err(e) = p2p.dial(addr.clone()).await {
            tracing::debug!(%addr, error = %e, "dial failed");
        }
        peers.push(peer);
    }
    let fetch = p2p.fetch_blob(spec.inputHash.0, peers.clone());
    let report = tokio::time::timeout(commit_by.saturating_duration_since(Instant::now()), fetch)
        .await
        .map_err(|_| Failure::NoTime)?
        .map_err(|e| Failure::InputUnavailable(e.to_string()))?;
    let input = tokio::fs::read(&report.path)
        .await
        .map_err(|e| Failure::InputUnavailable(e.to_string()))?;
    if u64::try_from(input.len()).ok() != Some(spec.inputSize) {
        return Err(Failure::InputMismatch(format!(
            "input is {} bytes, the spec says {}",
            input.len(),
            spec.inputSize
        )));
    }
    let input = if stp_sdk::batch::parts::is_parts(&input) {
        part_cache
            .resolve(p2p, metrics, &input, peers, commit_by)
            .await?
    } else {
        input
    };
    // The time really left, now that the input is here.
    let left = commit_by.saturating_duration_since(Instant::now());
    if left < Duration::from_secs(1) {
        return Err(Failure::NoTime);
    }
    let started = Instant::now();
    let output = executor.run(&KernelId(spec.kernelId.0), &input, left).await;
    metrics.executed(started.elapsed().as_secs_f64(), output.is_ok());
    let output = output.map_err(|e| Failure::of_exec(&e))?;
    if output.len() as u64 > spec.maxOutputSize {
        return Err(Failure::OutputTooLarge(output.len() as u64));
    }
    Ok(output)
}

#[cfg(feature = "fault-injection")]
fn corrupt(output: &mut Vec<u8>) {
    match output.first_mut() {
        Some(b) => *b ^= 0xff,
        None => output.push(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_kernel_failures_abandon_the_job_as_kernel_failed() {
        let budget = stp_sdk::kernels::custom::LOOP_BUDGET;
        for e in [
            ExecError::OutOfFuel { budget },
            ExecError::EndlessLoop {
                function: "main".into(),
                line: 3,
            },
            ExecError::InvalidWgsl {
                message: "1:1: expected".into(),
            },
        ] {
            let failure = Failure::of_exec(&e);
            assert_eq!(failure.label(), "kernel_failed", "{e}");
            assert_eq!(failure.to_string(), format!("kernel failed: {e}"));
        }
        assert!(
            Failure::of_exec(&ExecError::OutOfFuel { budget })
                .to_string()
                .contains("ran out of fuel")
        );
    }
}
