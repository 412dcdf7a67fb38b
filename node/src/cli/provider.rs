//! `stp provider stake | unstake | status`: a provider's stake on-chain; `stp provider
//! list`: the providers' records in the DHT.

use alloy::primitives::{Address, U256};
use clap::{Args, Subcommand};
use serde::Serialize;
use stp_sdk::market::{Market, Reputation};

use super::common::{
    ChainArgs, InMarketUnit, block_on, format_amount, out, out_json, parse_address,
    parse_positive_amount, paying, ser_wei, unit,
};

/// Manage a provider's stake.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: ProviderCommand,
}

/// Provider subcommands.
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Run the provider node (see `stp provider run --help`).
    Run(Box<super::provider_run::ProviderRunArgs>),
    /// Add stake: it weighs in the draw of every job posted from now on (a provider is
    /// drawn in proportion to its share of all stake), and each job's collateral is locked
    /// from it.
    ///
    /// Example: stp provider stake --amount 1 --private-key $KEY
    #[command(verbatim_doc_comment)]
    Stake(AmountArgs),
    /// Take free stake out to the wallet, at once. Collateral locked in jobs stays (and
    /// stays slashable) until those jobs settle; what is left must be 0 or the minimum.
    ///
    /// Example: stp provider unstake --amount 0.5
    #[command(verbatim_doc_comment)]
    Unstake(AmountArgs),
    /// Show stake (staked, locked, free), reputation and balances.
    ///
    /// Examples:
    ///   stp provider status
    ///   stp provider status --address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json
    #[command(verbatim_doc_comment)]
    Status(StatusArgs),
    /// List the providers found in the DHT: hardware, price floor and the shared input
    /// parts each holds (from their signed records).
    ///
    /// Example: stp provider list --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --json
    #[command(verbatim_doc_comment)]
    List(super::provider_list::ListArgs),
}

/// A chain connection and an amount.
#[derive(Debug, Args)]
pub struct AmountArgs {
    /// Amount in ETH units (or tokens in ERC-20 mode, 18 decimals), more than 0, e.g. 0.5.
    #[arg(long, value_parser = parse_positive_amount)]
    pub amount: U256,
    /// Chain, wallet and deployment options.
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
    /// Chain, wallet and deployment options.
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
    /// The block in which the stake last grew: it is in the draw of jobs posted later.
    pub bonded_at: u64,
    /// Minimum stake to commit to jobs.
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
            ProviderCommand::Status(a) => block_on(a.run()),
            ProviderCommand::List(a) => block_on(a.run()),
        }
    }
}

async fn stake(a: AmountArgs) -> eyre::Result<()> {
    let m = a.chain.market().await?;
    let tx = paying(&m, "stake", a.amount, m.stake(a.amount)).await?;
    out(format!(
        "staked {} {} (tx {tx})",
        format_amount(a.amount),
        unit(m.deployment())
    ));
    print_stake(&m, m.account()).await
}

async fn unstake(a: AmountArgs) -> eyre::Result<()> {
    let m = a.chain.market().await?;
    let tx = m.unstake(a.amount).await.in_unit_of(&m)?;
    out(format!(
        "unstaked {} {} to {} (tx {tx})",
        format_amount(a.amount),
        unit(m.deployment()),
        m.account()
    ));
    print_stake(&m, m.account()).await
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
async fn status_of(m: &Market, address: Address) -> eyre::Result<ProviderStatus> {
    let stake = m.stake_of(address).await?;
    Ok(ProviderStatus {
        address,
        staked: stake.staked,
        locked: stake.locked,
        free: stake.staked.saturating_sub(stake.locked),
        bonded_at: stake.bonded_at,
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
        "staked          {} {unit} (minimum to take jobs: {})",
        format_amount(s.staked),
        format_amount(s.min_stake)
    ));
    out(format!("  locked        {}", format_amount(s.locked)));
    out(format!("  free          {}", format_amount(s.free)));
    out(format!(
        "bonded at       block {} (drawn for jobs posted in later blocks)",
        s.bonded_at
    ));
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
