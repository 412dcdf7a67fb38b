//! The chain index: every escrow event the node has seen, ingested once and incrementally
//! (the cursor is the last block ingested), kept per job so a job's history is read from
//! disk, not from the RPC endpoint. Each ingested cursor block's hash is kept too: when the
//! chain no longer has that block (a reorg), the index rolls back to the newest block both
//! agree on and ingests again from there.

use std::ops::Bound;

use alloy::primitives::B256;
use alloy::rpc::types::Log;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use stp_sdk::market::{JobHistory, Market, MarketError, MarketEvent, decode_event};

use super::{JobStore, LAST_BLOCK, META, Result, StoreError};

/// Raw escrow logs (JSON) keyed by (job id, block, log index); job id 0 holds events of no
/// job (withdrawals).
const EVENTS: TableDefinition<'_, (u64, u64, u64), &[u8]> = TableDefinition::new("events");
/// The same events keyed by (block, log index), with their job id: what a rollback removes.
const BY_BLOCK: TableDefinition<'_, (u64, u64), u64> = TableDefinition::new("events_by_block");
/// Hashes of recently ingested cursor blocks, to notice a reorg.
const BLOCKS: TableDefinition<'_, u64, &[u8; 32]> = TableDefinition::new("block_hashes");
/// Cursor blocks whose hash is kept (a reorg deeper than this is not undone).
const KEPT_HASHES: u64 = 512;

impl JobStore {
    pub(super) fn create_index_tables(txn: &redb::WriteTransaction) -> Result<()> {
        txn.open_table(EVENTS).map_err(StoreError::db)?;
        txn.open_table(BY_BLOCK).map_err(StoreError::db)?;
        txn.open_table(BLOCKS).map_err(StoreError::db)?;
        Ok(())
    }

    /// Stores `logs` (the escrow's, blocks after the cursor up to `to`) and moves the
    /// cursor to `to`, whose hash is `to_hash`: one durable transaction.
    fn ingest(&self, logs: &[Log], to: u64, to_hash: B256) -> Result<()> {
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut events = txn.open_table(EVENTS).map_err(StoreError::db)?;
            let mut by_block = txn.open_table(BY_BLOCK).map_err(StoreError::db)?;
            for log in logs {
                let (Some(block), Some(index)) = (log.block_number, log.log_index) else {
                    continue;
                };
                let job = decode_event(log).and_then(|e| e.kind.job_id()).unwrap_or(0);
                let bytes = serde_json::to_vec(log).map_err(StoreError::Encode)?;
                events
                    .insert((job, block, index), bytes.as_slice())
                    .map_err(StoreError::db)?;
                by_block
                    .insert((block, index), job)
                    .map_err(StoreError::db)?;
            }
            let mut blocks = txn.open_table(BLOCKS).map_err(StoreError::db)?;
            blocks.insert(to, &to_hash.0).map_err(StoreError::db)?;
            forget_hashes(&mut blocks, ..to.saturating_sub(KEPT_HASHES))?;
            let mut meta = txn.open_table(META).map_err(StoreError::db)?;
            meta.insert(LAST_BLOCK, to).map_err(StoreError::db)?;
        }
        txn.commit().map_err(StoreError::db)
    }

    /// Ingested cursor blocks with their hashes, newest first.
    fn indexed_blocks(&self) -> Result<Vec<(u64, B256)>> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let blocks = txn.open_table(BLOCKS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for entry in blocks.iter().map_err(StoreError::db)?.rev() {
            let (k, v) = entry.map_err(StoreError::db)?;
            out.push((k.value(), B256::from(*v.value())));
        }
        Ok(out)
    }

    /// Forgets every event after block `keep` and moves the cursor back to it (the chain
    /// reorganised above it). Returns the jobs whose events were removed.
    fn roll_back_to(&self, keep: u64) -> Result<Vec<u64>> {
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        let mut jobs = Vec::new();
        {
            let mut events = txn.open_table(EVENTS).map_err(StoreError::db)?;
            let mut by_block = txn.open_table(BY_BLOCK).map_err(StoreError::db)?;
            let gone: Vec<((u64, u64), u64)> = by_block
                .range((keep + 1, 0)..)
                .map_err(StoreError::db)?
                .filter_map(|e| e.ok().map(|(k, v)| (k.value(), v.value())))
                .collect();
            for ((block, index), job) in gone {
                by_block.remove((block, index)).map_err(StoreError::db)?;
                events.remove((job, block, index)).map_err(StoreError::db)?;
                if !jobs.contains(&job) {
                    jobs.push(job);
                }
            }
            let mut blocks = txn.open_table(BLOCKS).map_err(StoreError::db)?;
            forget_hashes(&mut blocks, keep + 1..)?;
            let mut meta = txn.open_table(META).map_err(StoreError::db)?;
            meta.insert(LAST_BLOCK, keep).map_err(StoreError::db)?;
        }
        txn.commit().map_err(StoreError::db)?;
        Ok(jobs)
    }

    /// Ids of every job the index holds events of, ascending.
    pub fn indexed_jobs(&self) -> Result<Vec<u64>> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let events = txn.open_table(EVENTS).map_err(StoreError::db)?;
        let mut ids: Vec<u64> = Vec::new();
        for entry in events.range((1, 0, 0)..).map_err(StoreError::db)? {
            let (job, ..) = entry.map_err(StoreError::db)?.0.value();
            if ids.last() != Some(&job) {
                ids.push(job);
            }
        }
        Ok(ids)
    }

    /// `job_id`'s history as far as the index has ingested the chain.
    pub fn indexed_history(&self, job_id: u64) -> Result<JobHistory> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let events = txn.open_table(EVENTS).map_err(StoreError::db)?;
        let mut decoded = Vec::new();
        for entry in events
            .range((job_id, 0, 0)..=(job_id, u64::MAX, u64::MAX))
            .map_err(StoreError::db)?
        {
            let (_, bytes) = entry.map_err(StoreError::db)?;
            let log: Log = serde_json::from_slice(bytes.value())
                .map_err(|source| StoreError::Corrupt { job_id, source })?;
            decoded.extend(decode_event(&log));
        }
        Ok(JobHistory::from_events(job_id, decoded))
    }
}

impl JobStore {
    /// Every ingested escrow log after `after` (block, log index), in chain order, at most
    /// `limit` of them: what a reader folding the whole market (the explorer) takes in
    /// steps. `None` starts from the first.
    pub fn indexed_logs_after(&self, after: Option<(u64, u64)>, limit: usize) -> Result<Vec<Log>> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let by_block = txn.open_table(BY_BLOCK).map_err(StoreError::db)?;
        let events = txn.open_table(EVENTS).map_err(StoreError::db)?;
        let range = match after {
            Some(key) => by_block.range((Bound::Excluded(key), Bound::Unbounded)),
            None => by_block.range::<(u64, u64)>(..),
        }
        .map_err(StoreError::db)?;
        let mut out = Vec::new();
        for entry in range.take(limit) {
            let (k, job) = entry.map_err(StoreError::db)?;
            let ((block, index), job_id) = (k.value(), job.value());
            let Some(bytes) = events.get((job_id, block, index)).map_err(StoreError::db)? else {
                continue;
            };
            let log: Log = serde_json::from_slice(bytes.value())
                .map_err(|source| StoreError::Corrupt { job_id, source })?;
            out.push(log);
        }
        Ok(out)
    }
}

/// Removes the kept hashes of the cursor blocks in `range`.
fn forget_hashes(
    blocks: &mut redb::Table<'_, u64, &[u8; 32]>,
    range: impl std::ops::RangeBounds<u64>,
) -> Result<()> {
    let stale: Vec<u64> = blocks
        .range(range)
        .map_err(StoreError::db)?
        .filter_map(|e| e.ok().map(|(k, _)| k.value()))
        .collect();
    for b in stale {
        blocks.remove(b).map_err(StoreError::db)?;
    }
    Ok(())
}

/// What one [`sync_index`] did.
#[derive(Debug, Default)]
pub struct IndexUpdate {
    /// Events newly ingested, oldest first.
    pub events: Vec<MarketEvent>,
    /// `(old cursor, block kept)` if a reorg was rolled back.
    pub rolled_back: Option<(u64, u64)>,
    /// Jobs whose events the rollback removed (they are ingested again as the chain has
    /// them now).
    pub undone: Vec<u64>,
}

/// Brings `store`'s chain index up to `confirmations` blocks below `market`'s head: first
/// undoes what a reorg replaced (the cursor block's hash is gone from the chain: back to the
/// newest kept block the chain still has), then ingests the escrow's logs after the cursor.
/// A handful of requests, however long the chain's history.
pub async fn sync_index(
    store: &JobStore,
    market: &Market,
    confirmations: u64,
) -> Result<IndexUpdate, MarketError> {
    let index = |e: StoreError| MarketError::Unexpected(format!("chain index: {e}"));
    let mut update = IndexUpdate::default();
    let head = market.block_number().await?;
    let to = head.saturating_sub(confirmations);
    let known = store.indexed_blocks().map_err(index)?;
    // No new block: nothing to read (a reorg that kept the height is seen with the next).
    // A cursor beyond the head is not "nothing new": the chain is shorter than what was
    // indexed (a devnet started afresh at the same addresses), and is rolled back below.
    if known.first().is_some_and(|(cursor, _)| *cursor == to) {
        return Ok(update);
    }
    if let Some((cursor, hash)) = known.first().copied()
        && market.block_hash(cursor).await? != Some(hash)
    {
        let mut keep = market.deployment().deploy_block.saturating_sub(1);
        for (block, hash) in known.iter().skip(1) {
            if market.block_hash(*block).await? == Some(*hash) {
                keep = *block;
                break;
            }
        }
        update.undone = store.roll_back_to(keep).map_err(index)?;
        update.rolled_back = Some((cursor, keep));
    }
    let from = match store.last_processed_block().map_err(index)? {
        Some(b) => b + 1,
        None => market.deployment().deploy_block,
    };
    if from > to {
        return Ok(update);
    }
    // The cursor block's hash first: if the chain reorganises while the logs are read, the
    // next sync finds that hash gone and reads the blocks again.
    let Some(to_hash) = market.block_hash(to).await? else {
        return Ok(update);
    };
    let logs = market.logs(from, to).await?;
    store.ingest(&logs, to, to_hash).map_err(index)?;
    update.events = logs.iter().filter_map(decode_event).collect();
    Ok(update)
}
