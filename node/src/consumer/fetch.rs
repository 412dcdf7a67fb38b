//! Fetching a completed job's agreed output from its winning providers over libp2p.

use std::time::Duration;

use alloy::primitives::{Address, B256};
use eyre::{WrapErr, bail, eyre};
use libp2p::{Multiaddr, PeerId};
use stp_sdk::market::{JobHistory, Market, Outcome};

use super::ConsumerError;
use crate::p2p::{FetchReport, P2pClient, P2pError, with_peer_id};

/// How long fetching an output may take in all.
const FETCH_TIMEOUT: Duration = Duration::from_secs(300);

/// Fetches a completed job's result blob from its winning providers (found through their
/// DHT records, else any connected peer) by the agreed result hash, checks that it hashes to
/// it and starts with this job's identity (chain, escrow, job id), and returns the hash and
/// the output (the rest of the blob).
pub async fn fetch_output(
    m: &Market,
    p2p: &P2pClient,
    h: &JobHistory,
) -> eyre::Result<(B256, Vec<u8>)> {
    let id = h.job_id;
    let hash = match h.outcome {
        Some((Outcome::Completed, hash)) => hash,
        Some((outcome, _)) => {
            return Err(ConsumerError::NoOutput {
                job_id: id,
                outcome,
            }
            .into());
        }
        None => return Err(ConsumerError::NotSettled { job_id: id }.into()),
    };
    let output = fetch_hash(m, p2p, id, hash, &h.revealers_of(hash)).await?;
    Ok((hash, output))
}

/// Fetches the result blob `hash` of job `id` from `providers` (found through their DHT
/// records, else any connected peer), checks that it hashes to `hash` and starts with job
/// `id`'s identity, and returns the output (the rest of the blob).
pub async fn fetch_hash(
    m: &Market,
    p2p: &P2pClient,
    id: u64,
    hash: B256,
    providers: &[Address],
) -> eyre::Result<Vec<u8>> {
    let peers = winning_peers(p2p, providers).await?;
    if peers.is_empty() {
        bail!(
            "no winning provider of job {id} is reachable: pass --bootstrap <multiaddr/p2p/peer id> of a provider node"
        );
    }
    let report = tokio::time::timeout(FETCH_TIMEOUT, fetch_when_served(p2p, hash, peers))
        .await
        .map_err(|_| eyre!("fetching the output of job {id} timed out"))?
        .wrap_err_with(|| format!("fetching the output of job {id}"))?;
    let blob = tokio::fs::read(&report.path).await?;
    let actual = B256::from(stp_sdk::p2p::sha256(&blob));
    if actual != hash {
        bail!("result of job {id} hashes to {actual}, not the agreed {hash}; not written");
    }
    let output = m.result_domain(id).output_of(&blob).ok_or_else(|| {
        eyre!("result blob of job {id} does not start with this job's identity; not written")
    })?;
    Ok(output.to_vec())
}

/// How long winners may take to start serving after the settlement (they serve only once
/// they saw the job complete, at their next look at the chain).
const SERVE_GRACE: Duration = Duration::from_secs(30);

/// Fetches `hash` from `peers`, trying again for [`SERVE_GRACE`] while no winner serves it
/// yet.
async fn fetch_when_served(
    p2p: &P2pClient,
    hash: B256,
    peers: Vec<PeerId>,
) -> Result<FetchReport, P2pError> {
    let start = tokio::time::Instant::now();
    loop {
        match p2p.fetch_blob(hash.0, peers.clone()).await {
            Ok(report) => return Ok(report),
            Err(e) if start.elapsed() < SERVE_GRACE => {
                tracing::debug!(error = %e, "output not served yet; trying again");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn winning_peers(p2p: &P2pClient, winners: &[Address]) -> eyre::Result<Vec<PeerId>> {
    let records = match p2p.find_providers().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "provider lookup failed; trying connected peers");
            Vec::new()
        }
    };
    let mut peers = Vec::new();
    for rec in records {
        if !winners.contains(&Address::from(rec.eth_address)) {
            continue;
        }
        let Ok(peer) = PeerId::from_bytes(&rec.location.peer_id) else {
            continue;
        };
        let addrs: Vec<Multiaddr> = rec
            .location
            .addrs
            .iter()
            .filter_map(|a| Multiaddr::try_from(a.clone()).ok())
            .collect();
        for addr in &addrs {
            if p2p.dial(with_peer_id(addr, peer)).await.is_ok() {
                break;
            }
        }
        p2p.add_peer_addrs(peer, addrs).await?;
        peers.push(peer);
    }
    if peers.is_empty() {
        peers = p2p.connected_peers().await?;
    }
    Ok(peers)
}
