//! The devnet the `stp` binary tests run against: anvil on a free port with a market
//! deployed by account 0 and its deployment file written. Shared by the test binaries
//! (each uses what it needs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::providers::{Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use stp_sdk::market::{DeployParams, Deployment, deploy, find_anvil};

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// anvil with a devnet market and its deployment file in `dir`.
pub(crate) async fn devnet(dir: &Path) -> (AnvilInstance, PathBuf) {
    devnet_with(dir, |_| DeployParams::devnet()).await
}

/// anvil with a market deployed with `params(anvil)` and its deployment file in `dir`.
pub(crate) async fn devnet_with(
    dir: &Path,
    params: impl FnOnce(&AnvilInstance) -> DeployParams,
) -> (AnvilInstance, PathBuf) {
    let path = find_anvil(&[repo_root()])
        .unwrap_or_else(|| panic!("anvil not found: run `npm ci` at the repository root"));
    let anvil = Anvil::at(path).port(0u16).spawn();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(PrivateKeySigner::from(
            anvil.keys()[0].clone(),
        )))
        .connect_http(anvil.endpoint_url())
        .erased();
    let deployment: Deployment = deploy(&provider, &params(&anvil)).await.unwrap();
    let file = dir.join("deployment.json");
    deployment.save(&file).unwrap();
    (anvil, file)
}

/// Dev account `idx`'s private key as `--private-key` takes it.
pub(crate) fn key(anvil: &AnvilInstance, idx: usize) -> String {
    format!("0x{}", alloy::hex::encode(anvil.keys()[idx].to_bytes()))
}
