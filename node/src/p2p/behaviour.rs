//! The composed libp2p behaviour of a node.

use std::num::NonZeroUsize;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, allow_block_list, gossipsub, identify, kad, ping};

use super::config::P2pConfig;
use super::error::P2pError;

/// Kademlia protocol name (a private DHT, separate from the public IPFS one).
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/stp/kad/1.0.0");
/// The identify protocol id: libp2p's standard `/ipfs/id/1.0.0` (with pushes on
/// `/ipfs/id/push/1.0.0`). There is no stp-specific identify protocol: a client opens
/// identify streams on this id, whatever protocolVersion it sends itself.
pub const IDENTIFY_PROTOCOL: StreamProtocol = identify::PROTOCOL_NAME;
/// What the node sends in identify's `protocolVersion` field: informational only (a peer
/// with another value still identifies), not a protocol id to dial; see
/// [`IDENTIFY_PROTOCOL`].
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/stp/id/1.0.0";

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub gossipsub: gossipsub::Behaviour,
    pub stream: libp2p_stream::Behaviour,
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
}

impl Behaviour {
    pub(crate) fn new(key: &Keypair, config: &P2pConfig) -> Result<Self, P2pError> {
        let peer_id = key.public().to_peer_id();
        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config.set_query_timeout(Duration::from_secs(30));
        if config.bootstrap.is_empty() {
            // Nobody to bootstrap from (a consumer serving one job, the first node of a
            // network): don't retry every few minutes into an empty table. Peers that
            // connect later still trigger a bootstrap.
            kad_config.set_periodic_bootstrap_interval(None);
        }
        kad_config.set_replication_factor(NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN));
        let store_config = kad::store::MemoryStoreConfig {
            max_records: 4096,
            max_value_bytes: 4096,
            max_providers_per_key: 1024,
            max_provided_keys: 64,
        };
        let store = kad::store::MemoryStore::with_config(peer_id, store_config);
        Ok(Self {
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL_VERSION.into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
            kad: kad::Behaviour::with_config(peer_id, store, kad_config),
            gossipsub: gossipsub(key, config)?,
            stream: libp2p_stream::Behaviour::new(),
            blocked: allow_block_list::Behaviour::default(),
        })
    }
}

fn gossipsub(key: &Keypair, config: &P2pConfig) -> Result<gossipsub::Behaviour, P2pError> {
    let err = |e: &dyn std::fmt::Display| P2pError::Swarm(format!("gossipsub: {e}"));
    let gs_config = gossipsub::ConfigBuilder::default()
        .heartbeat_interval(config.heartbeat)
        .validation_mode(gossipsub::ValidationMode::Strict)
        .validate_messages()
        .max_transmit_size(config.limits.max_gossip_message)
        .build()
        .map_err(|e| err(&e))?;
    let mut behaviour = gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Signed(key.clone()),
        gs_config,
    )
    .map_err(|e| err(&e))?;
    let topic = gossipsub::IdentTopic::new(config.jobs_topic.clone());
    let mut params = gossipsub::PeerScoreParams::default();
    params.topics.insert(topic.hash(), job_topic_score());
    behaviour
        .with_peer_score(params, gossipsub::PeerScoreThresholds::default())
        .map_err(|e| err(&e))?;
    behaviour.subscribe(&topic).map_err(|e| err(&e))?;
    Ok(behaviour)
}

/// Scoring for the job topic: low traffic, so mesh-delivery quotas (P3) are off; time in
/// mesh and first deliveries earn a little, and each invalid announcement costs far more
/// than any peer can earn, so a peer that publishes garbage ends up with a negative score.
fn job_topic_score() -> gossipsub::TopicScoreParams {
    gossipsub::TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.1,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 10.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_cap: 10.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.9,
        ..Default::default()
    }
}
