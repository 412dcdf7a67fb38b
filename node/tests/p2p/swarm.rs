//! Swarming through a shaped consumer uplink: a 64 MiB blob reaches six providers while
//! the consumer uploads it about once, and a lying provider in the swarm is caught.
//!
//! Runs in two private network namespaces (see `stp_node::p2p::netlab`); needs root, as
//! CI has. If the lab cannot be built the test fails: it never passes without running.

use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use futures::future::join_all;
use libp2p::identity::Keypair;
use stp_node::p2p::netlab::{NetLab, Side};
use stp_node::p2p::{self, Offence, P2pClient, P2pConfig, Role};
use stp_sdk::p2p::{Naming, input_hash};
use tokio::runtime::Runtime;

use crate::common::test_bytes;

const MIB: usize = 1 << 20;
const BLOB: usize = 64 * MIB;
const PROVIDERS: usize = 6;
const UPLINK_MBIT: u32 = 100;

struct Node {
    client: P2pClient,
    addr: libp2p::Multiaddr,
    _dir: tempfile::TempDir,
}

/// Starts a node on `rt` (so its sockets live in that runtime's namespace).
fn start(rt: &Runtime, lab: &NetLab, side: Side, role: Role) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = P2pConfig::new(Keypair::generate_ed25519(), dir.path().join("blobs"), role);
    config.listen_addrs = vec![lab.listen_addr(side)];
    config.heartbeat = Duration::from_millis(100);
    config.limits.io_timeout = Duration::from_secs(10);
    config.limits.max_chunks_per_request = 4;
    let client = rt.block_on(async {
        rt.spawn(async move {
            let (client, _events, _loop) = p2p::spawn(config).await.expect("node starts");
            client
        })
        .await
        .expect("spawn task")
    });
    let listen = rt.block_on(client.listen_addrs()).expect("listen addrs");
    let addr = p2p::with_peer_id(&listen[0], client.peer_id());
    Node {
        client,
        addr,
        _dir: dir,
    }
}

#[allow(
    clippy::print_stderr,
    reason = "the test reports the measured upload share"
)]
#[test]
fn blob_reaches_six_providers_while_the_shaped_consumer_uploads_it_about_once() {
    let lab = NetLab::create("swarm", UPLINK_MBIT)
        .expect("the swarm test builds its own network namespaces: run it as root");
    let consumer_rt = lab.runtime(Side::Consumer, 1).expect("consumer runtime");
    let providers_rt = lab.runtime(Side::Providers, 2).expect("providers runtime");

    let consumer = start(&consumer_rt, &lab, Side::Consumer, Role::Consumer);
    let data = test_bytes(BLOB, 11);
    let hash = consumer_rt
        .block_on(consumer.client.add_blob(data.clone(), Naming::Blake3))
        .unwrap();
    // The liar holds the blob with every chunk corrupted, under a truthful manifest.
    let liar = start(&providers_rt, &lab, Side::Providers, Role::Provider);
    providers_rt
        .block_on(liar.client.add_blob(data.clone(), Naming::Blake3))
        .unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(liar.client.store().blob_path(&hash))
        .unwrap();
    for chunk in 0..(BLOB / MIB) as u64 {
        file.write_all_at(&[0xEE; 8], chunk * MIB as u64 + 77)
            .unwrap();
    }
    let providers: Vec<Node> = (0..PROVIDERS)
        .map(|_| start(&providers_rt, &lab, Side::Providers, Role::Provider))
        .collect();

    let started = Instant::now();
    let reports = providers_rt.block_on(async {
        let fetches = providers.iter().map(|p| {
            let (client, consumer, liar) =
                (p.client.clone(), consumer.addr.clone(), liar.addr.clone());
            let sources = vec![consumer.client_peer(), liar.client_peer()];
            async move {
                client.dial(consumer).await.expect("dial consumer");
                client.dial(liar).await.expect("dial liar");
                let r = client.fetch_blob(hash, sources).await;
                (r, started.elapsed())
            }
        });
        join_all(fetches).await
    });
    let took = started.elapsed();

    let liar_id = liar.client.peer_id();
    let mut caught = 0;
    let times: Vec<String> = reports
        .iter()
        .map(|(_, t)| format!("{:.1}", t.as_secs_f64()))
        .collect();
    for (i, (r, _)) in reports.into_iter().enumerate() {
        let r = r.unwrap_or_else(|e| panic!("provider {i} fetch failed: {e}"));
        let bytes = std::fs::read(&r.path).unwrap();
        assert_eq!(input_hash(&bytes), hash, "provider {i} holds the blob");
        let from_liar = r.chunks_per_peer.iter().find(|(p, _)| *p == liar_id);
        assert!(
            from_liar.is_none(),
            "no chunk from the liar was accepted: {from_liar:?}"
        );
        if r.banned
            .iter()
            .any(|(p, o)| *p == liar_id && matches!(o, Offence::CorruptChunk { .. }))
        {
            caught += 1;
        }
    }
    // The consumer can tell when it may go offline: every provider holds the whole blob.
    let replication = consumer_rt
        .block_on(consumer.client.replication(hash))
        .expect("replication");
    assert_eq!(replication.complete(), PROVIDERS, "{replication:?}");
    let uploaded = consumer.client.served_bytes();
    let swarm: u64 = providers.iter().map(|p| p.client.served_bytes()).sum();
    eprintln!(
        "{PROVIDERS} providers got {} MiB in {:.1} s (each: {} s) through a {UPLINK_MBIT} Mbit/s uplink; consumer uploaded {:.2}x the blob, providers {:.2}x; liar caught by {caught}",
        BLOB / MIB,
        took.as_secs_f64(),
        times.join("/"),
        uploaded as f64 / BLOB as f64,
        swarm as f64 / BLOB as f64,
    );
    assert!(caught >= 1, "the lying provider was caught");
    assert!(
        uploaded as f64 <= 1.5 * BLOB as f64,
        "consumer uploaded {uploaded} bytes, more than 1.5x the {BLOB}-byte blob"
    );
    assert!(
        swarm as f64 >= (PROVIDERS as f64 - 1.5) * BLOB as f64,
        "providers served each other the rest: {swarm} bytes"
    );
    consumer_rt.shutdown_background();
    providers_rt.shutdown_background();
}

trait PeerOf {
    fn client_peer(&self) -> libp2p::PeerId;
}

impl PeerOf for libp2p::Multiaddr {
    fn client_peer(&self) -> libp2p::PeerId {
        self.iter()
            .find_map(|p| match p {
                libp2p::multiaddr::Protocol::P2p(id) => Some(id),
                _ => None,
            })
            .expect("address has a peer id")
    }
}
