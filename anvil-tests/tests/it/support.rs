//! Shared fixtures: an anvil with the market deployed, per-account market handles, time travel.

use std::path::PathBuf;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{
    Address, B256, Bytes, U256, aliases::U40, aliases::U96, utils::parse_ether,
};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use stp_sdk::market::{DeployParams, Deployment, JobRef, JobSpec, Market, deploy, find_anvil};

/// The anvil binary from `npm ci` (or PATH); panics with the fix if it is missing.
pub(crate) fn anvil_path() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    find_anvil(&[root]).unwrap_or_else(|| {
        panic!("anvil not found: run `npm ci` at the repository root (installs node_modules/@foundry-rs/anvil-linux-amd64)")
    })
}

/// An anvil node with a fresh market deployed by account 0.
pub(crate) struct Net {
    pub anvil: AnvilInstance,
    pub deployment: Deployment,
}

impl Net {
    /// Starts anvil and deploys with devnet parameters; `erc20` mints test tokens to every
    /// account and pays in them.
    pub(crate) async fn start(erc20: bool) -> Net {
        let anvil = Anvil::at(anvil_path()).port(0u16).spawn();
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer(&anvil, 0)))
            .connect_http(anvil.endpoint_url())
            .erased();
        let mut params = DeployParams::devnet();
        if erc20 {
            params = params.with_test_token(anvil.addresses().to_vec(), eth("100"));
        }
        let deployment = deploy(&provider, &params).await.expect("deploy");
        Net { anvil, deployment }
    }

    /// A market handle acting as dev account `idx`.
    pub(crate) async fn market(&self, idx: usize) -> Market {
        Market::connect(
            &self.anvil.endpoint(),
            signer(&self.anvil, idx),
            self.deployment.clone(),
        )
        .await
        .expect("connect")
    }

    /// Market handles of dev accounts `1..=n`, each with 1 ETH (or token) staked, bonded
    /// before any job posted from now on (the clock moves a second past the stakes).
    pub(crate) async fn staked_providers(&self, n: usize) -> Vec<Market> {
        let mut providers = Vec::new();
        for i in 1..=n {
            let m = self.market(i).await;
            m.stake(eth("1")).await.expect("stake");
            providers.push(m);
        }
        if let Some(m) = providers.first() {
            self.advance(m, 1).await;
        }
        providers
    }

    /// Address of dev account `idx`.
    pub(crate) fn addr(&self, idx: usize) -> Address {
        self.anvil.addresses()[idx]
    }

    /// Moves the chain's clock forward by `secs` and mines a block.
    pub(crate) async fn advance(&self, m: &Market, secs: u64) {
        let p = m.provider();
        let _: serde_json::Value = p
            .raw_request("evm_increaseTime".into(), (secs,))
            .await
            .expect("evm_increaseTime");
        let _: serde_json::Value = p
            .raw_request("evm_mine".into(), ())
            .await
            .expect("evm_mine");
    }
}

/// The signer of dev account `idx`.
pub(crate) fn signer(anvil: &AnvilInstance, idx: usize) -> PrivateKeySigner {
    PrivateKeySigner::from(anvil.keys()[idx].clone())
}

/// `s` ETH (or 18-decimal tokens) in wei.
pub(crate) fn eth(s: &str) -> U256 {
    parse_ether(s).expect("amount")
}

/// A posted job: what every later call names.
#[derive(Debug, Clone)]
pub(crate) struct Posted {
    /// Its id.
    pub id: u64,
    /// Its spec.
    pub spec: JobSpec,
    /// The post's block timestamp.
    pub posted_at: u64,
    /// The post's block number.
    pub post_block: u64,
}

impl Posted {
    /// Posts `spec` as `consumer`.
    pub(crate) async fn post(consumer: &Market, spec: JobSpec) -> Posted {
        let p = consumer.post_job(spec.clone()).await.expect("post");
        Posted {
            id: p.job_id,
            spec,
            posted_at: p.posted_at,
            post_block: p.post_block,
        }
    }

    /// The job as the escrow's calls name it.
    pub(crate) fn r(&self) -> JobRef<'_> {
        JobRef {
            id: self.id,
            spec: &self.spec,
            posted_at: self.posted_at,
            post_block: self.post_block,
            kind: stp_sdk::market::JobKind::Plain,
        }
    }
}

/// A job spec from the chain's `now`: commits until `now + 200`, reveals until `now + 300`.
pub(crate) fn spec(consumer: Address, now: u64, k: u8, bounty: &str, collateral: &str) -> JobSpec {
    JobSpec {
        consumer,
        kernelId: B256::repeat_byte(0x11),
        inputHash: B256::repeat_byte(0x22),
        inputSize: 64,
        maxOutputSize: 64,
        bounty: U96::saturating_from(eth(bounty)),
        collateral: U96::saturating_from(eth(collateral)),
        replicas: k,
        quorum: k / 2 + 1,
        minReputation: 0,
        commitDeadline: U40::from(now + 200),
        revealDeadline: U40::from(now + 300),
        inputLocation: Bytes::from_static(b"/ip4/127.0.0.1/tcp/1/p2p/x"),
    }
}
