//! What the server remembers between requests: bytes served, per blob the upload history
//! of each chunk and the peers that asked for its have-map, the peers being uploaded to,
//! and the upload rate's token bucket.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use stp_sdk::p2p::ContentHash;

use crate::p2p::config::Limits;

/// An upload of one chunk taking longer than this many have-map graces no longer keeps
/// others from asking for that chunk.
const STUCK_UPLOAD_GRACES: u32 = 8;

/// Blobs whose swarm bookkeeping (uploaded chunks, peers) is kept; the oldest is dropped.
const MAX_TRACKED_BLOBS: usize = 256;

/// What the server remembers between requests; shared with the [`super::P2pClient`].
#[derive(Debug)]
pub struct ServeState {
    pub(super) served_bytes: AtomicU64,
    blobs: Mutex<Tracked>,
    uploads: Mutex<HashMap<PeerId, usize>>,
    pub(super) bucket: Option<Mutex<Bucket>>,
}

#[derive(Debug, Default)]
struct Tracked {
    order: VecDeque<ContentHash>,
    blobs: HashMap<ContentHash, BlobSwarm>,
}

/// Per blob: what became of each chunk's uploads, and the peers that asked for its
/// have-map.
#[derive(Debug, Default)]
pub(super) struct BlobSwarm {
    pub(super) served: Vec<Mark>,
    pub(super) peers: VecDeque<(PeerId, Vec<Multiaddr>)>,
}

/// The upload history of one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Mark {
    /// Never uploaded.
    #[default]
    Never,
    /// Being uploaded to `peer` since the instant given.
    Sending(PeerId, tokio::time::Instant),
    /// Last uploaded to `peer`, finishing at `at`; `slow` if that upload took longer than
    /// a have-map refresh (this node's uplink is the bottleneck).
    Sent(PeerId, tokio::time::Instant, bool),
}

impl Mark {
    /// Whether another peer than `asker` is receiving this chunk now, or received it
    /// slowly less than `grace` ago: then the asker should get it from that peer. This is
    /// what keeps a slow origin from uploading a chunk twice while fetchers' have-maps lag
    /// behind; a fast server is not held back, and an upload stuck for
    /// [`STUCK_UPLOAD_GRACES`] graces no longer counts.
    pub(super) fn taken_from(
        &self,
        asker: PeerId,
        grace: Duration,
        now: tokio::time::Instant,
    ) -> bool {
        match *self {
            Mark::Never => false,
            Mark::Sending(p, since) => {
                p != asker && now.duration_since(since) < grace * STUCK_UPLOAD_GRACES
            }
            Mark::Sent(p, at, slow) => slow && p != asker && now.duration_since(at) < grace,
        }
    }
}

#[derive(Debug)]
pub(super) struct Bucket {
    rate: f64,
    tokens: f64,
    last: tokio::time::Instant,
}

impl ServeState {
    /// Fresh state with the upload limits of `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            served_bytes: AtomicU64::new(0),
            blobs: Mutex::new(Tracked::default()),
            uploads: Mutex::new(HashMap::new()),
            bucket: limits.max_upload_rate.map(|rate| {
                Mutex::new(Bucket {
                    rate: rate.max(1) as f64,
                    tokens: 0.0,
                    last: tokio::time::Instant::now(),
                })
            }),
        }
    }

    /// Chunk bytes this node has uploaded to other peers since it started.
    pub fn served_bytes(&self) -> u64 {
        self.served_bytes.load(Ordering::Relaxed)
    }

    /// Peers that recently asked this node for the have-map of `hash`.
    pub fn peers_of(&self, hash: &ContentHash) -> Vec<(PeerId, Vec<Multiaddr>)> {
        let t = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        t.blobs
            .get(hash)
            .map(|b| b.peers.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn with_blob<T>(
        &self,
        hash: ContentHash,
        chunks: usize,
        f: impl FnOnce(&mut BlobSwarm) -> T,
    ) -> T {
        let mut t = self.blobs.lock().unwrap_or_else(|p| p.into_inner());
        if !t.blobs.contains_key(&hash) {
            if t.order.len() >= MAX_TRACKED_BLOBS
                && let Some(old) = t.order.pop_front()
            {
                t.blobs.remove(&old);
            }
            t.order.push_back(hash);
        }
        let b = t.blobs.entry(hash).or_default();
        if b.served.len() != chunks {
            b.served = vec![Mark::Never; chunks];
        }
        f(b)
    }

    /// Books `peer` as an uploadee; `None` when the upload peer limit is reached.
    pub(super) fn upload_slot(
        self: &Arc<Self>,
        peer: PeerId,
        max_peers: usize,
    ) -> Option<UploadGuard> {
        let mut u = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        if !u.contains_key(&peer) && u.len() >= max_peers.max(1) {
            return None;
        }
        *u.entry(peer).or_default() += 1;
        Some(UploadGuard(self.clone(), peer))
    }

    /// Waits until `n` more bytes fit under the upload rate limit.
    pub(super) async fn throttle(&self, n: usize) {
        let Some(bucket) = &self.bucket else { return };
        let wait = {
            let mut b = bucket.lock().unwrap_or_else(|p| p.into_inner());
            let now = tokio::time::Instant::now();
            let burst = b.rate / 10.0;
            b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * b.rate).min(burst);
            b.last = now;
            b.tokens -= n as f64;
            (b.tokens < 0.0).then(|| Duration::from_secs_f64(-b.tokens / b.rate))
        };
        if let Some(d) = wait {
            tokio::time::sleep(d).await;
        }
    }
}

pub(super) struct UploadGuard(Arc<ServeState>, PeerId);

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let mut u = self.0.uploads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = u.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                u.remove(&self.1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn upload_rate_is_bounded_by_the_token_bucket() {
        let limits = Limits {
            max_upload_rate: Some(1_000_000),
            ..Limits::default()
        };
        let state = ServeState::new(&limits);
        let start = tokio::time::Instant::now();
        for _ in 0..30 {
            state.throttle(10_000).await;
        }
        let took = start.elapsed().as_secs_f64();
        // 300 kB at 1 MB/s; the bucket starts empty (the clock is paused: no scheduling
        // slack, so the bound is tight).
        assert!((0.299..=0.301).contains(&took), "{took}");
    }

    #[test]
    fn a_chunk_is_taken_while_sending_and_after_a_slow_send_only() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let grace = Duration::from_millis(500);
        let t0 = tokio::time::Instant::now();
        let sending = Mark::Sending(a, t0);
        assert!(sending.taken_from(b, grace, t0));
        assert!(
            !sending.taken_from(a, grace, t0),
            "not from its own recipient"
        );
        let stuck = t0 + grace * STUCK_UPLOAD_GRACES;
        assert!(
            !sending.taken_from(b, grace, stuck),
            "a stuck upload stops counting"
        );
        let slow = Mark::Sent(a, t0, true);
        assert!(slow.taken_from(b, grace, t0 + grace / 2));
        assert!(!slow.taken_from(b, grace, t0 + grace));
        assert!(
            !Mark::Sent(a, t0, false).taken_from(b, grace, t0),
            "fast sends never"
        );
        assert!(!Mark::Never.taken_from(b, grace, t0));
    }

    #[test]
    fn upload_peer_limit_refuses_new_peers_but_not_current_ones() {
        let limits = Limits::default();
        let state = Arc::new(ServeState::new(&limits));
        let (a, b) = (PeerId::random(), PeerId::random());
        let ga = state.upload_slot(a, 1).expect("first peer");
        let ga2 = state.upload_slot(a, 1).expect("same peer, another stream");
        assert!(state.upload_slot(b, 1).is_none(), "second peer refused");
        drop((ga, ga2));
        assert!(state.upload_slot(b, 1).is_some(), "slot freed");
    }
}
