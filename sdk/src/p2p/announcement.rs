//! Job announcements: what a consumer gossips so providers learn about a new job.
//!
//! Two versions decode: version 1 (no part hints) and version 2 (at least one). One
//! without hints is encoded as version 1, so every value has exactly one encoding and
//! nodes that only know version 1 still read it.

use super::codec::{Reader, Writer};
use super::{ContentHash, PeerLocation, WireError};

/// Largest encoded announcement accepted (gossipsub adds its own envelope on top).
pub const MAX_ANNOUNCEMENT_SIZE: usize = 2048;
/// Most part hints one announcement carries.
pub const MAX_PART_HINTS: usize = 8;
/// Without part hints.
const VERSION_1: u8 = 1;
/// With part hints.
const VERSION_2: u8 = 2;

/// A job posted on-chain, announced over gossipsub. The announcement is signed by the
/// announcing peer's libp2p identity (gossipsub signed mode); the node checks it against
/// chain state before acting on it, so nothing here is trusted beyond its format.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobAnnouncement {
    /// Chain the escrow contract lives on.
    pub chain_id: u64,
    /// Address of the escrow contract holding the job.
    pub contract: [u8; 20],
    /// Job id in the escrow contract (a uint256, big-endian).
    pub job_id: [u8; 32],
    /// Kernel id: hash of the WGSL module to run.
    pub kernel_id: [u8; 32],
    /// sha256 of the whole input blob (as recorded on-chain).
    pub input_hash: [u8; 32],
    /// Root of the input's [`super::BlobManifest`], so fetchers can verify chunk lists.
    pub input_manifest_root: [u8; 32],
    /// Input size in bytes.
    pub input_size: u64,
    /// Largest output the job may produce, in bytes.
    pub max_output_size: u64,
    /// Bounty in the smallest unit of the payment token.
    pub bounty: u128,
    /// Number of independent replicas the job wants.
    pub replicas: u16,
    /// Unix seconds of the post's block (part of the job's on-chain terms).
    pub posted_at: u64,
    /// Unix seconds after which no result can be committed.
    pub commit_deadline: u64,
    /// Unix seconds after which no result can be revealed.
    pub reveal_deadline: u64,
    /// Peer serving the input blob.
    pub input_location: PeerLocation,
    /// Content hashes of the shared blobs the job's parts input (`stp_sdk::batch::parts`)
    /// references, at most [`MAX_PART_HINTS`], so a provider can prefer the jobs whose
    /// parts it holds without fetching their inputs first.
    ///
    /// A hint, never trusted: it is off-chain (like the manifest root and the serving
    /// peer), so anyone relaying the job can change it. A false hint can only change the
    /// order in which a provider takes the jobs waiting for it; what it computes comes
    /// from the input the chain's input hash names, and what it is paid from the chain.
    pub part_hints: Vec<ContentHash>,
}

impl JobAnnouncement {
    /// Encodes the announcement; fails if a field exceeds its limit or the result would
    /// exceed [`MAX_ANNOUNCEMENT_SIZE`].
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        self.check()?;
        let mut w = Writer::new();
        w.u8(if self.part_hints.is_empty() {
            VERSION_1
        } else {
            VERSION_2
        });
        w.u64(self.chain_id);
        w.raw(&self.contract);
        w.raw(&self.job_id);
        w.raw(&self.kernel_id);
        w.raw(&self.input_hash);
        w.raw(&self.input_manifest_root);
        w.u64(self.input_size);
        w.u64(self.max_output_size);
        w.u128(self.bounty);
        w.u16(self.replicas);
        w.u64(self.posted_at);
        w.u64(self.commit_deadline);
        w.u64(self.reveal_deadline);
        self.input_location.encode(&mut w)?;
        if !self.part_hints.is_empty() {
            w.hashes8("part_hints", &self.part_hints, MAX_PART_HINTS)?;
        }
        let out = w.finish();
        if out.len() > MAX_ANNOUNCEMENT_SIZE {
            return Err(WireError::TooLarge {
                len: out.len(),
                max: MAX_ANNOUNCEMENT_SIZE,
            });
        }
        Ok(out)
    }

    /// Decodes and validates an announcement received from the network.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_ANNOUNCEMENT_SIZE {
            return Err(WireError::TooLarge {
                len: bytes.len(),
                max: MAX_ANNOUNCEMENT_SIZE,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION_1 && version != VERSION_2 {
            return Err(WireError::UnsupportedVersion {
                kind: "job announcement",
                version,
                supported: VERSION_2,
            });
        }
        let mut ann = Self {
            chain_id: r.u64()?,
            contract: r.array()?,
            job_id: r.array()?,
            kernel_id: r.array()?,
            input_hash: r.array()?,
            input_manifest_root: r.array()?,
            input_size: r.u64()?,
            max_output_size: r.u64()?,
            bounty: r.u128()?,
            replicas: r.u16()?,
            posted_at: r.u64()?,
            commit_deadline: r.u64()?,
            reveal_deadline: r.u64()?,
            input_location: PeerLocation::decode(&mut r)?,
            part_hints: Vec::new(),
        };
        if version == VERSION_2 {
            ann.part_hints = r.hashes8("part_hints", MAX_PART_HINTS)?;
            if ann.part_hints.is_empty() {
                return Err(WireError::Invalid(
                    "a version 2 announcement carries at least one part hint",
                ));
            }
        }
        r.finish()?;
        ann.check()?;
        Ok(ann)
    }

    fn check(&self) -> Result<(), WireError> {
        if self.replicas == 0 {
            return Err(WireError::Invalid("replicas must be at least 1"));
        }
        if !(self.posted_at <= self.commit_deadline && self.commit_deadline <= self.reveal_deadline)
        {
            return Err(WireError::Invalid(
                "times must satisfy posted <= commit deadline <= reveal deadline",
            ));
        }
        if self.input_location.peer_id.is_empty() {
            return Err(WireError::Invalid("input location has no peer id"));
        }
        if self.part_hints.len() > MAX_PART_HINTS {
            return Err(WireError::TooManyItems {
                field: "part_hints",
                count: self.part_hints.len(),
                max: MAX_PART_HINTS,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> JobAnnouncement {
        JobAnnouncement {
            chain_id: 31337,
            contract: [7; 20],
            job_id: [1; 32],
            kernel_id: [2; 32],
            input_hash: [3; 32],
            input_manifest_root: [4; 32],
            input_size: 1 << 20,
            max_output_size: 1 << 16,
            bounty: 10u128.pow(18),
            replicas: 3,
            posted_at: 100,
            commit_deadline: 200,
            reveal_deadline: 300,
            input_location: PeerLocation {
                peer_id: vec![9; 38],
                addrs: vec![vec![4, 127, 0, 0, 1]],
            },
            part_hints: Vec::new(),
        }
    }

    #[test]
    fn announcement_roundtrips() {
        let ann = sample();
        let bytes = ann.encode().unwrap();
        assert!(bytes.len() < 400, "compact: {} bytes", bytes.len());
        assert_eq!(JobAnnouncement::decode(&bytes).unwrap(), ann);
    }

    #[test]
    fn announcement_rejects_truncation_trailing_and_version() {
        let bytes = sample().encode().unwrap();
        for cut in 0..bytes.len() {
            assert!(
                JobAnnouncement::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(
            JobAnnouncement::decode(&long),
            Err(WireError::TrailingBytes(1))
        );
        let mut v3 = bytes;
        v3[0] = 3;
        assert!(matches!(
            JobAnnouncement::decode(&v3),
            Err(WireError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            JobAnnouncement::decode(&[1u8; 5000]),
            Err(WireError::TooLarge { .. })
        ));
    }

    #[test]
    fn announcement_rejects_inconsistent_fields() {
        let mut ann = sample();
        ann.commit_deadline = 50;
        assert!(matches!(ann.encode(), Err(WireError::Invalid(_))));
        let mut ann = sample();
        ann.input_location.addrs = vec![vec![0; 10]; 9];
        assert!(matches!(ann.encode(), Err(WireError::TooManyItems { .. })));
    }

    #[test]
    fn part_hints_roundtrip_in_version_2_within_their_limit() {
        assert_eq!(sample().encode().unwrap()[0], VERSION_1);
        let mut ann = sample();
        ann.input_location.addrs = vec![vec![7; crate::p2p::MAX_ADDR_LEN]; crate::p2p::MAX_ADDRS];
        ann.part_hints = (0..MAX_PART_HINTS as u8).map(|i| [i; 32]).collect();
        let bytes = ann.encode().expect("the largest announcement fits");
        assert_eq!(bytes[0], VERSION_2);
        assert_eq!(JobAnnouncement::decode(&bytes).unwrap(), ann);
        for cut in 0..bytes.len() {
            assert!(
                JobAnnouncement::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        ann.part_hints.push([9; 32]);
        assert!(matches!(
            ann.encode(),
            Err(WireError::TooManyItems {
                field: "part_hints",
                ..
            })
        ));
        // Decoding enforces the limit too, and refuses an empty version 2 list.
        let mut one = sample();
        one.part_hints = vec![[1; 32]];
        let mut bytes = one.encode().unwrap();
        let at = bytes.len() - 33;
        bytes[at] = MAX_PART_HINTS as u8 + 1;
        bytes.extend(std::iter::repeat_n(1u8, 32 * MAX_PART_HINTS));
        assert!(matches!(
            JobAnnouncement::decode(&bytes),
            Err(WireError::TooManyItems {
                field: "part_hints",
                ..
            })
        ));
        let mut empty = sample().encode().unwrap();
        empty[0] = VERSION_2;
        empty.push(0);
        assert!(matches!(
            JobAnnouncement::decode(&empty),
            Err(WireError::Invalid(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = JobAnnouncement::decode(&bytes);
        }
    }
}
