//! Provider records: what a provider publishes in Kademlia so consumers can list who is out
//! there, what hardware they offer and which shared input parts they hold.
//!
//! Two versions decode: version 1 (no parts) and version 2 (at least one part). A record
//! holding no parts is encoded as version 1, so nodes that only know version 1 still read
//! it, and every value has exactly one encoding.

use super::codec::{Reader, Writer};
use super::{ContentHash, PeerLocation, WireError};

/// Largest encoded provider record accepted.
pub const MAX_PROVIDER_RECORD_SIZE: usize = 4096;
/// Most part hashes one record advertises.
pub const MAX_ADVERTISED_PARTS: usize = 32;
/// Without parts.
const VERSION_1: u8 = 1;
/// With the parts the node holds.
const VERSION_2: u8 = 2;
const MAX_NAME_LEN: usize = 128;

/// What a provider's hardware offers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// GPU adapter name as reported by wgpu (e.g. "NVIDIA GeForce RTX 3080").
    pub adapter: String,
    /// Graphics backend (e.g. "vulkan", "metal", "gl").
    pub backend: String,
    /// Usable device memory in bytes.
    pub memory_bytes: u64,
    /// Score from `stp bench kernels` (higher is faster).
    pub benchmark_score: u64,
    /// Smallest bounty per job the provider accepts, in the payment token's smallest unit.
    pub price_floor: u128,
}

/// A provider's self-description, signed and stored in Kademlia by the node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderRecord {
    /// Peer id and listen addresses of the provider's node.
    pub location: PeerLocation,
    /// Ethereum address the provider stakes and is paid with.
    pub eth_address: [u8; 20],
    /// Hardware and pricing.
    pub capabilities: Capabilities,
    /// Unix seconds when the record was published.
    pub published_at: u64,
    /// Content hashes of shared input parts (`stp_sdk::batch::parts`) the node holds, most
    /// recently used first, at most [`MAX_ADVERTISED_PARTS`]: a consumer or provider can
    /// fetch them from this node, and chunks that reference them cost it no download.
    pub parts: Vec<ContentHash>,
}

impl ProviderRecord {
    /// Encodes the record; fails if a field or the whole exceeds its limit.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        if self.parts.len() > MAX_ADVERTISED_PARTS {
            return Err(WireError::TooManyItems {
                field: "parts",
                count: self.parts.len(),
                max: MAX_ADVERTISED_PARTS,
            });
        }
        let mut w = Writer::new();
        w.u8(if self.parts.is_empty() {
            VERSION_1
        } else {
            VERSION_2
        });
        self.location.encode(&mut w)?;
        w.raw(&self.eth_address);
        let c = &self.capabilities;
        for (field, s) in [("adapter", &c.adapter), ("backend", &c.backend)] {
            if s.len() > MAX_NAME_LEN {
                return Err(WireError::FieldTooLong {
                    field,
                    len: s.len(),
                    max: MAX_NAME_LEN,
                });
            }
            w.bytes8(field, s.as_bytes())?;
        }
        w.u64(c.memory_bytes);
        w.u64(c.benchmark_score);
        w.u128(c.price_floor);
        w.u64(self.published_at);
        if !self.parts.is_empty() {
            w.hashes8("parts", &self.parts, MAX_ADVERTISED_PARTS)?;
        }
        let out = w.finish();
        if out.len() > MAX_PROVIDER_RECORD_SIZE {
            return Err(WireError::TooLarge {
                len: out.len(),
                max: MAX_PROVIDER_RECORD_SIZE,
            });
        }
        Ok(out)
    }

    /// Decodes a record fetched from the network.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_PROVIDER_RECORD_SIZE {
            return Err(WireError::TooLarge {
                len: bytes.len(),
                max: MAX_PROVIDER_RECORD_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION_1 && version != VERSION_2 {
            return Err(WireError::UnsupportedVersion {
                kind: "provider record",
                version,
                supported: VERSION_2,
            });
        }
        let mut rec = Self {
            location: PeerLocation::decode(&mut r)?,
            eth_address: r.array()?,
            capabilities: Capabilities {
                adapter: r.string8("adapter", MAX_NAME_LEN)?,
                backend: r.string8("backend", MAX_NAME_LEN)?,
                memory_bytes: r.u64()?,
                benchmark_score: r.u64()?,
                price_floor: r.u128()?,
            },
            published_at: r.u64()?,
            parts: Vec::new(),
        };
        if version == VERSION_2 {
            rec.parts = r.hashes8("parts", MAX_ADVERTISED_PARTS)?;
            if rec.parts.is_empty() {
                return Err(WireError::Invalid(
                    "a version 2 provider record lists at least one part",
                ));
            }
        }
        r.finish()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ProviderRecord {
        ProviderRecord {
            location: PeerLocation {
                peer_id: vec![1; 38],
                addrs: vec![vec![4, 127, 0, 0, 1, 6, 0, 80]],
            },
            eth_address: [5; 20],
            capabilities: Capabilities {
                adapter: "llvmpipe".into(),
                backend: "vulkan".into(),
                memory_bytes: 8 << 30,
                benchmark_score: 1234,
                price_floor: 1,
            },
            published_at: 42,
            parts: Vec::new(),
        }
    }

    #[test]
    fn provider_record_roundtrips_and_rejects_garbage() {
        let rec = sample();
        let bytes = rec.encode().unwrap();
        assert_eq!(ProviderRecord::decode(&bytes).unwrap(), rec);
        for cut in 0..bytes.len() {
            assert!(ProviderRecord::decode(&bytes[..cut]).is_err());
        }
        let mut bad = rec;
        bad.capabilities.adapter = "x".repeat(300);
        assert!(matches!(bad.encode(), Err(WireError::FieldTooLong { .. })));
    }

    #[test]
    fn parts_roundtrip_in_version_2_and_none_stay_version_1() {
        let plain = sample().encode().unwrap();
        assert_eq!(plain[0], VERSION_1, "no parts: readable by version 1 nodes");
        let mut rec = sample();
        rec.parts = (0..MAX_ADVERTISED_PARTS as u8).map(|i| [i; 32]).collect();
        rec.location.addrs = vec![vec![7; crate::p2p::MAX_ADDR_LEN]; crate::p2p::MAX_ADDRS];
        rec.capabilities.adapter = "a".repeat(MAX_NAME_LEN);
        rec.capabilities.backend = "b".repeat(MAX_NAME_LEN);
        let bytes = rec.encode().expect("the largest record fits");
        assert_eq!(bytes[0], VERSION_2);
        assert_eq!(ProviderRecord::decode(&bytes).unwrap(), rec);
        for cut in 0..bytes.len() {
            assert!(
                ProviderRecord::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // A version 1 record (as old nodes publish it) decodes with no parts.
        let old = ProviderRecord::decode(&plain).unwrap();
        assert!(old.parts.is_empty());
        assert_eq!(old, sample());
    }

    #[test]
    fn parts_beyond_the_limit_are_refused_on_encode_and_decode() {
        let mut rec = sample();
        rec.parts = vec![[1; 32]; MAX_ADVERTISED_PARTS + 1];
        assert_eq!(
            rec.encode(),
            Err(WireError::TooManyItems {
                field: "parts",
                count: MAX_ADVERTISED_PARTS + 1,
                max: MAX_ADVERTISED_PARTS
            })
        );
        // Hand-built: a valid record with its count byte raised past the limit.
        rec.parts = vec![[1; 32]; 1];
        let mut bytes = rec.encode().unwrap();
        let at = bytes.len() - 33;
        assert_eq!(bytes[at], 1);
        bytes[at] = MAX_ADVERTISED_PARTS as u8 + 1;
        bytes.extend(std::iter::repeat_n(1u8, 32 * MAX_ADVERTISED_PARTS));
        assert!(matches!(
            ProviderRecord::decode(&bytes),
            Err(WireError::TooManyItems { field: "parts", .. })
        ));
        // Version 2 with an empty list has a version 1 encoding already: refused.
        let mut empty = sample().encode().unwrap();
        empty[0] = VERSION_2;
        empty.push(0);
        assert!(matches!(
            ProviderRecord::decode(&empty),
            Err(WireError::Invalid(_))
        ));
        let mut v3 = sample().encode().unwrap();
        v3[0] = 3;
        assert!(matches!(
            ProviderRecord::decode(&v3),
            Err(WireError::UnsupportedVersion { version: 3, .. })
        ));
    }
}
