//! `stp devnet up`: a local chain (anvil) with the market deployed, for development and demos.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{U256, utils::parse_ether};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use clap::{Args, Subcommand};
use eyre::{WrapErr, eyre};
use stp_sdk::market::{DeployParams, Deployment, NPM_ANVIL_PATH, deploy, find_anvil};

use super::common::{block_on, format_amount, out};

/// Run a local development chain.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// The subcommand to run.
    #[command(subcommand)]
    pub command: DevnetCommand,
}

/// Devnet subcommands.
#[derive(Debug, Subcommand)]
pub enum DevnetCommand {
    /// Start anvil, deploy the market and keep it running until Ctrl-C.
    ///
    /// Deploys JobEscrow with devnet parameters: slash 50 %,
    /// minimum stake 0.1 ETH, at most 16 replicas, windows of at least 10 s. Writes
    /// `<out>/<chainId>.json` and prints the RPC URL and the dev accounts with their keys
    /// (anvil's well-known test mnemonic: never use them on a real network).
    ///
    /// Examples:
    ///   stp devnet up
    ///   stp devnet up --port 8546 --block-time 2 --accounts 20
    ///   stp devnet up --erc20 --out deployments/
    #[command(verbatim_doc_comment)]
    Up(DevnetUpArgs),
}

/// Options of `stp devnet up`.
#[derive(Debug, Args)]
pub struct DevnetUpArgs {
    /// Port of the JSON-RPC endpoint on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8545)]
    pub port: u16,
    /// Mine a block every SECS seconds instead of one per transaction.
    #[arg(long, value_name = "SECS")]
    pub block_time: Option<u64>,
    /// Number of funded dev accounts.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub accounts: u32,
    /// Pay bounties and stakes in a test ERC-20 (minted to every dev account) instead of ETH.
    #[arg(long)]
    pub erc20: bool,
    /// Directory the deployment file is written to.
    #[arg(long, value_name = "DIR", default_value = "deployments")]
    pub out: PathBuf,
    /// Path of the anvil binary (default: node_modules from `npm ci`, else `anvil` on PATH).
    #[arg(long, value_name = "PATH")]
    pub anvil: Option<PathBuf>,
}

/// Tokens minted to each dev account in `--erc20` mode.
const DEV_TOKEN_MINT: &str = "10000";

impl DevnetArgs {
    /// Runs the subcommand.
    pub fn run(self) -> eyre::Result<()> {
        match self.command {
            DevnetCommand::Up(args) => block_on(args.run()),
        }
    }
}

impl DevnetUpArgs {
    async fn run(self) -> eyre::Result<()> {
        let anvil_path = match &self.anvil {
            Some(p) => p.clone(),
            None => locate_anvil()?,
        };
        let mut builder = Anvil::at(&anvil_path)
            .host("127.0.0.1")
            .port(self.port)
            .keep_stdout()
            .args(["--accounts", &self.accounts.to_string()]);
        if let Some(secs) = self.block_time {
            builder = builder.block_time(secs);
        }
        let mut anvil = tokio::task::spawn_blocking(move || builder.try_spawn())
            .await?
            .map_err(|e| {
                eyre!(
                    "cannot start anvil ({}): {e}; is port {} free? (choose another with --port)",
                    anvil_path.display(),
                    self.port
                )
            })?;
        drain_stdout(&mut anvil);
        let deployment = self.deploy(&anvil).await?;
        let path = Deployment::default_path(&self.out, deployment.chain_id);
        deployment.save(&path)?;
        print_summary(&anvil, &deployment, &path, self.erc20);
        wait_for_shutdown().await?;
        out("stopping anvil");
        drop(anvil);
        Ok(())
    }

    async fn deploy(&self, anvil: &AnvilInstance) -> eyre::Result<Deployment> {
        let deployer = PrivateKeySigner::from(anvil.first_key().clone());
        let provider = ProviderBuilder::default()
            .with_recommended_fillers()
            .wallet(EthereumWallet::from(deployer))
            .connect_http(anvil.endpoint_url())
            .erased();
        let mut params = DeployParams::devnet();
        if self.erc20 {
            let amount = parse_ether(DEV_TOKEN_MINT).expect("constant parses");
            params = params.with_test_token(anvil.addresses().to_vec(), amount);
        }
        deploy(&provider, &params)
            .await
            .wrap_err("deploying the market to the devnet")
    }
}

/// Finds anvil next to the current directory or the `stp` executable, else on PATH.
fn locate_anvil() -> eyre::Result<PathBuf> {
    let mut roots = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.push(exe);
    }
    find_anvil(&roots).ok_or_else(|| {
        eyre!(
            "anvil not found: run `npm ci` in the repository root (installs {NPM_ANVIL_PATH}), put Foundry's anvil on PATH, or pass --anvil PATH"
        )
    })
}

/// Reads anvil's stdout on a thread (so its pipe never fills) and logs it at debug level.
fn drain_stdout(anvil: &mut AnvilInstance) {
    if let Some(stdout) = anvil.child_mut().stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(line) => tracing::debug!(target: "anvil", "{line}"),
                    Err(_) => break,
                }
            }
        });
    }
}

fn print_summary(anvil: &AnvilInstance, d: &Deployment, path: &std::path::Path, erc20: bool) {
    out(format!("RPC URL:      {}", anvil.endpoint()));
    out(format!("Chain id:     {}", d.chain_id));
    out(format!("Deployment:   {}", path.display()));
    out(format!("JobEscrow:    {}", d.job_escrow));
    if erc20 {
        let amount = parse_ether(DEV_TOKEN_MINT).unwrap_or(U256::ZERO);
        out(format!(
            "Asset:        {} (TestToken, {} minted to each account)",
            d.asset,
            format_amount(amount)
        ));
    } else {
        out("Asset:        native ETH");
    }
    out("");
    out("Dev accounts (anvil's public test mnemonic; never use these keys on a real network):");
    for (i, (addr, key)) in anvil.addresses().iter().zip(anvil.keys()).enumerate() {
        out(format!("  ({i}) {addr}  0x{}", hex::encode(key.to_bytes())));
    }
    out("");
    out(format!(
        "Try: export ETH_RPC_URL={} STP_PRIVATE_KEY=0x{}",
        anvil.endpoint(),
        anvil
            .keys()
            .get(1)
            .map(|k| hex::encode(k.to_bytes()))
            .unwrap_or_default()
    ));
    out("Press Ctrl-C to stop.");
}

async fn wait_for_shutdown() -> eyre::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).wrap_err("installing SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.wrap_err("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .wrap_err("waiting for Ctrl-C")?;
    Ok(())
}
