//! `stp payout balance | claim`: credited earnings and refunds, pulled to the wallet.

use alloy::primitives::{Address, U256};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::common::{
    ChainArgs, block_on, format_amount, out, out_json, parse_address, ser_wei, unit,
};

/// Earnings and refunds credited by the escrow.
#[derive(Debug, Args)]
pub struct PayoutArgs {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: PayoutCommand,
}

/// Payout subcommands.
#[derive(Debug, Subcommand)]
pub enum PayoutCommand {
    /// Show the credited (withdrawable) balance and the wallet balance.
    ///
    /// Examples:
    ///   stp payout balance
    ///   stp payout balance --address 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json
    #[command(verbatim_doc_comment)]
    Balance(BalanceArgs),
    /// Withdraw the whole credited balance to the wallet.
    ///
    /// Example: stp payout claim --private-key $KEY
    #[command(verbatim_doc_comment)]
    Claim(ClaimArgs),
}

/// Options of `stp payout balance`.
#[derive(Debug, Args)]
pub struct BalanceArgs {
    /// Account to show (default: the wallet's address).
    #[arg(long, value_parser = parse_address)]
    pub address: Option<Address>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// Options of `stp payout claim`.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// What `stp payout balance --json` prints (wei).
#[derive(Debug, Serialize)]
struct Balance {
    address: Address,
    #[serde(serialize_with = "ser_wei")]
    credited_balance: U256,
    #[serde(serialize_with = "ser_wei")]
    wallet_balance: U256,
}

/// What `stp payout claim --json` prints.
#[derive(Debug, Serialize)]
struct Claimed {
    address: Address,
    #[serde(serialize_with = "ser_wei")]
    amount: U256,
    tx: alloy::primitives::TxHash,
    #[serde(serialize_with = "ser_wei")]
    wallet_balance: U256,
}

impl PayoutArgs {
    /// Runs the subcommand.
    pub fn run(self) -> eyre::Result<()> {
        match self.command {
            PayoutCommand::Balance(a) => block_on(a.run()),
            PayoutCommand::Claim(a) => block_on(a.run()),
        }
    }
}

impl BalanceArgs {
    async fn run(self) -> eyre::Result<()> {
        let m = self.chain.market_read_only().await?;
        let address = self.chain.subject(&m, self.address, "whose balance?")?;
        let b = Balance {
            address,
            credited_balance: m.balance_of(address).await?,
            wallet_balance: m.wallet_balance(address).await?,
        };
        if self.json {
            return out_json(&b);
        }
        let unit = unit(m.deployment());
        out(format!(
            "credited {} {unit} (withdraw with `stp payout claim`)",
            format_amount(b.credited_balance)
        ));
        out(format!(
            "wallet   {} {unit}",
            format_amount(b.wallet_balance)
        ));
        Ok(())
    }
}

impl ClaimArgs {
    async fn run(self) -> eyre::Result<()> {
        let m = self.chain.market().await?;
        let amount = m.balance_of(m.account()).await?;
        let tx = m.withdraw().await?;
        let c = Claimed {
            address: m.account(),
            amount,
            tx,
            wallet_balance: m.wallet_balance(m.account()).await?,
        };
        if self.json {
            return out_json(&c);
        }
        let unit = unit(m.deployment());
        out(format!(
            "withdrew {} {unit} to {} (tx {tx}); wallet now {} {unit}",
            format_amount(c.amount),
            c.address,
            format_amount(c.wallet_balance)
        ));
        Ok(())
    }
}
