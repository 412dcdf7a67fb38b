//! `stp provider run --config FILE`: the daemon's options in a TOML file.
//!
//! Precedence, highest first: command-line flags, environment variables, the file,
//! built-in defaults. The file uses the flags' names; each key is applied by setting the
//! flag's environment variable when the environment does not already set it, so clap
//! resolves every option the same way whatever its source. Unknown keys are an error.
//!
//! ```toml
//! rpc-url = "http://127.0.0.1:8545"
//! deployment = "deployments/31337.json"
//! keystore = "/home/me/.stp/keystore/provider.json"   # password: STP_KEYSTORE_PASSWORD
//! data-dir = "/var/lib/stp"
//! listen = ["/ip4/0.0.0.0/tcp/4001"]
//! bootstrap = ["/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW..."]
//! price-floor = "0.001"
//! max-collateral-ratio = 20     # refuse collateral above 20x the bounty share
//! max-collateral = "1"
//! max-concurrent = 2
//! max-upload-peers = 16
//! max-upload-rate = 12500000   # bytes/s (100 Mbit/s); default unlimited
//! backend = "auto"
//! confirmations = 1
//! poll-ms = 1000
//! auto-withdraw = true
//! metrics = "127.0.0.1:9464"
//! share-hours = "22:00-07:00"   # UTC
//! ```

use std::path::{Path, PathBuf};

use eyre::WrapErr;
use serde::Deserialize;

/// The keys a provider config file may set.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProviderFile {
    rpc_url: Option<String>,
    deployment: Option<PathBuf>,
    keystore: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    listen: Option<Vec<String>>,
    bootstrap: Option<Vec<String>>,
    price_floor: Option<Amount>,
    max_collateral_ratio: Option<u64>,
    max_collateral: Option<Amount>,
    max_concurrent: Option<u64>,
    part_cache_bytes: Option<u64>,
    max_upload_peers: Option<u64>,
    max_upload_rate: Option<u64>,
    backend: Option<String>,
    confirmations: Option<u64>,
    poll_ms: Option<u64>,
    auto_withdraw: Option<bool>,
    metrics: Option<String>,
    share_hours: Option<String>,
}

/// An amount written as a string ("0.001") or a number (0.001).
#[derive(Debug, Deserialize, PartialEq)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Number(f64),
}

impl ProviderFile {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).wrap_err_with(|| format!("config file {}", path.display()))
    }

    /// Each set key as (environment variable of its flag, value).
    pub fn env_pairs(&self) -> Vec<(&'static str, String)> {
        let path = |p: &PathBuf| p.display().to_string();
        let list = |v: &Vec<String>| v.join(",");
        let amount = |a: &Amount| match a {
            Amount::Text(s) => s.clone(),
            Amount::Number(n) => n.to_string(),
        };
        let pairs = [
            ("ETH_RPC_URL", self.rpc_url.clone()),
            ("STP_DEPLOYMENT", self.deployment.as_ref().map(path)),
            ("STP_KEYSTORE", self.keystore.as_ref().map(path)),
            ("STP_DATA_DIR", self.data_dir.as_ref().map(path)),
            ("STP_LISTEN", self.listen.as_ref().map(list)),
            ("STP_BOOTSTRAP", self.bootstrap.as_ref().map(list)),
            ("STP_PRICE_FLOOR", self.price_floor.as_ref().map(amount)),
            (
                "STP_MAX_COLLATERAL_RATIO",
                self.max_collateral_ratio.map(|n| n.to_string()),
            ),
            (
                "STP_MAX_COLLATERAL",
                self.max_collateral.as_ref().map(amount),
            ),
            (
                "STP_MAX_CONCURRENT",
                self.max_concurrent.map(|n| n.to_string()),
            ),
            (
                "STP_PART_CACHE_BYTES",
                self.part_cache_bytes.map(|n| n.to_string()),
            ),
            (
                "STP_MAX_UPLOAD_PEERS",
                self.max_upload_peers.map(|n| n.to_string()),
            ),
            (
                "STP_MAX_UPLOAD_RATE",
                self.max_upload_rate.map(|n| n.to_string()),
            ),
            ("STP_BACKEND", self.backend.clone()),
            (
                "STP_CONFIRMATIONS",
                self.confirmations.map(|n| n.to_string()),
            ),
            ("STP_POLL_MS", self.poll_ms.map(|n| n.to_string())),
            (
                "STP_AUTO_WITHDRAW",
                self.auto_withdraw.map(|b| b.to_string()),
            ),
            ("STP_METRICS", self.metrics.clone()),
            ("STP_SHARE_HOURS", self.share_hours.clone()),
        ];
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect()
    }
}

/// Loads `path` and exports each of its keys as its flag's environment variable, unless
/// the environment already sets that variable.
///
/// # Safety
/// Mutates the process environment: call it before any other thread exists (first thing
/// in `main`).
#[allow(
    unsafe_code,
    reason = "std::env::set_var is unsafe; main calls this before any thread exists"
)]
pub unsafe fn apply(path: &Path) -> eyre::Result<()> {
    let file = ProviderFile::load(path)?;
    for (key, value) in file.env_pairs() {
        if std::env::var_os(key).is_none() {
            // SAFETY: the caller guarantees no other thread reads or writes the environment.
            unsafe { std::env::set_var(key, value) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_key_into_the_flags_variables() {
        let file: ProviderFile = toml::from_str(
            r#"
            rpc-url = "http://10.0.0.1:8545"
            data-dir = "/var/lib/stp"
            listen = ["/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/tcp/4002"]
            price-floor = 0.001
            max-concurrent = 3
            auto-withdraw = true
            metrics = "127.0.0.1:9464"
            "#,
        )
        .unwrap();
        let pairs = file.env_pairs();
        assert!(pairs.contains(&("ETH_RPC_URL", "http://10.0.0.1:8545".into())));
        assert!(pairs.contains(&(
            "STP_LISTEN",
            "/ip4/0.0.0.0/tcp/4001,/ip4/0.0.0.0/tcp/4002".into()
        )));
        assert!(pairs.contains(&("STP_PRICE_FLOOR", "0.001".into())));
        assert!(pairs.contains(&("STP_MAX_CONCURRENT", "3".into())));
        assert!(pairs.contains(&("STP_AUTO_WITHDRAW", "true".into())));
        assert_eq!(pairs.len(), 7);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_errors() {
        let typo = toml::from_str::<ProviderFile>("prce-floor = \"1\"").unwrap_err();
        assert!(
            typo.to_string().contains("unknown field `prce-floor`"),
            "{typo}"
        );
        assert!(toml::from_str::<ProviderFile>("max-concurrent = \"two\"").is_err());
    }
}
