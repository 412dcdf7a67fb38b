//! Flag groups shared by the chain-facing subcommands (`#[command(flatten)]`), connecting a
//! [`Market`] from them, amount parsing/formatting, and the only functions that write
//! command output to stdout.

use std::future::Future;
use std::path::PathBuf;

use alloy::primitives::{
    Address, U256,
    utils::{format_ether, parse_ether},
};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use eyre::{WrapErr, bail, eyre};
use serde::Serialize;
use stp_sdk::market::{Deployment, Market};

/// Where the chain's JSON-RPC endpoint is.
#[derive(Debug, Clone, Args)]
pub struct RpcArgs {
    /// JSON-RPC endpoint of the chain (e.g. the one `stp devnet up` prints).
    #[arg(long, env = "ETH_RPC_URL", default_value = "http://127.0.0.1:8545")]
    pub rpc_url: String,
}

impl RpcArgs {
    /// Asks the endpoint for its chain id.
    pub async fn chain_id(&self) -> eyre::Result<u64> {
        let url = self
            .rpc_url
            .parse()
            .wrap_err_with(|| format!("--rpc-url {:?} is not a URL", self.rpc_url))?;
        ProviderBuilder::new()
            .connect_http(url)
            .get_chain_id()
            .await
            .wrap_err_with(|| {
                format!(
                    "cannot reach the chain at {} (start one with `stp devnet up`, or set --rpc-url / ETH_RPC_URL)",
                    self.rpc_url
                )
            })
    }
}

/// The account that signs transactions: a raw private key or an encrypted keystore file
/// (as made by `cast wallet new`).
#[derive(Debug, Clone, Args)]
pub struct WalletArgs {
    /// Hex private key of the account (prefer STP_PRIVATE_KEY or a keystore over the flag).
    #[arg(
        long,
        env = "STP_PRIVATE_KEY",
        hide_env_values = true,
        conflicts_with = "keystore"
    )]
    pub private_key: Option<String>,
    /// Encrypted JSON keystore of the account (e.g. from `cast wallet new DIR`).
    #[arg(long, env = "STP_KEYSTORE", value_name = "PATH")]
    pub keystore: Option<PathBuf>,
    /// Password of --keystore.
    #[arg(
        long,
        env = "STP_KEYSTORE_PASSWORD",
        hide_env_values = true,
        requires = "keystore"
    )]
    pub password: Option<String>,
}

impl WalletArgs {
    /// The configured signer, or `None` if neither a key nor a keystore was given.
    pub fn signer_opt(&self) -> eyre::Result<Option<PrivateKeySigner>> {
        if let Some(key) = &self.private_key {
            let signer: PrivateKeySigner = key.trim().parse().map_err(|_| {
                eyre!("--private-key / STP_PRIVATE_KEY is not a 32-byte hex private key")
            })?;
            return Ok(Some(signer));
        }
        let Some(path) = &self.keystore else {
            return Ok(None);
        };
        let Some(password) = &self.password else {
            bail!(
                "--keystore {} needs its password: pass --password or set STP_KEYSTORE_PASSWORD",
                path.display()
            );
        };
        PrivateKeySigner::decrypt_keystore(path, password)
            .map(Some)
            .map_err(|e| {
                eyre!(
                    "cannot open keystore {}: {e} (wrong password or not a keystore file?)",
                    path.display()
                )
            })
    }

    /// The configured signer; an error telling how to give one if missing.
    pub fn signer(&self) -> eyre::Result<PrivateKeySigner> {
        self.signer_opt()?.ok_or_else(|| {
            eyre!(
                "this command sends transactions: pass --private-key (or STP_PRIVATE_KEY), or --keystore PATH with --password (or STP_KEYSTORE_PASSWORD); `stp devnet up` prints dev keys"
            )
        })
    }
}

/// Which market deployment to talk to.
#[derive(Debug, Clone, Args)]
pub struct DeploymentArgs {
    /// Deployment file (JSON with the contract addresses); default:
    /// `deployments/<chainId>.json` for the chain behind --rpc-url.
    #[arg(long, env = "STP_DEPLOYMENT", value_name = "FILE")]
    pub deployment: Option<PathBuf>,
}

impl DeploymentArgs {
    /// Loads the deployment, asking the RPC for its chain id when no file was given.
    pub async fn load(&self, rpc: &RpcArgs) -> eyre::Result<Deployment> {
        let path = match &self.deployment {
            Some(p) => p.clone(),
            None => Deployment::default_path(&PathBuf::from("deployments"), rpc.chain_id().await?),
        };
        Ok(Deployment::load(&path)?)
    }
}

/// Everything a chain-facing command needs to reach the market.
#[derive(Debug, Clone, Args)]
pub struct ChainArgs {
    #[command(flatten)]
    pub rpc: RpcArgs,
    #[command(flatten)]
    pub wallet: WalletArgs,
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

impl ChainArgs {
    /// Connects as the configured wallet (required: the command sends transactions).
    pub async fn market(&self) -> eyre::Result<Market> {
        let signer = self.wallet.signer()?;
        self.connect(signer).await
    }

    /// Connects for reading only: the wallet if one is configured, else a throwaway key.
    pub async fn market_read_only(&self) -> eyre::Result<Market> {
        let signer = self
            .wallet
            .signer_opt()?
            .unwrap_or_else(PrivateKeySigner::random);
        self.connect(signer).await
    }

    /// Whether a wallet was configured.
    pub fn has_wallet(&self) -> bool {
        self.wallet.private_key.is_some() || self.wallet.keystore.is_some()
    }

    /// The account a read-only command is about: `explicit` (--address) if given, else the
    /// configured wallet's; otherwise an error that asks `question` and names both flags.
    pub fn subject(
        &self,
        market: &Market,
        explicit: Option<Address>,
        question: &str,
    ) -> eyre::Result<Address> {
        match explicit {
            Some(a) => Ok(a),
            None if self.has_wallet() => Ok(market.account()),
            None => bail!("{question} pass --address, or the wallet (--private-key / --keystore)"),
        }
    }

    async fn connect(&self, signer: PrivateKeySigner) -> eyre::Result<Market> {
        let deployment = self.deployment.load(&self.rpc).await?;
        Market::connect(&self.rpc.rpc_url, signer, deployment)
            .await
            .wrap_err_with(|| format!("connecting to the market at {}", self.rpc.rpc_url))
    }
}

/// Parses an amount in whole units with up to 18 decimals ("0.5" -> 5e17), ETH or the
/// market's 18-decimal token.
pub fn parse_amount(s: &str) -> Result<U256, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("an amount is required (e.g. 0.5)".into());
    }
    if s.starts_with('-') {
        return Err(format!("{s:?}: amounts cannot be negative"));
    }
    if s.split_once('.').is_some_and(|(_, frac)| frac.len() > 18) {
        return Err(format!("{s:?} has more than 18 decimals"));
    }
    parse_ether(s)
        .map_err(|e| format!("{s:?} is not an amount in ETH units (e.g. 0.5, 1, 0.001): {e}"))
}

/// Formats wei as a decimal amount without trailing zeros ("0.5", "2", "0.000001").
pub fn format_amount(wei: U256) -> String {
    let s = format_ether(wei);
    match s.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => s,
    }
}

/// The unit amounts of `deployment` are counted in, for display.
pub fn unit(deployment: &Deployment) -> &'static str {
    if deployment.is_native() {
        "ETH"
    } else {
        "tokens"
    }
}

/// Serializes a wei amount as a decimal string (JSON numbers cannot hold 256-bit values).
pub fn ser_wei<S: serde::Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// Parses a 0x-prefixed address.
pub fn parse_address(s: &str) -> Result<Address, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a 0x-prefixed 20-byte address"))
}

/// Runs an async command body on a fresh multi-threaded runtime.
pub fn block_on<F: Future<Output = eyre::Result<()>>>(fut: F) -> eyre::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .wrap_err("cannot start the async runtime")?
        .block_on(fut)
}

/// Prints one line of command output to stdout. A closed stdout (`stp ... | head -1`) is
/// not an error: the reader has seen what it wanted.
pub fn out(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Prints `value` as pretty JSON to stdout (the `--json` form of a command's output).
pub fn out_json<T: Serialize>(value: &T) -> eyre::Result<()> {
    out(serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_amount_accepts_eth_units_and_rejects_garbage() {
        assert_eq!(
            parse_amount("0.5").unwrap(),
            U256::from(500_000_000_000_000_000u64)
        );
        assert_eq!(
            parse_amount("2").unwrap(),
            U256::from(2_000_000_000_000_000_000u64)
        );
        assert_eq!(parse_amount("0.000000000000000001").unwrap(), U256::from(1));
        for bad in ["", "abc", "-1", "1.2.3", "0.0000000000000000001"] {
            assert!(parse_amount(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn format_amount_trims_trailing_zeros() {
        assert_eq!(format_amount(U256::from(500_000_000_000_000_000u64)), "0.5");
        assert_eq!(format_amount(U256::from(2_000_000_000_000_000_000u64)), "2");
        assert_eq!(format_amount(U256::from(1)), "0.000000000000000001");
        assert_eq!(format_amount(U256::ZERO), "0");
    }

    #[test]
    fn wallet_args_report_missing_or_bad_keys() {
        let none = WalletArgs {
            private_key: None,
            keystore: None,
            password: None,
        };
        assert!(none.signer_opt().unwrap().is_none());
        assert!(
            none.signer()
                .unwrap_err()
                .to_string()
                .contains("--private-key")
        );
        let bad = WalletArgs {
            private_key: Some("0x1234".into()),
            ..none.clone()
        };
        assert!(bad.signer().is_err());
        let good = WalletArgs {
            private_key: Some(
                "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80".into(),
            ),
            ..none
        };
        assert_eq!(
            good.signer().unwrap().address(),
            parse_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266").unwrap()
        );
    }

    #[test]
    fn keystore_from_disk_decrypts_with_its_password() {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = alloy::signers::k256::elliptic_curve::rand_core::OsRng;
        let (signer, name) =
            PrivateKeySigner::new_keystore(dir.path(), &mut rng, "hunter2", None).unwrap();
        let path = dir.path().join(name);
        let args = |pw: &str| WalletArgs {
            private_key: None,
            keystore: Some(path.clone()),
            password: Some(pw.into()),
        };
        assert_eq!(
            args("hunter2").signer().unwrap().address(),
            signer.address()
        );
        assert!(args("wrong").signer().is_err());
    }
}
