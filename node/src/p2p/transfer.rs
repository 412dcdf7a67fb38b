//! The blob transfer protocol on raw libp2p streams, and its server side.
//!
//! One request per stream. The requester writes a fixed 48-byte request:
//! `"STPB" | version u8 | op u8 | 0u16 | content hash [32] | start u32 | count u32`.
//! - op 1 (manifest): the server answers `status u8`, then on success `len u32 | manifest`.
//! - op 2 (chunks `start..start+count`): `status u8`, then on success, per chunk,
//!   `len u32 | bytes`, where `len` must equal the chunk's length in the manifest.
//!
//! Every length read from the wire is checked before anything is allocated or read.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use stp_sdk::p2p::{BlobManifest, ContentHash, MIN_CHUNK_SIZE};
use tokio::sync::mpsc;

use super::blobstore::BlobStore;
use super::config::Limits;
use super::error::Offence;

/// Protocol name of blob transfer streams.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/stp/blob/1");
const MAGIC: &[u8; 4] = b"STPB";
const VERSION: u8 = 1;
/// Length of a request frame.
pub const REQUEST_LEN: usize = 48;

/// Response status: the request is served.
pub const STATUS_OK: u8 = 0;
/// Response status: the blob is not in the server's store.
pub const STATUS_NOT_FOUND: u8 = 1;
/// Response status: the request was malformed or out of range.
pub const STATUS_BAD_REQUEST: u8 = 2;

/// A decoded transfer request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Send the manifest of a blob.
    Manifest(ContentHash),
    /// Send chunks `start..start + count` of a blob.
    Chunks {
        /// The blob.
        hash: ContentHash,
        /// First chunk index.
        start: u32,
        /// Number of chunks.
        count: u32,
    },
}

impl Request {
    /// Encodes the request frame.
    pub fn encode(&self) -> [u8; REQUEST_LEN] {
        let (op, hash, start, count) = match *self {
            Request::Manifest(h) => (1u8, h, 0, 0),
            Request::Chunks { hash, start, count } => (2u8, hash, start, count),
        };
        let mut out = [0u8; REQUEST_LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4] = VERSION;
        out[5] = op;
        out[8..40].copy_from_slice(&hash);
        out[40..44].copy_from_slice(&start.to_be_bytes());
        out[44..48].copy_from_slice(&count.to_be_bytes());
        out
    }

    /// Decodes a request frame, naming what is wrong with a bad one.
    pub fn decode(frame: &[u8; REQUEST_LEN]) -> Result<Self, Offence> {
        if &frame[..4] != MAGIC || frame[4] != VERSION || frame[6..8] != [0, 0] {
            return Err(Offence::Malformed(
                "bad request magic, version or reserved bytes".into(),
            ));
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&frame[8..40]);
        let word =
            |i: usize| u32::from_be_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]);
        match frame[5] {
            1 => Ok(Request::Manifest(hash)),
            2 => Ok(Request::Chunks {
                hash,
                start: word(40),
                count: word(44),
            }),
            op => Err(Offence::Malformed(format!("unknown request op {op}"))),
        }
    }
}

/// Largest manifest frame accepted for blobs of at most `max_blob_size` bytes.
pub fn max_manifest_len(max_blob_size: u64) -> u64 {
    BlobManifest::encoded_len_for(max_blob_size, MIN_CHUNK_SIZE)
}

pub(crate) async fn timed<T>(
    limit: Duration,
    fut: impl Future<Output = std::io::Result<T>>,
) -> std::io::Result<T> {
    tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "transfer stream timed out",
        ))
    })
}

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
    store: Arc<BlobStore>,
    limits: Limits,
    penalties: mpsc::Sender<(PeerId, Offence)>,
) {
    let slots = StreamSlots::default();
    while let Some((peer, stream)) = incoming.next().await {
        let guard = match slots.acquire(peer, &limits) {
            Ok(g) => g,
            Err(offence) => {
                drop(stream);
                report(&penalties, peer, offence);
                continue;
            }
        };
        let (store, limits, penalties) = (store.clone(), limits.clone(), penalties.clone());
        tokio::spawn(async move {
            let _guard = guard;
            match handle(stream, &store, &limits).await {
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

async fn handle(mut stream: Stream, store: &BlobStore, limits: &Limits) -> Result<(), ServeError> {
    let t = limits.io_timeout;
    let mut frame = [0u8; REQUEST_LEN];
    timed(t, stream.read_exact(&mut frame)).await?;
    let request = match Request::decode(&frame) {
        Ok(r) => r,
        Err(offence) => {
            let _ = timed(t, stream.write_all(&[STATUS_BAD_REQUEST])).await;
            return Err(ServeError::Offence(offence));
        }
    };
    let hash = match request {
        Request::Manifest(h) | Request::Chunks { hash: h, .. } => h,
    };
    let manifest = match store.manifest(&hash) {
        Ok(Some(m)) => m,
        Ok(None) => return Ok(timed(t, write_and_close(&mut stream, &[STATUS_NOT_FOUND])).await?),
        Err(e) => {
            tracing::error!(error = %e, "blob store failed while serving");
            return Ok(timed(t, write_and_close(&mut stream, &[STATUS_NOT_FOUND])).await?);
        }
    };
    match request {
        Request::Manifest(_) => {
            let bytes = manifest.encode();
            let mut out = Vec::with_capacity(5 + bytes.len());
            out.push(STATUS_OK);
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&bytes);
            Ok(timed(t, write_and_close(&mut stream, &out)).await?)
        }
        Request::Chunks { start, count, .. } => {
            let end = u64::from(start) + u64::from(count);
            if count == 0
                || count > limits.max_chunks_per_request
                || end > manifest.chunk_count() as u64
            {
                let _ = timed(t, write_and_close(&mut stream, &[STATUS_BAD_REQUEST])).await;
                return Err(ServeError::Offence(Offence::Malformed(format!(
                    "chunk request {start}+{count} out of range (blob has {} chunks, limit {} per request)",
                    manifest.chunk_count(),
                    limits.max_chunks_per_request
                ))));
            }
            let path = store.blob_path(&hash);
            let file = std::fs::File::open(&path)?;
            timed(t, stream.write_all(&[STATUS_OK])).await?;
            let mut buf = vec![0u8; manifest.chunk_size as usize + 4];
            for index in start as usize..end as usize {
                let (offset, len) = manifest.chunk_range(index);
                buf[..4].copy_from_slice(&(len as u32).to_be_bytes());
                file.read_exact_at(&mut buf[4..4 + len], offset)?;
                timed(t, stream.write_all(&buf[..4 + len])).await?;
            }
            Ok(timed(t, stream.close()).await?)
        }
    }
}

async fn write_and_close(
    stream: &mut (impl AsyncWrite + Unpin),
    bytes: &[u8],
) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.close().await
}

/// Reads a `u32` length prefix.
pub(crate) async fn read_u32(stream: &mut (impl AsyncRead + Unpin)) -> std::io::Result<u32> {
    let mut b = [0u8; 4];
    stream.read_exact(&mut b).await?;
    Ok(u32::from_be_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrips_and_rejects_garbage() {
        let r = Request::Chunks {
            hash: [7; 32],
            start: 3,
            count: 9,
        };
        assert_eq!(Request::decode(&r.encode()), Ok(r));
        let m = Request::Manifest([1; 32]);
        assert_eq!(Request::decode(&m.encode()), Ok(m));
        assert!(Request::decode(&[0xAB; REQUEST_LEN]).is_err());
        let mut bad_op = m.encode();
        bad_op[5] = 9;
        assert!(Request::decode(&bad_op).is_err());
    }
}
