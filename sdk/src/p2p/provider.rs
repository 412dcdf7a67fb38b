//! Provider records: what a provider publishes in Kademlia so consumers can list who is out
//! there and what hardware they offer.

use super::codec::{Reader, Writer};
use super::{PeerLocation, WireError};

/// Largest encoded provider record accepted.
pub const MAX_PROVIDER_RECORD_SIZE: usize = 2048;
const VERSION: u8 = 1;
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
}

impl ProviderRecord {
    /// Encodes the record; fails if a field or the whole exceeds its limit.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let mut w = Writer::new();
        w.u8(VERSION);
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
        if version != VERSION {
            return Err(WireError::UnsupportedVersion {
                kind: "provider record",
                version,
                supported: VERSION,
            });
        }
        let rec = Self {
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
        };
        r.finish()?;
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_record_roundtrips_and_rejects_garbage() {
        let rec = ProviderRecord {
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
        };
        let bytes = rec.encode().unwrap();
        assert_eq!(ProviderRecord::decode(&bytes).unwrap(), rec);
        for cut in 0..bytes.len() {
            assert!(ProviderRecord::decode(&bytes[..cut]).is_err());
        }
        let mut bad = rec;
        bad.capabilities.adapter = "x".repeat(300);
        assert!(matches!(bad.encode(), Err(WireError::FieldTooLong { .. })));
    }
}
