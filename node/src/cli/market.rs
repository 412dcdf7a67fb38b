//! `stp market info`: a market's rules and totals.

use alloy::primitives::{Address, U256};
use clap::Args;
use serde::Serialize;
use stp_sdk::market::Windows;

use super::common::{ChainArgs, format_amount, max_replicas, out, out_json, ser_wei, unit};

/// Show a market's deploy rules (window bounds, most replicas, minimum stake) and totals
/// (stake, burned slashes, jobs posted).
///
/// Example: stp market info --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct MarketArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Chain, wallet and deployment options.
    #[command(flatten)]
    pub chain: ChainArgs,
}

/// What `stp market info --json` prints (amounts in wei, as decimal strings).
#[derive(Debug, Serialize)]
struct MarketInfo {
    chain_id: u64,
    job_escrow: Address,
    asset: Address,
    windows: Windows,
    max_replicas: u64,
    #[serde(serialize_with = "ser_wei")]
    min_stake: U256,
    #[serde(serialize_with = "ser_wei")]
    total_stake: U256,
    #[serde(serialize_with = "ser_wei")]
    burned: U256,
    jobs_posted: u64,
}

impl MarketArgs {
    /// Runs `stp market info`.
    pub async fn run(self) -> eyre::Result<()> {
        let m = self.chain.market_read_only().await?;
        let d = m.deployment();
        let info = MarketInfo {
            chain_id: d.chain_id,
            job_escrow: d.job_escrow,
            asset: d.asset,
            windows: m.windows().await?,
            max_replicas: max_replicas(&m).await?,
            min_stake: m.min_stake().await?,
            total_stake: m.total_stake().await?,
            burned: m.burned().await?,
            jobs_posted: m.next_job_id().await?.saturating_sub(1),
        };
        if self.json {
            return out_json(&info);
        }
        let unit = unit(d);
        out(format!(
            "market          {} on chain {}",
            info.job_escrow, info.chain_id
        ));
        out(format!("asset           {} ({unit})", info.asset));
        out(format!(
            "windows         commit >= {} s, reveal >= {} s, reveal deadline <= {} s after the post",
            info.windows.min_commit, info.windows.min_reveal, info.windows.max_horizon
        ));
        out(format!("max replicas    {} per job", info.max_replicas));
        out(format!(
            "min stake       {} {unit}",
            format_amount(info.min_stake)
        ));
        out(format!(
            "total stake     {} {unit}",
            format_amount(info.total_stake)
        ));
        out(format!(
            "burned          {} {unit} (slashed collateral; owed to no one)",
            format_amount(info.burned)
        ));
        out(format!("jobs posted     {}", info.jobs_posted));
        Ok(())
    }
}
