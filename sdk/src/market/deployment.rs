use alloy::primitives::Address;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::MarketError;

/// Where a market's contracts live on one chain, as written by `scripts/deploy` and
/// `stp devnet up` to `deployments/<chainId>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// The `JobEscrow` contract.
    pub job_escrow: Address,
    /// Payment asset: the zero address for native ETH, else the ERC-20.
    pub asset: Address,
    /// Block of the escrow's deployment: event scans start here.
    pub deploy_block: u64,
}

impl Deployment {
    /// Reads a deployment file.
    pub fn load(path: &Path) -> Result<Self, MarketError> {
        let text = std::fs::read_to_string(path).map_err(|source| MarketError::DeploymentFile {
            path: path.to_path_buf(),
            reason: source.to_string(),
        })?;
        serde_json::from_str(&text).map_err(|e| MarketError::DeploymentFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// Writes the deployment as pretty JSON, creating parent directories.
    pub fn save(&self, path: &Path) -> Result<(), MarketError> {
        let io_err = |e: std::io::Error| MarketError::DeploymentFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let json = serde_json::to_string_pretty(self).expect("deployment serializes");
        std::fs::write(path, json + "\n").map_err(io_err)
    }

    /// The conventional file of `chain_id` under `dir`: `<dir>/<chain_id>.json`.
    pub fn default_path(dir: &Path, chain_id: u64) -> PathBuf {
        dir.join(format!("{chain_id}.json"))
    }

    /// Whether bounties and stakes are native ETH.
    pub fn is_native(&self) -> bool {
        self.asset == Address::ZERO
    }
}
