//! Have-maps: which chunks of a blob a peer holds, exchanged so that every peer that
//! verified a chunk can serve it onwards (swarming).
//!
//! A fetcher asks each source for its [`HaveMap`] (and sends a [`HaveRequest`] naming the
//! addresses it can be reached at); the source answers with the chunks it holds, the
//! chunks it has already uploaded to someone, and other peers it knows to be fetching or
//! holding the same blob, so fetchers find each other without a tracker.

use super::codec::{Reader, Writer};
use super::{MAX_ADDR_LEN, MAX_ADDRS, PeerLocation, WireError};

/// Most peers listed in one have-map.
pub const MAX_HAVE_PEERS: usize = 16;
/// Largest encoded [`HaveRequest`].
pub const MAX_HAVE_REQUEST: usize = 1 + MAX_ADDRS * (1 + MAX_ADDR_LEN);
const VERSION: u8 = 1;

/// What a fetcher sends with its have-map request: where it listens, so the source can
/// point other fetchers of the blob to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HaveRequest {
    /// `Multiaddr::to_vec()` of each listen address, at most [`MAX_ADDRS`].
    pub addrs: Vec<Vec<u8>>,
}

impl HaveRequest {
    /// Encodes the request body.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        if self.addrs.len() > MAX_ADDRS {
            return Err(WireError::TooManyItems {
                field: "addrs",
                count: self.addrs.len(),
                max: MAX_ADDRS,
            });
        }
        let mut w = Writer::new();
        w.u8(self.addrs.len() as u8);
        for a in &self.addrs {
            check_addr(a)?;
            w.bytes8("addr", a)?;
        }
        Ok(w.finish())
    }

    /// Decodes a request body received from a peer.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_HAVE_REQUEST {
            return Err(WireError::TooLarge {
                len: bytes.len(),
                max: MAX_HAVE_REQUEST,
            });
        }
        let mut r = Reader::new(bytes);
        let addrs = r.list8(("addrs", "addr"), MAX_ADDRS, MAX_ADDR_LEN)?;
        r.finish()?;
        Ok(Self { addrs })
    }
}

fn check_addr(a: &[u8]) -> Result<(), WireError> {
    if a.len() > MAX_ADDR_LEN {
        return Err(WireError::FieldTooLong {
            field: "addr",
            len: a.len(),
            max: MAX_ADDR_LEN,
        });
    }
    Ok(())
}

/// One peer's view of a blob it holds in whole or in part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HaveMap {
    /// For each chunk, whether the peer holds it (verified).
    pub have: Vec<bool>,
    /// For each chunk, whether the peer is uploading it to someone other than the asker
    /// right now (or just did, slowly): a fetcher prefers chunks nobody is being sent, so
    /// a slow origin uploads each chunk about once.
    pub served: Vec<bool>,
    /// Other peers fetching or holding the blob, at most [`MAX_HAVE_PEERS`].
    pub peers: Vec<PeerLocation>,
}

impl HaveMap {
    /// Encoded size bound for a blob of `chunks` chunks (to bound receive buffers).
    pub fn max_encoded_len(chunks: usize) -> usize {
        let peer = 1 + super::MAX_PEER_ID_LEN + 1 + MAX_ADDRS * (1 + MAX_ADDR_LEN);
        1 + 4 + 2 * chunks.div_ceil(8) + 1 + MAX_HAVE_PEERS * peer
    }

    /// Encodes the map; `have` and `served` must have the same length.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        if self.have.len() != self.served.len() {
            return Err(WireError::Invalid("have and served lengths differ"));
        }
        if self.peers.len() > MAX_HAVE_PEERS {
            return Err(WireError::TooManyItems {
                field: "peers",
                count: self.peers.len(),
                max: MAX_HAVE_PEERS,
            });
        }
        let mut w = Writer::new();
        w.u8(VERSION);
        let count =
            u32::try_from(self.have.len()).map_err(|_| WireError::Invalid("too many chunks"))?;
        w.u32(count);
        w.raw(&pack(&self.have));
        w.raw(&pack(&self.served));
        w.u8(self.peers.len() as u8);
        for p in &self.peers {
            p.encode(&mut w)?;
        }
        Ok(w.finish())
    }

    /// Decodes a map for a blob of `chunks` chunks; any other count is refused.
    pub fn decode(bytes: &[u8], chunks: usize) -> Result<Self, WireError> {
        if bytes.len() > Self::max_encoded_len(chunks) {
            return Err(WireError::TooLarge {
                len: bytes.len(),
                max: Self::max_encoded_len(chunks),
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(WireError::UnsupportedVersion {
                kind: "have-map",
                version,
                supported: VERSION,
            });
        }
        if r.u32()? as usize != chunks {
            return Err(WireError::Invalid(
                "have-map chunk count differs from the manifest",
            ));
        }
        let have = unpack(r.take(chunks.div_ceil(8))?, chunks)?;
        let served = unpack(r.take(chunks.div_ceil(8))?, chunks)?;
        let count = usize::from(r.u8()?);
        if count > MAX_HAVE_PEERS {
            return Err(WireError::TooManyItems {
                field: "peers",
                count,
                max: MAX_HAVE_PEERS,
            });
        }
        let peers = (0..count)
            .map(|_| PeerLocation::decode(&mut r))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self {
            have,
            served,
            peers,
        })
    }
}

/// Packs bits least-significant first; padding bits are zero.
fn pack(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (i, _) in bits.iter().enumerate().filter(|(_, b)| **b) {
        out[i / 8] |= 1 << (i % 8);
    }
    out
}

fn unpack(bytes: &[u8], n: usize) -> Result<Vec<bool>, WireError> {
    let bits: Vec<bool> = (0..bytes.len() * 8)
        .map(|i| bytes[i / 8] & (1 << (i % 8)) != 0)
        .collect();
    if bits[n..].iter().any(|b| *b) {
        return Err(WireError::Invalid("have-map padding bits are set"));
    }
    Ok(bits[..n].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> HaveMap {
        HaveMap {
            have: (0..21).map(|i| i % 3 == 0).collect(),
            served: (0..21).map(|i| i == 20).collect(),
            peers: vec![PeerLocation {
                peer_id: vec![3; 38],
                addrs: vec![vec![4, 10, 0, 0, 2, 6, 0, 80]],
            }],
        }
    }

    #[test]
    fn have_map_roundtrips_and_rejects_garbage() {
        let m = sample();
        let bytes = m.encode().unwrap();
        assert_eq!(HaveMap::decode(&bytes, 21).unwrap(), m);
        assert!(HaveMap::decode(&bytes, 22).is_err(), "other chunk count");
        for cut in 0..bytes.len() {
            assert!(HaveMap::decode(&bytes[..cut], 21).is_err(), "cut at {cut}");
        }
        let mut padded = bytes.clone();
        padded[5 + 2] |= 0x80; // a padding bit of the have bitmap
        assert_eq!(
            HaveMap::decode(&padded, 21),
            Err(WireError::Invalid("have-map padding bits are set"))
        );
        let mut long = bytes;
        long.push(0);
        assert!(HaveMap::decode(&long, 21).is_err());
    }

    #[test]
    fn have_request_roundtrips_and_is_bounded() {
        let req = HaveRequest {
            addrs: vec![vec![1; 20], vec![2; MAX_ADDR_LEN]],
        };
        let bytes = req.encode().unwrap();
        assert_eq!(HaveRequest::decode(&bytes).unwrap(), req);
        let too_many = HaveRequest {
            addrs: vec![vec![1]; MAX_ADDRS + 1],
        };
        assert!(too_many.encode().is_err());
        assert!(HaveRequest::decode(&[9]).is_err());
        assert!(HaveRequest::decode(&vec![0; MAX_HAVE_REQUEST + 1]).is_err());
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = HaveMap::decode(&bytes, 40);
            let _ = HaveRequest::decode(&bytes);
        }
    }
}
