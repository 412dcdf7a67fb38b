//! Shared fixtures: nodes on ephemeral loopback ports, condition polling, test data.

use std::future::Future;
use std::time::Duration;

use libp2p::{Multiaddr, identity::Keypair};
use stp_node::p2p::{self, P2pClient, P2pConfig, P2pEvent, Role};
use tempfile::TempDir;
use tokio::sync::mpsc;

pub(crate) struct TestNode {
    pub client: P2pClient,
    pub events: mpsc::Receiver<P2pEvent>,
    pub addr: Multiaddr,
    pub _dir: TempDir,
}

pub(crate) fn test_config(role: Role, dir: &TempDir, bootstrap: Vec<Multiaddr>) -> P2pConfig {
    let mut config = P2pConfig::new(Keypair::generate_ed25519(), dir.path().join("blobs"), role);
    config.bootstrap = bootstrap;
    config.heartbeat = Duration::from_millis(100);
    config.limits.io_timeout = Duration::from_secs(5);
    config
}

pub(crate) async fn spawn_with(config: P2pConfig, dir: TempDir) -> TestNode {
    let (client, events, _handle) = p2p::spawn(config).await.expect("node starts");
    let listen = client.listen_addrs().await.expect("listen addrs");
    let addr = p2p::with_peer_id(&listen[0], client.peer_id());
    TestNode {
        client,
        events,
        addr,
        _dir: dir,
    }
}

pub(crate) async fn node(role: Role, bootstrap: Vec<Multiaddr>) -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = test_config(role, &dir, bootstrap);
    spawn_with(config, dir).await
}

/// Polls `check` every 50 ms until it returns true, panicking after `secs` seconds.
pub(crate) async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the first event matching `pick`, panicking after `secs` seconds.
pub(crate) async fn next_event<T>(
    events: &mut mpsc::Receiver<P2pEvent>,
    secs: u64,
    mut pick: impl FnMut(P2pEvent) -> Option<T>,
) -> T {
    let wait = async {
        while let Some(e) = events.recv().await {
            if let Some(t) = pick(e) {
                return t;
            }
        }
        panic!("event stream ended");
    };
    tokio::time::timeout(Duration::from_secs(secs), wait)
        .await
        .expect("expected event did not arrive in time")
}

/// Deterministic pseudo-random bytes (xorshift), `len` long.
pub(crate) fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
