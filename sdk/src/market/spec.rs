use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;
use sha2::{Digest, Sha256};

/// A job's specification, as posted. Only a hash of its [`JobTerms`] is stored on-chain;
/// the full spec travels in the `JobPosted` event.
pub type JobSpec = crate::bindings::IJobEscrow::JobSpec;

/// What every call after `postJob` passes back: the spec's rule fields and the post time
/// packed into two words plus a hash of the rest (the escrow's `termsOf`, layout in
/// `JobTermsLib.sol`).
pub type JobTerms = crate::bindings::IJobEscrow::JobTerms;

/// Which rules a job follows: the kind bits of its `JobPosted` draw (bit 64: optimistic,
/// bit 65: escalation), which are part of its terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// k replicas commit, then reveal; the quorum's hash wins.
    #[default]
    Plain,
    /// One replica whose commit carries its result hash in the clear; paid after the
    /// challenge window unless its consumer challenges it.
    Optimistic,
    /// The m replicas recomputing a challenged optimistic job (their result hashes use the
    /// challenged job's identity); its settlement settles that job too.
    Escalation,
}

impl JobKind {
    /// The kind bits of a draw word (`draw >> 64`).
    pub fn bits(self) -> u64 {
        match self {
            Self::Plain => 0,
            Self::Optimistic => 1,
            Self::Escalation => 2,
        }
    }

    /// The kind named by a `JobPosted` draw word, `None` for bits the escrow never sets.
    pub fn of_draw(draw: U256) -> Option<Self> {
        match u64::try_from(draw >> 64).ok()? {
            0 => Some(Self::Plain),
            1 => Some(Self::Optimistic),
            2 => Some(Self::Escalation),
            _ => None,
        }
    }

    /// The draw word `kind << 64 | post_block << 32 | posted_at`.
    pub fn draw(self, posted_at: u64, post_block: u64) -> U256 {
        (U256::from(self.bits()) << 64) | (U256::from(post_block) << 32) | U256::from(posted_at)
    }
}

/// The escrow's `termsOf(spec, draw)`, computed locally, for a job of `kind` posted in block
/// `post_block` at `posted_at` (`JobPosted`'s `draw` = kind << 64 | postBlock << 32 |
/// postedAt).
pub fn terms(spec: &JobSpec, posted_at: u64, post_block: u64, kind: JobKind) -> JobTerms {
    let payment = (U256::from_be_slice(spec.consumer.as_slice()) << 96) | U256::from(spec.bounty);
    let rules = (U256::from(spec.revealDeadline) << 224)
        | (U256::from(spec.commitDeadline) << 192)
        | (U256::from(posted_at) << 160)
        | (U256::from(post_block) << 128)
        | (U256::from(spec.minReputation) << 112)
        | (U256::from(spec.replicas) << 104)
        | (U256::from(kind.bits()) << 102)
        | (U256::from(spec.quorum) << 96)
        | U256::from(spec.collateral);
    let details = (
        spec.kernelId,
        spec.inputHash,
        spec.inputSize,
        spec.maxOutputSize,
        spec.inputLocation.clone(),
    )
        .abi_encode_params();
    JobTerms {
        payment,
        rules,
        detailsHash: keccak256(details),
    }
}

/// `keccak256(abi.encode(termsOf(spec, draw)))`, the escrow's `specHashOf` (its first 24
/// bytes are stored per job).
pub fn spec_hash(spec: &JobSpec, posted_at: u64, post_block: u64, kind: JobKind) -> B256 {
    keccak256(terms(spec, posted_at, post_block, kind).abi_encode())
}

/// Who a result belongs to: the job's identity, which every result hash covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultDomain {
    /// The chain the market is on.
    pub chain_id: u64,
    /// The market's escrow.
    pub escrow: Address,
    /// The job.
    pub job_id: u64,
}

impl ResultDomain {
    /// Length of [`prefix`](Self::prefix).
    pub const PREFIX_LEN: usize = 96;

    /// `abi.encode(chainId, escrow, jobId)`, the escrow's `resultPrefixOf(jobId)`: the
    /// bytes the result blob starts with.
    pub fn prefix(&self) -> Vec<u8> {
        (
            U256::from(self.chain_id),
            self.escrow,
            U256::from(self.job_id),
        )
            .abi_encode()
    }

    /// The result blob providers serve: the prefix followed by the output bytes.
    pub fn blob(&self, output: &[u8]) -> Vec<u8> {
        let mut blob = self.prefix();
        blob.extend_from_slice(output);
        blob
    }

    /// `sha256(prefix ++ output)`, the escrow's `resultHashOf(jobId, output)`: what replicas
    /// commit to and reveal. It binds chain, contract and job, so a hash revealed in one job
    /// is worth nothing in another.
    pub fn result_hash(&self, output: &[u8]) -> B256 {
        let mut h = Sha256::new();
        h.update(self.prefix());
        h.update(output);
        B256::from(<[u8; 32]>::from(h.finalize()))
    }

    /// The output inside a result `blob`, if the blob starts with this job's prefix.
    pub fn output_of<'a>(&self, blob: &'a [u8]) -> Option<&'a [u8]> {
        blob.strip_prefix(self.prefix().as_slice())
    }
}

/// `keccak256(abi.encode(jobId, provider, resultHash, salt))`: what a provider commits.
pub fn commitment(job_id: u64, provider: Address, result_hash: B256, salt: B256) -> B256 {
    keccak256((U256::from(job_id), provider, result_hash, salt).abi_encode())
}

/// Plain-integer views of a [`JobSpec`]'s packed fields.
pub trait JobSpecExt {
    /// Last second (inclusive) to commit.
    fn commit_deadline(&self) -> u64;
    /// Last second (inclusive) to reveal.
    fn reveal_deadline(&self) -> u64;
    /// Total bounty.
    fn bounty_amount(&self) -> U256;
    /// Collateral per replica.
    fn collateral_amount(&self) -> U256;
}

impl JobSpecExt for JobSpec {
    fn commit_deadline(&self) -> u64 {
        self.commitDeadline.to()
    }
    fn reveal_deadline(&self) -> u64 {
        self.revealDeadline.to()
    }
    fn bounty_amount(&self) -> U256 {
        U256::from(self.bounty)
    }
    fn collateral_amount(&self) -> U256 {
        U256::from(self.collateral)
    }
}

/// A provider's phase in a live job (in one of its lanes), as `replicaOf` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum ReplicaPhase {
    /// No slot (or the job is no longer live).
    None,
    /// Took a slot with its commitment, not revealed.
    Committed,
    /// Revealed.
    Revealed,
}

impl ReplicaPhase {
    /// From the contract's enum value.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Committed,
            2 => Self::Revealed,
            _ => return None,
        })
    }
}

/// A replica list entry as the escrow's last reveal and finalize take it:
/// `uint160(provider) << 96 | lane`.
pub fn slot_key(provider: Address, lane: u64) -> U256 {
    (U256::from_be_slice(provider.as_slice()) << 96) | U256::from(lane)
}
