//! Verified, resumable, multi-source blob fetching.
//!
//! The manifest comes from the first source that has one matching the requested hash (and
//! the announced manifest root, if given). Missing chunks are split into ranges that
//! workers (several streams per source) pull in parallel; every chunk is checked against
//! the manifest as it arrives, so a lying peer is caught at its first bad chunk, banned for
//! the rest of the fetch and penalised, and its ranges go back to the queue for honest
//! peers. Verified chunks are written to `partial/` on disk, so an interrupted fetch
//! resumes from them. The reassembled blob is checked against the content hash.
//!
//! The CPU-heavy steps stay off the stream's path: each received chunk is hashed and
//! written on the blocking pool while the worker already receives the next one. The
//! content hash is computed in chunk order while chunks land, from memory: a chunk that
//! lands ahead of the hash cursor is parked (bounded) until the cursor reaches it, so the
//! blob is not read back from disk and little is left to hash after the last chunk.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use sha2::{Digest, Sha256};
use stp_sdk::p2p::{BlobManifest, ContentHash};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::blobstore::BlobStore;
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
    /// Held while writing to `file`: concurrent writes to one file queue on the kernel's
    /// inode lock by spinning, burning a core that could be verifying; this one sleeps.
    write_lock: Mutex<()>,
    sched: Mutex<Sched>,
    notify: Notify,
    /// The content hash, fed in chunk order; whoever holds the lock feeds it.
    whole: Mutex<WholeHash>,
    /// Verified chunks that landed ahead of `whole`'s cursor, and spare chunk buffers.
    parked: Mutex<Parked>,
    progress: Option<watch::Sender<u64>>,
}

struct Sched {
    queue: VecDeque<(u32, u32)>,
    in_flight: usize,
    missing: usize,
    last_error: String,
    banned: Vec<(PeerId, Offence)>,
    per_peer: Vec<(PeerId, usize)>,
    /// Which chunks are verified and on disk.
    have: Vec<bool>,
}

/// sha256 of the blob's chunks `0..next`.
#[derive(Default)]
struct WholeHash {
    sha: Sha256,
    next: usize,
}

#[derive(Default)]
struct Parked {
    chunks: HashMap<usize, Vec<u8>>,
    bytes: usize,
    spare: Vec<Vec<u8>>,
}

/// Most bytes of verified chunks kept in memory for the content hash; chunks landing
/// further ahead of the hash cursor are read back from disk when it gets there.
const MAX_PARKED_BYTES: usize = 64 << 20;

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
                have,
            }),
            manifest,
            file,
            write_lock: Mutex::new(()),
            notify: Notify::new(),
            whole: Mutex::default(),
            parked: Mutex::default(),
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
        let actual = tokio::task::spawn_blocking(move || shared.finish_hash())
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(|e| StoreError::io(&path, e))?;
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

    fn parked(&self) -> MutexGuard<'_, Parked> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Verifies chunk `index` from `peer`, writes it to the partial file, books it and feeds
    /// the content hash. Returns a buffer for the next chunk (`data`'s own, unless it was
    /// parked for the hash). Blocking (sha256, a file write): runs on the blocking pool.
    fn land(&self, peer: PeerId, index: u32, data: Vec<u8>) -> (Vec<u8>, Result<(), PeerFailure>) {
        let i = index as usize;
        if !self.manifest.verify_chunk(i, &data) {
            let offence = Offence::CorruptChunk { index: i };
            return (data, Err(PeerFailure::Offence(offence)));
        }
        let (offset, len) = self.manifest.chunk_range(i);
        let written = {
            let _writing = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.file.write_all_at(&data, offset)
        };
        if let Err(e) = written {
            return (data, Err(e.into()));
        }
        // Parked before it is booked: whoever sees the chunk booked finds it parked (or
        // reads it back from disk, where it already is).
        let buf = self.park(i, data);
        {
            let mut s = self.lock();
            if !s.have[i] {
                s.have[i] = true;
                s.missing -= 1;
                match s.per_peer.iter_mut().find(|(p, _)| *p == peer) {
                    Some((_, n)) => *n += 1,
                    None => s.per_peer.push((peer, 1)),
                }
            }
        }
        if let Some(p) = &self.progress {
            p.send_modify(|v| *v += len as u64);
        }
        self.advance_hash();
        (buf, Ok(()))
    }

    /// Keeps verified chunk `i` for the content hash if there is room; returns a buffer
    /// for the next chunk.
    fn park(&self, i: usize, data: Vec<u8>) -> Vec<u8> {
        let mut p = self.parked();
        if p.bytes + data.len() > MAX_PARKED_BYTES {
            return data;
        }
        p.bytes += data.len();
        p.chunks.insert(i, data);
        p.spare.pop().unwrap_or_default()
    }

    /// Feeds the content hash every chunk from its cursor on that has landed; returns at
    /// once when another thread is feeding it. Read errors are left for [`Self::finish_hash`].
    fn advance_hash(&self) {
        loop {
            let mut whole = match self.whole.try_lock() {
                Ok(w) => w,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            if let Err(e) = self.feed(&mut whole) {
                tracing::debug!(error = %e, "content hash read-back failed; retried at the end");
                return;
            }
            let next = whole.next;
            drop(whole);
            // A chunk that landed while the lock was held found it taken: look again.
            if !self.landed(next) {
                return;
            }
        }
    }

    /// Whether chunk `i` is verified (parked or on disk).
    fn landed(&self, i: usize) -> bool {
        i < self.manifest.chunk_count()
            && (self.parked().chunks.contains_key(&i) || self.lock().have[i])
    }

    /// Feeds `whole` the landed chunks from its cursor on, parked ones from memory, others
    /// (resumed, or beyond the parking budget) read back from the partial file.
    fn feed(&self, whole: &mut WholeHash) -> std::io::Result<()> {
        let mut read_back = Vec::new();
        while whole.next < self.manifest.chunk_count() {
            let i = whole.next;
            let parked = self.parked().chunks.remove(&i);
            if let Some(chunk) = parked {
                whole.sha.update(&chunk);
                let mut p = self.parked();
                p.bytes -= chunk.len();
                p.spare.push(chunk);
            } else if self.lock().have[i] {
                let (offset, len) = self.manifest.chunk_range(i);
                read_back.resize(len, 0);
                self.file.read_exact_at(&mut read_back, offset)?;
                whole.sha.update(&read_back);
                // Parked between the two looks above: already hashed, let it go.
                let mut p = self.parked();
                if let Some(chunk) = p.chunks.remove(&i) {
                    p.bytes -= chunk.len();
                    p.spare.push(chunk);
                }
            } else {
                break;
            }
            whole.next += 1;
        }
        Ok(())
    }

    /// The content hash of the complete partial file. Blocking.
    fn finish_hash(&self) -> std::io::Result<ContentHash> {
        let mut whole = self.whole.lock().unwrap_or_else(|p| p.into_inner());
        self.feed(&mut whole)?;
        if whole.next < self.manifest.chunk_count() {
            return Err(std::io::Error::other(format!(
                "chunk {} is not on disk at the end of the fetch",
                whole.next
            )));
        }
        Ok(std::mem::take(&mut whole.sha).finalize().into())
    }
}

/// Transient I/O failures tolerated per source before it is dropped from a fetch.
const MAX_IO_FAILURES: u32 = 3;

/// Shared by all workers of one source.
#[derive(Default)]
struct PeerState {
    /// Set when the source misbehaved or failed too often; its workers stop.
    banned: AtomicBool,
    io_failures: AtomicU32,
}

struct Worker {
    peer: PeerId,
    state: Arc<PeerState>,
    shared: Arc<Shared>,
    fetcher: Fetcher,
}

impl Worker {
    async fn run(self) {
        // Two chunk buffers: one receiving while the other is verified and written.
        let mut spare = Vec::new();
        loop {
            if self.state.banned.load(Ordering::Relaxed) {
                return;
            }
            let Some((start, count)) = self.take().await else {
                return;
            };
            let result = self.fetch_range(start, count, &mut spare).await;
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
            let n = self.state.io_failures.fetch_add(1, Ordering::Relaxed) + 1;
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

    /// Fetches one range; on failure returns the first chunk not stored and why. Chunk `i`
    /// is verified and written on the blocking pool while chunk `i + 1` arrives; `spare`
    /// keeps the chunk buffers between ranges.
    async fn fetch_range(
        &self,
        start: u32,
        count: u32,
        spare: &mut Vec<Vec<u8>>,
    ) -> Result<(), (u32, PeerFailure)> {
        let t = self.fetcher.limits.io_timeout;
        let hash = self.shared.manifest.content_hash;
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
        let mut landing: Option<(u32, Landing)> = None;
        let mut outcome = Ok(());
        for index in start..start + count {
            let mut buf = spare.pop().unwrap_or_default();
            if let Err(f) = self.receive_chunk(&mut stream, index, &mut buf).await {
                spare.push(buf);
                outcome = Err((index, f));
                break;
            }
            if let Some((prev, pending)) = landing.take()
                && let Err(f) = Self::landed(pending, spare).await
            {
                spare.push(buf);
                outcome = Err((prev, f));
                break;
            }
            let (shared, peer) = (self.shared.clone(), self.peer);
            landing = Some((
                index,
                tokio::task::spawn_blocking(move || shared.land(peer, index, buf)),
            ));
        }
        // The chunk still landing comes before any chunk that failed to arrive.
        if let Some((prev, pending)) = landing
            && let Err(f) = Self::landed(pending, spare).await
        {
            outcome = Err((prev, f));
        }
        outcome
    }

    /// Reads chunk `index` (length prefix, then bytes) into `buf`, resized to the chunk.
    async fn receive_chunk(
        &self,
        stream: &mut libp2p::Stream,
        index: u32,
        buf: &mut Vec<u8>,
    ) -> Result<(), PeerFailure> {
        let t = self.fetcher.limits.io_timeout;
        let m = &self.shared.manifest;
        let (_, len) = m.chunk_range(index as usize);
        let declared = timed(t, read_u32(stream)).await?;
        if declared as usize != len {
            let offence = if u64::from(declared) > u64::from(m.chunk_size) {
                Offence::OversizedFrame {
                    len: declared.into(),
                    max: m.chunk_size.into(),
                }
            } else {
                Offence::Malformed(format!("chunk {index} is {declared} bytes, expected {len}"))
            };
            return Err(PeerFailure::Offence(offence));
        }
        buf.resize(len, 0);
        timed(t, stream.read_exact(buf)).await?;
        Ok(())
    }

    /// Waits for a chunk handed to the blocking pool; its buffer goes back to `spare`.
    async fn landed(pending: Landing, spare: &mut Vec<Vec<u8>>) -> Result<(), PeerFailure> {
        match pending.await {
            Ok((buf, result)) => {
                spare.push(buf);
                result
            }
            Err(e) => Err(PeerFailure::Io(format!("chunk writer failed: {e}"))),
        }
    }
}

/// A received chunk being verified and written on the blocking pool; gives its buffer back.
type Landing = tokio::task::JoinHandle<(Vec<u8>, Result<(), PeerFailure>)>;

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
}
