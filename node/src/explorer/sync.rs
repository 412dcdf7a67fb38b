//! The explorer's background work: keep the chain index synced (`sync_index`), fold the
//! newly ingested logs into the model with their block times, refresh the providers'
//! staking views, and read provider records from the p2p network. A failed step is
//! recorded (the pages show it and how stale the data is) and tried again; nothing here
//! ends the server.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{Address, B256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use stp_sdk::market::{Deployment, Market, MarketError};

use super::model::Model;
use super::state::{ChainView, RecordView, Shared, unix_now};
use crate::p2p::P2pClient;
use crate::store::{JobStore, sync_index};

/// Logs folded per read of the index.
const FOLD_BATCH: usize = 2_000;
/// Block times kept in memory (each log's block time is asked once).
const KEPT_TIMES: usize = 50_000;

/// Where and how often the sync task reads the chain.
#[derive(Debug)]
pub struct Syncer {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// The market.
    pub deployment: Deployment,
    /// The explorer's own chain index.
    pub store: JobStore,
    /// Pause between syncs.
    pub poll: Duration,
    /// Blocks below the head that are ingested.
    pub confirmations: u64,
}

impl Syncer {
    /// Runs forever: connect (again and again while the endpoint is down), then sync every
    /// `poll`.
    pub async fn run(self, shared: Shared) {
        let mut times = BTreeMap::new();
        let mut market = None;
        let mut told = None;
        loop {
            let result = match &market {
                Some(m) => self.step(m, &shared, &mut times).await,
                None => match self.connect().await {
                    Ok(m) => {
                        let done = self.step(&m, &shared, &mut times).await;
                        market = Some(m);
                        done
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "explorer sync failed; serving what is indexed");
                let mut s = shared.write();
                s.sync.failing_since.get_or_insert(unix_now());
                s.sync.rpc_error = Some(e.to_string());
            }
            // Pages fetch again only when there is something new to show.
            let now = {
                let s = shared.read();
                (s.model.events, s.sync.rpc_error.is_some())
            };
            if told != Some(now) {
                shared.notify();
                told = Some(now);
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    async fn connect(&self) -> Result<Market, MarketError> {
        // Read-only: a throwaway key; the explorer never sends a transaction.
        Market::connect(
            &self.rpc_url,
            PrivateKeySigner::random(),
            self.deployment.clone(),
        )
        .await
    }

    /// One sync: index, fold, refresh views, record freshness.
    async fn step(
        &self,
        m: &Market,
        shared: &Shared,
        times: &mut BTreeMap<u64, u64>,
    ) -> Result<(), MarketError> {
        let update = sync_index(&self.store, m, self.confirmations).await?;
        if update.rolled_back.is_some() {
            tracing::info!(?update.rolled_back, "chain reorganised; folding the index again");
            shared.write().model = Model::default();
        }
        let touched = self.fold_new(m, shared, times).await?;
        let (chain_time, burned) = (m.chain_time().await?, m.burned().await?);
        let all: Vec<Address> = shared.read().model.providers.keys().copied().collect();
        let missing: Vec<Address> = {
            let s = shared.read();
            all.iter()
                .filter(|a| touched.contains(*a) || !s.chain.contains_key(*a))
                .copied()
                .collect()
        };
        for a in missing {
            let view = ChainView::new(m.stake_of(a).await?, m.reputation_of(a).await?);
            shared.write().chain.insert(a, view);
        }
        let last = self.store.last_processed_block().ok().flatten();
        let mut s = shared.write();
        s.sync.last_block = last;
        s.sync.chain_time = Some(chain_time);
        s.sync.synced_at = Some(unix_now());
        s.sync.rpc_error = None;
        s.sync.failing_since = None;
        s.sync.burned = Some(burned);
        Ok(())
    }

    /// Folds every log the index holds past the model's cursor; returns the providers
    /// whose events were among them.
    async fn fold_new(
        &self,
        m: &Market,
        shared: &Shared,
        times: &mut BTreeMap<u64, u64>,
    ) -> Result<BTreeSet<Address>, MarketError> {
        let index =
            |e: crate::store::StoreError| MarketError::Unexpected(format!("chain index: {e}"));
        let mut touched = BTreeSet::new();
        loop {
            let cursor = shared.read().model.cursor;
            let logs = self
                .store
                .indexed_logs_after(cursor, FOLD_BATCH)
                .map_err(index)?;
            if logs.is_empty() {
                return Ok(touched);
            }
            for log in &logs {
                if let Some(b) = log.block_number
                    && log.block_timestamp.is_none()
                    && !times.contains_key(&b)
                {
                    times.insert(b, block_time(m, b).await?);
                }
                touched.extend(log.topics().get(2).map(|t| Address::from_word(*t)));
                touched.extend(log.topics().get(1).map(|t| Address::from_word(*t)));
            }
            let mut s = shared.write();
            for log in &logs {
                let time = log.block_number.and_then(|b| times.get(&b).copied());
                s.model.apply(log, time);
            }
            drop(s);
            while times.len() > KEPT_TIMES {
                times.pop_first();
            }
        }
    }
}

async fn block_time(m: &Market, number: u64) -> Result<u64, MarketError> {
    let block = m
        .provider()
        .get_block_by_number(BlockNumberOrTag::Number(number))
        .await
        .map_err(|e| MarketError::Unexpected(format!("reading block {number}: {e}")))?
        .ok_or_else(|| MarketError::Unexpected(format!("block {number} is gone")))?;
    Ok(block.header.timestamp)
}

/// Reads provider records from the p2p network every `every`, keeping the newest of each
/// payout address; dials `bootstrap` again while no peer is connected (a node started
/// after the explorer). Runs forever; a failed lookup is logged and tried again.
pub async fn watch_records(
    p2p: P2pClient,
    bootstrap: Vec<libp2p::Multiaddr>,
    shared: Shared,
    every: Duration,
) {
    loop {
        if p2p.connected_peers().await.is_ok_and(|p| p.is_empty()) {
            for addr in &bootstrap {
                if let Err(e) = p2p.dial(addr.clone()).await {
                    tracing::debug!(%addr, error = %e, "cannot dial the bootstrap peer yet");
                }
            }
        }
        match p2p.find_providers().await {
            Ok(records) => {
                let mut s = shared.write();
                for r in records {
                    let view = RecordView {
                        peer_id: libp2p::PeerId::from_bytes(&r.location.peer_id).map_or_else(
                            |_| alloy::hex::encode(&r.location.peer_id),
                            |p| p.to_string(),
                        ),
                        adapter: r.capabilities.adapter,
                        backend: r.capabilities.backend,
                        benchmark_score: r.capabilities.benchmark_score,
                        published_at: r.published_at,
                        parts: r.parts.iter().map(|h| B256::from(*h).to_string()).collect(),
                    };
                    let addr = Address::from(r.eth_address);
                    let newer = s
                        .records
                        .get(&addr)
                        .is_none_or(|old| old.published_at <= view.published_at);
                    if newer {
                        s.records.insert(addr, view);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "provider records lookup failed"),
        }
        tokio::time::sleep(every).await;
    }
}
