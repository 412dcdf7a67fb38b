//! `stp provider stake | unstake | withdraw-stake | status`: a provider's stake on-chain.

use alloy::primitives::{Address, U256};
use clap::{Args, Subcommand};
use serde::Serialize;
use stp_sdk::market::{Market, Reputation};

use super::common::{
    ChainArgs, block_on, format_amount, out, out_json, parse_address, parse_amount, ser_wei, unit,
};

/// Manage a provider's stake.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    #[command(subcommand)]
    pub command: ProviderCommand,
}

/// Provider subcommands.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Run the provider node (see `stp provider run --help`).
    Run(super::provider_run::ProviderRunArgs),
    /// Add stake (needed to claim jobs; collateral of each job is locked from it).
    ///
    /// Example: stp provider stake --amount 1 --private-key $KEY
    #[command(verbatim_doc_comment)]
    Stake(AmountArgs),
    /// Start unbonding stake; it stays slashable until `withdraw-stake` after the delay.
    ///
    /// Example: stp provider unstake --amount 0.5
    #[command(verbatim_doc_comment)]
    Unstake(AmountArgs),
    /// Withdraw stake whose unbonding delay has passed to the wallet.
    ///
    /// Example: stp provider withdraw-stake
    #[command(verbatim_doc_comment)]
    WithdrawStake(ChainOnlyArgs),
    /// Show stake (staked, locked, unbonding), reputation and balances.
    ///
    /// Examples:
    ///   stp provider status
    ///   stp provider status --address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json
    #[command(verbatim_doc_comment)]
    Status(StatusArgs),
}

/// A chain connection and an amount.
#[derive(Debug, Args)]
pub struct AmountArgs {
    /// Amount in ETH units (or tokens in ERC-20 mode, 18 decimals), e.g. 0.5.
    #[arg(long, value_parser = parse_amount)]
    pub amount: U256,
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Only a chain connection.
#[derive(Debug, Args)]
pub struct ChainOnlyArgs {
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `stp provider status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Provider to show (default: the wallet's address).
    #[arg(long, value_parser = parse_address)]
    pub address: Option<Address>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// What `stp provider status --json` prints (amounts in wei, as decimal strings).
#[derive(Debug, Serialize)]
pub struct ProviderStatus {
    /// The provider.
    pub address: Address,
    /// Total bonded stake (free + locked).
    #[serde(serialize_with = "ser_wei")]
    pub staked: U256,
    /// Stake locked as collateral of active jobs.
    #[serde(serialize_with = "ser_wei")]
    pub locked: U256,
    /// Stake not locked by jobs.
    #[serde(serialize_with = "ser_wei")]
    pub free: U256,
    /// Stake waiting out the unbonding delay (still slashable).
    #[serde(serialize_with = "ser_wei")]
    pub unbonding: U256,
    /// When `unbonding` can be withdrawn (unix seconds; 0 if nothing is unbonding).
    pub release_at: u64,
    /// Minimum stake to claim jobs.
    #[serde(serialize_with = "ser_wei")]
    pub min_stake: U256,
    /// Reputation counters.
    pub reputation: Reputation,
    /// Credited, withdrawable balance in the escrow.
    #[serde(serialize_with = "ser_wei")]
    pub credited_balance: U256,
    /// Wallet balance of the payment asset.
    #[serde(serialize_with = "ser_wei")]
    pub wallet_balance: U256,
    /// The chain's current time (unix seconds).
    pub chain_time: u64,
}

impl ProviderArgs {
    /// Runs the subcommand.
    pub fn run(self) -> eyre::Result<()> {
        match self.command {
            // The daemon builds its own runtime.
            ProviderCommand::Run(a) => a.run(),
            ProviderCommand::Stake(a) => block_on(stake(a)),
            ProviderCommand::Unstake(a) => block_on(unstake(a)),
            ProviderCommand::WithdrawStake(a) => block_on(withdraw_stake(a)),
            ProviderCommand::Status(a) => block_on(a.run()),
        }
    }
}

async fn stake(a: AmountArgs) -> eyre::Result<()> {
    let m = a.chain.market().await?;
    let tx = m.stake(a.amount).await?;
    out(format!(
        "staked {} {} (tx {tx})",
        format_amount(a.amount),
        unit(m.deployment())
    ));
    print_stake(&m, m.account()).await
}

async fn unstake(a: AmountArgs) -> eyre::Result<()> {
    let m = a.chain.market().await?;
    let tx = m.request_unstake(a.amount).await?;
    let s = m.stake_of(m.account()).await?;
    out(format!(
        "unbonding {} {} until unix time {} (tx {tx}); then run `stp provider withdraw-stake`",
        format_amount(s.unbonding),
        unit(m.deployment()),
        s.release_at
    ));
    Ok(())
}

async fn withdraw_stake(a: ChainOnlyArgs) -> eyre::Result<()> {
    let m = a.chain.market().await?;
    let before = m.stake_of(m.account()).await?.unbonding;
    let tx = m.withdraw_stake().await?;
    out(format!(
        "withdrew {} {} of stake to {} (tx {tx})",
        format_amount(before),
        unit(m.deployment()),
        m.account()
    ));
    Ok(())
}

impl StatusArgs {
    async fn run(self) -> eyre::Result<()> {
        let m = self.chain.market_read_only().await?;
        let address = self.chain.subject(&m, self.address, "which provider?")?;
        let status = status_of(&m, address).await?;
        if self.json {
            return out_json(&status);
        }
        print_status(&status, unit(m.deployment()));
        Ok(())
    }
}

/// Reads everything `stp provider status` shows.
pub async fn status_of(m: &Market, address: Address) -> eyre::Result<ProviderStatus> {
    let stake = m.stake_of(address).await?;
    Ok(ProviderStatus {
        address,
        staked: stake.staked,
        locked: stake.locked,
        free: stake.staked.saturating_sub(stake.locked),
        unbonding: stake.unbonding,
        release_at: stake.release_at,
        min_stake: m.min_stake().await?,
        reputation: m.reputation_of(address).await?,
        credited_balance: m.balance_of(address).await?,
        wallet_balance: m.wallet_balance(address).await?,
        chain_time: m.chain_time().await?,
    })
}

async fn print_stake(m: &Market, address: Address) -> eyre::Result<()> {
    let s = m.stake_of(address).await?;
    out(format!(
        "stake now {} {} ({} locked)",
        format_amount(s.staked),
        unit(m.deployment()),
        format_amount(s.locked)
    ));
    Ok(())
}

fn print_status(s: &ProviderStatus, unit: &str) {
    out(format!("provider        {}", s.address));
    out(format!(
        "staked          {} {unit} (minimum to claim: {})",
        format_amount(s.staked),
        format_amount(s.min_stake)
    ));
    out(format!("  locked        {}", format_amount(s.locked)));
    out(format!("  free          {}", format_amount(s.free)));
    if s.unbonding.is_zero() {
        out("unbonding       0");
    } else if s.release_at <= s.chain_time {
        out(format!(
            "unbonding       {} (withdrawable now: `stp provider withdraw-stake`)",
            format_amount(s.unbonding)
        ));
    } else {
        out(format!(
            "unbonding       {} (withdrawable in {} s, at unix time {})",
            format_amount(s.unbonding),
            s.release_at - s.chain_time,
            s.release_at
        ));
    }
    let r = &s.reputation;
    out(format!(
        "reputation      score {} (completed {}, slashed {}, missed {})",
        r.score, r.completed, r.slashed, r.missed
    ));
    out(format!(
        "credited        {} {unit} (claim with `stp payout claim`)",
        format_amount(s.credited_balance)
    ));
    out(format!(
        "wallet          {} {unit}",
        format_amount(s.wallet_balance)
    ));
}
