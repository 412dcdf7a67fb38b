//! Deploying a market (one JobEscrow, optionally a test ERC-20) from the artifact
//! bytecode, and finding the `anvil` binary that devnets and tests run.

use alloy::primitives::{Address, U256, utils::parse_ether};
use alloy::providers::{DynProvider, Provider};
use std::path::PathBuf;

use super::{Deployment, MarketError, Result, rpc};
use crate::bindings::{JobEscrow, TestToken};

/// Where `npm ci` installs anvil, relative to the repository root.
pub const NPM_ANVIL_PATH: &str = "node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// The ERC-20 side of a deployment in token mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenParams {
    /// Token name.
    pub name: String,
    /// Token symbol.
    pub symbol: String,
    /// Accounts that receive `mint_amount` each.
    pub mint_to: Vec<Address>,
    /// Amount minted to each account (18 decimals).
    pub mint_amount: U256,
}

/// Constructor parameters of a market.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployParams {
    /// Fraction of a failing replica's collateral that is slashed (burned), in basis points.
    pub slash_bps: u64,
    /// Minimum bonded stake to commit to jobs.
    pub min_stake: U256,
    /// Largest `replicas` a job may ask for.
    pub max_replicas: u64,
    /// Least seconds from a post to its commit deadline.
    pub min_commit_window: u64,
    /// Least seconds from the commit deadline to the reveal deadline.
    pub min_reveal_window: u64,
    /// Most seconds from a post to its reveal deadline.
    pub max_horizon: u64,
    /// Seconds after an optimistic job's reveal deadline in which its consumer may
    /// challenge it.
    pub challenge_window: u64,
    /// Replicas of the escalation job a challenge posts.
    pub escalation_replicas: u64,
    /// `Some` deploys a `TestToken` and uses it as the payment asset; `None` is native ETH.
    pub token: Option<TokenParams>,
}

impl DeployParams {
    /// Local devnet parameters: slash 50 %, min stake 0.1, 16 replicas, windows of at least
    /// 10 s (commit) and 10 s (reveal), a horizon of one day, a challenge window of 20 s,
    /// escalations to 3 replicas, ETH.
    pub fn devnet() -> Self {
        Self {
            slash_bps: 5_000,
            min_stake: parse_ether("0.1").expect("constant parses"),
            max_replicas: 16,
            min_commit_window: 10,
            min_reveal_window: 10,
            max_horizon: 86_400,
            challenge_window: 20,
            escalation_replicas: 3,
            token: None,
        }
    }

    /// Switches to token mode: deploys a `TestToken` minting `amount` to each of `accounts`.
    pub fn with_test_token(mut self, accounts: Vec<Address>, amount: U256) -> Self {
        self.token = Some(TokenParams {
            name: "ShareThePower Test Token".into(),
            symbol: "STPT".into(),
            mint_to: accounts,
            mint_amount: amount,
        });
        self
    }
}

/// Deploys a market with `provider`'s default signer as the deployer and returns where it
/// lives. In token mode the `TestToken` is deployed first and minted to the listed accounts.
pub async fn deploy(provider: &DynProvider, params: &DeployParams) -> Result<Deployment> {
    let chain_id = provider.get_chain_id().await.map_err(rpc)?;
    let asset = match &params.token {
        Some(t) => deploy_token(provider, t).await?,
        None => Address::ZERO,
    };
    let receipt = JobEscrow::deploy_builder(
        provider.clone(),
        crate::bindings::IJobEscrow::Params {
            asset,
            slashBps: U256::from(params.slash_bps),
            minStake: params.min_stake,
            maxReplicas: U256::from(params.max_replicas),
            minCommitWindow: U256::from(params.min_commit_window),
            minRevealWindow: U256::from(params.min_reveal_window),
            maxHorizon: U256::from(params.max_horizon),
            challengeWindow: U256::from(params.challenge_window),
            escalationReplicas: U256::from(params.escalation_replicas),
        },
    )
    .send()
    .await
    .map_err(|e| MarketError::from_contract("deploy JobEscrow", e))?
    .get_receipt()
    .await
    .map_err(|e| MarketError::from_contract("deploy JobEscrow", e.into()))?;
    let job_escrow = receipt
        .contract_address
        .filter(|_| receipt.status())
        .ok_or_else(|| MarketError::Unexpected("JobEscrow deployment failed".into()))?;
    let deploy_block = receipt
        .block_number
        .ok_or_else(|| MarketError::Unexpected("deployment receipt has no block".into()))?;
    tracing::info!(%job_escrow, %asset, "market deployed");
    Ok(Deployment {
        chain_id,
        job_escrow,
        asset,
        deploy_block,
    })
}

async fn deploy_token(provider: &DynProvider, t: &TokenParams) -> Result<Address> {
    let token = TestToken::deploy(provider.clone(), t.name.clone(), t.symbol.clone())
        .await
        .map_err(|e| MarketError::from_contract("deploy TestToken", e))?;
    for account in &t.mint_to {
        let receipt = token
            .mint(*account, t.mint_amount)
            .send()
            .await
            .map_err(|e| MarketError::from_contract("mint", e))?
            .get_receipt()
            .await
            .map_err(|e| MarketError::from_contract("mint", e.into()))?;
        if !receipt.status() {
            return Err(MarketError::TxFailed {
                call: "mint",
                tx: receipt.transaction_hash,
            });
        }
    }
    Ok(*token.address())
}

/// Finds anvil: `node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil` under any of `roots`
/// or their ancestors, else `anvil` on `PATH`. `None` means: run `npm ci` at the repository
/// root (or install Foundry).
pub fn find_anvil(roots: &[PathBuf]) -> Option<PathBuf> {
    let local = roots
        .iter()
        .flat_map(|r| r.ancestors())
        .map(|dir| dir.join(NPM_ANVIL_PATH))
        .find(|p| p.is_file());
    local.or_else(|| on_path("anvil"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
