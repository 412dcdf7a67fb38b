//! The blob transfer protocol on raw libp2p streams, and its server side.
//!
//! One request per stream. The requester writes a fixed 48-byte request:
//! `"STPB" | version u8 | op u8 | 0u16 | content hash [32] | start u32 | count u32`.
//! - op 1 (manifest): the server answers `status u8`, then on success `len u32 | manifest`.
//! - op 2 (chunks `start..start+count`): `status u8`, then on success, per chunk,
//!   `len u32 | bytes`, where `len` must equal the chunk's length in the manifest.
//! - op 3 (have-map): the request frame is followed by `len u16 | HaveRequest` (where the
//!   requester listens); the server answers `status u8`, then on success
//!   `len u32 | HaveMap` (chunks held, chunks already uploaded, other peers of the blob).
//!
//! A server holding only part of a blob (a fetch in progress) serves the manifest, its
//! have-map and the chunks it verified. Statuses [`STATUS_BUSY`] (upload peer limit
//! reached), [`STATUS_MISSING`] (not those chunks yet) and [`STATUS_ELSEWHERE`] (just sent
//! to another peer) are no offence: the fetcher asks again later or elsewhere.
//!
//! Every length read from the wire is checked before anything is allocated or read.
//! The server side is in [`super::serve`].

use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt};
use libp2p::StreamProtocol;
use stp_sdk::p2p::{BlobManifest, ContentHash, MIN_CHUNK_SIZE};

use super::error::Offence;

/// Protocol name of blob transfer streams (2: BLAKE3 chunk hashes and have-maps; 3: blobs
/// named by BLAKE3 or sha256, manifests of chunk chaining values).
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/stp/blob/3");
const MAGIC: &[u8; 4] = b"STPB";
const VERSION: u8 = 3;
/// Length of a request frame.
pub const REQUEST_LEN: usize = 48;

/// Response status: the request is served.
pub const STATUS_OK: u8 = 0;
/// Response status: the blob is not in the server's store.
pub const STATUS_NOT_FOUND: u8 = 1;
/// Response status: the request was malformed or out of range.
pub const STATUS_BAD_REQUEST: u8 = 2;
/// Response status: the server is uploading to as many peers as it allows; ask later.
pub const STATUS_BUSY: u8 = 3;
/// Response status: the server holds part of the blob, but not all chunks asked for.
pub const STATUS_MISSING: u8 = 4;
/// Response status: another peer is receiving (or just received) these chunks from the
/// server; get them from that peer.
pub const STATUS_ELSEWHERE: u8 = 5;

/// A decoded transfer request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Send the manifest of a blob.
    Manifest(ContentHash),
    /// Send the have-map of a blob (a `len u16 | HaveRequest` body follows the frame).
    Have(ContentHash),
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
            Request::Have(h) => (3u8, h, 0, 0),
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

    /// The blob the request is about.
    pub fn hash(&self) -> ContentHash {
        match *self {
            Request::Manifest(h) | Request::Have(h) | Request::Chunks { hash: h, .. } => h,
        }
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
            3 => Ok(Request::Have(hash)),
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
        let h = Request::Have([2; 32]);
        assert_eq!(Request::decode(&h.encode()), Ok(h));
        assert_eq!(h.hash(), [2; 32]);
        assert!(Request::decode(&[0xAB; REQUEST_LEN]).is_err());
        let mut bad_op = m.encode();
        bad_op[5] = 9;
        assert!(Request::decode(&bad_op).is_err());
    }
}
