//! One poll over a batch's open chunks: finalize what a deadline allows, collect and check
//! completed outputs, re-post failed attempts.

use std::path::Path;
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use eyre::eyre;
use futures::{StreamExt, TryStreamExt, stream};
use stp_sdk::market::lifecycle::Phase;
use stp_sdk::market::{JobHistory, Market, Outcome};
use stp_sdk::verify;

use super::{
    Attempt, BatchOrder, Change, ChunkPhase, Manifest, PendingPost, announce, merkle_root,
    post_chunks,
};
use crate::consumer::{fetch_output, judge, phase};
use crate::p2p::P2pClient;
use stp_sdk::p2p::Naming;

/// How long a completed chunk's output may stay unreachable before its attempt counts as
/// failed (its winners are gone) and the chunk is posted again, paying once more: at least
/// this, and at least [`PATIENCE_BLOCKS`] blocks ([`patience`]).
const FETCH_PATIENCE: Duration = Duration::from_secs(60);
/// Blocks a winner may wait before it serves: it serves once it sees the settlement with
/// its own `--confirmations`, which operators of slow chains set to a dozen or so.
const PATIENCE_BLOCKS: u64 = 32;

/// The output patience on a chain whose blocks come every `block_secs` seconds.
pub(super) fn patience(block_secs: u64) -> Duration {
    FETCH_PATIENCE.max(Duration::from_secs(
        block_secs.saturating_mul(PATIENCE_BLOCKS),
    ))
}
/// Chain reads (one chunk's history each) and output fetches a poll runs at once.
const CONCURRENT_READS: usize = 8;

/// What the batch holds between polls.
pub(super) struct Round {
    /// When each chunk's output first failed to arrive (since its last success or post).
    unreachable_since: Vec<Option<Instant>>,
    /// How long an output may stay unreachable ([`patience`]).
    patience: Duration,
}

/// How a completed attempt's output turned out.
enum Collected {
    /// Fetched and checked.
    Good(B256, Vec<u8>),
    /// Not reachable this time.
    Later(String),
    /// The attempt gave no usable output.
    Failed(String),
}

impl Round {
    pub(super) fn new(chunks: usize, patience: Duration) -> Self {
        Self {
            unreachable_since: vec![None; chunks],
            patience,
        }
    }

    /// True once no chunk waits for providers to take its input.
    pub(super) fn inputs_taken(&self, man: &Manifest) -> bool {
        man.chunks.iter().all(|c| c.phase != ChunkPhase::Posted)
    }

    /// One poll; true once no chunk is open any more. The open chunks' histories are read,
    /// and the completed ones' outputs fetched, [`CONCURRENT_READS`] at a time; what they say
    /// is then applied chunk by chunk, in order.
    pub(super) async fn step(
        &mut self,
        m: &Market,
        p2p: &P2pClient,
        order: &BatchOrder,
        man: &mut Manifest,
        dir: &Path,
        on: &mut impl FnMut(&Manifest, usize, &Change),
    ) -> eyre::Result<bool> {
        let now = m.now().await?;
        let open: Vec<(usize, Attempt)> = man
            .chunks
            .iter()
            .enumerate()
            .filter(|(_, c)| !matches!(c.phase, ChunkPhase::Verified | ChunkPhase::Failed))
            .map(|(i, c)| (i, c.current().clone()))
            .collect();
        let histories: Vec<(usize, Attempt, JobHistory)> = stream::iter(open)
            .map(|(i, a)| async move {
                let h = m.job_history_since(a.job_id, a.post_block).await?;
                eyre::Ok((i, a, h))
            })
            .buffered(CONCURRENT_READS)
            .try_collect()
            .await?;
        let completed: Vec<&JobHistory> = histories
            .iter()
            .filter(|(_, _, h)| matches!(h.outcome, Some((Outcome::Completed, _))))
            .map(|(_, _, h)| h)
            .collect();
        let mut outputs: std::collections::HashMap<u64, eyre::Result<(B256, Vec<u8>)>> =
            stream::iter(completed)
                .map(|h| async move { (h.job_id, fetch_output(m, p2p, h).await) })
                .buffer_unordered(CONCURRENT_READS)
                .collect()
                .await;
        let mut failed = Vec::new();
        for (i, a, h) in &histories {
            let i = *i;
            if h.spec.is_none() {
                eyre::bail!(
                    "job {} of chunk {} is not on this chain (a devnet started afresh?); the batch's record does not match this market",
                    a.job_id,
                    i
                );
            }
            match h.outcome {
                None => {
                    let p = phase(h, now);
                    if p != Phase::Open && man.chunks[i].phase == ChunkPhase::Posted {
                        man.chunks[i].phase = ChunkPhase::Running;
                        man.save(dir)?;
                        on(man, i, &Change::Running);
                    }
                    if matches!(p, Phase::Unfilled | Phase::Expired) {
                        // Another party may finalize first, or the chain's clock lags.
                        if let Err(e) = m.finalize_since(a.job_id, a.post_block).await {
                            tracing::debug!(job = a.job_id, error = %e, "finalize not accepted yet");
                        }
                    }
                }
                Some((Outcome::Completed, _)) => {
                    let fetched = outputs
                        .remove(&h.job_id)
                        .unwrap_or_else(|| Err(eyre!("not fetched")));
                    match self.collect(order, i, h, fetched) {
                        Collected::Good(hash, output) => {
                            // Kept on disk: a resumed batch assembles from the store.
                            let blob = p2p.add_blob(output, Naming::Sha256).await?;
                            let c = &mut man.chunks[i];
                            c.phase = ChunkPhase::Verified;
                            c.result_hash = Some(hash);
                            c.output_blob = Some(B256::from(blob));
                            man.save(dir)?;
                            on(man, i, &Change::Verified);
                        }
                        Collected::Later(why) => {
                            tracing::warn!(job = a.job_id, "output not fetched yet: {why}");
                        }
                        Collected::Failed(why) => failed.push((i, why)),
                    }
                }
                Some((outcome, _)) => failed.push((i, ended(outcome))),
            }
        }
        if !failed.is_empty() {
            self.retry(m, p2p, order, man, dir, failed, on).await?;
        }
        Ok(man
            .chunks
            .iter()
            .all(|c| matches!(c.phase, ChunkPhase::Verified | ChunkPhase::Failed)))
    }

    /// Judges the `fetched` agreed output of chunk `i`'s completed attempt `h`.
    fn collect(
        &mut self,
        order: &BatchOrder,
        i: usize,
        h: &JobHistory,
        fetched: eyre::Result<(B256, Vec<u8>)>,
    ) -> Collected {
        let (hash, output) = match fetched {
            Ok(v) => v,
            Err(e) => {
                let since = *self.unreachable_since[i].get_or_insert_with(Instant::now);
                if since.elapsed() >= self.patience {
                    return Collected::Failed(format!(
                        "its agreed output could not be fetched from any winner for {} s ({e:#})",
                        self.patience.as_secs()
                    ));
                }
                return Collected::Later(format!("{e:#}"));
            }
        };
        if let Err(e) = order.batch.assembly.check_output(i, &output) {
            return Collected::Failed(format!("its agreed output does not fit the batch ({e})"));
        }
        if order.verify {
            let input = &order.batch.chunks[i].input;
            match judge(h.job_id, &order.batch.kernel, input, &output) {
                Ok(v) if matches!(v.outcome, verify::Outcome::Fail { .. }) => {
                    return Collected::Failed(format!("its agreed output failed the check ({v})"));
                }
                Ok(_) => {}
                Err(e) => return Collected::Failed(format!("{e:#}")),
            }
        }
        Collected::Good(hash, output)
    }

    /// Records the failed attempts, withdraws their refunds, and posts each chunk again
    /// while it has attempts left.
    #[allow(clippy::too_many_arguments)]
    async fn retry(
        &mut self,
        m: &Market,
        p2p: &P2pClient,
        order: &BatchOrder,
        man: &mut Manifest,
        dir: &Path,
        failed: Vec<(usize, String)>,
        on: &mut impl FnMut(&Manifest, usize, &Change),
    ) -> eyre::Result<()> {
        let mut again = Vec::new();
        for (i, why) in failed {
            let c = &mut man.chunks[i];
            if let Some(a) = c.attempts.last_mut() {
                a.failed = Some(why.clone());
            }
            self.unreachable_since[i] = None;
            if c.attempts.len() as u32 >= order.max_attempts {
                c.phase = ChunkPhase::Failed;
                man.save(dir)?;
                on(man, i, &Change::Failed(why));
            } else {
                again.push((i, why));
            }
        }
        if again.is_empty() {
            return Ok(());
        }
        refund(m).await?;
        let which: Vec<usize> = again.iter().map(|(i, _)| *i).collect();
        // The failed attempts and the posting about to be paid, on disk first: a crash
        // before the new jobs are recorded finds them on-chain when it resumes.
        man.pending_post = Some(PendingPost {
            from_block: m.block_number().await?,
            chunks: which.iter().map(|&i| man.chunks[i].index).collect(),
        });
        let posted = post_chunks(m, p2p, order, &which, |_| man.save(dir)).await?;
        man.pending_post = None;
        // On disk before anything else, so a crash now does not post them twice.
        for ((i, _), p) in again.iter().zip(&posted) {
            let c = &mut man.chunks[*i];
            c.phase = ChunkPhase::Posted;
            c.attempts.push(Attempt {
                job_id: p.job_id,
                post_block: p.post_block,
                failed: None,
            });
        }
        man.save(dir)?;
        announce(m, p2p, order, &posted).await;
        for ((i, why), p) in again.into_iter().zip(&posted) {
            on(man, i, &Change::Retried(why));
            on(man, i, &Change::Posted(p.job_id));
        }
        Ok(())
    }
}

/// The aggregate of every chunk's verified output (read back from `p2p`'s blob store),
/// with the batch's Merkle root and output hash recorded in `man`.
pub(super) fn assemble(
    p2p: &P2pClient,
    order: &BatchOrder,
    man: &mut Manifest,
) -> eyre::Result<Vec<u8>> {
    let outputs: Vec<Vec<u8>> = man
        .chunks
        .iter()
        .map(|c| {
            let blob = c
                .output_blob
                .ok_or_else(|| eyre!("chunk {} has no verified output", c.index))?;
            p2p.store()
                .read(&blob.0)
                .map_err(|e| eyre!("reading chunk {}'s verified output: {e}", c.index))
        })
        .collect::<eyre::Result<_>>()?;
    let output = order.batch.assembly.assemble(&outputs)?;
    man.merkle_root = merkle_root(man);
    man.output_hash = Some(B256::from(stp_sdk::p2p::sha256(&output)));
    Ok(output)
}

/// Withdraws the consumer's credited balance (the refunds of failed attempts) to its wallet.
async fn refund(m: &Market) -> eyre::Result<()> {
    if !m.balance_of(m.account()).await?.is_zero() {
        let tx = m.withdraw().await?;
        tracing::info!(%tx, "withdrew the refunds of failed chunk attempts");
    }
    Ok(())
}

/// Why an attempt that settled with `outcome` gave no output.
fn ended(outcome: Outcome) -> String {
    match outcome {
        Outcome::NoQuorum => {
            "no quorum: its replicas disagreed or too few revealed (bounty refunded)".into()
        }
        Outcome::Unfilled => {
            "unfilled: not every slot was taken by the commit deadline (bounty refunded)".into()
        }
        other => format!("it ended {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::patience;
    use std::time::Duration;

    #[test]
    fn output_patience_covers_a_slow_chains_confirmations() {
        assert_eq!(patience(1), Duration::from_secs(60), "a devnet: one minute");
        assert_eq!(
            patience(12),
            Duration::from_secs(384),
            "12 s blocks: 32 of them"
        );
    }
}
