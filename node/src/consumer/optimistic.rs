//! An optimistic job, the consumer's side: its one replica's output is fetched as soon as
//! the replica committed its result hash, checked against the input (Freivalds or sampled
//! recomputation), and challenged on-chain if the check fails. The challenge posts an
//! escalation job: m fresh replicas drawn by stake recompute it, and their quorum decides;
//! if it overturns the result, the replica is slashed and the bounty and the bond come back.

use std::time::Duration;

use alloy::primitives::{Address, B256};
use eyre::{bail, eyre};
use stp_sdk::market::{Challenge, JobHistory, Market, Outcome};

pub use super::check::judge;
use super::{Progress, fetch::fetch_hash, follow};
use crate::p2p::P2pClient;

/// The claimed result of an optimistic job whose one slot is taken: the replica and the
/// result hash its commit revealed.
pub fn claim(h: &JobHistory) -> eyre::Result<(Address, u64, B256)> {
    let (slot, (_, hash)) = h
        .slots
        .first()
        .zip(h.reveals.first())
        .ok_or_else(|| eyre!("job {} has no replica yet", h.job_id))?;
    Ok((slot.provider, slot.lane, *hash))
}

/// Fetches the claimed output of optimistic job `h` from its replica (which serves it from
/// its commit on) and checks it against the on-chain hash.
pub async fn fetch_claimed(
    m: &Market,
    p2p: &P2pClient,
    h: &JobHistory,
) -> eyre::Result<(B256, Vec<u8>)> {
    let (provider, _, hash) = claim(h)?;
    let output = fetch_hash(m, p2p, h.job_id, hash, &[provider]).await?;
    Ok((hash, output))
}

/// Challenges optimistic job `h` (posted by this account): escrows the bond and returns
/// the escalation job it posted, with the block to follow it from.
pub async fn challenge(m: &Market, h: &JobHistory) -> eyre::Result<(Challenge, u64)> {
    let (defendant, lane, _) = claim(h)?;
    let from = m.block_number().await?;
    let c = m.challenge(&h.job_ref()?, defendant, lane).await?;
    Ok((c, from))
}

/// Follows escalation `c` until it settles (finalizing it once a deadline allows: an
/// escalation nobody took must still release the defendant and return the bond), then
/// returns the challenged job's settled history.
pub async fn follow_escalation(
    m: &Market,
    c: &Challenge,
    (from_block, parent_post_block): (u64, u64),
    poll: Duration,
    progress: impl FnMut(&Progress),
) -> eyre::Result<JobHistory> {
    follow(m, (c.escalation_id, from_block), true, poll, progress).await?;
    let parent = m.job_history_since(c.job_id, parent_post_block).await?;
    if parent.outcome.is_none() {
        bail!(
            "escalation job {} settled but job {} did not; see `stp job status {}`",
            c.escalation_id,
            c.job_id,
            c.job_id
        );
    }
    Ok(parent)
}

/// The output the escalation agreed on, when it overturned the job: fetched from its
/// winners (their result blobs carry the challenged job's identity).
pub async fn fetch_corrected(
    m: &Market,
    p2p: &P2pClient,
    c: &Challenge,
    parent: &JobHistory,
    from_block: u64,
) -> eyre::Result<Option<Corrected>> {
    let Some((Outcome::Overturned, hash)) = parent.outcome else {
        return Ok(None);
    };
    let escalation = m.job_history_since(c.escalation_id, from_block).await?;
    let winners = escalation.revealers_of(hash);
    let output = fetch_hash(m, p2p, c.job_id, hash, &winners).await?;
    Ok(Some(Corrected {
        hash,
        output,
        agreeing: winners.len(),
    }))
}

/// An overturned job's result, as its escalation agreed on it.
#[derive(Debug, Clone)]
pub struct Corrected {
    /// The escalation's quorum hash (under the challenged job's identity).
    pub hash: B256,
    /// The output, checked against `hash`.
    pub output: Vec<u8>,
    /// Escalation replicas that revealed `hash`.
    pub agreeing: usize,
}
