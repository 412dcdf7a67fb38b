//! Configuration of a node's p2p layer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, identity::Keypair};

use super::check::{AcceptWellFormed, AnnouncementCheck};
use super::error::P2pError;

/// Whether the node serves the DHT (providers) or only queries it (consumers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Kademlia server mode: answers queries and stores records.
    Provider,
    /// Kademlia client mode.
    Consumer,
}

/// Limits on everything that comes from the wire.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest gossipsub message (announcement plus envelope), bytes.
    pub max_gossip_message: usize,
    /// Announcements each peer may have checked at once (its token bucket's size); more
    /// are ignored. Each check may cost chain reads, and the bucket is per delivering peer.
    pub announcements_per_window: u32,
    /// Time in which an empty bucket refills to `announcements_per_window` (tokens come
    /// back one by one at that rate).
    pub announce_window: Duration,
    /// Announcement checks running at once, over all peers; announcements arriving while
    /// this many run are ignored.
    pub max_concurrent_checks: usize,
    /// Largest blob a fetch accepts, bytes.
    pub max_blob_size: u64,
    /// Most chunks one transfer request may ask for.
    pub max_chunks_per_request: u32,
    /// Concurrent inbound transfer streams per peer (more are refused and penalised).
    pub max_streams_per_peer: usize,
    /// Concurrent inbound transfer streams in total.
    pub max_streams_total: usize,
    /// Parallel streams a fetch opens to each source.
    pub streams_per_source: usize,
    /// Deadline for any single read or write on a transfer stream.
    pub io_timeout: Duration,
    /// Offences after which a peer is disconnected and blocked.
    pub max_offences: u32,
    /// Peers this node uploads chunks to at the same time; others are told to come back
    /// later (no offence).
    pub max_upload_peers: usize,
    /// Chunk bytes per second this node uploads in total; `None`: unlimited.
    pub max_upload_rate: Option<u64>,
    /// How often a fetch asks each source for its have-map again (partial sources gain
    /// chunks as they fetch; the served marks steer fetchers away from a busy origin).
    pub have_refresh: Duration,
    /// Most sources one fetch uses, including peers learnt from have-maps.
    pub max_sources: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_gossip_message: 4096,
            announcements_per_window: 5,
            announce_window: Duration::from_secs(10),
            max_concurrent_checks: 8,
            max_blob_size: 16 << 30,
            max_chunks_per_request: 64,
            max_streams_per_peer: 16,
            max_streams_total: 256,
            streams_per_source: 4,
            io_timeout: Duration::from_secs(20),
            max_offences: 3,
            max_upload_peers: 16,
            max_upload_rate: None,
            have_refresh: Duration::from_millis(250),
            max_sources: 32,
        }
    }
}

/// Default of [`P2pConfig::provider_republish`].
pub(super) const DEFAULT_PROVIDER_REPUBLISH: Duration = Duration::from_secs(600);

/// Everything [`super::spawn`] needs.
#[derive(Clone)]
pub struct P2pConfig {
    /// The node's identity (ed25519); see [`load_or_create_keypair`].
    pub keypair: Keypair,
    /// Addresses to listen on, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen_addrs: Vec<Multiaddr>,
    /// Peers to connect to at start, each with its `/p2p/<peer id>` suffix.
    pub bootstrap: Vec<Multiaddr>,
    /// Directory of the blob store.
    pub blob_dir: PathBuf,
    /// Provider (DHT server) or consumer.
    pub role: Role,
    /// Wire limits.
    pub limits: Limits,
    /// Gossipsub topic for job announcements.
    pub jobs_topic: String,
    /// Gossipsub heartbeat (short in tests so meshes form quickly).
    pub heartbeat: Duration,
    /// How long an idle connection is kept open.
    pub idle_timeout: Duration,
    /// How often the node publishes its provider record to the DHT again (peers expire
    /// copies they hold; new peers closer to the key should hold one too).
    pub provider_republish: Duration,
    /// Decides whether a well-formed announcement is valid (e.g. against chain state).
    pub announcement_check: Arc<dyn AnnouncementCheck>,
}

impl std::fmt::Debug for P2pConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pConfig")
            .field("peer_id", &self.keypair.public().to_peer_id())
            .field("listen_addrs", &self.listen_addrs)
            .field("bootstrap", &self.bootstrap)
            .field("blob_dir", &self.blob_dir)
            .field("role", &self.role)
            .field("limits", &self.limits)
            .field("jobs_topic", &self.jobs_topic)
            .field("provider_republish", &self.provider_republish)
            .finish_non_exhaustive()
    }
}

impl P2pConfig {
    /// A config with defaults: listen on an ephemeral loopback port, no bootstrap peers.
    pub fn new(keypair: Keypair, blob_dir: impl Into<PathBuf>, role: Role) -> Self {
        Self {
            keypair,
            listen_addrs: vec![
                "/ip4/127.0.0.1/tcp/0"
                    .parse()
                    .expect("static multiaddr is valid"),
            ],
            bootstrap: Vec::new(),
            blob_dir: blob_dir.into(),
            role,
            limits: Limits::default(),
            jobs_topic: "stp/jobs/1".into(),
            heartbeat: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(300),
            provider_republish: DEFAULT_PROVIDER_REPUBLISH,
            announcement_check: Arc::new(AcceptWellFormed),
        }
    }
}

/// Loads the ed25519 identity from `path` (protobuf encoding), creating and saving a new
/// one if the file does not exist, so the peer id is stable across restarts.
pub fn load_or_create_keypair(path: &Path) -> Result<Keypair, P2pError> {
    let err = |reason: String| P2pError::Identity {
        path: path.to_owned(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| err(e.to_string()))?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            }
            std::fs::write(path, bytes).map_err(|e| err(e.to_string()))?;
            restrict_permissions(path).map_err(|e| err(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypair_is_stable_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/node.key");
        let a = load_or_create_keypair(&path).unwrap();
        let b = load_or_create_keypair(&path).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(
            load_or_create_keypair(&path),
            Err(P2pError::Identity { .. })
        ));
    }
}
