//! The event loop: owns the [`Swarm`], executes [`Command`]s from clients, validates
//! gossiped announcements and penalises misbehaving peers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, MessageAcceptance, MessageId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad};
use stp_sdk::p2p::JobAnnouncement;
use tokio::sync::{mpsc, oneshot};

use super::admission::Admission;
use super::behaviour::{Behaviour, BehaviourEvent, KAD_PROTOCOL};
use super::check::{AnnouncementCheck, Verdict};
use super::config::Limits;
use super::error::{Offence, P2pError};
use super::records;

type Reply<T> = oneshot::Sender<Result<T, P2pError>>;

/// Requests from a [`super::P2pClient`] to the event loop.
pub(crate) enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Dial(Multiaddr, Reply<()>),
    Connect(PeerId, Reply<()>),
    AddAddrs(PeerId, Vec<Multiaddr>),
    ConnectedPeers(oneshot::Sender<Vec<PeerId>>),
    Publish(Vec<u8>, Reply<()>),
    TopicPeers(oneshot::Sender<usize>),
    GossipScore(PeerId, oneshot::Sender<Option<f64>>),
    /// Holds this node's signed provider record and publishes it (see [`OwnRecord`]).
    PublishProvider(kad::Record, Reply<()>),
    ProviderStatus(oneshot::Sender<Option<ProviderRecordStatus>>),
    GetProviders(kad::RecordKey, Reply<HashSet<PeerId>>),
    GetRecord(kad::RecordKey, Reply<Option<Vec<u8>>>),
    Shutdown,
}

/// Something the node should know about.
#[derive(Debug, Clone)]
pub enum P2pEvent {
    /// A well-formed announcement that the [`AnnouncementCheck`] accepted.
    Announcement {
        /// Original publisher (verified by gossipsub's signature).
        from: PeerId,
        /// The announcement.
        ann: Box<JobAnnouncement>,
        /// Gossipsub message id.
        message_id: MessageId,
    },
    /// A peer misbehaved and was penalised.
    PeerPenalized {
        /// The peer.
        peer: PeerId,
        /// What it did.
        offence: Offence,
    },
    /// A peer reached the offence limit and was disconnected and blocked.
    PeerBlocked(PeerId),
}

/// How far this node's own provider record has spread, from
/// [`super::P2pClient::provider_record_status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderRecordStatus {
    /// Publications finished since the first record was handed in (the first, the scheduled
    /// ones and those triggered by a new DHT peer).
    pub publications: u32,
    /// Whether the last finished publication stored the record at a peer at least.
    pub replicated: bool,
}

/// This node's provider record. It is stored locally and the node lists itself under
/// [`records::providers_key`] at once, so peers that ask this node find it even when no
/// other peer exists yet; it is published to the DHT again every
/// [`P2pConfig::provider_republish`](super::P2pConfig::provider_republish) and, while no
/// peer holds a copy, whenever a new DHT peer enters the routing table.
struct OwnRecord {
    record: kad::Record,
    status: ProviderRecordStatus,
    /// The publication under way, if any.
    current: Option<Publication>,
    /// A new DHT peer arrived while `current` ran: publish again if it reached nobody.
    peer_arrived: bool,
}

/// One publication: a put of the record and a provider announcement of the providers key.
struct Publication {
    put: kad::QueryId,
    provide: kad::QueryId,
    /// The put's outcome, once known (`Err`: why no peer took a copy).
    put_result: Option<Result<(), String>>,
    provide_done: bool,
    replies: Vec<Reply<()>>,
}

type CheckOutput = (MessageId, PeerId, PeerId, JobAnnouncement, Verdict);

pub(crate) struct EventLoop {
    pub swarm: Swarm<Behaviour>,
    pub commands: mpsc::Receiver<Command>,
    pub events: mpsc::Sender<P2pEvent>,
    pub penalties: mpsc::Receiver<(PeerId, Offence)>,
    pub check: Arc<dyn AnnouncementCheck>,
    pub topic: gossipsub::IdentTopic,
    pub limits: Limits,
    pub server: tokio::task::AbortHandle,
    checks: FuturesUnordered<BoxFuture<'static, CheckOutput>>,
    offences: HashMap<PeerId, u32>,
    admission: Admission,
    dials: HashMap<PeerId, Vec<Reply<()>>>,
    queries: HashMap<kad::QueryId, Pending>,
    /// Addresses handed in with [`Command::AddAddrs`] (e.g. peers named by have-maps),
    /// used when dialing by peer id.
    known_addrs: HashMap<PeerId, Vec<Multiaddr>>,
    own_record: Option<OwnRecord>,
    republish: Duration,
}

/// Peers whose addresses [`EventLoop::known_addrs`] keeps at most.
const MAX_KNOWN_ADDR_PEERS: usize = 1024;

enum Pending {
    Providers(Reply<HashSet<PeerId>>, HashSet<PeerId>),
    Record(Reply<Option<Vec<u8>>>),
}

impl EventLoop {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<P2pEvent>,
        penalties: mpsc::Receiver<(PeerId, Offence)>,
        check: Arc<dyn AnnouncementCheck>,
        topic: gossipsub::IdentTopic,
        limits: Limits,
        server: tokio::task::AbortHandle,
        republish: Duration,
    ) -> Self {
        let admission = Admission::new(&limits);
        Self {
            swarm,
            commands,
            events,
            penalties,
            check,
            topic,
            limits,
            server,
            checks: FuturesUnordered::new(),
            offences: HashMap::new(),
            admission,
            dials: HashMap::new(),
            queries: HashMap::new(),
            known_addrs: HashMap::new(),
            own_record: None,
            republish,
        }
    }

    /// Runs until every client handle is dropped or `shutdown` is called.
    pub(crate) async fn run(mut self) {
        let period = self.republish.max(Duration::from_millis(10));
        let mut republish = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        republish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = republish.tick() => self.publish_own(Vec::new()),
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(c) => self.on_command(c),
                },
                Some((peer, offence)) = self.penalties.recv() => self.penalize(peer, offence),
                Some(out) = self.checks.next(), if !self.checks.is_empty() => self.on_checked(out),
            }
        }
        self.server.abort();
        tracing::debug!(peer = %self.swarm.local_peer_id(), "p2p event loop stopped");
    }

    fn emit(&self, event: P2pEvent) {
        if self.events.try_send(event).is_err() {
            tracing::debug!("p2p event dropped: receiver full or gone");
        }
    }

    fn penalize(&mut self, peer: PeerId, offence: Offence) {
        let count = self.offences.entry(peer).or_default();
        *count += 1;
        tracing::warn!(%peer, %offence, count = *count, "peer penalised");
        let blocked = *count >= self.limits.max_offences;
        self.emit(P2pEvent::PeerPenalized { peer, offence });
        if blocked && self.swarm.behaviour_mut().blocked.block_peer(peer) {
            tracing::warn!(%peer, "peer blocked after repeated offences");
            self.emit(P2pEvent::PeerBlocked(peer));
        }
    }

    fn on_command(&mut self, command: Command) {
        let b = self.swarm.behaviour_mut();
        match command {
            Command::ListenAddrs(reply) => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::Dial(addr, reply) => self.dial(addr, reply),
            Command::Connect(peer, reply) => self.connect(peer, reply),
            Command::AddAddrs(peer, addrs) => {
                if self.known_addrs.len() >= MAX_KNOWN_ADDR_PEERS
                    && !self.known_addrs.contains_key(&peer)
                    && let Some(old) = self.known_addrs.keys().next().copied()
                {
                    self.known_addrs.remove(&old);
                }
                let known = self.known_addrs.entry(peer).or_default();
                for a in addrs {
                    if !known.contains(&a) && known.len() < stp_sdk::p2p::MAX_ADDRS {
                        known.push(a.clone());
                    }
                    self.swarm.add_peer_address(peer, a);
                }
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Publish(data, reply) => {
                let r = b.gossipsub.publish(self.topic.clone(), data).map(|_| ());
                let _ = reply.send(r.map_err(|e| P2pError::Publish(e.to_string())));
            }
            Command::TopicPeers(reply) => {
                let hash = self.topic.hash();
                let _ = reply.send(
                    b.gossipsub
                        .all_peers()
                        .filter(|(_, t)| t.contains(&&hash))
                        .count(),
                );
            }
            Command::GossipScore(peer, reply) => {
                let _ = reply.send(b.gossipsub.peer_score(&peer));
            }
            Command::PublishProvider(record, reply) => {
                let own = self.own_record.get_or_insert(OwnRecord {
                    record: record.clone(),
                    status: ProviderRecordStatus {
                        publications: 0,
                        replicated: false,
                    },
                    current: None,
                    peer_arrived: false,
                });
                own.record = record;
                // A newer record supersedes the publication under way (its queries' results
                // are ignored); whoever waited on it waits on the new one.
                let mut replies = own.current.take().map(|p| p.replies).unwrap_or_default();
                replies.push(reply);
                own.peer_arrived = false;
                self.publish_own(replies);
            }
            Command::ProviderStatus(reply) => {
                let _ = reply.send(self.own_record.as_ref().map(|o| o.status));
            }
            Command::GetProviders(key, reply) => {
                let id = b.kad.get_providers(key);
                self.queries
                    .insert(id, Pending::Providers(reply, HashSet::new()));
            }
            Command::GetRecord(key, reply) => {
                let id = b.kad.get_record(key);
                self.queries.insert(id, Pending::Record(reply));
            }
            Command::Shutdown => {}
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: Reply<()>) {
        let Some(peer) = peer_of(&addr) else {
            let _ = reply.send(Err(P2pError::MissingPeerId(addr.to_string())));
            return;
        };
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        match self.swarm.dial(addr.clone()) {
            Ok(()) => self.dials.entry(peer).or_default().push(reply),
            Err(e) => {
                let _ = reply.send(Err(P2pError::Dial {
                    addr: addr.to_string(),
                    reason: e.to_string(),
                }));
            }
        }
    }

    /// Replies once connected to `peer` (dialing its known addresses if needed).
    fn connect(&mut self, peer: PeerId, reply: Reply<()>) {
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .addresses(self.known_addrs.get(&peer).cloned().unwrap_or_default())
            .extend_addresses_through_behaviour()
            .build();
        match self.swarm.dial(opts) {
            Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {
                self.dials.entry(peer).or_default().push(reply)
            }
            Err(e) => {
                let _ = reply.send(Err(P2pError::Dial {
                    addr: peer.to_string(),
                    reason: e.to_string(),
                }));
            }
        }
    }

    /// Starts a publication of the own provider record unless one is under way (then
    /// `replies` wait on that one).
    fn publish_own(&mut self, replies: Vec<Reply<()>>) {
        let Some(own) = self.own_record.as_mut() else {
            return;
        };
        if let Some(current) = own.current.as_mut() {
            current.replies.extend(replies);
            return;
        }
        let kad = &mut self.swarm.behaviour_mut().kad;
        // Provide first: it also lists this node locally, so a peer asking this node for
        // the providers key finds it whatever becomes of the put.
        let started = kad
            .start_providing(records::providers_key())
            .and_then(|provide| {
                Ok((
                    provide,
                    kad.put_record(own.record.clone(), kad::Quorum::One)?,
                ))
            });
        match started {
            Ok((provide, put)) => {
                own.current = Some(Publication {
                    put,
                    provide,
                    put_result: None,
                    provide_done: false,
                    replies,
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "provider record not stored locally");
                for reply in replies {
                    let _ = reply.send(Err(P2pError::Kademlia(e.to_string())));
                }
            }
        }
    }

    /// Records the outcome of one of the own record's publication queries; true if `id`
    /// was one.
    fn on_own_query(&mut self, id: kad::QueryId, result: &kad::QueryResult) -> bool {
        let Some(own) = self.own_record.as_mut() else {
            return false;
        };
        let Some(current) = own.current.as_mut() else {
            return false;
        };
        match result {
            kad::QueryResult::PutRecord(r) if id == current.put => {
                current.put_result = Some(r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            }
            kad::QueryResult::StartProviding(r) if id == current.provide => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "provider announcement timed out");
                }
                current.provide_done = true;
            }
            _ => return false,
        }
        let (Some(put), true) = (&current.put_result, current.provide_done) else {
            return true;
        };
        let put = put.clone();
        let replies = std::mem::take(&mut current.replies);
        own.current = None;
        own.status.publications = own.status.publications.saturating_add(1);
        own.status.replicated = put.is_ok();
        let arrived = std::mem::take(&mut own.peer_arrived);
        let again = put.is_err() && arrived;
        match &put {
            Ok(()) => tracing::debug!("provider record published to the DHT"),
            Err(e) => {
                tracing::debug!(error = %e, "provider record held locally; no peer took a copy yet")
            }
        }
        for reply in replies {
            let _ = reply.send(put.clone().map_err(P2pError::ProviderRecordNotReplicated));
        }
        if again {
            self.publish_own(Vec::new());
        }
        true
    }

    /// A new peer entered the DHT routing table: publish the own record to it if no peer
    /// holds a copy yet (the first provider of a network meets its first peer).
    fn on_new_dht_peer(&mut self) {
        let Some(own) = self.own_record.as_mut() else {
            return;
        };
        if own.status.replicated {
            return;
        }
        if own.current.is_some() {
            own.peer_arrived = true;
        } else {
            self.publish_own(Vec::new());
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                for reply in self.dials.remove(&peer_id).unwrap_or_default() {
                    let _ = reply.send(Ok(()));
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                for reply in self.dials.remove(&peer).unwrap_or_default() {
                    let _ = reply.send(Err(P2pError::Dial {
                        addr: peer.to_string(),
                        reason: error.to_string(),
                    }));
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&KAD_PROTOCOL) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => self.on_gossip(propagation_source, message_id, message),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result,
                step,
                ..
            })) => self.on_query(id, result, step.last),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                is_new_peer: true,
                ..
            })) => self.on_new_dht_peer(),
            _ => {}
        }
    }

    fn on_gossip(&mut self, via: PeerId, id: MessageId, message: gossipsub::Message) {
        let author = message.source.unwrap_or(via);
        let gs = &mut self.swarm.behaviour_mut().gossipsub;
        let ann = match JobAnnouncement::decode(&message.data) {
            Ok(a) => a,
            Err(e) => {
                gs.report_message_validation_result(&id, &via, MessageAcceptance::Reject);
                self.penalize(via, Offence::InvalidAnnouncement(e.to_string()));
                return;
            }
        };
        let now = tokio::time::Instant::now();
        if let Err(why) = self.admission.admit(via, self.checks.len(), now) {
            tracing::debug!(%via, %author, ?why, "announcement ignored unchecked");
            let gs = &mut self.swarm.behaviour_mut().gossipsub;
            gs.report_message_validation_result(&id, &via, MessageAcceptance::Ignore);
            return;
        }
        let check = self.check.check(ann.clone());
        self.checks
            .push(check.map(move |v| (id, via, author, ann, v)).boxed());
    }

    fn on_checked(&mut self, (id, via, author, ann, verdict): CheckOutput) {
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Reject => MessageAcceptance::Reject,
            Verdict::Ignore => MessageAcceptance::Ignore,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &via, acceptance);
        if verdict == Verdict::Accept {
            self.emit(P2pEvent::Announcement {
                from: author,
                ann: Box::new(ann),
                message_id: id,
            });
        }
    }

    fn on_query(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool) {
        use kad::{GetProvidersOk, GetRecordOk, QueryResult};
        if self.on_own_query(id, &result) {
            return;
        }
        let Some(pending) = self.queries.remove(&id) else {
            return;
        };
        let kerr = |e: &dyn std::fmt::Display| P2pError::Kademlia(e.to_string());
        match (pending, result) {
            (Pending::Providers(reply, mut found), QueryResult::GetProviders(r)) => {
                if let Ok(GetProvidersOk::FoundProviders { providers, .. }) = r {
                    found.extend(providers);
                }
                if last {
                    let _ = reply.send(Ok(found));
                } else {
                    self.queries.insert(id, Pending::Providers(reply, found));
                }
            }
            (Pending::Record(reply), QueryResult::GetRecord(r)) => match r {
                Ok(GetRecordOk::FoundRecord(rec)) => {
                    let _ = reply.send(Ok(Some(rec.record.value)));
                    if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                        q.finish();
                    }
                }
                Ok(GetRecordOk::FinishedWithNoAdditionalRecord { .. })
                | Err(kad::GetRecordError::NotFound { .. }) => {
                    let _ = reply.send(Ok(None));
                }
                Err(e) => {
                    let _ = reply.send(Err(kerr(&e)));
                }
            },
            (pending, _) if !last => {
                self.queries.insert(id, pending);
            }
            _ => {}
        }
    }
}

/// The peer id in an address's `/p2p/` suffix.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}
