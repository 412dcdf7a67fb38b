//! Errors of the p2p layer, one enum per concern.

use std::path::{Path, PathBuf};

use libp2p::PeerId;
use stp_sdk::p2p::WireError;

/// Result alias for the p2p layer.
pub type Result<T, E = P2pError> = std::result::Result<T, E>;

/// Errors returned by [`super::spawn`] and [`super::P2pClient`].
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    /// The node's key file could not be read, parsed or written.
    #[error("identity key file {path}: {reason}; delete it to generate a new identity")]
    Identity {
        /// Path of the key file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Building the transport or a behaviour failed.
    #[error("could not build the libp2p swarm: {0}")]
    Swarm(String),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}; choose another address or port")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Dialing a peer failed.
    #[error("cannot dial {addr}: {reason}")]
    Dial {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A bootstrap or peer address lacks its `/p2p/<peer id>` suffix.
    #[error("address {0} has no /p2p/<peer id> suffix; append the peer id")]
    MissingPeerId(String),
    /// A message could not be encoded or decoded.
    #[error("wire format: {0}")]
    Wire(#[from] WireError),
    /// Publishing on gossipsub failed (e.g. no peers subscribed yet).
    #[error("could not publish the announcement: {0}; are any peers connected?")]
    Publish(String),
    /// The provider record is stored locally and this node lists itself as a provider
    /// (peers that ask it find it), but no other peer took a copy yet; the node publishes
    /// it again when a DHT peer connects and on a schedule, so there is nothing to retry.
    #[error(
        "provider record held locally but not replicated yet ({0}); it is published again when a DHT peer connects"
    )]
    ProviderRecordNotReplicated(String),
    /// A Kademlia operation failed.
    #[error("kademlia: {0}")]
    Kademlia(String),
    /// The blob store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blob transfer failed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// The event loop has stopped (the node is shutting down).
    #[error("the p2p event loop has stopped; restart the node")]
    Stopped,
}

/// Errors of the on-disk blob store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading or writing a file failed; check permissions and free disk space.
    #[error("blob store file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A stored or received manifest is invalid.
    #[error("invalid blob manifest: {0}")]
    Manifest(WireError),
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Errors of one blob fetch.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// No source was given.
    #[error("no peers to fetch from; pass at least one source peer")]
    NoSources,
    /// No source returned a usable manifest for the blob.
    #[error("no source has blob {0} (or none answered with a valid manifest)")]
    NotFound(String),
    /// The manifest describes a different blob or one larger than allowed.
    #[error("manifest from {peer} rejected: {reason}")]
    BadManifest {
        /// The peer that sent it.
        peer: PeerId,
        /// Why it was rejected.
        reason: String,
    },
    /// Every source failed or was banned before all chunks arrived; the verified chunks
    /// are kept on disk and a later fetch resumes from them.
    #[error(
        "all sources failed with {missing} of {total} chunks missing (last error: {last_error}); retry with other peers to resume"
    )]
    AllSourcesFailed {
        /// Chunks still missing.
        missing: usize,
        /// Chunks in the blob.
        total: usize,
        /// The last peer error seen.
        last_error: String,
    },
    /// The reassembled blob does not hash to the requested content hash (the manifest
    /// lied); the partial download is discarded.
    #[error("reassembled blob hashes to {actual}, not {expected}; the manifest source lied")]
    ContentHashMismatch {
        /// The requested hash.
        expected: String,
        /// The hash of what was assembled.
        actual: String,
    },
    /// The blob's manifest gives another size than the reference to it declared.
    #[error("the blob is {actual} bytes, but it was referenced as {expected} bytes")]
    SizeMismatch {
        /// The declared size.
        expected: u64,
        /// The manifest's size.
        actual: u64,
    },
    /// Local storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a remote peer was penalised; each is logged and counted against the peer, and a
/// peer that collects too many is disconnected and blocked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Offence {
    /// Sent a chunk whose hash does not match the manifest.
    #[error("sent corrupted chunk {index}")]
    CorruptChunk {
        /// Index of the chunk.
        index: usize,
    },
    /// Sent a frame longer than the protocol allows.
    #[error("sent an oversized frame ({len} bytes, limit {max})")]
    OversizedFrame {
        /// Declared length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// Sent bytes that are not a valid protocol frame.
    #[error("sent a malformed frame: {0}")]
    Malformed(String),
    /// Opened more concurrent streams than allowed.
    #[error("exceeded the concurrent stream limit ({0})")]
    TooManyStreams(usize),
    /// Sent a manifest that is invalid or does not match the request.
    #[error("sent a bad manifest: {0}")]
    BadManifest(String),
    /// Published an invalid gossipsub announcement.
    #[error("published an invalid announcement: {0}")]
    InvalidAnnouncement(String),
}
