//! Peer-to-peer wire types that a consumer and a provider must agree on byte for byte:
//! job announcements (gossiped), provider records (stored in Kademlia), blob manifests
//! (the chunk-hash lists that let a fetcher verify every chunk as it arrives) and
//! have-maps (which chunks a peer holds, so every holder serves them onwards).
//!
//! Every type has a compact, versioned, big-endian binary encoding with a strict size cap;
//! decoding is total (typed [`WireError`], never a panic) and rejects trailing bytes, so
//! one value has exactly one encoding.

mod announcement;
mod codec;
mod have;
mod manifest;
mod provider;
pub mod tree;

pub use announcement::{JobAnnouncement, MAX_ANNOUNCEMENT_SIZE, MAX_PART_HINTS};
pub use have::{HaveMap, HaveRequest, MAX_HAVE_PEERS, MAX_HAVE_REQUEST};
pub use manifest::{
    BlobManifest, ContentHash, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, ManifestBuilder,
    Naming, input_hash, sha256,
};
pub use provider::{Capabilities, MAX_ADVERTISED_PARTS, MAX_PROVIDER_RECORD_SIZE, ProviderRecord};

/// Largest encoded libp2p peer id accepted on the wire (an identity-multihash ed25519 id is 38).
pub const MAX_PEER_ID_LEN: usize = 64;
/// Most listen addresses carried in one announcement or provider record.
pub const MAX_ADDRS: usize = 8;
/// Largest encoded multiaddr accepted on the wire.
pub const MAX_ADDR_LEN: usize = 96;

/// Where a peer can be reached: its libp2p peer id and multiaddrs, both in their binary
/// encodings (`PeerId::to_bytes`, `Multiaddr::to_vec`) so this crate needs no libp2p.
///
/// Build one with [`PeerLocation::new`], which keeps what the wire allows; a value built
/// field by field with more than [`MAX_ADDRS`] addresses fails to encode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerLocation {
    /// `PeerId::to_bytes()` of the peer.
    pub peer_id: Vec<u8>,
    /// `Multiaddr::to_vec()` of each address, at most [`MAX_ADDRS`].
    pub addrs: Vec<Vec<u8>>,
}

impl PeerLocation {
    /// The location of `peer_id` at `addrs`, keeping the first [`MAX_ADDRS`] addresses of
    /// at most [`MAX_ADDR_LEN`] bytes (longer ones are skipped), so that a node listening
    /// on many interfaces still gets an encodable location.
    pub fn new(peer_id: Vec<u8>, addrs: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let addrs = addrs
            .into_iter()
            .filter(|a| a.len() <= MAX_ADDR_LEN)
            .take(MAX_ADDRS)
            .collect();
        Self { peer_id, addrs }
    }

    fn encode(&self, w: &mut codec::Writer) -> Result<(), WireError> {
        if self.peer_id.len() > MAX_PEER_ID_LEN {
            return Err(WireError::FieldTooLong {
                field: "peer_id",
                len: self.peer_id.len(),
                max: MAX_PEER_ID_LEN,
            });
        }
        if self.addrs.len() > MAX_ADDRS {
            return Err(WireError::TooManyItems {
                field: "addrs",
                count: self.addrs.len(),
                max: MAX_ADDRS,
            });
        }
        w.bytes8("peer_id", &self.peer_id)?;
        w.u8(self.addrs.len() as u8);
        for a in &self.addrs {
            if a.len() > MAX_ADDR_LEN {
                return Err(WireError::FieldTooLong {
                    field: "addr",
                    len: a.len(),
                    max: MAX_ADDR_LEN,
                });
            }
            w.bytes8("addr", a)?;
        }
        Ok(())
    }

    fn decode(r: &mut codec::Reader<'_>) -> Result<Self, WireError> {
        let peer_id = r.bytes8("peer_id", MAX_PEER_ID_LEN)?;
        let addrs = r.list8(("addrs", "addr"), MAX_ADDRS, MAX_ADDR_LEN)?;
        Ok(Self { peer_id, addrs })
    }
}

/// Why bytes from the wire could not be decoded (or a value could not be encoded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The input is larger than the type's cap; the sender is misbehaving or outdated.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Size of the input.
        len: usize,
        /// The cap for this type.
        max: usize,
    },
    /// The input ended before all fields were read.
    #[error("message is truncated")]
    Truncated,
    /// Bytes were left after the last field; a valid encoding has none.
    #[error("{0} unexpected trailing bytes after the message")]
    TrailingBytes(usize),
    /// The leading tag/version byte is not one this build understands; upgrade `stp`.
    #[error("unsupported {kind} version {version}; this build understands version {supported}")]
    UnsupportedVersion {
        /// Which type was being decoded.
        kind: &'static str,
        /// Version found in the input.
        version: u8,
        /// Version this build writes and reads.
        supported: u8,
    },
    /// A variable-length field is longer than allowed.
    #[error("field `{field}` is {len} bytes long; at most {max} are allowed")]
    FieldTooLong {
        /// The field's name.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The allowed maximum.
        max: usize,
    },
    /// A list field has too many entries.
    #[error("field `{field}` has {count} entries; at most {max} are allowed")]
    TooManyItems {
        /// The field's name.
        field: &'static str,
        /// Number of entries.
        count: usize,
        /// The allowed maximum.
        max: usize,
    },
    /// A text field is not valid UTF-8.
    #[error("field `{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// The field's name.
        field: &'static str,
    },
    /// The fields decode but contradict each other (e.g. deadlines out of order).
    #[error("invalid message: {0}")]
    Invalid(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_caps_addrs_and_skips_overlong_ones() {
        let long = vec![0xAB; MAX_ADDR_LEN + 1];
        let addrs =
            std::iter::once(long).chain((0..MAX_ADDRS as u8 + 5).map(|i| vec![i; MAX_ADDR_LEN]));
        let loc = PeerLocation::new(vec![1; 38], addrs);
        assert_eq!(loc.addrs.len(), MAX_ADDRS);
        assert_eq!(
            loc.addrs[0],
            vec![0; MAX_ADDR_LEN],
            "the over-long one is skipped"
        );
        assert_eq!(
            loc.addrs[MAX_ADDRS - 1],
            vec![MAX_ADDRS as u8 - 1; MAX_ADDR_LEN]
        );
        let mut w = codec::Writer::new();
        loc.encode(&mut w).expect("a capped location encodes");

        let few = PeerLocation::new(vec![1; 38], vec![vec![4, 127, 0, 0, 1]]);
        assert_eq!(
            few.addrs,
            vec![vec![4, 127, 0, 0, 1]],
            "nothing dropped below the cap"
        );
    }
}
