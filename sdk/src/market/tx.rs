//! Sending transactions: wait for the receipt, decode reverts, and replace a transaction
//! that stays unmined with the same one paying more (gas bumping), so a provider's commit
//! or reveal is not stuck behind a fee spike.

use std::time::Duration;

use alloy::primitives::TxHash;
use alloy::providers::Provider;
use alloy::rpc::types::TransactionReceipt;

use super::{MarketError, Result, rpc};

/// How long to wait for a receipt after the last fee bump before giving up.
const RECEIPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a transaction may stay unmined before it is re-sent with higher fees.
const STUCK_AFTER: Duration = Duration::from_secs(30);
/// Fee bumps before giving up on a transaction.
const MAX_BUMPS: usize = 3;
/// Receipt polling interval.
const RECEIPT_POLL: Duration = Duration::from_millis(100);

/// Gas limit for a transaction estimated at `estimate`: a quarter more. An estimate made
/// against the pending block can fall short of what the mined block needs (measured on anvil
/// with 1 s blocks: a commit estimated at 81,818 used 82,163), and a transaction that runs
/// out of gas costs its fee and a block; unused gas is not paid for.
fn with_margin(estimate: u64) -> u64 {
    estimate.saturating_add(estimate / 4)
}

/// Sends `call` and waits for its receipt, bumping fees when it is stuck.
pub(super) async fn send<P, C>(
    name: &'static str,
    call: alloy::contract::CallBuilder<P, C>,
) -> Result<TransactionReceipt>
where
    P: Provider + Clone,
    C: alloy::contract::CallDecoder,
{
    Ok(send_bumping(name, call, STUCK_AFTER).await?.0)
}

/// Sends `call` and waits for its receipt. A transaction still unmined after
/// `stuck_after` is replaced (same nonce, same call) paying 25 % more per gas, up to
/// [`MAX_BUMPS`] times; whichever of them is mined is the result, returned with its
/// index among those sent (0: the original).
async fn send_bumping<P, C>(
    name: &'static str,
    call: alloy::contract::CallBuilder<P, C>,
    stuck_after: Duration,
) -> Result<(TransactionReceipt, usize)>
where
    P: Provider + Clone,
    C: alloy::contract::CallDecoder,
{
    let provider = call.provider.clone();
    let call = call.block(alloy::eips::BlockId::pending());
    let gas = call
        .estimate_gas()
        .await
        .map_err(|e| MarketError::from_contract(name, e))?;
    let pending = call
        .gas(with_margin(gas))
        .send()
        .await
        .map_err(|e| MarketError::from_contract(name, e))?;
    let mut sent = vec![*pending.tx_hash()];
    for bump in 0..=MAX_BUMPS {
        let window = if bump == MAX_BUMPS {
            RECEIPT_TIMEOUT
        } else {
            stuck_after
        };
        if let Some(receipt) = wait_any(&provider, &sent, window).await? {
            if !receipt.status() {
                return Err(MarketError::TxFailed {
                    call: name,
                    tx: receipt.transaction_hash,
                });
            }
            let index = sent
                .iter()
                .position(|h| *h == receipt.transaction_hash)
                .unwrap_or(0);
            return Ok((receipt, index));
        }
        if bump < MAX_BUMPS
            && let Some(hash) = replace_with_higher_fees(&provider, sent[sent.len() - 1]).await?
        {
            sent.push(hash);
        }
    }
    Err(MarketError::NotMined {
        call: name,
        tx: sent[0],
        bumps: MAX_BUMPS,
    })
}

/// Polls for the receipt of any of `hashes` for up to `window`.
async fn wait_any<P: Provider>(
    provider: &P,
    hashes: &[TxHash],
    window: Duration,
) -> Result<Option<TransactionReceipt>> {
    let deadline = tokio::time::Instant::now() + window;
    loop {
        for hash in hashes {
            if let Some(r) = provider.get_transaction_receipt(*hash).await.map_err(rpc)? {
                return Ok(Some(r));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(RECEIPT_POLL).await;
    }
}

/// Re-sends pending transaction `hash` with 25 % higher fees; `None` if it is no longer
/// pending or the node refused the replacement (the original may be mined meanwhile).
async fn replace_with_higher_fees<P: Provider>(
    provider: &P,
    hash: TxHash,
) -> Result<Option<TxHash>> {
    let Some(tx) = provider.get_transaction_by_hash(hash).await.map_err(rpc)? else {
        return Ok(None);
    };
    if tx.block_number.is_some() {
        return Ok(None);
    }
    let from = tx.inner.signer();
    let mut request = tx.into_request();
    request.from = Some(from);
    let bump = |fee: Option<u128>| fee.map(|f| f + f / 4 + 1);
    request.max_fee_per_gas = bump(request.max_fee_per_gas);
    request.max_priority_fee_per_gas = bump(request.max_priority_fee_per_gas);
    request.gas_price = bump(request.gas_price);
    match provider.send_transaction(request).await {
        Ok(p) => Ok(Some(*p.tx_hash())),
        Err(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{DeployParams, Market, deploy, find_anvil};
    use alloy::network::EthereumWallet;
    use alloy::node_bindings::Anvil;
    use alloy::providers::ProviderBuilder;
    use alloy::signers::local::PrivateKeySigner;

    #[tokio::test]
    async fn a_stuck_transaction_is_replaced_with_higher_fees_and_takes_effect_once() {
        let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let anvil = Anvil::at(find_anvil(&[root]).expect("anvil: run `npm ci`"))
            .port(0u16)
            .spawn();
        let deployer = PrivateKeySigner::from(anvil.keys()[0].clone());
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(deployer))
            .connect_http(anvil.endpoint_url())
            .erased();
        let deployment = deploy(&provider, &DeployParams::devnet()).await.unwrap();
        let signer = PrivateKeySigner::from(anvil.keys()[1].clone());
        let market = Market::connect(&anvil.endpoint(), signer, deployment)
            .await
            .unwrap();

        // Nothing gets mined until the test says so: the stake transaction is stuck.
        let p = market.provider().clone();
        let _: serde_json::Value = p
            .raw_request("evm_setAutomine".into(), (false,))
            .await
            .unwrap();
        let amount = alloy::primitives::utils::parse_ether("1").unwrap();
        let sender = market.clone();
        let sending = tokio::spawn(async move {
            let call = sender.escrow.stake(amount).value(amount);
            send_bumping("stake", call, Duration::from_millis(500)).await
        });
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let _: serde_json::Value = p.raw_request("evm_mine".into(), ()).await.unwrap();
        let (receipt, index) = sending.await.unwrap().expect("mined after bumping");

        assert!(index >= 1, "a replacement, not the original, was mined");
        assert!(receipt.status());
        let mined = p
            .get_transaction_by_hash(receipt.transaction_hash)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(alloy::consensus::Transaction::nonce(&mined), 0);
        let account = market.account();
        assert_eq!(
            market.stake_of(account).await.unwrap().staked,
            amount,
            "staked once"
        );
        assert_eq!(p.get_transaction_count(account).await.unwrap(), 1);
    }
}
