//! What the explorer serves from: the folded [`Model`], the chain's staking views of each
//! provider, provider records from the p2p network, and how fresh all of it is. Shared
//! between the sync task (the only writer) and the HTTP handlers (readers); no lock is
//! held across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use alloy::primitives::{Address, U256};
use serde::Serialize;
use stp_sdk::market::{Reputation, StakeInfo};
use tokio::sync::broadcast;

use super::model::Model;
use crate::cli::common::ser_wei;

/// A provider's stake and reputation as the escrow reported them at the last refresh.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ChainView {
    /// Bonded stake.
    #[serde(serialize_with = "ser_wei")]
    pub staked: U256,
    /// Locked as collateral of unsettled jobs.
    #[serde(serialize_with = "ser_wei")]
    pub locked: U256,
    /// Reputation counters and score.
    pub reputation: Reputation,
}

impl ChainView {
    /// Both views of one provider.
    pub fn new(stake: StakeInfo, reputation: Reputation) -> Self {
        Self {
            staked: stake.staked,
            locked: stake.locked,
            reputation,
        }
    }
}

/// What a provider's signed p2p record says about its node.
#[derive(Debug, Clone, Serialize)]
pub struct RecordView {
    /// libp2p peer id.
    pub peer_id: String,
    /// GPU adapter name.
    pub adapter: String,
    /// Graphics backend.
    pub backend: String,
    /// Benchmark score (higher is faster).
    pub benchmark_score: u64,
    /// When the record was published (unix seconds).
    pub published_at: u64,
    /// Shared input parts the provider holds (BLAKE3, hex), most recently used first.
    pub parts: Vec<String>,
}

/// How fresh the explorer's data is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    /// The market's chain.
    pub chain_id: u64,
    /// The market's escrow contract.
    pub escrow: Address,
    /// Unit of amounts ("ETH" or "tokens").
    pub unit: &'static str,
    /// Last block ingested.
    pub last_block: Option<u64>,
    /// Timestamp of the chain's head at the last successful sync.
    pub chain_time: Option<u64>,
    /// Wall-clock time (unix seconds) of the last successful sync.
    pub synced_at: Option<u64>,
    /// Why the last sync failed, while it keeps failing.
    pub rpc_error: Option<String>,
    /// Since when (unix seconds) syncs fail.
    pub failing_since: Option<u64>,
    /// Slashed funds burned by the escrow, at the last sync.
    #[serde(serialize_with = "ser_opt_wei")]
    pub burned: Option<U256>,
}

fn ser_opt_wei<S: serde::Serializer>(v: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => ser_wei(v, s),
        None => s.serialize_none(),
    }
}

/// Everything the explorer serves.
#[derive(Debug, Default)]
pub struct State {
    /// The market folded from its events.
    pub model: Model,
    /// Each provider's chain views, as last refreshed.
    pub chain: BTreeMap<Address, ChainView>,
    /// Provider records found on the p2p network, by payout address.
    pub records: BTreeMap<Address, RecordView>,
    /// Freshness.
    pub sync: SyncStatus,
}

/// What the live stream tells pages after a sync: they fetch again what they show.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Update {
    /// Last block ingested.
    pub last_block: Option<u64>,
    /// Events folded so far.
    pub events: u64,
    /// Whether the last sync failed.
    pub failing: bool,
}

/// The state shared by the sync task and the handlers, with the live stream's sender.
#[derive(Debug, Clone)]
pub struct Shared {
    state: Arc<RwLock<State>>,
    updates: broadcast::Sender<Update>,
}

impl Shared {
    /// A fresh state for the market `status` describes.
    pub fn new(status: SyncStatus) -> Self {
        let state = State {
            sync: status,
            ..State::default()
        };
        Self {
            state: Arc::new(RwLock::new(state)),
            updates: broadcast::channel(64).0,
        }
    }

    /// Reads the state (a poisoned lock is still read: the writer only folds data).
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the state.
    pub fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every open page that the state changed.
    pub fn notify(&self) {
        let update = {
            let s = self.read();
            Update {
                last_block: s.sync.last_block,
                events: s.model.events,
                failing: s.sync.rpc_error.is_some(),
            }
        };
        // No page listening is fine.
        let _ = self.updates.send(update);
    }

    /// A receiver of later updates.
    pub fn subscribe(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }
}

/// Seconds since the unix epoch, by the wall clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
