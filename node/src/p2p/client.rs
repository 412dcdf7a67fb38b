//! [`P2pClient`]: the cloneable handle the daemon and CLI use to drive the p2p layer.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use futures::future::join_all;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId, kad};
use stp_sdk::p2p::{BlobManifest, ContentHash, JobAnnouncement, Naming, ProviderRecord};
use tokio::sync::{mpsc, oneshot};

use super::blobstore::BlobStore;
use super::config::Limits;
use super::error::{Offence, P2pError, Result};
use super::event_loop::{Command, ProviderRecordStatus};
use super::fetch::{FetchOptions, FetchReport, Fetcher, Replication};
use super::records;
use super::serve::ServeState;

/// Handle to a running node's p2p layer. Cheap to clone; every method talks to the event
/// loop over a bounded channel (or, for blob transfers, opens streams directly).
#[derive(Clone)]
pub struct P2pClient {
    pub(crate) peer_id: PeerId,
    pub(crate) keypair: Keypair,
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) control: libp2p_stream::Control,
    pub(crate) store: Arc<BlobStore>,
    pub(crate) limits: Limits,
    pub(crate) penalties: mpsc::Sender<(PeerId, Offence)>,
    pub(crate) serve_state: Arc<ServeState>,
}

impl std::fmt::Debug for P2pClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pClient")
            .field("peer_id", &self.peer_id)
            .finish_non_exhaustive()
    }
}

impl P2pClient {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The node's blob store.
    pub fn store(&self) -> &Arc<BlobStore> {
        &self.store
    }

    /// Chunk bytes this node has uploaded to other peers since it started (the
    /// served-bytes metric: an origin that swarms well uploads each blob about once).
    pub fn served_bytes(&self) -> u64 {
        self.serve_state.served_bytes()
    }

    /// Addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>> {
        self.call(Command::ListenAddrs).await
    }

    /// Addresses the node listens on, each ending in `/p2p/<its peer id>`: what a job's
    /// `inputLocation` names.
    pub async fn dialable_addrs(&self) -> Result<Vec<Multiaddr>> {
        let peer = self.peer_id();
        Ok(self
            .listen_addrs()
            .await?
            .iter()
            .map(|a| super::with_peer_id(a, peer))
            .collect())
    }

    /// Connects to `addr` (which must end in `/p2p/<peer id>`); returns once connected.
    pub async fn dial(&self, addr: Multiaddr) -> Result<()> {
        self.call(|r| Command::Dial(addr, r)).await?
    }

    /// Tells the swarm where `peer` can be reached (e.g. from an announcement's location).
    pub async fn add_peer_addrs(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<()> {
        self.commands
            .send(Command::AddAddrs(peer, addrs))
            .await
            .map_err(|_| P2pError::Stopped)
    }

    /// Peers with an open connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>> {
        self.call(Command::ConnectedPeers).await
    }

    /// Number of connected peers subscribed to the job topic.
    pub async fn topic_peers(&self) -> Result<usize> {
        self.call(Command::TopicPeers).await
    }

    /// This node's gossipsub score of `peer` (lower after invalid messages).
    pub async fn gossip_score(&self, peer: PeerId) -> Result<Option<f64>> {
        self.call(|r| Command::GossipScore(peer, r)).await
    }

    /// Publishes a job announcement on the job topic (signed with the node's key).
    pub async fn announce_job(&self, ann: &JobAnnouncement) -> Result<()> {
        let bytes = ann.encode()?;
        self.call(|r| Command::Publish(bytes, r)).await?
    }

    /// Publishes raw bytes on the job topic. Only useful to test peers' validation.
    #[doc(hidden)]
    pub async fn publish_raw(&self, bytes: Vec<u8>) -> Result<()> {
        self.call(|r| Command::Publish(bytes, r)).await?
    }

    /// Signs `record`, stores it locally, lists this node as a provider and publishes
    /// both to the DHT; returns once the first publication finished. The node keeps the
    /// record (replacing any earlier one) and publishes it again on a schedule and when a
    /// DHT peer connects while no peer holds a copy, so a first provider that has no peer
    /// yet ([`P2pError::ProviderRecordNotReplicated`]) is still found later.
    pub async fn put_provider_record(&self, record: &ProviderRecord) -> Result<()> {
        let value = records::sign_record(&self.keypair, record)?;
        let rec = kad::Record::new(records::record_key(&self.peer_id), value);
        self.call(|r| Command::PublishProvider(rec, r)).await?
    }

    /// How far this node's provider record has spread; `None` before
    /// [`Self::put_provider_record`].
    pub async fn provider_record_status(&self) -> Result<Option<ProviderRecordStatus>> {
        self.call(Command::ProviderStatus).await
    }

    /// Lists providers found in the DHT, with their verified records.
    pub async fn find_providers(&self) -> Result<Vec<ProviderRecord>> {
        let peers: HashSet<PeerId> = self
            .call(|r| Command::GetProviders(records::providers_key(), r))
            .await??;
        let lookups = peers.into_iter().map(|peer| async move {
            let value = self
                .call(|r| Command::GetRecord(records::record_key(&peer), r))
                .await;
            match value {
                Ok(Ok(Some(v))) => match records::verify_record(&v) {
                    Ok(rec) if rec.location.peer_id == peer.to_bytes() => Some(rec),
                    Ok(_) => None,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "invalid provider record");
                        None
                    }
                },
                _ => None,
            }
        });
        Ok(join_all(lookups).await.into_iter().flatten().collect())
    }

    /// Stores `data` in the blob store under its `naming` name (served to peers from then
    /// on): [`Naming::Blake3`] for job inputs and their parts, [`Naming::Sha256`] for
    /// result blobs.
    pub async fn add_blob(&self, data: Vec<u8>, naming: Naming) -> Result<ContentHash> {
        let store = self.store.clone();
        Ok(
            tokio::task::spawn_blocking(move || store.put_bytes(&data, naming))
                .await
                .map_err(|_| P2pError::Stopped)??,
        )
    }

    /// Stores a copy of the file at `path` in the blob store under its `naming` name.
    pub async fn add_blob_file(&self, path: &Path, naming: Naming) -> Result<ContentHash> {
        let (store, path) = (self.store.clone(), path.to_owned());
        Ok(
            tokio::task::spawn_blocking(move || store.put_file(&path, naming))
                .await
                .map_err(|_| P2pError::Stopped)??,
        )
    }

    /// Whether the complete blob is stored locally.
    pub fn has_blob(&self, hash: &ContentHash) -> bool {
        self.store.has(hash)
    }

    /// Manifest of a locally stored blob.
    pub fn blob_manifest(&self, hash: &ContentHash) -> Result<Option<BlobManifest>> {
        Ok(self.store.manifest(hash)?)
    }

    /// Fetches a blob from `sources` in parallel, verifying every chunk; see [`FetchOptions`].
    pub async fn fetch_blob(&self, hash: ContentHash, sources: Vec<PeerId>) -> Result<FetchReport> {
        self.fetch_blob_with(hash, sources, FetchOptions::default())
            .await
    }

    /// [`Self::fetch_blob`] with options (announced manifest root, progress reporting).
    pub async fn fetch_blob_with(
        &self,
        hash: ContentHash,
        sources: Vec<PeerId>,
        opts: FetchOptions,
    ) -> Result<FetchReport> {
        Ok(self.fetcher().fetch(hash, sources, opts).await?)
    }

    /// How far a blob this node serves has spread among the peers that fetched it from
    /// this node (each asked for its have-map now). A consumer serving a job's input can
    /// go offline once [`Replication::complete`] reaches the job's replica count.
    pub async fn replication(&self, hash: ContentHash) -> Result<Replication> {
        Ok(self.fetcher().replication(hash, &self.serve_state).await?)
    }

    fn fetcher(&self) -> Fetcher {
        Fetcher {
            local: self.peer_id,
            control: self.control.clone(),
            commands: self.commands.clone(),
            store: self.store.clone(),
            limits: self.limits.clone(),
            penalties: self.penalties.clone(),
        }
    }

    /// Stops the event loop; connections close and the node stops serving.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}
