//! Shared input parts on the provider: a parts input (`stp_sdk::batch::parts`) resolved
//! before the kernel runs, each referenced blob taken from the blob store when an earlier
//! chunk or job brought it, else fetched once by its hash. The parts this node fetched
//! are kept up to a byte budget and the least recently used go first. A part is fetched
//! from the job's input peers and from the providers whose records advertise it.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::B256;
use libp2p::PeerId;
use stp_sdk::batch::parts::{self, PartsError};
use tokio::sync::Mutex;

use super::Metrics;
use super::driver::Failure;
use crate::p2p::{FetchOptions, P2pClient};
use stp_sdk::p2p::ContentHash;

/// Default budget of the part cache: 4 GiB.
pub const DEFAULT_PART_CACHE_BYTES: u64 = 4 << 30;

/// The parts this node holds, least recently used first, within a byte budget.
#[derive(Debug)]
struct Lru {
    budget: u64,
    total: u64,
    entries: VecDeque<(ContentHash, u64)>,
}

impl Lru {
    /// Marks `hash`, if this cache brought it, as just used.
    fn refresh(&mut self, hash: &ContentHash) {
        if let Some(i) = self.entries.iter().position(|(h, _)| h == hash) {
            let entry = self.entries.remove(i).expect("position is in range");
            self.entries.push_back(entry);
        }
    }

    /// Records `hash` (of `size` bytes), just fetched, as the most recently used; returns
    /// the parts to evict to stay within the budget (never the one just fetched). Only
    /// parts this cache fetched are ever evicted, so nothing else in the store is touched.
    fn touch(&mut self, hash: ContentHash, size: u64) -> Vec<ContentHash> {
        match self.entries.iter().position(|(h, _)| *h == hash) {
            Some(i) => {
                let entry = self.entries.remove(i).expect("position is in range");
                self.entries.push_back(entry);
            }
            None => {
                self.entries.push_back((hash, size));
                self.total += size;
            }
        }
        let mut evicted = Vec::new();
        while self.total > self.budget && self.entries.len() > 1 {
            let (h, s) = self.entries.pop_front().expect("more than one entry");
            self.total -= s;
            evicted.push(h);
        }
        evicted
    }
}

/// Longest wait for one part to arrive (within the job's own deadline).
const PART_FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for the DHT lookup of the providers that advertise a part.
const HOLDERS_LOOKUP: Duration = Duration::from_secs(3);
/// Most advertising providers added as sources of one part.
const MAX_HOLDERS: usize = 8;

/// The provider's part cache; clones share it. Only one fetch of a given part runs at a
/// time, so two chunks that need the same part do not both fetch it; different parts are
/// fetched concurrently.
#[derive(Debug, Clone)]
pub(in crate::daemon) struct PartCache {
    lru: Arc<Mutex<Lru>>,
    fetching: Arc<std::sync::Mutex<HashMap<ContentHash, Arc<Mutex<()>>>>>,
    max_input: u64,
}

impl PartCache {
    /// A cache of at most `budget` bytes of parts, for inputs of at most `max_input` bytes
    /// once resolved.
    pub(in crate::daemon) fn new(budget: u64, max_input: u64) -> Self {
        Self {
            lru: Arc::new(Mutex::new(Lru {
                budget,
                total: 0,
                entries: VecDeque::new(),
            })),
            fetching: Arc::default(),
            max_input,
        }
    }

    /// The parts this cache fetched and still holds, most recently used first, at most
    /// `n`: what the provider record advertises.
    pub(in crate::daemon) async fn recent(&self, n: usize) -> Vec<ContentHash> {
        let lru = self.lru.lock().await;
        lru.entries.iter().rev().take(n).map(|(h, _)| *h).collect()
    }

    /// The resolved input of parts input `input`: each referenced blob from the store or
    /// fetched from `peers` (the consumer, and any peer holding it) by its hash. Refused
    /// before anything is fetched if it would resolve to more than this node takes.
    pub(in crate::daemon) async fn resolve(
        &self,
        p2p: &P2pClient,
        metrics: &Metrics,
        input: &[u8],
        peers: Vec<PeerId>,
        commit_by: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let segments = parts::decode(input).map_err(|e| Failure::InputMismatch(e.to_string()))?;
        let size = parts::resolved_len(&segments);
        if size > self.max_input {
            return Err(Failure::InputMismatch(format!(
                "the parts resolve to {size} bytes, more than this node's input limit of {}",
                self.max_input
            )));
        }
        for (hash, size) in parts::blobs(&segments) {
            self.obtain(p2p, metrics, (hash, size), &peers, commit_by)
                .await?;
        }
        parts::resolve(&segments, |h| p2p.store().read(h).ok()).map_err(|e| match e {
            PartsError::Missing { .. } => Failure::InputUnavailable(e.to_string()),
            _ => Failure::InputMismatch(e.to_string()),
        })
    }

    /// Makes part `hash` of `size` bytes present in the store: there already (of that
    /// size), or fetched once.
    async fn obtain(
        &self,
        p2p: &P2pClient,
        metrics: &Metrics,
        (hash, size): (ContentHash, u64),
        peers: &[PeerId],
        commit_by: Instant,
    ) -> Result<(), Failure> {
        let one = self.fetch_lock(hash);
        let _fetching = one.lock().await;
        if let Ok(Some(m)) = p2p.blob_manifest(&hash) {
            if m.size != size {
                return Err(Failure::InputMismatch(format!(
                    "part {} is {} bytes, referenced as {size}",
                    B256::from(hash),
                    m.size
                )));
            }
            metrics.part("cached");
            self.lru.lock().await.refresh(&hash);
            return Ok(());
        }
        let opts = FetchOptions {
            expected_size: Some(size),
            ..FetchOptions::default()
        };
        let mut sources = peers.to_vec();
        sources.extend(holders(p2p, &hash, peers).await);
        let wait = commit_by
            .saturating_duration_since(Instant::now())
            .min(PART_FETCH_TIMEOUT);
        let report = tokio::time::timeout(wait, p2p.fetch_blob_with(hash, sources, opts))
            .await
            .map_err(|_| Failure::InputUnavailable("input part: timed out".into()))?
            .map_err(|e| Failure::InputUnavailable(format!("input part: {e}")))?;
        metrics.part("fetched");
        tracing::info!(part = %B256::from(hash), bytes = report.size, "input part fetched");
        let evicted = self.lru.lock().await.touch(hash, report.size);
        for old in evicted {
            match p2p.store().remove(&old) {
                Ok(()) => tracing::info!(part = %B256::from(old), "input part evicted"),
                Err(e) => tracing::warn!(error = %e, "cannot evict an input part"),
            }
        }
        Ok(())
    }

    fn fetch_lock(&self, hash: ContentHash) -> Arc<Mutex<()>> {
        let mut map = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(hash).or_default().clone()
    }
}

/// Providers whose records in the DHT advertise part `hash` (other than this node and the
/// `known` sources), their addresses handed to the p2p layer so the fetch can reach them;
/// best effort, within [`HOLDERS_LOOKUP`]. A record that lies costs the fetch no more
/// than a source with nothing to give: every chunk is checked against the manifest.
async fn holders(p2p: &P2pClient, hash: &ContentHash, known: &[PeerId]) -> Vec<PeerId> {
    let records = match tokio::time::timeout(HOLDERS_LOOKUP, p2p.find_providers()).await {
        Ok(Ok(records)) => records,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "no provider lookup for the part's holders");
            return Vec::new();
        }
        Err(_) => return Vec::new(),
    };
    let mut out = Vec::new();
    for rec in records.into_iter().filter(|r| r.parts.contains(hash)) {
        let Ok(peer) = PeerId::from_bytes(&rec.location.peer_id) else {
            continue;
        };
        if peer == p2p.peer_id() || known.contains(&peer) || out.contains(&peer) {
            continue;
        }
        let addrs = rec
            .location
            .addrs
            .into_iter()
            .filter_map(|a| libp2p::Multiaddr::try_from(a).ok())
            .collect();
        if p2p.add_peer_addrs(peer, addrs).await.is_ok() {
            out.push(peer);
        }
        if out.len() >= MAX_HOLDERS {
            break;
        }
    }
    if !out.is_empty() {
        tracing::info!(part = %B256::from(*hash), holders = out.len(), "input part advertised by other providers; fetching from them too");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_parts_go_first_and_the_newest_stays() {
        let mut lru = Lru {
            budget: 100,
            total: 0,
            entries: VecDeque::new(),
        };
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        assert!(lru.touch(a, 40).is_empty());
        assert!(lru.touch(b, 40).is_empty());
        // a is used again, so b is now the oldest.
        assert!(lru.touch(a, 40).is_empty());
        assert_eq!(lru.touch(c, 40), vec![b]);
        assert_eq!(lru.total, 80);
        // A part larger than the budget evicts the rest but stays itself.
        assert_eq!(lru.touch([4u8; 32], 500), vec![a, c]);
        assert_eq!(lru.entries.len(), 1);
    }

    #[test]
    fn only_parts_this_cache_fetched_are_tracked_and_evicted() {
        let mut lru = Lru {
            budget: 100,
            total: 0,
            entries: VecDeque::new(),
        };
        // A blob the store held before (another job's result, say) is never recorded...
        lru.refresh(&[9u8; 32]);
        assert!(lru.entries.is_empty());
        // ...so filling the budget evicts only fetched parts.
        assert!(lru.touch([1u8; 32], 60).is_empty());
        assert_eq!(lru.touch([2u8; 32], 60), vec![[1u8; 32]]);
    }
}
