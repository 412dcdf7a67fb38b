//! One stream's worth of a fetch: refreshes its source's have-map, asks the scheduler for
//! a range, pulls and verifies it, and books the outcome.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{Multiaddr, PeerId};
use stp_sdk::p2p::HaveMap;

use super::{Fetcher, PeerFailure, Shared};
use crate::p2p::error::Offence;
use crate::p2p::event_loop::Command;
use crate::p2p::serve;
use crate::p2p::transfer::{
    Request, STATUS_BUSY, STATUS_ELSEWHERE, STATUS_MISSING, STATUS_NOT_FOUND, STATUS_OK, read_u32,
    timed,
};

/// Transient I/O failure incidents in a row (no range delivered in between) tolerated per
/// source before it is dropped from a fetch.
pub(super) const MAX_IO_FAILURES: u32 = 4;
/// Failures of a source's workers this close together are one incident (a dropped
/// connection fails every stream on it at once); each worker then reconnects.
pub(super) const INCIDENT_WINDOW: Duration = Duration::from_millis(500);
/// Have-map answers "not found" in a row before a source is dropped (a peer named by
/// another may not have begun its own fetch yet).
const MAX_NOT_FOUND: u32 = 20;
/// Pause after a source said it is busy.
const LATER: Duration = Duration::from_millis(150);

/// Shared by all workers of one source.
#[derive(Default)]
pub(super) struct PeerState {
    io_failures: AtomicU32,
    /// When the current failure incident began.
    last_io_failure: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl PeerState {
    /// A range arrived: earlier failures were transient.
    fn delivered(&self) {
        self.io_failures.store(0, Ordering::Relaxed);
    }

    /// Books an I/O failure; returns how many incidents this source has had.
    pub(super) fn io_failure(&self) -> u32 {
        let now = tokio::time::Instant::now();
        let mut last = self
            .last_io_failure
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // The window runs from the incident's first failure, so a source that keeps
        // failing still runs out of incidents.
        let same_incident = last.is_some_and(|t| now.duration_since(t) < INCIDENT_WINDOW);
        if same_incident {
            self.io_failures.load(Ordering::Relaxed).max(1)
        } else {
            *last = Some(now);
            self.io_failures.fetch_add(1, Ordering::Relaxed) + 1
        }
    }
}

pub(super) struct Worker {
    pub peer: PeerId,
    pub state: Arc<PeerState>,
    pub shared: Arc<Shared>,
    pub fetcher: Fetcher,
}

impl Worker {
    pub(super) async fn run(self) {
        let mut buf = vec![0u8; self.shared.manifest.chunk_size as usize];
        let chunk_size = self.shared.manifest.chunk_size;
        let max_count = self.fetcher.limits.max_chunks_per_request.clamp(1, 16);
        while !self.shared.stopped() {
            if self.claim_refresh() {
                match self.refresh().await {
                    Ok(map) => self.apply_have(map),
                    Err(f) => match self.settle_failure(f) {
                        Some(d) => tokio::time::sleep(d).await,
                        None => return,
                    },
                }
                continue;
            }
            let picked = {
                let mut s = self.shared.lock();
                if s.sources.get(&self.peer).is_none_or(|v| v.gone) {
                    return;
                }
                s.pick(
                    self.peer,
                    max_count,
                    chunk_size,
                    tokio::time::Instant::now(),
                )
            };
            let Some((start, count)) = picked else {
                tokio::select! {
                    _ = self.shared.notify.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
                continue;
            };
            let result = self.fetch_range(start, count, &mut buf).await;
            if result.is_ok() {
                self.state.delivered();
            }
            if let Err((next, failure)) = result {
                self.shared.lock().requeue(
                    next as usize,
                    (start + count) as usize,
                    tokio::time::Instant::now(),
                );
                self.shared.notify.notify_waiters();
                match self.settle_failure(failure) {
                    Some(d) => tokio::time::sleep(d).await,
                    None => return,
                }
            }
        }
    }

    /// Whether this worker should refresh its source's have-map now (one at a time).
    fn claim_refresh(&self) -> bool {
        let mut s = self.shared.lock();
        let every = self.fetcher.limits.have_refresh;
        let Some(v) = s.sources.get_mut(&self.peer) else {
            return false;
        };
        let stale = v.refreshed.is_none_or(|t| t.elapsed() >= every);
        if v.gone || v.refreshing || !stale {
            return false;
        }
        v.refreshing = true;
        true
    }

    /// Books a failure; `Some(pause)` to carry on after it, `None` when this source is done.
    fn settle_failure(&self, failure: PeerFailure) -> Option<Duration> {
        let mut s = self.shared.lock();
        if let Some(v) = s.sources.get_mut(&self.peer) {
            v.refreshing = false;
        }
        match failure {
            PeerFailure::Later(pause) => {
                if let Some(v) = s.sources.get_mut(&self.peer) {
                    v.refreshed = None;
                }
                Some(pause)
            }
            PeerFailure::Io(e) => {
                let n = self.state.io_failure();
                s.last_error = format!("{}: {e}", self.peer);
                if n < MAX_IO_FAILURES {
                    tracing::debug!(peer = %self.peer, error = %e, "transient source failure; retrying");
                    return Some(Duration::from_millis(100 * u64::from(n)));
                }
                tracing::debug!(peer = %self.peer, error = %e, "source dropped from fetch");
                s.drop_source(self.peer);
                None
            }
            PeerFailure::Offence(o) => {
                tracing::warn!(peer = %self.peer, offence = %o, "source banned for this fetch");
                s.last_error = format!("{}: {o}", self.peer);
                if s.sources.get(&self.peer).is_some_and(|v| !v.gone) {
                    s.banned.push((self.peer, o.clone()));
                    serve::report(&self.fetcher.penalties, self.peer, o);
                }
                s.drop_source(self.peer);
                None
            }
            PeerFailure::NotFound => {
                s.last_error = format!("{}: does not have the blob", self.peer);
                s.drop_source(self.peer);
                None
            }
        }
    }

    /// Asks the source for its have-map (and tells it where this node listens).
    async fn refresh(&self) -> Result<HaveMap, PeerFailure> {
        let m = &self.shared.manifest;
        let n = m.chunk_count();
        let answer = self
            .fetcher
            .request_have(self.peer, m.content_hash, n, &self.shared.have_request)
            .await?;
        let Some(map) = answer else {
            return self.not_found(n);
        };
        if let Some(v) = self.shared.lock().sources.get_mut(&self.peer) {
            v.not_found = 0;
        }
        Ok(map)
    }

    /// A source without the blob: an empty map for a while, then dropped.
    fn not_found(&self, n: usize) -> Result<HaveMap, PeerFailure> {
        let mut s = self.shared.lock();
        let strikes = s.sources.get_mut(&self.peer).map_or(u32::MAX, |v| {
            v.not_found += 1;
            v.not_found
        });
        if strikes >= MAX_NOT_FOUND {
            return Err(PeerFailure::NotFound);
        }
        Ok(HaveMap {
            have: vec![false; n],
            served: vec![false; n],
            peers: Vec::new(),
        })
    }

    /// Books a have-map and adopts the peers it names as further sources.
    fn apply_have(&self, map: HaveMap) {
        let now = tokio::time::Instant::now();
        let max = self.fetcher.limits.max_sources.max(1);
        let mut s = self.shared.lock();
        s.set_have(self.peer, map.have, map.served, now);
        for loc in map.peers {
            let Ok(peer) = PeerId::from_bytes(&loc.peer_id) else {
                continue;
            };
            if peer == self.fetcher.local || !s.add_source(peer, max) {
                continue;
            }
            let addrs: Vec<Multiaddr> = loc
                .addrs
                .into_iter()
                .filter_map(|a| Multiaddr::try_from(a).ok())
                .collect();
            tracing::debug!(%peer, via = %self.peer, ?addrs, "fetch source learnt from a have-map");
            let _ = self
                .fetcher
                .commands
                .try_send(Command::AddAddrs(peer, addrs));
        }
        drop(s);
        self.shared.notify.notify_waiters();
    }

    /// Fetches one range; on failure returns the first chunk not stored and why.
    async fn fetch_range(
        &self,
        start: u32,
        count: u32,
        buf: &mut [u8],
    ) -> Result<(), (u32, PeerFailure)> {
        let t = self.fetcher.limits.io_timeout;
        let m = &self.shared.manifest;
        let hash = m.content_hash;
        let mut stream = self.fetcher.open(self.peer).await.map_err(|f| (start, f))?;
        let req = Request::Chunks { hash, start, count }.encode();
        let mut began = tokio::time::Instant::now();
        timed(t, stream.write_all(&req))
            .await
            .map_err(|e| (start, e.into()))?;
        let mut status = [0u8; 1];
        timed(t, stream.read_exact(&mut status))
            .await
            .map_err(|e| (start, e.into()))?;
        match status[0] {
            STATUS_OK => {}
            STATUS_NOT_FOUND => return Err((start, PeerFailure::NotFound)),
            STATUS_BUSY => return Err((start, PeerFailure::Later(LATER))),
            STATUS_MISSING | STATUS_ELSEWHERE => {
                return Err((start, PeerFailure::Later(Duration::ZERO)));
            }
            s => {
                return Err((
                    start,
                    PeerFailure::Offence(Offence::Malformed(format!("unexpected status {s}"))),
                ));
            }
        }
        for index in start..start + count {
            let (offset, len) = m.chunk_range(index as usize);
            let declared = timed(t, read_u32(&mut stream))
                .await
                .map_err(|e| (index, e.into()))?;
            if declared as usize != len {
                let offence = if u64::from(declared) > u64::from(m.chunk_size) {
                    Offence::OversizedFrame {
                        len: declared.into(),
                        max: m.chunk_size.into(),
                    }
                } else {
                    Offence::Malformed(format!("chunk {index} is {declared} bytes, expected {len}"))
                };
                return Err((index, PeerFailure::Offence(offence)));
            }
            timed(t, stream.read_exact(&mut buf[..len]))
                .await
                .map_err(|e| (index, e.into()))?;
            if !m.verify_chunk(index as usize, &buf[..len]) {
                return Err((
                    index,
                    PeerFailure::Offence(Offence::CorruptChunk {
                        index: index as usize,
                    }),
                ));
            }
            self.shared
                .file
                .write_all_at(&buf[..len], offset)
                .map_err(|e| (index, e.into()))?;
            self.chunk_done(index as usize, len, began.elapsed());
            began = tokio::time::Instant::now();
        }
        Ok(())
    }

    fn chunk_done(&self, index: usize, len: usize, took: Duration) {
        self.shared.partial.mark(index);
        {
            let mut s = self.shared.lock();
            s.chunk_done(self.peer, index, tokio::time::Instant::now());
            s.record_rate(self.peer, len, took);
        }
        self.shared.notify.notify_waiters();
        if let Some(p) = &self.shared.progress {
            p.send_modify(|v| *v += len as u64);
        }
    }
}
