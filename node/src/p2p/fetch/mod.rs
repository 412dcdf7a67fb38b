//! Verified, resumable, multi-source blob fetching.
//!
//! The manifest comes from the first source that has one matching the requested hash (and
//! the announced manifest root, if given). Missing chunks are split into ranges that
//! workers (several streams per source) pull in parallel; every chunk is checked against
//! the manifest as it arrives, so a lying peer is caught at its first bad chunk, banned for
//! the rest of the fetch and penalised, and its ranges go back to the queue for honest
//! peers. Verified chunks are written to `partial/` on disk, so an interrupted fetch
//! resumes from them. The reassembled blob is finally checked against the content hash.

use std::collections::VecDeque;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use sha2::{Digest, Sha256};
use stp_sdk::p2p::{BlobManifest, ContentHash};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::blobstore::{BlobStore, read_full};
use super::config::Limits;
use super::error::{Offence, StoreError, TransferError};
use super::event_loop::Command;
use super::transfer::{self, PROTOCOL, Request, STATUS_NOT_FOUND, STATUS_OK, read_u32, timed};

/// Optional knobs of a fetch.
#[derive(Debug, Default, Clone)]
pub struct FetchOptions {
    /// The manifest root announced with the blob; manifests with another root are refused.
    pub manifest_root: Option<[u8; 32]>,
    /// Receives the number of verified bytes on disk as the fetch progresses.
    pub progress: Option<watch::Sender<u64>>,
}

/// What a fetch did.
#[derive(Debug, Clone)]
pub struct FetchReport {
    /// Where the complete blob is stored.
    pub path: PathBuf,
    /// Blob size in bytes.
    pub size: u64,
    /// Chunks in the blob.
    pub chunks: usize,
    /// Chunks found already verified on disk (resumed) rather than fetched.
    pub resumed_chunks: usize,
    /// Chunks fetched from each source.
    pub chunks_per_peer: Vec<(PeerId, usize)>,
    /// Sources banned during the fetch and why.
    pub banned: Vec<(PeerId, Offence)>,
}

pub(crate) struct Fetcher {
    pub control: libp2p_stream::Control,
    pub commands: mpsc::Sender<Command>,
    pub store: Arc<BlobStore>,
    pub limits: Limits,
    pub penalties: mpsc::Sender<(PeerId, Offence)>,
}

/// Why one source stopped serving this fetch.
enum PeerFailure {
    Offence(Offence),
    Io(String),
    NotFound,
}

impl From<std::io::Error> for PeerFailure {
    fn from(e: std::io::Error) -> Self {
        PeerFailure::Io(e.to_string())
    }
}

struct Shared {
    manifest: BlobManifest,
    file: std::fs::File,
    sched: Mutex<Sched>,
    notify: Notify,
    progress: Option<watch::Sender<u64>>,
}

struct Sched {
    queue: VecDeque<(u32, u32)>,
    in_flight: usize,
    missing: usize,
    last_error: String,
    banned: Vec<(PeerId, Offence)>,
    per_peer: Vec<(PeerId, usize)>,
}

impl Fetcher {
    pub(crate) async fn fetch(
        &self,
        hash: ContentHash,
        sources: Vec<PeerId>,
        opts: FetchOptions,
    ) -> Result<FetchReport, TransferError> {
        if let Some(m) = self.store.manifest(&hash)? {
            return Ok(self.report_for_existing(m));
        }
        if sources.is_empty() {
            return Err(TransferError::NoSources);
        }
        let (manifest, live) = self
            .obtain_manifest(hash, &sources, opts.manifest_root)
            .await?;
        let (file, have) = self.open_partial(&manifest).await?;
        let resumed = have.iter().filter(|h| **h).count();
        if let Some(p) = &opts.progress {
            let bytes: u64 = (0..have.len())
                .filter(|i| have[*i])
                .map(|i| manifest.chunk_range(i).1 as u64)
                .sum();
            p.send_replace(bytes);
        }
        let batch = self.limits.max_chunks_per_request.clamp(1, 16);
        let shared = Arc::new(Shared {
            sched: Mutex::new(Sched {
                queue: missing_ranges(&have, batch),
                in_flight: 0,
                missing: have.len() - resumed,
                last_error: String::new(),
                banned: Vec::new(),
                per_peer: Vec::new(),
            }),
            manifest,
            file,
            notify: Notify::new(),
            progress: opts.progress,
        });
        if shared.lock().missing > 0 {
            self.run_workers(&shared, &live).await;
        }
        self.finish(shared, resumed).await
    }

    fn report_for_existing(&self, m: BlobManifest) -> FetchReport {
        FetchReport {
            path: self.store.blob_path(&m.content_hash),
            size: m.size,
            chunks: m.chunk_count(),
            resumed_chunks: m.chunk_count(),
            chunks_per_peer: Vec::new(),
            banned: Vec::new(),
        }
    }

    /// Asks the sources in turn for the manifest; returns it and the sources not excluded.
    async fn obtain_manifest(
        &self,
        hash: ContentHash,
        sources: &[PeerId],
        root: Option<[u8; 32]>,
    ) -> Result<(BlobManifest, Vec<PeerId>), TransferError> {
        let acceptable =
            |m: &BlobManifest| m.content_hash == hash && root.is_none_or(|r| r == m.root());
        let partial = self.store.partial_manifest_path(&hash);
        if let Ok(bytes) = std::fs::read(&partial)
            && let Ok(m) = BlobManifest::decode(&bytes, self.limits.max_blob_size)
            && acceptable(&m)
        {
            return Ok((m, sources.to_vec()));
        }
        let mut live = Vec::new();
        let mut found = None;
        for &peer in sources {
            if found.is_some() {
                live.push(peer);
                continue;
            }
            match self.request_manifest(peer, hash).await {
                Ok(m) if acceptable(&m) => {
                    found = Some(m);
                    live.push(peer);
                }
                Ok(m) => {
                    let reason = format!(
                        "manifest for {} does not match the request",
                        hex::encode(m.content_hash)
                    );
                    transfer::report(&self.penalties, peer, Offence::BadManifest(reason));
                }
                Err(PeerFailure::Offence(o)) => transfer::report(&self.penalties, peer, o),
                Err(PeerFailure::Io(e)) => {
                    tracing::debug!(%peer, error = %e, "manifest request failed")
                }
                Err(PeerFailure::NotFound) => tracing::debug!(%peer, "peer does not have the blob"),
            }
        }
        let manifest = found.ok_or_else(|| TransferError::NotFound(hex::encode(hash)))?;
        self.store.write_atomic(&partial, &manifest.encode())?;
        Ok((manifest, live))
    }

    async fn request_manifest(
        &self,
        peer: PeerId,
        hash: ContentHash,
    ) -> Result<BlobManifest, PeerFailure> {
        let t = self.limits.io_timeout;
        let mut stream = self.open(peer).await?;
        timed(t, stream.write_all(&Request::Manifest(hash).encode())).await?;
        let mut status = [0u8; 1];
        timed(t, stream.read_exact(&mut status)).await?;
        match status[0] {
            STATUS_OK => {}
            STATUS_NOT_FOUND => return Err(PeerFailure::NotFound),
            s => {
                return Err(PeerFailure::Offence(Offence::Malformed(format!(
                    "unexpected status {s}"
                ))));
            }
        }
        let len = u64::from(timed(t, read_u32(&mut stream)).await?);
        let max = transfer::max_manifest_len(self.limits.max_blob_size);
        if len > max {
            return Err(PeerFailure::Offence(Offence::OversizedFrame { len, max }));
        }
        let mut buf = vec![0u8; len as usize];
        timed(t, stream.read_exact(&mut buf)).await?;
        BlobManifest::decode(&buf, self.limits.max_blob_size)
            .map_err(|e| PeerFailure::Offence(Offence::BadManifest(e.to_string())))
    }

    /// Opens a transfer stream, connecting first through the event loop: libp2p-stream's
    /// own dial-on-demand can miss a connection that is being established concurrently.
    async fn open(&self, peer: PeerId) -> Result<libp2p::Stream, PeerFailure> {
        let mut control = self.control.clone();
        timed(self.limits.io_timeout, async {
            let (tx, rx) = oneshot::channel();
            let stopped = || std::io::Error::other("p2p event loop stopped");
            self.commands
                .send(Command::Connect(peer, tx))
                .await
                .map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?.map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::NotConnected, e.to_string())
            })?;
            control
                .open_stream(peer, PROTOCOL)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
        .await
        .map_err(PeerFailure::from)
    }

    /// Creates or reopens the partial file and finds which chunks it already holds.
    async fn open_partial(
        &self,
        m: &BlobManifest,
    ) -> Result<(std::fs::File, Vec<bool>), TransferError> {
        let path = self.store.partial_path(&m.content_hash);
        let existed = path.is_file();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(&path, e))?;
        file.set_len(m.size).map_err(|e| StoreError::io(&path, e))?;
        if !existed {
            return Ok((file, vec![false; m.chunk_count()]));
        }
        let (m2, f2) = (
            m.clone(),
            file.try_clone().map_err(|e| StoreError::io(&path, e))?,
        );
        let have = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; m2.chunk_size as usize];
            (0..m2.chunk_count())
                .map(|i| {
                    let (off, len) = m2.chunk_range(i);
                    f2.read_exact_at(&mut buf[..len], off).is_ok()
                        && m2.verify_chunk(i, &buf[..len])
                })
                .collect::<Vec<bool>>()
        })
        .await
        .unwrap_or_default();
        Ok((file, have))
    }

    async fn run_workers(&self, shared: &Arc<Shared>, sources: &[PeerId]) {
        let mut set = tokio::task::JoinSet::new();
        for &peer in sources {
            let state = Arc::new(PeerState::default());
            for _ in 0..self.limits.streams_per_source.max(1) {
                let worker = Worker {
                    peer,
                    state: state.clone(),
                    shared: shared.clone(),
                    fetcher: self.clone_handles(),
                };
                set.spawn(worker.run());
            }
        }
        while set.join_next().await.is_some() {}
    }

    fn clone_handles(&self) -> Fetcher {
        Fetcher {
            control: self.control.clone(),
            commands: self.commands.clone(),
            store: self.store.clone(),
            limits: self.limits.clone(),
            penalties: self.penalties.clone(),
        }
    }

    async fn finish(
        &self,
        shared: Arc<Shared>,
        resumed: usize,
    ) -> Result<FetchReport, TransferError> {
        let (missing, last_error, banned, per_peer) = {
            let s = shared.lock();
            (
                s.missing,
                s.last_error.clone(),
                s.banned.clone(),
                s.per_peer.clone(),
            )
        };
        let m = shared.manifest.clone();
        if missing > 0 {
            return Err(TransferError::AllSourcesFailed {
                missing,
                total: m.chunk_count(),
                last_error,
            });
        }
        let path = self.store.partial_path(&m.content_hash);
        let actual = tokio::task::spawn_blocking(move || hash_file(&path))
            .await
            .map_err(|e| {
                StoreError::io(
                    &self.store.partial_path(&m.content_hash),
                    std::io::Error::other(e),
                )
            })??;
        if actual != m.content_hash {
            self.store.discard_partial(&m.content_hash);
            return Err(TransferError::ContentHashMismatch {
                expected: hex::encode(m.content_hash),
                actual: hex::encode(actual),
            });
        }
        let path = self.store.commit_partial(&m)?;
        Ok(FetchReport {
            path,
            size: m.size,
            chunks: m.chunk_count(),
            resumed_chunks: resumed,
            chunks_per_peer: per_peer,
            banned,
        })
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sched> {
        self.sched.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Transient I/O failure incidents tolerated per source before it is dropped from a fetch.
const MAX_IO_FAILURES: u32 = 4;
/// Failures of a source's workers this close together are one incident (a dropped
/// connection fails every stream on it at once); each worker then reconnects.
const INCIDENT_WINDOW: Duration = Duration::from_millis(500);

/// Shared by all workers of one source.
#[derive(Default)]
struct PeerState {
    /// Set when the source misbehaved or failed too often; its workers stop.
    banned: AtomicBool,
    io_failures: AtomicU32,
    /// When the current failure incident began.
    last_io_failure: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl PeerState {
    /// Books an I/O failure; returns how many incidents this source has had.
    fn io_failure(&self) -> u32 {
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

struct Worker {
    peer: PeerId,
    state: Arc<PeerState>,
    shared: Arc<Shared>,
    fetcher: Fetcher,
}

impl Worker {
    async fn run(self) {
        let mut buf = vec![0u8; self.shared.manifest.chunk_size as usize];
        loop {
            if self.state.banned.load(Ordering::Relaxed) {
                return;
            }
            let Some((start, count)) = self.take().await else {
                return;
            };
            let result = self.fetch_range(start, count, &mut buf).await;
            let retry_after = self.settle(start, count, result);
            match retry_after {
                None => continue,
                Some(Some(delay)) => tokio::time::sleep(delay).await,
                Some(None) => return,
            }
        }
    }

    /// Books the outcome of one range. `None`: carry on; `Some(Some(d))`: transient failure,
    /// retry after `d`; `Some(None)`: this source is done (banned or failed too often).
    fn settle(
        &self,
        start: u32,
        count: u32,
        result: Result<(), (u32, PeerFailure)>,
    ) -> Option<Option<Duration>> {
        let mut s = self.shared.lock();
        s.in_flight -= 1;
        let Err((next, failure)) = result else {
            return None;
        };
        if next < start + count {
            s.queue.push_front((next, start + count - next));
        }
        self.shared.notify.notify_waiters();
        if let PeerFailure::Io(e) = &failure {
            let n = self.state.io_failure();
            s.last_error = format!("{}: {e}", self.peer);
            if n < MAX_IO_FAILURES {
                tracing::debug!(peer = %self.peer, error = %e, "transient source failure; retrying");
                return Some(Some(Duration::from_millis(100 * u64::from(n))));
            }
        }
        let already = self.state.banned.swap(true, Ordering::Relaxed);
        match failure {
            PeerFailure::Offence(o) => {
                tracing::warn!(peer = %self.peer, offence = %o, "source banned for this fetch");
                s.last_error = format!("{}: {o}", self.peer);
                if !already {
                    s.banned.push((self.peer, o.clone()));
                    transfer::report(&self.fetcher.penalties, self.peer, o);
                }
            }
            PeerFailure::Io(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "source dropped from fetch")
            }
            PeerFailure::NotFound => {
                s.last_error = format!("{}: does not have the blob", self.peer)
            }
        }
        Some(None)
    }

    /// Takes the next range, waiting while others may still hand work back.
    async fn take(&self) -> Option<(u32, u32)> {
        loop {
            {
                let mut s = self.shared.lock();
                if let Some(r) = s.queue.pop_front() {
                    s.in_flight += 1;
                    return Some(r);
                }
                if s.in_flight == 0 || self.state.banned.load(Ordering::Relaxed) {
                    return None;
                }
            }
            tokio::select! {
                _ = self.shared.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
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
            self.chunk_done(len as u64);
        }
        Ok(())
    }

    fn chunk_done(&self, bytes: u64) {
        {
            let mut s = self.shared.lock();
            s.missing -= 1;
            match s.per_peer.iter_mut().find(|(p, _)| *p == self.peer) {
                Some((_, n)) => *n += 1,
                None => s.per_peer.push((self.peer, 1)),
            }
        }
        if let Some(p) = &self.shared.progress {
            p.send_modify(|v| *v += bytes);
        }
    }
}

/// Splits the missing chunks into contiguous ranges of at most `batch` chunks.
fn missing_ranges(have: &[bool], batch: u32) -> VecDeque<(u32, u32)> {
    let mut out = VecDeque::new();
    let mut i = 0;
    while i < have.len() {
        if have[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < have.len() && !have[i] && i - start < batch as usize {
            i += 1;
        }
        out.push_back((start as u32, (i - start) as u32));
    }
    out
}

fn hash_file(path: &std::path::Path) -> Result<[u8; 32], StoreError> {
    let mut f = std::fs::File::open(path).map_err(|e| StoreError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = read_full(&mut f, &mut buf).map_err(|e| StoreError::io(path, e))?;
        if n == 0 {
            return Ok(h.finalize().into());
        }
        h.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_ranges_cover_gaps_in_batches() {
        let have = [true, false, false, false, true, false, true, false];
        let r: Vec<_> = missing_ranges(&have, 2).into_iter().collect();
        assert_eq!(r, vec![(1, 2), (3, 1), (5, 1), (7, 1)]);
        assert!(missing_ranges(&[true; 4], 8).is_empty());
    }

    #[test]
    fn one_dropped_connection_is_one_incident_but_a_dead_source_runs_out() {
        let state = PeerState::default();
        // Four streams fail together when their connection drops: one incident.
        for _ in 0..4 {
            assert_eq!(state.io_failure(), 1);
        }
        std::thread::sleep(INCIDENT_WINDOW + Duration::from_millis(100));
        assert_eq!(state.io_failure(), 2);
        // A source failing every 100 ms still uses up an incident per window.
        let mut n = 2;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(100));
            n = state.io_failure();
        }
        assert!(n >= MAX_IO_FAILURES, "{n}");
    }
}
