//! The CLI's own chain index: `stp job status|list|result|finalize` keep the market's events
//! in a local file and read only the blocks since their last run, instead of scanning the
//! chain from the deployment every time. Another `stp` holding the file (they run one at a
//! time per file) or a broken file makes a command read the chain directly instead.

use std::path::PathBuf;

use clap::Args;
use stp_sdk::market::{JobHistory, Market};

use crate::store::{JobStore, sync_index};

/// Where the read commands keep their chain index.
#[derive(Debug, Clone, Args)]
pub struct IndexArgs {
    /// Directory of the local chain index (one file per market); each read command ingests
    /// only the blocks since its last run.
    #[arg(long, env = "STP_INDEX_DIR", default_value = ".stp/index")]
    pub index_dir: PathBuf,
}

impl IndexArgs {
    /// The index of `m`'s market, brought up to the chain's head; `None` if it cannot be
    /// opened (held by another `stp`) or synced.
    pub async fn synced(&self, m: &Market) -> Option<JobStore> {
        let d = m.deployment();
        let path = self
            .index_dir
            .join(format!("{}-{}.redb", d.chain_id, d.job_escrow));
        let store = match JobStore::open(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "chain index unavailable; reading the chain");
                return None;
            }
        };
        match sync_index(&store, m, 0).await {
            Ok(_) => Some(store),
            Err(e) => {
                tracing::debug!(error = %e, "cannot bring the chain index up to date; reading the chain");
                None
            }
        }
    }

    /// `id`'s history, from the index when it is usable, else from the chain.
    pub async fn history(&self, m: &Market, id: u64) -> eyre::Result<JobHistory> {
        if let Some(store) = self.synced(m).await
            && let Ok(h) = store.indexed_history(id)
        {
            return Ok(h);
        }
        Ok(m.job_history(id).await?)
    }

    /// Every job's history, from the index when it is usable, else from one scan of the
    /// chain.
    pub async fn all_histories(&self, m: &Market) -> eyre::Result<Vec<JobHistory>> {
        if let Some(store) = self.synced(m).await
            && let Ok(ids) = store.indexed_jobs()
        {
            return ids
                .into_iter()
                .map(|id| Ok(store.indexed_history(id)?))
                .collect();
        }
        let to = m.block_number().await?;
        let mut by_job: std::collections::BTreeMap<u64, Vec<_>> = Default::default();
        for e in m.events(m.deployment().deploy_block, to).await? {
            if let Some(id) = e.kind.job_id() {
                by_job.entry(id).or_default().push(e);
            }
        }
        Ok(by_job
            .into_iter()
            .map(|(id, events)| JobHistory::from_events(id, events))
            .collect())
    }
}
