//! `stp provider list`: the providers found in the DHT, with their signed records
//! (hardware, price floor, and the shared input parts each holds).

use std::time::Duration;

use alloy::primitives::{Address, B256};
use clap::Args;
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;
use stp_sdk::p2p::ProviderRecord;

use super::common::{out, out_json};
use super::job::P2pArgs;

/// Options of `stp provider list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Seconds to keep looking while no provider is found (the lookup needs a connected
    /// peer first), 0..=600.
    #[arg(long, default_value_t = 10.0, value_parser = parse_wait_secs)]
    pub wait_secs: f64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// libp2p options: `--bootstrap` names a node to look up from.
    #[command(flatten)]
    pub p2p: P2pArgs,
}

fn parse_wait_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s} is not a number of seconds in 0..=600")),
    }
}

/// One provider as `stp provider list --json` prints it.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ListedProvider {
    /// Payout address.
    pub address: Address,
    /// libp2p peer id.
    pub peer_id: String,
    /// Listen addresses.
    pub addrs: Vec<String>,
    /// GPU adapter name.
    pub adapter: String,
    /// Graphics backend.
    pub backend: String,
    /// Benchmark score (higher is faster).
    pub benchmark_score: u64,
    /// Smallest bounty per job it takes, in the asset's smallest unit (decimal string).
    pub price_floor: String,
    /// When the record was published (unix seconds).
    pub published_at: u64,
    /// Shared input parts it holds (SHA-256), most recently used first.
    pub parts: Vec<B256>,
}

impl From<ProviderRecord> for ListedProvider {
    fn from(r: ProviderRecord) -> Self {
        let peer_id = PeerId::from_bytes(&r.location.peer_id).map_or_else(
            |_| alloy::hex::encode(&r.location.peer_id),
            |p| p.to_string(),
        );
        Self {
            address: Address::from(r.eth_address),
            peer_id,
            addrs: r
                .location
                .addrs
                .into_iter()
                .filter_map(|a| Multiaddr::try_from(a).ok())
                .map(|a| a.to_string())
                .collect(),
            adapter: r.capabilities.adapter,
            backend: r.capabilities.backend,
            benchmark_score: r.capabilities.benchmark_score,
            price_floor: r.capabilities.price_floor.to_string(),
            published_at: r.published_at,
            parts: r.parts.into_iter().map(B256::from).collect(),
        }
    }
}

impl ListArgs {
    /// Runs `stp provider list`.
    pub async fn run(self) -> eyre::Result<()> {
        let p2p = self.p2p.spawn().await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(self.wait_secs);
        let records = loop {
            let found = p2p.find_providers().await.unwrap_or_default();
            if !found.is_empty() || tokio::time::Instant::now() >= deadline {
                break found;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        p2p.shutdown().await;
        let mut listed: Vec<ListedProvider> = records.into_iter().map(Into::into).collect();
        listed.sort_by(|a, b| (a.address, &a.peer_id).cmp(&(b.address, &b.peer_id)));
        if self.json {
            return out_json(&listed);
        }
        if listed.is_empty() {
            out("no provider found (pass --bootstrap <a node's /p2p/ address>)");
        }
        for p in &listed {
            out(format!(
                "{} {} {} ({}) score {}, {} parts held",
                p.address,
                p.peer_id,
                p.adapter,
                p.backend,
                p.benchmark_score,
                p.parts.len()
            ));
            for part in &p.parts {
                out(format!("  part {part}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_lists_its_parts_and_readable_fields() {
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let rec = ProviderRecord {
            location: crate::p2p::records::to_location(&peer, std::slice::from_ref(&addr)),
            eth_address: [5; 20],
            parts: vec![[7; 32]],
            ..Default::default()
        };
        let listed = ListedProvider::from(rec);
        assert_eq!(listed.peer_id, peer.to_string());
        assert_eq!(listed.addrs, vec![addr.to_string()]);
        assert_eq!(listed.parts, vec![B256::repeat_byte(7)]);
        assert!(parse_wait_secs("2.5").is_ok());
        assert!(parse_wait_secs("NaN").is_err());
        assert!(parse_wait_secs("601").is_err());
    }
}
