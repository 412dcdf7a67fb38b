//! A misbehaving raw libp2p peer: garbage requests, out-of-range requests and oversized
//! response frames. The node answers with typed errors and penalties, never crashes, and
//! keeps serving honest peers.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, noise, swarm::SwarmEvent, tcp, yamux};
use stp_node::p2p::transfer::{PROTOCOL, REQUEST_LEN, Request, STATUS_BAD_REQUEST, STATUS_OK};
use stp_node::p2p::{Offence, P2pError, P2pEvent, Role, TransferError};
use stp_sdk::p2p::{BlobManifest, HaveMap, Naming};

use crate::common::{next_event, node, test_bytes};

/// A bare swarm that speaks only raw streams, connected to `dial` if given; returns its
/// control, peer id and address.
async fn raw_peer(dial: Option<Multiaddr>) -> (libp2p_stream::Control, PeerId, Multiaddr) {
    let mut swarm: Swarm<libp2p_stream::Behaviour> = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address;
        }
    };
    let control = swarm.behaviour().new_control();
    let peer = *swarm.local_peer_id();
    if let Some(addr) = dial {
        swarm.dial(addr).unwrap();
        while !matches!(
            swarm.select_next_some().await,
            SwarmEvent::ConnectionEstablished { .. }
        ) {}
    }
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    (
        control,
        peer,
        addr.with(libp2p::multiaddr::Protocol::P2p(peer)),
    )
}

/// Opens a transfer stream to `peer`, writes `bytes`, returns what the node answered.
async fn send_raw(control: &mut libp2p_stream::Control, peer: PeerId, bytes: &[u8]) -> Vec<u8> {
    let mut stream = control
        .open_stream(peer, PROTOCOL)
        .await
        .expect("stream opens");
    let _ = stream.write_all(bytes).await;
    let _ = stream.close().await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_requests_are_refused_penalised_and_the_node_keeps_serving() {
    let mut victim = node(Role::Provider, vec![]).await;
    let data = test_bytes(3 << 20, 5);
    let hash = victim
        .client
        .add_blob(data.clone(), Naming::Blake3)
        .await
        .unwrap();
    let (mut control, bad_peer, _) = raw_peer(Some(victim.addr.clone())).await;

    // 1. Garbage, far longer than a request frame.
    let answer = send_raw(&mut control, victim.client.peer_id(), &vec![0xAB; 8 << 20]).await;
    assert_eq!(answer, vec![STATUS_BAD_REQUEST]);
    // 2. A well-formed request for far more chunks than allowed.
    let huge = Request::Chunks {
        hash,
        start: 0,
        count: u32::MAX,
    }
    .encode();
    let answer = send_raw(&mut control, victim.client.peer_id(), &huge).await;
    assert_eq!(answer, vec![STATUS_BAD_REQUEST]);
    // 3. A truncated frame, then the stream closes.
    let _ = send_raw(
        &mut control,
        victim.client.peer_id(),
        &huge[..REQUEST_LEN / 2],
    )
    .await;

    let mut offences = Vec::new();
    for _ in 0..2 {
        offences.push(
            next_event(&mut victim.events, 10, |e| match e {
                P2pEvent::PeerPenalized { peer, offence } if peer == bad_peer => Some(offence),
                _ => None,
            })
            .await,
        );
    }
    assert!(
        offences.iter().all(|o| matches!(o, Offence::Malformed(_))),
        "{offences:?}"
    );

    // The victim still serves honest peers.
    let honest = node(Role::Consumer, vec![victim.addr.clone()]).await;
    let report = honest
        .client
        .fetch_blob(hash, vec![victim.client.peer_id()])
        .await
        .expect("honest fetch");
    assert_eq!(std::fs::read(report.path).unwrap(), data);

    // After repeated offences the bad peer is blocked.
    let _ = send_raw(&mut control, victim.client.peer_id(), &[0u8; REQUEST_LEN]).await;
    next_event(&mut victim.events, 10, |e| {
        matches!(e, P2pEvent::PeerBlocked(p) if p == bad_peer).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_response_frames_are_rejected_without_allocation_and_fetch_falls_back() {
    let honest = node(Role::Provider, vec![]).await;
    let data = test_bytes(4 << 20, 6);
    let hash = honest
        .client
        .add_blob(data.clone(), Naming::Blake3)
        .await
        .unwrap();
    let manifest = honest.client.blob_manifest(&hash).unwrap().unwrap();
    let (mut control, liar, liar_addr) = raw_peer(None).await;
    serve_oversized(&mut control, manifest);

    let mut consumer = node(Role::Consumer, vec![honest.addr.clone()]).await;
    consumer
        .client
        .dial(liar_addr)
        .await
        .expect("dial raw peer");
    // The liar answers the manifest truthfully, then sends 4 GiB chunk frames: refused
    // before any allocation, the liar is banned from the fetch and penalised.
    let alone = consumer.client.fetch_blob(hash, vec![liar]).await;
    assert!(
        matches!(
            alone,
            Err(P2pError::Transfer(TransferError::AllSourcesFailed {
                missing: 4,
                ..
            }))
        ),
        "{alone:?}"
    );
    next_event(&mut consumer.events, 10, |e| match e {
        P2pEvent::PeerPenalized {
            peer,
            offence: Offence::OversizedFrame { .. },
        } if peer == liar => Some(()),
        _ => None,
    })
    .await;
    // With an honest source as well, the fetch completes.
    let report = consumer
        .client
        .fetch_blob(hash, vec![liar, honest.client.peer_id()])
        .await
        .expect("fetch");
    assert_eq!(std::fs::read(&report.path).unwrap(), data);
    // For any other blob it claims a 4 GiB manifest: refused, typed error, no crash.
    let other = consumer.client.fetch_blob([7; 32], vec![liar]).await;
    assert!(
        matches!(other, Err(P2pError::Transfer(TransferError::NotFound(_)))),
        "{other:?}"
    );
    next_event(&mut consumer.events, 10, |e| match e {
        P2pEvent::PeerPenalized {
            peer,
            offence: Offence::OversizedFrame { .. },
        } if peer == liar => Some(()),
        _ => None,
    })
    .await;
}

/// Serves the real manifest for its blob, oversized frames for everything else.
fn serve_oversized(control: &mut libp2p_stream::Control, manifest: BlobManifest) {
    let mut incoming = control.accept(PROTOCOL).unwrap();
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            let manifest = manifest.clone();
            tokio::spawn(async move {
                let mut frame = [0u8; REQUEST_LEN];
                if stream.read_exact(&mut frame).await.is_err() {
                    return;
                }
                let mut out = vec![STATUS_OK];
                match Request::decode(&frame) {
                    Ok(Request::Manifest(h)) if h == manifest.content_hash => {
                        let bytes = manifest.encode();
                        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                        out.extend_from_slice(&bytes);
                    }
                    Ok(Request::Have(h)) if h == manifest.content_hash => {
                        out = have_all(&mut stream, manifest.chunk_count()).await;
                    }
                    _ => out.extend_from_slice(&u32::MAX.to_be_bytes()),
                }
                out.extend_from_slice(&[0x55; 4096]);
                let _ = stream.write_all(&out).await;
                let _ = stream.close().await;
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_manifest_of_a_blake3_name_is_refused_before_any_chunk() {
    let lied = forged_fetch(Naming::Blake3, Naming::Blake3).await;
    assert!(
        matches!(lied, Err(P2pError::Transfer(TransferError::NotFound(_)))),
        "no source had a manifest that merges to the name: {lied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_manifests_checked_as_sha256_fail_the_content_hash_check_and_are_discarded() {
    // A sha256 name, and a BLAKE3 name passed off as a sha256 one: the naming is the
    // server's word, but a blob only verifies under a name its bytes hash to with the
    // declared function.
    for naming in [Naming::Sha256, Naming::Blake3] {
        let lied = forged_fetch(naming, Naming::Sha256).await;
        assert!(
            matches!(
                lied,
                Err(P2pError::Transfer(
                    TransferError::ContentHashMismatch { .. }
                ))
            ),
            "{naming:?}: {lied:?}"
        );
    }
}

/// A liar serves a self-consistent manifest and chunks for other bytes than the blob named
/// `naming` it claims, declaring `forged_naming`; returns the fetch from the liar, after
/// checking that nothing of it is kept and the honest fetch then completes from scratch.
async fn forged_fetch(
    naming: Naming,
    forged_naming: Naming,
) -> Result<stp_node::p2p::FetchReport, P2pError> {
    let honest = node(Role::Provider, vec![]).await;
    let data = test_bytes(6 << 20, 7);
    let hash = honest.client.add_blob(data.clone(), naming).await.unwrap();
    let fake = test_bytes(data.len(), 8);
    let mut forged = BlobManifest::from_bytes(&fake, forged_naming, 1 << 20).unwrap();
    forged.content_hash = hash;
    let (mut control, liar, liar_addr) = raw_peer(None).await;
    serve_forged(&mut control, forged, fake);

    let consumer = node(Role::Consumer, vec![honest.addr.clone()]).await;
    consumer
        .client
        .dial(liar_addr)
        .await
        .expect("dial raw peer");
    let lied = consumer.client.fetch_blob(hash, vec![liar]).await;
    assert!(!consumer.client.has_blob(&hash));
    // Nothing of the forgery is resumed: the honest fetch starts over and completes.
    let report = consumer
        .client
        .fetch_blob(hash, vec![honest.client.peer_id()])
        .await
        .expect("fetch");
    assert_eq!(report.resumed_chunks, 0);
    assert_eq!(std::fs::read(&report.path).unwrap(), data);
    lied
}

/// Serves `manifest` and the chunks of `data` it describes, as an honest server would.
fn serve_forged(control: &mut libp2p_stream::Control, manifest: BlobManifest, data: Vec<u8>) {
    let mut incoming = control.accept(PROTOCOL).unwrap();
    let data = std::sync::Arc::new(data);
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            let (manifest, data) = (manifest.clone(), data.clone());
            tokio::spawn(async move {
                let mut frame = [0u8; REQUEST_LEN];
                if stream.read_exact(&mut frame).await.is_err() {
                    return;
                }
                let mut out = vec![STATUS_OK];
                match Request::decode(&frame) {
                    Ok(Request::Manifest(_)) => {
                        let bytes = manifest.encode();
                        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                        out.extend_from_slice(&bytes);
                    }
                    Ok(Request::Have(_)) => {
                        out = have_all(&mut stream, manifest.chunk_count()).await;
                    }
                    Ok(Request::Chunks { start, count, .. }) => {
                        for index in start..start + count {
                            let (offset, len) = manifest.chunk_range(index as usize);
                            out.extend_from_slice(&(len as u32).to_be_bytes());
                            out.extend_from_slice(&data[offset as usize..offset as usize + len]);
                        }
                    }
                    Err(_) => out = vec![STATUS_BAD_REQUEST],
                }
                let _ = stream.write_all(&out).await;
                let _ = stream.close().await;
            });
        }
    });
}

/// Reads a have-map request's body and answers that every chunk is here.
async fn have_all(stream: &mut libp2p::Stream, chunks: usize) -> Vec<u8> {
    let mut len = [0u8; 2];
    let _ = stream.read_exact(&mut len).await;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    let _ = stream.read_exact(&mut body).await;
    let map = HaveMap {
        have: vec![true; chunks],
        served: vec![false; chunks],
        peers: Vec::new(),
    }
    .encode()
    .unwrap();
    let mut out = vec![STATUS_OK];
    out.extend_from_slice(&(map.len() as u32).to_be_bytes());
    out.extend_from_slice(&map);
    out
}
