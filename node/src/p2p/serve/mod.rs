//! The server side of the [`transfer`](super::transfer) protocol: answers manifest,
//! have-map and chunk requests from the blob store, for complete blobs and for downloads
//! in progress alike, within the node's upload limits.
//!
//! Bounded: inbound streams per peer and in total (exceeding them is an offence), peers
//! uploaded to at once ([`Limits::max_upload_peers`], others are told [`STATUS_BUSY`]) and
//! upload bytes per second ([`Limits::max_upload_rate`], a token bucket shared by all
//! streams). Every chunk byte sent is counted in [`ServeState::served_bytes`].
//!
//! A chunk that another peer is receiving right now (or received within two have-map
//! refreshes) is not sent again: the asker is told [`STATUS_ELSEWHERE`] and gets it from
//! that peer once its have-map shows it, so a slow origin uploads each chunk about once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use futures::{AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{Multiaddr, PeerId, Stream};
use stp_sdk::p2p::{
    BlobManifest, ContentHash, HaveMap, HaveRequest, MAX_HAVE_PEERS, MAX_HAVE_REQUEST,
};
use tokio::sync::mpsc;

mod state;

use state::Mark;
pub use state::ServeState;

use super::blobstore::{BlobStore, Partial};
use super::config::Limits;
use super::error::Offence;
use super::records;
use super::transfer::{
    REQUEST_LEN, Request, STATUS_BAD_REQUEST, STATUS_BUSY, STATUS_ELSEWHERE, STATUS_MISSING,
    STATUS_NOT_FOUND, STATUS_OK, timed,
};

/// Counts open inbound streams per peer; a slot is released when its guard drops.
#[derive(Debug, Default, Clone)]
struct StreamSlots(Arc<Mutex<(usize, HashMap<PeerId, usize>)>>);

struct SlotGuard(StreamSlots, PeerId);

impl StreamSlots {
    fn acquire(&self, peer: PeerId, limits: &Limits) -> Result<SlotGuard, Offence> {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let per_peer = g.1.get(&peer).copied().unwrap_or(0);
        if per_peer >= limits.max_streams_per_peer || g.0 >= limits.max_streams_total {
            return Err(Offence::TooManyStreams(limits.max_streams_per_peer));
        }
        g.0 += 1;
        *g.1.entry(peer).or_default() += 1;
        Ok(SlotGuard(self.clone(), peer))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let mut g = (self.0).0.lock().unwrap_or_else(|p| p.into_inner());
        g.0 -= 1;
        if let Some(n) = g.1.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                g.1.remove(&self.1);
            }
        }
    }
}

/// Serves inbound transfer streams until `incoming` ends; offences go to `penalties`.
pub(crate) async fn serve(
    mut incoming: libp2p_stream::IncomingStreams,
    ctx: Arc<ServeContext>,
    penalties: mpsc::Sender<(PeerId, Offence)>,
) {
    let slots = StreamSlots::default();
    while let Some((peer, stream)) = incoming.next().await {
        let guard = match slots.acquire(peer, &ctx.limits) {
            Ok(g) => g,
            Err(offence) => {
                drop(stream);
                report(&penalties, peer, offence);
                continue;
            }
        };
        let (ctx, penalties) = (ctx.clone(), penalties.clone());
        tokio::spawn(async move {
            let _guard = guard;
            match ctx.handle(peer, stream).await {
                Ok(()) => {}
                Err(ServeError::Offence(o)) => report(&penalties, peer, o),
                Err(ServeError::Io(e)) => {
                    tracing::debug!(%peer, error = %e, "transfer stream ended")
                }
            }
        });
    }
}

pub(crate) fn report(penalties: &mpsc::Sender<(PeerId, Offence)>, peer: PeerId, offence: Offence) {
    if penalties.try_send((peer, offence.clone())).is_err() {
        tracing::warn!(%peer, %offence, "penalty queue full; offence only logged");
    }
}

enum ServeError {
    Offence(Offence),
    Io(std::io::Error),
}

impl From<std::io::Error> for ServeError {
    fn from(e: std::io::Error) -> Self {
        ServeError::Io(e)
    }
}

/// Where a served blob's bytes come from.
enum Source {
    Complete(BlobManifest, std::fs::File),
    Partial(Arc<Partial>),
}

impl Source {
    fn manifest(&self) -> &BlobManifest {
        match self {
            Source::Complete(m, _) => m,
            Source::Partial(p) => &p.manifest,
        }
    }

    fn have(&self) -> Vec<bool> {
        match self {
            Source::Complete(m, _) => vec![true; m.chunk_count()],
            Source::Partial(p) => p.have(),
        }
    }

    fn has_range(&self, start: usize, end: usize) -> bool {
        match self {
            Source::Complete(..) => true,
            Source::Partial(p) => p.has_range(start, end),
        }
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match self {
            Source::Complete(_, f) => std::os::unix::fs::FileExt::read_exact_at(f, buf, offset),
            Source::Partial(p) => p.read_exact_at(buf, offset),
        }
    }
}

/// Everything a stream handler needs.
pub(crate) struct ServeContext {
    pub store: Arc<BlobStore>,
    pub limits: Limits,
    pub state: Arc<ServeState>,
}

/// Bytes written per rate-limiter step when an upload rate is set.
const THROTTLE_STEP: usize = 64 << 10;

impl ServeContext {
    /// The blob's source: a download in progress first (its file handle survives the
    /// rename into `blobs/`), then the complete store.
    fn source(&self, hash: &ContentHash) -> std::io::Result<Option<Source>> {
        if let Some(p) = self.store.partial(hash) {
            return Ok(Some(Source::Partial(p)));
        }
        match self.store.manifest(hash) {
            Ok(Some(m)) => {
                let file = std::fs::File::open(self.store.blob_path(hash))?;
                Ok(Some(Source::Complete(m, file)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                tracing::error!(error = %e, "blob store failed while serving");
                Ok(None)
            }
        }
    }

    async fn handle(&self, peer: PeerId, mut stream: Stream) -> Result<(), ServeError> {
        let t = self.limits.io_timeout;
        let mut frame = [0u8; REQUEST_LEN];
        timed(t, stream.read_exact(&mut frame)).await?;
        let request = match Request::decode(&frame) {
            Ok(r) => r,
            Err(offence) => {
                let _ = timed(t, stream.write_all(&[STATUS_BAD_REQUEST])).await;
                return Err(ServeError::Offence(offence));
            }
        };
        let have_request = match request {
            Request::Have(_) => Some(self.read_have_request(&mut stream).await?),
            _ => None,
        };
        let Some(source) = self.source(&request.hash())? else {
            return Ok(timed(t, write_and_close(&mut stream, &[STATUS_NOT_FOUND])).await?);
        };
        match request {
            Request::Manifest(_) => {
                let bytes = source.manifest().encode();
                Ok(timed(t, write_frame(&mut stream, &bytes)).await?)
            }
            Request::Have(hash) => {
                let addrs = have_request.unwrap_or_default();
                let map = self.have_map(hash, peer, addrs, &source);
                let bytes = map
                    .encode()
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                Ok(timed(t, write_frame(&mut stream, &bytes)).await?)
            }
            Request::Chunks { hash, start, count } => {
                self.send_chunks(peer, &mut stream, hash, &source, start, count)
                    .await
            }
        }
    }

    async fn read_have_request(&self, stream: &mut Stream) -> Result<Vec<Multiaddr>, ServeError> {
        let t = self.limits.io_timeout;
        let mut len = [0u8; 2];
        timed(t, stream.read_exact(&mut len)).await?;
        let len = usize::from(u16::from_be_bytes(len));
        if len > MAX_HAVE_REQUEST {
            let _ = timed(t, stream.write_all(&[STATUS_BAD_REQUEST])).await;
            return Err(ServeError::Offence(Offence::OversizedFrame {
                len: len as u64,
                max: MAX_HAVE_REQUEST as u64,
            }));
        }
        let mut body = vec![0u8; len];
        timed(t, stream.read_exact(&mut body)).await?;
        match HaveRequest::decode(&body) {
            Ok(r) => Ok(r
                .addrs
                .into_iter()
                .filter_map(|a| Multiaddr::try_from(a).ok())
                .collect()),
            Err(e) => {
                let _ = timed(t, stream.write_all(&[STATUS_BAD_REQUEST])).await;
                Err(ServeError::Offence(Offence::Malformed(format!(
                    "have request: {e}"
                ))))
            }
        }
    }

    /// Books `peer` as a fetcher of `hash` and describes what this node holds.
    fn have_map(
        &self,
        hash: ContentHash,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        source: &Source,
    ) -> HaveMap {
        let chunks = source.manifest().chunk_count();
        let (served, peers) = self.state.with_blob(hash, chunks, |b| {
            b.peers.retain(|(p, _)| *p != peer);
            if !addrs.is_empty() {
                b.peers.push_front((peer, addrs));
                b.peers.truncate(MAX_HAVE_PEERS + 1);
            }
            let peers = b
                .peers
                .iter()
                .filter(|(p, _)| *p != peer)
                .take(MAX_HAVE_PEERS)
                .map(|(p, a)| records::to_location(p, a))
                .filter(|l| !l.addrs.is_empty())
                .collect();
            let now = tokio::time::Instant::now();
            let grace = self.limits.have_refresh * 2;
            let taken = b
                .served
                .iter()
                .map(|m| m.taken_from(peer, grace, now))
                .collect();
            (taken, peers)
        });
        HaveMap {
            have: source.have(),
            served,
            peers,
        }
    }

    async fn send_chunks(
        &self,
        peer: PeerId,
        stream: &mut Stream,
        hash: ContentHash,
        source: &Source,
        start: u32,
        count: u32,
    ) -> Result<(), ServeError> {
        let t = self.limits.io_timeout;
        let manifest = source.manifest();
        let end = u64::from(start) + u64::from(count);
        if count == 0
            || count > self.limits.max_chunks_per_request
            || end > manifest.chunk_count() as u64
        {
            let _ = timed(t, write_and_close(stream, &[STATUS_BAD_REQUEST])).await;
            return Err(ServeError::Offence(Offence::Malformed(format!(
                "chunk request {start}+{count} out of range (blob has {} chunks, limit {} per request)",
                manifest.chunk_count(),
                self.limits.max_chunks_per_request
            ))));
        }
        let (start, end) = (start as usize, end as usize);
        if !source.has_range(start, end) {
            return Ok(timed(t, write_and_close(stream, &[STATUS_MISSING])).await?);
        }
        let Some(_upload) = self.state.upload_slot(peer, self.limits.max_upload_peers) else {
            return Ok(timed(t, write_and_close(stream, &[STATUS_BUSY])).await?);
        };
        let n = manifest.chunk_count();
        let grace = self.limits.have_refresh * 2;
        let taken = self.state.with_blob(hash, n, |b| {
            let now = tokio::time::Instant::now();
            let taken = b.served[start..end]
                .iter()
                .any(|m| m.taken_from(peer, grace, now));
            if !taken {
                b.served[start..end].fill(Mark::Sending(peer, now));
            }
            taken
        });
        if taken {
            return Ok(timed(t, write_and_close(stream, &[STATUS_ELSEWHERE])).await?);
        }
        let mut sent = start;
        let result = self
            .write_chunks(peer, stream, (hash, source), start, end, &mut sent)
            .await;
        self.state
            .with_blob(hash, n, |b| b.served[sent..end].fill(Mark::Never));
        result
    }

    /// Writes chunks `start..end`, marking each sent (and advancing `sent` past it) as
    /// soon as it is written, so a slow close does not hold it back from other peers.
    async fn write_chunks(
        &self,
        peer: PeerId,
        stream: &mut Stream,
        (hash, source): (ContentHash, &Source),
        start: usize,
        end: usize,
        sent: &mut usize,
    ) -> Result<(), ServeError> {
        let t = self.limits.io_timeout;
        let manifest = source.manifest();
        timed(t, stream.write_all(&[STATUS_OK])).await?;
        let mut buf = vec![0u8; manifest.chunk_size as usize + 4];
        for index in start..end {
            let began = tokio::time::Instant::now();
            let (offset, len) = manifest.chunk_range(index);
            buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
            source.read_exact_at(&mut buf[4..4 + len], offset)?;
            self.write_throttled(stream, &buf[..4 + len]).await?;
            self.state
                .served_bytes
                .fetch_add(len as u64, Ordering::Relaxed);
            let now = tokio::time::Instant::now();
            let slow = now.duration_since(began) > self.limits.have_refresh;
            self.state.with_blob(hash, manifest.chunk_count(), |b| {
                b.served[index] = Mark::Sent(peer, now, slow)
            });
            *sent = index + 1;
        }
        Ok(timed(t, stream.close()).await?)
    }

    async fn write_throttled(&self, stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
        let t = self.limits.io_timeout;
        if self.state.bucket.is_none() {
            return timed(t, stream.write_all(bytes)).await;
        }
        for piece in bytes.chunks(THROTTLE_STEP) {
            self.state.throttle(piece.len()).await;
            timed(t, stream.write_all(piece)).await?;
        }
        Ok(())
    }
}

/// Writes `STATUS_OK | len u32 | bytes` and closes the stream.
async fn write_frame(stream: &mut Stream, bytes: &[u8]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(5 + bytes.len());
    out.push(STATUS_OK);
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
    write_and_close(stream, &out).await
}

async fn write_and_close(
    stream: &mut (impl AsyncWrite + Unpin),
    bytes: &[u8],
) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.close().await
}
