//! Following a posted job on-chain until it is settled.

use std::time::Duration;

use eyre::eyre;
use stp_sdk::market::lifecycle::{self, Phase, Timing};
use stp_sdk::market::{JobHistory, Market};

/// The phase of `h` at time `now` (the SDK's lifecycle rules, on the history's counters).
pub fn phase(h: &JobHistory, now: u64) -> Phase {
    match &h.spec {
        Some(spec) => lifecycle::phase(&Timing::from(spec), h.counters(), now),
        None => Phase::Settled,
    }
}

/// Where a followed job stands, passed to the progress callback of [`follow`] each poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The job.
    pub job_id: u64,
    /// Its phase on the chain's clock.
    pub phase: Phase,
    /// Replica slots taken (each with a commitment).
    pub slots: usize,
    /// Replicas that revealed.
    pub reveals: usize,
    /// Replicas the job asks for.
    pub replicas: u8,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = self.replicas;
        write!(
            f,
            "job {}: {:?} - slots {}/{k}, revealed {}/{k}",
            self.job_id, self.phase, self.slots, self.reveals
        )
    }
}

/// Follows the job from its post block, one bounded log request per poll however long the
/// chain's history, calling `progress` each poll. Without `wait` it returns once the input
/// is no longer needed (every slot taken, or the commit window closed); with `wait` it
/// finalizes the job when a deadline allows and returns its settled history.
pub async fn follow(
    m: &Market,
    (job_id, post_block): (u64, u64),
    wait: bool,
    poll: Duration,
    mut progress: impl FnMut(&Progress),
) -> eyre::Result<JobHistory> {
    loop {
        let h = m.job_history_since(job_id, post_block).await?;
        let replicas = h
            .spec
            .as_ref()
            .ok_or_else(|| eyre!("job {job_id} is not on-chain"))?
            .replicas;
        let now = m.now().await?;
        let p = phase(&h, now);
        progress(&Progress {
            job_id,
            phase: p,
            slots: h.slots.len(),
            reveals: h.reveals.len(),
            replicas,
        });
        if h.outcome.is_some() {
            return Ok(h);
        }
        // Drawn providers fetch the input until every slot is taken.
        let input_needed = p == Phase::Open;
        if !wait && !input_needed {
            return Ok(h);
        }
        if matches!(p, Phase::Unfilled | Phase::Expired) {
            match m.finalize_since(job_id, post_block).await {
                Ok(tx) => {
                    tracing::info!(job_id, %tx, "finalized");
                    continue;
                }
                // Another party may have finalized first, or the chain's clock lags.
                Err(e) => tracing::debug!(job_id, error = %e, "finalize not accepted yet"),
            }
        }
        tokio::time::sleep(poll).await;
    }
}
