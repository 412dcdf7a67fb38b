//! The peer-to-peer layer: one libp2p swarm per node (TCP + noise + yamux, identify on
//! libp2p's standard [`IDENTIFY_PROTOCOL`], ping, Kademlia on [`KAD_PROTOCOL`], gossipsub,
//! raw streams). QUIC was measured beside it (`stp bench p2p`, 256
//! MiB on loopback, 2 cores): 1.2-1.9 CPU-s and 140-215 MB/s against 0.8-1.0 CPU-s and
//! 270-300 MB/s for TCP in the same minutes, so it is not built in (it also costs a C
//! build, aws-lc-sys).
//!
//! - Job announcements travel on a gossipsub topic in signed mode; receivers validate
//!   format and size, admit a few per delivering peer (token bucket) and a few at once
//!   (`admission`), then ask an [`AnnouncementCheck`] (chain state) before forwarding,
//!   so invalid messages cost their sender gossipsub score.
//! - Providers store signed [`stp_sdk::p2p::ProviderRecord`]s in Kademlia
//!   ([`records`]) and publish them again on a schedule and when a DHT peer arrives, so
//!   the first provider of a network is found too; consumers list them with
//!   [`P2pClient::find_providers`].
//! - Blobs (job inputs and outputs) live in a content-addressed [`BlobStore`] and move over
//!   the [`transfer`] protocol: chunked, verified per chunk (BLAKE3) and once whole
//!   (sha256), resumable and multi-source. Every node serves what it verified, also while
//!   its own fetch is still running, and have-maps tell fetchers who holds which chunks,
//!   so a blob spreads through its fetchers (swarming) and its origin uploads each chunk
//!   about once ([`serve`], the fetch scheduler in `fetch`).
//!
//! [`spawn`] starts the [`EventLoop`](event_loop) that owns the swarm and returns a
//! cloneable [`P2pClient`] and a bounded receiver of [`P2pEvent`]s.

mod admission;
mod behaviour;
pub mod blobstore;
mod check;
mod client;
mod config;
pub mod error;
mod event_loop;
mod fetch;
pub mod netlab;
pub mod records;
pub mod serve;
pub mod transfer;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, SwarmBuilder, gossipsub, noise, tcp, yamux};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use behaviour::{IDENTIFY_PROTOCOL, IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL};
pub use blobstore::BlobStore;
pub use check::{AcceptWellFormed, AnnouncementCheck, Verdict};
pub use client::P2pClient;
pub use config::{Limits, P2pConfig, Role, load_or_create_keypair};
pub use error::{Offence, P2pError, Result, StoreError, TransferError};
pub use event_loop::{P2pEvent, ProviderRecordStatus};
pub use fetch::{FetchOptions, FetchReport, Replication};
pub use serve::ServeState;

use behaviour::Behaviour;
use event_loop::{EventLoop, peer_of};

/// Starts a node's p2p layer: builds the swarm, binds the listen addresses (returning once
/// they are known), dials the bootstrap peers and spawns the event loop and blob server.
pub async fn spawn(
    config: P2pConfig,
) -> Result<(P2pClient, mpsc::Receiver<P2pEvent>, JoinHandle<()>)> {
    let store = Arc::new(BlobStore::open(&config.blob_dir)?);
    let swarm_err = |e: &dyn std::fmt::Display| P2pError::Swarm(e.to_string());
    let mut yamux_config = yamux::Config::default();
    yamux_config.set_max_num_streams(1024);
    let behaviour = Behaviour::new(&config.keypair, &config)?;
    let mut swarm = SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            move || yamux_config.clone(),
        )
        .map_err(|e| swarm_err(&e))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| swarm_err(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build();
    if config.role == Role::Provider {
        swarm
            .behaviour_mut()
            .kad
            .set_mode(Some(libp2p::kad::Mode::Server));
    }
    for addr in &config.listen_addrs {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| P2pError::Listen {
                addr: addr.to_string(),
                reason: e.to_string(),
            })?;
    }
    wait_for_listeners(&mut swarm, config.listen_addrs.len()).await?;
    for addr in &config.bootstrap {
        let peer = peer_of(addr).ok_or_else(|| P2pError::MissingPeerId(addr.to_string()))?;
        swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
        swarm.dial(addr.clone()).map_err(|e| P2pError::Dial {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
    }
    if !config.bootstrap.is_empty() {
        let _ = swarm.behaviour_mut().kad.bootstrap();
    }

    let mut control = swarm.behaviour().stream.new_control();
    let incoming = control
        .accept(transfer::PROTOCOL)
        .map_err(|e| P2pError::Swarm(format!("blob protocol: {e}")))?;
    let (penalty_tx, penalty_rx) = mpsc::channel(256);
    let serve_state = Arc::new(ServeState::new(&config.limits));
    let serve_ctx = Arc::new(serve::ServeContext {
        store: store.clone(),
        limits: config.limits.clone(),
        state: serve_state.clone(),
    });
    let server = tokio::spawn(serve::serve(incoming, serve_ctx, penalty_tx.clone()));
    let (command_tx, command_rx) = mpsc::channel(64);
    let (event_tx, event_rx) = mpsc::channel(256);
    let peer_id = *swarm.local_peer_id();
    let event_loop = EventLoop::new(
        swarm,
        command_rx,
        event_tx,
        penalty_rx,
        config.announcement_check.clone(),
        gossipsub::IdentTopic::new(config.jobs_topic.clone()),
        config.limits.clone(),
        server.abort_handle(),
        config.provider_republish,
    );
    let handle = tokio::spawn(event_loop.run());
    let client = P2pClient {
        peer_id,
        keypair: config.keypair,
        commands: command_tx,
        control,
        store,
        limits: config.limits,
        penalties: penalty_tx,
        serve_state,
    };
    Ok((client, event_rx, handle))
}

async fn wait_for_listeners(swarm: &mut libp2p::Swarm<Behaviour>, count: usize) -> Result<()> {
    let mut seen = 0;
    let deadline = tokio::time::sleep(Duration::from_secs(10));
    tokio::pin!(deadline);
    while seen < count {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::NewListenAddr { .. } => seen += 1,
                SwarmEvent::ListenerError { error, .. } | SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                    return Err(P2pError::Listen { addr: "listener".into(), reason: error.to_string() });
                }
                _ => {}
            },
            _ = &mut deadline => return Err(P2pError::Listen { addr: "listener".into(), reason: "no address after 10 s".into() }),
        }
    }
    Ok(())
}

/// Appends `/p2p/<peer>` to `addr`, the form [`P2pConfig::bootstrap`] and
/// [`P2pClient::dial`] expect.
pub fn with_peer_id(addr: &Multiaddr, peer: libp2p::PeerId) -> Multiaddr {
    if peer_of(addr).is_some() {
        addr.clone()
    } else {
        addr.clone().with(libp2p::multiaddr::Protocol::P2p(peer))
    }
}
