//! Flag groups shared by the chain-facing subcommands (`#[command(flatten)]`), connecting a
//! [`Market`] from them, amount parsing/formatting, and the only functions that write
//! command output to stdout.

use std::future::Future;
use std::path::PathBuf;

use alloy::primitives::{Address, U256, utils::parse_ether};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use eyre::{WrapErr, bail, eyre};
use serde::Serialize;
pub use stp_sdk::market::format_amount;
use stp_sdk::market::{AmountUnit, Deployment, Market, MarketError};

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
    fn signer_opt(&self) -> eyre::Result<Option<PrivateKeySigner>> {
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
    /// The chain's JSON-RPC endpoint.
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// The wallet that signs.
    #[command(flatten)]
    pub wallet: WalletArgs,
    /// The market's deployment file.
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
    fn has_wallet(&self) -> bool {
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

/// A polling interval in seconds: a finite number from 0.05 to 60.
pub fn parse_poll_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.05..=60.0).contains(&v) => Ok(v),
        _ => Err(format!("expected seconds from 0.05 to 60, got {s:?}")),
    }
}

/// [`parse_amount`] for amounts the chain refuses when zero (a stake, a bounty): refused
/// here, before anything is sent.
pub fn parse_positive_amount(s: &str) -> Result<U256, String> {
    let amount = parse_amount(s)?;
    if amount.is_zero() {
        return Err(format!(
            "{:?} is zero: the amount must be more than 0 (e.g. 0.5)",
            s.trim()
        ));
    }
    Ok(amount)
}

/// The unit amounts of `deployment` are counted in.
fn amount_unit(deployment: &Deployment) -> AmountUnit {
    if deployment.is_native() {
        AmountUnit::Ether
    } else {
        AmountUnit::Token
    }
}

/// The unit amounts of `deployment` are counted in, for display.
pub fn unit(deployment: &Deployment) -> &'static str {
    match amount_unit(deployment) {
        AmountUnit::Ether => "ETH",
        AmountUnit::Token => "tokens",
    }
}

/// Gas that a stake or a job post uses at the least (measured on anvil: a stake 53,006, a
/// one-replica post 67,128; the gas limit sent is a quarter above the estimate): a wallet
/// below the amount plus this much gas is refused here; one just above it may still be
/// refused by the node, which [`paying`] reports with the balance.
const GAS_FLOOR: u64 = 50_000;

/// Sends a market write that moves `amount` out of the wallet (`what`: "stake",
/// "bounty"), first checking that the wallet holds it plus gas, so a short wallet is told
/// so instead of meeting the node's refusal; a revert's amounts come out in the market's
/// unit.
pub async fn paying<T>(
    m: &Market,
    what: &str,
    amount: U256,
    send: impl Future<Output = Result<T, MarketError>>,
) -> eyre::Result<T> {
    if let Some(short) = shortfall(m, what, amount).await? {
        return Err(crate::consumer::ConsumerError::Shortfall(short).into());
    }
    match send.await {
        Ok(v) => Ok(v),
        // The gas came out above the budget (or the balance moved meanwhile).
        Err(e @ MarketError::InsufficientFunds { .. }) => {
            let eth = m
                .provider()
                .get_balance(m.account())
                .await
                .map_err(MarketError::from)?;
            Err(eyre!(e).wrap_err(format!(
                "wallet {} holds {} ETH",
                m.account(),
                format_amount(eth)
            )))
        }
        Err(e) => Err(e.in_unit(amount_unit(m.deployment())).into()),
    }
}

/// Why the wallet cannot pay `amount` of `what` plus gas, if it cannot.
pub(crate) async fn shortfall(
    m: &Market,
    what: &str,
    amount: U256,
) -> eyre::Result<Option<String>> {
    let account = m.account();
    let provider = m.provider();
    let eth = provider
        .get_balance(account)
        .await
        .map_err(MarketError::from)?;
    let fees = provider
        .estimate_eip1559_fees()
        .await
        .map_err(MarketError::from)?;
    // Shown to a person: rounded down to a millionth, so it stays a floor.
    let micro = U256::from(1_000_000_000_000u64);
    let gas =
        U256::from(fees.max_fee_per_gas).saturating_mul(U256::from(GAS_FLOOR)) / micro * micro;
    if m.deployment().is_native() {
        let needed = amount.saturating_add(gas);
        return Ok((eth < needed).then(|| {
            format!(
                "wallet {account} holds {} ETH, but the {what} of {} ETH plus gas needs at least {} ETH: fund it or ask for less",
                format_amount(eth),
                format_amount(amount),
                format_amount(needed)
            )
        }));
    }
    let tokens = m.wallet_balance(account).await?;
    if tokens < amount {
        return Ok(Some(format!(
            "wallet {account} holds {} tokens, but the {what} needs {} tokens: fund it or ask for less",
            format_amount(tokens),
            format_amount(amount)
        )));
    }
    Ok((eth < gas).then(|| {
        format!(
            "wallet {account} holds {} ETH, but gas for the {what} needs at least {} ETH: fund it with ETH",
            format_amount(eth),
            format_amount(gas)
        )
    }))
}

/// The market's `maxReplicas`: the most replicas a job may ask for.
pub async fn max_replicas(m: &Market) -> eyre::Result<u64> {
    let escrow = stp_sdk::bindings::JobEscrow::new(m.deployment().job_escrow, m.provider());
    let max = escrow
        .maxReplicas()
        .call()
        .await
        .wrap_err("reading the market's maxReplicas")?;
    u64::try_from(max).map_err(|_| eyre!("the market's maxReplicas {max} is out of range"))
}

/// Shows the amounts of a market error in the market's unit.
pub trait InMarketUnit<T> {
    /// `self` with a revert's amounts in `m`'s unit.
    fn in_unit_of(self, m: &Market) -> Result<T, MarketError>;
}

impl<T> InMarketUnit<T> for Result<T, MarketError> {
    fn in_unit_of(self, m: &Market) -> Result<T, MarketError> {
        self.map_err(|e| e.in_unit(amount_unit(m.deployment())))
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
    fn zero_stakes_and_bounties_are_refused_before_sending() {
        assert_eq!(
            parse_positive_amount("0.5").unwrap(),
            parse_amount("0.5").unwrap()
        );
        assert_eq!(
            parse_positive_amount("0.000000000000000001").unwrap(),
            U256::from(1)
        );
        for zero in ["0", "0.0", " 0.000 "] {
            let err = parse_positive_amount(zero).unwrap_err();
            assert!(err.contains("must be more than 0"), "{zero:?}: {err}");
        }
        assert!(parse_positive_amount("-1").is_err());
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
