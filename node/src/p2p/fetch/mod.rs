//! Verified, resumable, swarming blob fetching.
//!
//! The manifest comes from the first source that has one matching the requested hash (and
//! the announced manifest root, if given): for a BLAKE3-named blob (every job input) its
//! chunk list must merge to that hash, so a forged list is refused before any chunk is
//! asked for. Then every source is asked for its have-map
//! (which chunks it holds; a source may itself be fetching), which also names other
//! peers fetching or holding the blob: they join the fetch as sources. Workers (several
//! streams per source) pull the ranges the [scheduler](sched) picks for their source;
//! every chunk is checked against the manifest's BLAKE3 hash as it arrives, so a lying
//! peer is caught at its first bad chunk, banned for the rest of the fetch and penalised,
//! and its chunks go back to the pool for honest peers. Verified chunks are written to
//! `partial/` on disk and served to other fetchers at once; an interrupted fetch resumes
//! from them. A BLAKE3-named blob is then complete: each byte was hashed once, as its
//! chunk arrived. A sha256-named blob (a result) is checked once more, whole, against its
//! name.

mod have;
mod sched;
mod worker;

pub use have::Replication;

use std::collections::HashSet;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use sha2::{Digest, Sha256};
use stp_sdk::p2p::{BlobManifest, ContentHash, HaveRequest};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use super::blobstore::{BlobStore, Partial, read_full};
use super::config::Limits;
use super::error::{Offence, StoreError, TransferError};
use super::event_loop::Command;
use super::serve;
use super::transfer::{self, PROTOCOL, Request, STATUS_NOT_FOUND, STATUS_OK, read_u32, timed};
use sched::Sched;
use worker::Worker;

/// Optional knobs of a fetch.
#[derive(Debug, Default, Clone)]
pub struct FetchOptions {
    /// The manifest root announced with the blob; manifests with another root are refused.
    pub manifest_root: Option<[u8; 32]>,
    /// Receives the number of verified bytes on disk as the fetch progresses.
    pub progress: Option<watch::Sender<u64>>,
    /// The size the blob must have: a manifest of another size is refused before any
    /// chunk is fetched (a reference that declared its size, such as a job's input part).
    pub expected_size: Option<u64>,
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
    /// Chunks fetched from each source (including sources learnt from have-maps).
    pub chunks_per_peer: Vec<(PeerId, usize)>,
    /// Sources banned during the fetch and why.
    pub banned: Vec<(PeerId, Offence)>,
}

#[derive(Clone)]
pub(crate) struct Fetcher {
    pub local: PeerId,
    pub control: libp2p_stream::Control,
    pub commands: mpsc::Sender<Command>,
    pub store: Arc<BlobStore>,
    pub limits: Limits,
    pub penalties: mpsc::Sender<(PeerId, Offence)>,
}

/// Why one source stopped serving a request.
enum PeerFailure {
    Offence(Offence),
    Io(String),
    NotFound,
    /// Busy, not holding those chunks yet or just sent them elsewhere: refresh the
    /// have-map and ask again after the pause.
    Later(Duration),
}

impl From<std::io::Error> for PeerFailure {
    fn from(e: std::io::Error) -> Self {
        PeerFailure::Io(e.to_string())
    }
}

/// Tries of a manifest request to one source before it counts as failed.
const MANIFEST_ATTEMPTS: u32 = 3;

/// State shared by the workers of one fetch.
struct Shared {
    manifest: BlobManifest,
    file: std::fs::File,
    partial: Arc<Partial>,
    sched: Mutex<Sched>,
    notify: Notify,
    stop: AtomicBool,
    progress: Option<watch::Sender<u64>>,
    /// `len u16 | HaveRequest` naming this node's listen addresses.
    have_request: Vec<u8>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sched> {
        self.sched.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Unpublishes the download in progress when the fetch ends, however it ends.
struct PartialGuard<'a>(&'a BlobStore, ContentHash);

impl Drop for PartialGuard<'_> {
    fn drop(&mut self) {
        self.0.unregister_partial(&self.1);
    }
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
        if let Some(expected) = opts.expected_size
            && manifest.size != expected
        {
            return Err(TransferError::SizeMismatch {
                expected,
                actual: manifest.size,
            });
        }
        let (file, have) = self.open_partial(&manifest).await?;
        let resumed = have.iter().filter(|h| **h).count();
        if let Some(p) = &opts.progress {
            let bytes: u64 = (0..have.len())
                .filter(|i| have[*i])
                .map(|i| manifest.chunk_range(i).1 as u64)
                .sum();
            p.send_replace(bytes);
        }
        let reader = file
            .try_clone()
            .map_err(|e| StoreError::io(&self.store.partial_path(&hash), e))?;
        let partial = self
            .store
            .register_partial(manifest.clone(), reader, have.clone());
        let _published = PartialGuard(&self.store, hash);
        let mut sched = Sched::new(
            &have,
            self.order_offset(manifest.chunk_count()),
            tokio::time::Instant::now(),
        );
        for peer in live {
            sched.add_source(peer, self.limits.max_sources.max(1));
        }
        let shared = Arc::new(Shared {
            sched: Mutex::new(sched),
            manifest,
            file,
            partial,
            notify: Notify::new(),
            stop: AtomicBool::new(false),
            progress: opts.progress,
            have_request: self.have_request().await,
        });
        if shared.lock().missing > 0 {
            self.run_swarm(&shared).await;
        }
        self.finish(shared, resumed).await
    }

    /// Where this node starts in the chunk order: fetchers that start together spread out.
    fn order_offset(&self, chunks: usize) -> usize {
        let h = stp_sdk::p2p::input_hash(&self.local.to_bytes());
        u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) as usize
            % chunks.max(1)
    }

    /// The body of this node's have-map requests: its listen addresses.
    async fn have_request(&self) -> Vec<u8> {
        let (tx, rx) = oneshot::channel();
        let addrs = match self.commands.send(Command::ListenAddrs(tx)).await {
            Ok(()) => rx.await.unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let req = HaveRequest {
            addrs: addrs
                .iter()
                .map(|a| a.to_vec())
                .filter(|a| a.len() <= stp_sdk::p2p::MAX_ADDR_LEN)
                .take(stp_sdk::p2p::MAX_ADDRS)
                .collect(),
        };
        let body = req.encode().unwrap_or_else(|_| vec![0]);
        let mut out = (body.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
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
        let acceptable = |m: &BlobManifest| {
            m.content_hash == hash && root.is_none_or(|r| r == m.root()) && m.list_matches_name()
        };
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
            match self.request_manifest_retrying(peer, hash).await {
                Ok(m) if acceptable(&m) => {
                    found = Some(m);
                    live.push(peer);
                }
                Ok(m) => {
                    let reason = format!(
                        "manifest for {} does not match the request",
                        hex::encode(m.content_hash)
                    );
                    serve::report(&self.penalties, peer, Offence::BadManifest(reason));
                }
                Err(PeerFailure::Offence(o)) => serve::report(&self.penalties, peer, o),
                Err(PeerFailure::Io(e)) => {
                    tracing::debug!(%peer, error = %e, "manifest request failed")
                }
                Err(PeerFailure::NotFound | PeerFailure::Later(_)) => {
                    tracing::debug!(%peer, "peer does not have the blob")
                }
            }
        }
        let manifest = found.ok_or_else(|| TransferError::NotFound(hex::encode(hash)))?;
        self.store.write_atomic(&partial, &manifest.encode())?;
        Ok((manifest, live))
    }

    /// [`Self::request_manifest`], retried a few times on I/O failure: a connection that
    /// drops while the first stream opens must not make a live source look empty.
    async fn request_manifest_retrying(
        &self,
        peer: PeerId,
        hash: ContentHash,
    ) -> Result<BlobManifest, PeerFailure> {
        let mut attempt = 1;
        loop {
            match self.request_manifest(peer, hash).await {
                Err(PeerFailure::Io(e)) if attempt < MANIFEST_ATTEMPTS => {
                    tracing::debug!(%peer, error = %e, attempt, "manifest request failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
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

    /// Runs workers for every source, including those learnt on the way, until every chunk
    /// is in, no source is left, or nothing was even in flight for [`Limits::io_timeout`]
    /// past the scheduler's starvation delay.
    async fn run_swarm(&self, shared: &Arc<Shared>) {
        let mut set = tokio::task::JoinSet::new();
        let mut started = HashSet::new();
        loop {
            let new: Vec<PeerId> = {
                let s = shared.lock();
                let now = tokio::time::Instant::now();
                let stalled = s.idle_since.is_some_and(|t| {
                    now.duration_since(t) > self.limits.io_timeout + sched::STARVE_AFTER
                });
                let orphaned = s.in_flight == 0 && s.live_sources() == 0;
                if s.missing == 0 || stalled || orphaned {
                    break;
                }
                s.sources
                    .iter()
                    .filter(|(p, v)| !v.gone && !started.contains(*p))
                    .map(|(p, _)| *p)
                    .collect()
            };
            for peer in new {
                started.insert(peer);
                let state = Arc::new(worker::PeerState::default());
                for _ in 0..self.limits.streams_per_source.max(1) {
                    let worker = Worker {
                        peer,
                        state: state.clone(),
                        shared: shared.clone(),
                        fetcher: self.clone(),
                    };
                    set.spawn(worker.run());
                }
            }
            tokio::select! {
                _ = set.join_next(), if !set.is_empty() => {}
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        // Nothing useful is in flight any more; workers still dialing a dead peer (a QUIC
        // handshake to a vanished address takes seconds) must not hold the fetch up.
        shared.stop.store(true, Ordering::Relaxed);
        shared.notify.notify_waiters();
        set.abort_all();
        while set.join_next().await.is_some() {}
    }

    async fn finish(
        &self,
        shared: Arc<Shared>,
        resumed: usize,
    ) -> Result<FetchReport, TransferError> {
        let (missing, last_error, banned, per_peer) = {
            let s = shared.lock();
            let last_error = if s.last_error.is_empty() && s.missing > 0 {
                "no source had the missing chunks".to_string()
            } else {
                s.last_error.clone()
            };
            (s.missing, last_error, s.banned.clone(), s.per_peer.clone())
        };
        let m = shared.manifest.clone();
        if missing > 0 {
            return Err(TransferError::AllSourcesFailed {
                missing,
                total: m.chunk_count(),
                last_error,
            });
        }
        if m.needs_final_check() {
            self.check_whole(&m).await?;
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

    /// Checks a reassembled sha256-named blob against its name (discarded if it differs).
    async fn check_whole(&self, m: &BlobManifest) -> Result<(), TransferError> {
        let path = self.store.partial_path(&m.content_hash);
        let file = path.clone();
        let actual = tokio::task::spawn_blocking(move || hash_file(&file))
            .await
            .map_err(|e| StoreError::io(&path, std::io::Error::other(e)))??;
        if actual != m.content_hash {
            self.store.discard_partial(&m.content_hash);
            return Err(TransferError::ContentHashMismatch {
                expected: hex::encode(m.content_hash),
                actual: hex::encode(actual),
            });
        }
        Ok(())
    }
}

/// sha256 of a file, read in 1 MiB pieces: the whole-blob check of a sha256-named blob.
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
    use super::worker::{INCIDENT_WINDOW, MAX_IO_FAILURES, PeerState};
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_dropped_connection_is_one_incident_but_a_dead_source_runs_out() {
        let state = PeerState::default();
        // Four streams fail together when their connection drops: one incident.
        for _ in 0..4 {
            assert_eq!(state.io_failure(), 1);
        }
        tokio::time::advance(INCIDENT_WINDOW - Duration::from_millis(1)).await;
        assert_eq!(state.io_failure(), 1, "still the same incident");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(state.io_failure(), 2);
        // A source failing every 100 ms still uses up an incident per window.
        let mut n = 2;
        for _ in 0..20 {
            tokio::time::advance(Duration::from_millis(100)).await;
            n = state.io_failure();
        }
        assert_eq!(
            n, 6,
            "one incident per window: at 0, 0.5, 1, 1.5, 2 and 2.5 s"
        );
        assert!(n >= MAX_IO_FAILURES, "{n}");
    }
}
