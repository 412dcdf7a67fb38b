//! The provider's durable memory: every job it touched, where it stands, and the secrets
//! (commit salt, result hash) it needs to reveal.
//!
//! The rule that keeps a crash from ever costing stake: the salt and result hash of a job
//! are written and synced here **before** the commit transaction is sent. After a
//! `kill -9` at any point, [`JobStore::active_jobs`] gives the daemon every job it still
//! has to carry through, with everything needed to do so.
//!
//! Backed by [redb](https://docs.rs/redb): ACID, copy-on-write, and every committed write
//! transaction is durable (fsync) before `commit` returns.

mod error;
mod index;
mod record;

pub use error::StoreError;
pub use index::{IndexUpdate, sync_index};
pub(crate) use record::now_secs;
pub use record::{JobPhase, JobRecord};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

/// Job records, keyed by on-chain job id, stored as JSON.
const JOBS: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("jobs");
/// Small named values: the chain cursor and similar.
const META: TableDefinition<'_, &str, u64> = TableDefinition::new("meta");
/// Key in [`META`] of the last block whose events were fully processed.
const LAST_BLOCK: &str = "last_processed_block";
/// Ids of the jobs whose record is active, so a tick reads only those records.
const ACTIVE: TableDefinition<'_, u64, ()> = TableDefinition::new("active_jobs");
/// Records per phase (keyed by the phase's position), kept by [`JobStore::put`] so counting
/// them reads no record.
const PHASE_COUNTS: TableDefinition<'_, u8, u64> = TableDefinition::new("phase_counts");
/// Key in [`META`] set once [`ACTIVE`] and [`PHASE_COUNTS`] hold every record (stores
/// written before they existed are indexed on open).
const ACTIVE_INDEXED: &str = "active_and_counts_indexed";

/// Result type of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A provider node's persistent job store. Cheap to share behind an `Arc`; redb serialises
/// writers internally.
#[derive(Debug)]
pub struct JobStore {
    db: Database,
}

impl JobStore {
    /// Opens the store at `path`, creating it (and its tables) if it does not exist.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        let txn = db.begin_write().map_err(StoreError::db)?;
        txn.open_table(JOBS).map_err(StoreError::db)?;
        txn.open_table(META).map_err(StoreError::db)?;
        txn.open_table(ACTIVE).map_err(StoreError::db)?;
        txn.open_table(PHASE_COUNTS).map_err(StoreError::db)?;
        Self::create_index_tables(&txn)?;
        txn.commit().map_err(StoreError::db)?;
        let store = Self { db };
        store.index_active()?;
        Ok(store)
    }

    /// Writes `record` durably: when this returns `Ok`, the record survives a crash.
    pub fn put(&self, record: &JobRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record).map_err(StoreError::Encode)?;
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut jobs = txn.open_table(JOBS).map_err(StoreError::db)?;
            let before = jobs
                .insert(record.job_id, bytes.as_slice())
                .map_err(StoreError::db)?
                .map(|old| decode(record.job_id, old.value()).map(|r| r.phase))
                .transpose()?;
            let mut counts = txn.open_table(PHASE_COUNTS).map_err(StoreError::db)?;
            if let Some(phase) = before {
                add_count(&mut counts, phase, -1)?;
            }
            add_count(&mut counts, record.phase, 1)?;
            let mut active = txn.open_table(ACTIVE).map_err(StoreError::db)?;
            if record.phase.is_active() {
                active.insert(record.job_id, ()).map_err(StoreError::db)?;
            } else {
                active.remove(record.job_id).map_err(StoreError::db)?;
            }
        }
        txn.commit().map_err(StoreError::db)
    }

    /// The record of `job_id`, if this node ever stored one.
    pub fn get(&self, job_id: u64) -> Result<Option<JobRecord>> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let jobs = txn.open_table(JOBS).map_err(StoreError::db)?;
        match jobs.get(job_id).map_err(StoreError::db)? {
            Some(bytes) => decode(job_id, bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Every stored record, in job id order.
    pub fn all_jobs(&self) -> Result<Vec<JobRecord>> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let jobs = txn.open_table(JOBS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for entry in jobs.iter().map_err(StoreError::db)? {
            let (key, value) = entry.map_err(StoreError::db)?;
            out.push(decode(key.value(), value.value())?);
        }
        Ok(out)
    }

    /// Records whose phase still needs work from this node (accepted and not yet settled),
    /// in job id order; reads only those records, however many settled ones the store holds.
    pub fn active_jobs(&self) -> Result<Vec<JobRecord>> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let active = txn.open_table(ACTIVE).map_err(StoreError::db)?;
        let jobs = txn.open_table(JOBS).map_err(StoreError::db)?;
        let mut out = Vec::new();
        for entry in active.iter().map_err(StoreError::db)? {
            let id = entry.map_err(StoreError::db)?.0.value();
            if let Some(bytes) = jobs.get(id).map_err(StoreError::db)? {
                out.push(decode(id, bytes.value())?);
            }
        }
        Ok(out)
    }

    /// How many records are in `phase`, read without decoding any record.
    pub fn phase_count(&self, phase: JobPhase) -> Result<u64> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let counts = txn.open_table(PHASE_COUNTS).map_err(StoreError::db)?;
        Ok(counts
            .get(phase as u8)
            .map_err(StoreError::db)?
            .map_or(0, |v| v.value()))
    }

    /// Fills [`ACTIVE`] and [`PHASE_COUNTS`] from the records once, for a store written
    /// before they existed.
    fn index_active(&self) -> Result<()> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let meta = txn.open_table(META).map_err(StoreError::db)?;
        if meta.get(ACTIVE_INDEXED).map_err(StoreError::db)?.is_some() {
            return Ok(());
        }
        drop((meta, txn));
        let records = self.all_jobs()?;
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut active = txn.open_table(ACTIVE).map_err(StoreError::db)?;
            let mut counts = txn.open_table(PHASE_COUNTS).map_err(StoreError::db)?;
            counts.retain(|_, _| false).map_err(StoreError::db)?;
            for r in &records {
                if r.phase.is_active() {
                    active.insert(r.job_id, ()).map_err(StoreError::db)?;
                }
                add_count(&mut counts, r.phase, 1)?;
            }
            let mut meta = txn.open_table(META).map_err(StoreError::db)?;
            meta.insert(ACTIVE_INDEXED, 1).map_err(StoreError::db)?;
        }
        txn.commit().map_err(StoreError::db)
    }

    /// The last block whose events were fully processed, if any.
    pub fn last_processed_block(&self) -> Result<Option<u64>> {
        let txn = self.db.begin_read().map_err(StoreError::db)?;
        let meta = txn.open_table(META).map_err(StoreError::db)?;
        Ok(meta
            .get(LAST_BLOCK)
            .map_err(StoreError::db)?
            .map(|v| v.value()))
    }

    /// Moves the chain cursor to `block` (never backwards).
    pub fn set_last_processed_block(&self, block: u64) -> Result<()> {
        let txn = self.db.begin_write().map_err(StoreError::db)?;
        {
            let mut meta = txn.open_table(META).map_err(StoreError::db)?;
            let current = meta
                .get(LAST_BLOCK)
                .map_err(StoreError::db)?
                .map(|v| v.value());
            if current.is_none_or(|c| block > c) {
                meta.insert(LAST_BLOCK, block).map_err(StoreError::db)?;
            }
        }
        txn.commit().map_err(StoreError::db)
    }
}

/// Adds `by` to `phase`'s record count.
fn add_count(counts: &mut redb::Table<'_, u8, u64>, phase: JobPhase, by: i64) -> Result<()> {
    let now = counts
        .get(phase as u8)
        .map_err(StoreError::db)?
        .map_or(0, |v| v.value());
    counts
        .insert(phase as u8, now.saturating_add_signed(by))
        .map_err(StoreError::db)?;
    Ok(())
}

fn decode(job_id: u64, bytes: &[u8]) -> Result<JobRecord> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt { job_id, source })
}

#[cfg(test)]
mod tests;
