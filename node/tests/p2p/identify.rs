//! Identify from a client that knows only the constants' names: it speaks libp2p's
//! standard identify protocol under its own protocolVersion and learns ours.

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{SwarmBuilder, identify, noise, tcp, yamux};
use stp_node::p2p::{IDENTIFY_PROTOCOL, IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL, Role};

use crate::common::node;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_identifies_over_the_standard_protocol_with_another_protocol_version() {
    assert_eq!(IDENTIFY_PROTOCOL, identify::PROTOCOL_NAME);
    assert_eq!(IDENTIFY_PROTOCOL.as_ref(), "/ipfs/id/1.0.0");
    let provider = node(Role::Provider, vec![]).await;

    let mut client = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp transport")
        .with_behaviour(|key| {
            identify::Behaviour::new(identify::Config::new(
                "/some-other-client/0.1.0".into(),
                key.public(),
            ))
        })
        .expect("identify behaviour")
        .build();
    client.dial(provider.addr.clone()).expect("dial");

    let info = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            if let SwarmEvent::Behaviour(identify::Event::Received { peer_id, info, .. }) =
                client.select_next_some().await
            {
                assert_eq!(peer_id, provider.client.peer_id());
                return info;
            }
        }
    })
    .await
    .expect("the provider answers identify");
    assert_eq!(info.protocol_version, IDENTIFY_PROTOCOL_VERSION);
    assert!(
        info.protocols.contains(&IDENTIFY_PROTOCOL),
        "the node lists the identify protocol id it answers: {:?}",
        info.protocols
    );
    assert!(
        info.protocols.contains(&KAD_PROTOCOL),
        "{:?}",
        info.protocols
    );
}
