//! Have-map requests: what a fetch asks each source, and how a node that served a blob
//! learns how far the peers that fetched it have got (replication).

use futures::future::join_all;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::PeerId;
use stp_sdk::p2p::{ContentHash, HaveMap};

use super::{Fetcher, PeerFailure};
use crate::p2p::error::{Offence, StoreError};
use crate::p2p::serve::ServeState;
use crate::p2p::transfer::{Request, STATUS_NOT_FOUND, STATUS_OK, read_u32, timed};

/// How far a blob this node serves has spread: per peer that asked this node for its
/// have-map, how many of the blob's chunks it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    /// Chunks in the blob.
    pub chunks: usize,
    /// Peers that answered, with the number of chunks each holds.
    pub holders: Vec<(PeerId, usize)>,
}

impl Replication {
    /// Peers holding the whole blob: once this reaches the job's replica count, the
    /// consumer may go offline without stranding the providers.
    pub fn complete(&self) -> usize {
        self.holders
            .iter()
            .filter(|(_, n)| *n == self.chunks)
            .count()
    }
}

impl Fetcher {
    /// One have-map request; `Ok(None)` when the peer has no part of the blob.
    /// `body` is `len u16 | HaveRequest`.
    pub(super) async fn request_have(
        &self,
        peer: PeerId,
        hash: ContentHash,
        chunks: usize,
        body: &[u8],
    ) -> Result<Option<HaveMap>, PeerFailure> {
        let t = self.limits.io_timeout;
        let mut stream = self.open(peer).await?;
        let mut req = Request::Have(hash).encode().to_vec();
        req.extend_from_slice(body);
        timed(t, stream.write_all(&req)).await?;
        let mut status = [0u8; 1];
        timed(t, stream.read_exact(&mut status)).await?;
        match status[0] {
            STATUS_OK => {}
            STATUS_NOT_FOUND => return Ok(None),
            s => {
                return Err(PeerFailure::Offence(Offence::Malformed(format!(
                    "unexpected have-map status {s}"
                ))));
            }
        }
        let len = u64::from(timed(t, read_u32(&mut stream)).await?);
        let max = HaveMap::max_encoded_len(chunks) as u64;
        if len > max {
            return Err(PeerFailure::Offence(Offence::OversizedFrame { len, max }));
        }
        let mut buf = vec![0u8; len as usize];
        timed(t, stream.read_exact(&mut buf)).await?;
        HaveMap::decode(&buf, chunks)
            .map(Some)
            .map_err(|e| PeerFailure::Offence(Offence::Malformed(format!("have-map: {e}"))))
    }

    /// Asks every peer that fetched `hash` from this node how many chunks it holds.
    pub(crate) async fn replication(
        &self,
        hash: ContentHash,
        state: &ServeState,
    ) -> Result<Replication, StoreError> {
        let chunks = match self.store.manifest(&hash)? {
            Some(m) => m.chunk_count(),
            None => {
                return Ok(Replication {
                    chunks: 0,
                    holders: Vec::new(),
                });
            }
        };
        let body = [0u8, 1, 0]; // len 1 | HaveRequest with no addresses
        let asks = state
            .peers_of(&hash)
            .into_iter()
            .map(|(peer, _)| async move {
                match self.request_have(peer, hash, chunks, &body).await {
                    Ok(Some(map)) => Some((peer, map.have.iter().filter(|h| **h).count())),
                    Ok(None) => Some((peer, 0)),
                    Err(_) => None,
                }
            });
        let holders = join_all(asks).await.into_iter().flatten().collect();
        Ok(Replication { chunks, holders })
    }
}
