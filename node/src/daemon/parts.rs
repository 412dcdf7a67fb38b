//! Shared input parts on the provider: a parts input (`stp_sdk::batch::parts`) resolved
//! before the kernel runs, each referenced blob taken from the blob store when an earlier
//! chunk or job brought it, else fetched once by its hash. The parts this node fetched
//! are kept up to a byte budget and the least recently used go first.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use alloy::primitives::B256;
use libp2p::PeerId;
use stp_sdk::batch::parts::{self, PartsError};
use tokio::sync::Mutex;

use super::Metrics;
use super::driver::Failure;
use crate::p2p::P2pClient;
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
    /// Marks `hash` (of `size` bytes) as just used; returns the parts to evict to stay
    /// within the budget (never the one just used).
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

/// The provider's part cache; clones share it. One resolution runs at a time, so two
/// chunks that need the same part do not both fetch it.
#[derive(Debug, Clone)]
pub(in crate::daemon) struct PartCache(Arc<Mutex<Lru>>);

impl PartCache {
    /// A cache of at most `budget` bytes of parts.
    pub(in crate::daemon) fn new(budget: u64) -> Self {
        Self(Arc::new(Mutex::new(Lru {
            budget,
            total: 0,
            entries: VecDeque::new(),
        })))
    }

    /// The resolved input of parts input `input`: each referenced blob from the store or
    /// fetched from `peers` (the consumer, and any peer holding it) by its hash.
    pub(in crate::daemon) async fn resolve(
        &self,
        p2p: &P2pClient,
        metrics: &Metrics,
        input: &[u8],
        peers: Vec<PeerId>,
        commit_by: Instant,
    ) -> Result<Vec<u8>, Failure> {
        let segments = parts::decode(input).map_err(|e| Failure::InputMismatch(e.to_string()))?;
        let mut lru = self.0.lock().await;
        for (hash, size) in parts::blobs(&segments) {
            if p2p.has_blob(&hash) {
                metrics.part("cached");
            } else {
                let fetch = p2p.fetch_blob(hash, peers.clone());
                tokio::time::timeout(commit_by.saturating_duration_since(Instant::now()), fetch)
                    .await
                    .map_err(|_| Failure::NoTime)?
                    .map_err(|e| Failure::InputUnavailable(format!("input part: {e}")))?;
                metrics.part("fetched");
                tracing::info!(part = %B256::from(hash), bytes = size, "input part fetched");
            }
            for old in lru.touch(hash, size) {
                match p2p.store().remove(&old) {
                    Ok(()) => tracing::info!(part = %B256::from(old), "input part evicted"),
                    Err(e) => tracing::warn!(error = %e, "cannot evict an input part"),
                }
            }
        }
        parts::resolve(&segments, |h| p2p.store().read(h).ok()).map_err(|e| match e {
            PartsError::Missing { .. } => Failure::InputUnavailable(e.to_string()),
            _ => Failure::InputMismatch(e.to_string()),
        })
    }
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
}
