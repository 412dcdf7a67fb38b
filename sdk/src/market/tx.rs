//! Sending transactions: one task per account owns its nonce and keeps any number of
//! transactions in flight.
//!
//! A caller estimates its call's gas (in its own task, against the pending block) and hands
//! the request to the [`TxManager`]; the manager's task gives it the next nonce, signs it
//! locally and broadcasts it, then watches every transaction it sent: it reports each
//! receipt back to its caller as soon as it is mined, replaces a transaction that stays
//! unmined with the same one paying more (gas bumping, each on its own clock), re-broadcasts
//! one the node dropped from its pool, and reports one whose nonce was taken by another
//! transaction (sent elsewhere with the same key) as [`MarketError::TxDropped`]: the caller
//! catches up from the chain. Sending never waits on another transaction's receipt.

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{EthereumWallet, NetworkTransactionBuilder, TransactionBuilder};
use alloy::primitives::{Address, Bytes, TxHash};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::{MarketError, Result, rpc};

/// How often the manager looks for receipts of what it sent.
const RECEIPT_POLL: Duration = Duration::from_millis(200);
/// How long fee estimates are reused (one `eth_feeHistory` per this, not per transaction).
const FEES_FRESH_FOR: Duration = Duration::from_secs(2);
/// How long a used nonce may lack a receipt of ours before ours counts as replaced.
const REPLACED_AFTER: Duration = Duration::from_secs(3);
/// Requests queued for the manager before `submit` waits.
const QUEUE: usize = 256;

/// When the manager replaces or gives up on a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPolicy {
    /// How long a transaction may stay unmined before it is re-sent with higher fees.
    pub stuck_after: Duration,
    /// Fee bumps before giving up on a transaction.
    pub max_bumps: usize,
    /// How long to wait for a receipt after the last fee bump before reporting failure
    /// (the transaction stays watched: its nonce is taken).
    pub receipt_timeout: Duration,
}

impl Default for TxPolicy {
    fn default() -> Self {
        Self {
            stuck_after: Duration::from_secs(30),
            max_bumps: 3,
            receipt_timeout: Duration::from_secs(60),
        }
    }
}

/// Gas limit for a transaction estimated at `estimate`: a quarter more. An estimate made
/// against the pending block can fall short of what the mined block needs (measured on anvil
/// with 1 s blocks: a commit estimated at 81,818 used 82,163), and a transaction that runs
/// out of gas costs its fee and a block; unused gas is not paid for.
fn with_margin(estimate: u64) -> u64 {
    estimate.saturating_add(estimate / 4)
}

/// A handle on an account's transaction task; clones share the task.
#[derive(Debug, Clone)]
pub(super) struct TxManager {
    queue: mpsc::Sender<Submit>,
}

struct Submit {
    name: &'static str,
    request: TransactionRequest,
    reply: oneshot::Sender<Result<TransactionReceipt>>,
}

impl TxManager {
    /// Spawns the task that sends for `wallet`'s default signer (`account`).
    pub(super) fn spawn(
        provider: DynProvider,
        wallet: EthereumWallet,
        account: Address,
        chain_id: u64,
        policy: TxPolicy,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let task = Task {
            provider,
            wallet,
            account,
            chain_id,
            policy,
            next_nonce: None,
            fees: None,
            pending: BTreeMap::new(),
        };
        tokio::spawn(task.run(rx));
        Self { queue }
    }

    /// Estimates `call`'s gas against the pending block, sends it and waits for its
    /// receipt; a mined transaction that failed is [`MarketError::TxFailed`].
    pub(super) async fn send<P, C>(
        &self,
        name: &'static str,
        call: alloy::contract::CallBuilder<P, C>,
    ) -> Result<TransactionReceipt>
    where
        P: Provider + Clone,
        C: alloy::contract::CallDecoder,
    {
        let call = call.block(alloy::eips::BlockId::pending());
        let gas = call
            .estimate_gas()
            .await
            .map_err(|e| MarketError::from_contract(name, e))?;
        let request = call.gas(with_margin(gas)).into_transaction_request();
        let receipt = self.submit(name, request).await?;
        if !receipt.status() {
            return Err(MarketError::TxFailed {
                call: name,
                tx: receipt.transaction_hash,
            });
        }
        Ok(receipt)
    }

    /// Hands a request with its gas limit set to the task and waits for the receipt.
    pub(super) async fn submit(
        &self,
        name: &'static str,
        request: TransactionRequest,
    ) -> Result<TransactionReceipt> {
        let (reply, receipt) = oneshot::channel();
        let gone = || MarketError::Unexpected("the transaction task has stopped".into());
        self.queue
            .send(Submit {
                name,
                request,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        receipt.await.map_err(|_| gone())?
    }
}

/// One nonce's transaction, as sent and re-sent.
struct InFlight {
    name: &'static str,
    request: TransactionRequest,
    /// Hashes of every version sent (the original and its fee bumps).
    sent: Vec<TxHash>,
    /// The last version's signed bytes, to re-broadcast if the node drops it.
    raw: Bytes,
    /// When the last version was sent.
    since: Instant,
    bumps: usize,
    /// Since when the nonce is used on-chain without a receipt for any version of ours.
    unreceipted_since: Option<Instant>,
    /// `None` once the caller was told (it stays watched: its nonce is spent).
    reply: Option<oneshot::Sender<Result<TransactionReceipt>>>,
}

struct Task {
    provider: DynProvider,
    wallet: EthereumWallet,
    account: Address,
    chain_id: u64,
    policy: TxPolicy,
    /// The nonce the next new transaction gets; `None`: read it from the chain first.
    next_nonce: Option<u64>,
    fees: Option<(Instant, u128, u128)>,
    pending: BTreeMap<u64, InFlight>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Submit>) {
        let mut tick = tokio::time::interval(RECEIPT_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            tokio::select! {
                msg = rx.recv(), if open => match msg {
                    Some(submit) => self.submit(submit).await,
                    None => open = false,
                },
                _ = tick.tick(), if !self.pending.is_empty() => {
                    if let Err(e) = self.watch().await {
                        tracing::debug!(error = %e, "cannot check pending transactions; retrying");
                    }
                }
            }
            if !open && self.pending.is_empty() {
                return;
            }
        }
    }

    /// Gives `submit` the next nonce (read from the chain when nothing is in flight) and
    /// broadcasts it. A nonce the node calls used (sent
    /// elsewhere with the same key) is read again from the chain and the send tried once
    /// more; any other failure is the caller's, and the nonce is read again next time.
    async fn submit(
        &mut self,
        Submit {
            name,
            request,
            reply,
        }: Submit,
    ) {
        let mut result = self.first_send(name, request.clone()).await;
        if matches!(&result, Err(e) if is_nonce_error(e)) {
            self.next_nonce = None;
            result = self.first_send(name, request).await;
        }
        match result {
            Ok(in_flight) => {
                let nonce = self.next_nonce.unwrap_or_default();
                self.next_nonce = Some(nonce + 1);
                let in_flight = InFlight {
                    reply: Some(reply),
                    ..in_flight
                };
                tracing::debug!(call = name, nonce, tx = %in_flight.sent[0], "transaction sent");
                self.pending.insert(nonce, in_flight);
            }
            Err(e) => {
                self.next_nonce = None;
                let _ = reply.send(Err(classify(name, e)));
            }
        }
    }

    async fn first_send(
        &mut self,
        name: &'static str,
        request: TransactionRequest,
    ) -> std::result::Result<InFlight, SendError> {
        let nonce = match self.next_nonce {
            Some(n) => n,
            None => {
                let n = self
                    .provider
                    .get_transaction_count(self.account)
                    .pending()
                    .await
                    .map_err(SendError::Transport)?;
                self.next_nonce = Some(n);
                n
            }
        };
        let (max_fee, tip) = self.fees().await?;
        let request = request
            .with_from(self.account)
            .with_chain_id(self.chain_id)
            .with_nonce(nonce)
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(tip);
        let (hash, raw) = self.sign_and_send(request.clone()).await?;
        Ok(InFlight {
            name,
            request,
            sent: vec![hash],
            raw,
            since: Instant::now(),
            bumps: 0,
            unreceipted_since: None,
            reply: None,
        })
    }

    async fn fees(&mut self) -> std::result::Result<(u128, u128), SendError> {
        if let Some((at, max_fee, tip)) = self.fees
            && at.elapsed() < FEES_FRESH_FOR
        {
            return Ok((max_fee, tip));
        }
        let estimate = self
            .provider
            .estimate_eip1559_fees()
            .await
            .map_err(SendError::Transport)?;
        let fees = (estimate.max_fee_per_gas, estimate.max_priority_fee_per_gas);
        self.fees = Some((Instant::now(), fees.0, fees.1));
        Ok(fees)
    }

    async fn sign_and_send(
        &self,
        request: TransactionRequest,
    ) -> std::result::Result<(TxHash, Bytes), SendError> {
        let envelope = request
            .build(&self.wallet)
            .await
            .map_err(|e| SendError::Local(e.to_string()))?;
        let raw = Bytes::from(envelope.encoded_2718());
        self.broadcast(&raw).await?;
        Ok((*envelope.tx_hash(), raw))
    }

    async fn broadcast(&self, raw: &Bytes) -> std::result::Result<(), SendError> {
        match self.provider.send_raw_transaction(raw).await {
            Ok(_) => Ok(()),
            Err(e) => Err(SendError::Transport(e)),
        }
    }

    /// One look at everything in flight: report what was mined, bump what is stuck,
    /// re-broadcast what the node dropped.
    async fn watch(&mut self) -> Result<()> {
        let mined = self
            .provider
            .get_transaction_count(self.account)
            .latest()
            .await
            .map_err(rpc)?;
        let nonces: Vec<u64> = self.pending.keys().copied().collect();
        for nonce in nonces {
            if nonce < mined {
                self.settle(nonce).await?;
            } else {
                self.nudge(nonce, nonce == mined).await?;
            }
        }
        Ok(())
    }

    /// `nonce` is used on-chain: by one of ours (its receipt goes back) or by a transaction
    /// sent elsewhere with the same key (ours was replaced: [`MarketError::TxDropped`]). A
    /// node may count a nonce as used a moment before it serves the receipt, so "replaced"
    /// is concluded only after [`REPLACED_AFTER`] without a receipt for any of ours.
    async fn settle(&mut self, nonce: u64) -> Result<()> {
        let Some(entry) = self.pending.get_mut(&nonce) else {
            return Ok(());
        };
        let mut found = None;
        for hash in entry.sent.iter().rev() {
            if let Some(r) = self
                .provider
                .get_transaction_receipt(*hash)
                .await
                .map_err(rpc)?
            {
                found = Some(r);
                break;
            }
        }
        if found.is_none() {
            let since = *entry.unreceipted_since.get_or_insert_with(Instant::now);
            if since.elapsed() < REPLACED_AFTER {
                return Ok(());
            }
        }
        let Some(entry) = self.pending.remove(&nonce) else {
            return Ok(());
        };
        let result = found.ok_or(MarketError::TxDropped {
            call: entry.name,
            nonce,
        });
        if let Some(reply) = entry.reply {
            let _ = reply.send(result);
        }
        Ok(())
    }

    /// An unmined transaction: bump its fees if it has waited too long, and for the next
    /// one to be mined (`next`), make sure the node still holds it.
    async fn nudge(&mut self, nonce: u64, next: bool) -> Result<()> {
        let policy = self.policy;
        let Some(entry) = self.pending.get_mut(&nonce) else {
            return Ok(());
        };
        let waited = entry.since.elapsed();
        if entry.bumps < policy.max_bumps && waited >= policy.stuck_after {
            let bumped = bump(&entry.request);
            entry.bumps += 1;
            entry.since = Instant::now();
            let request = bumped.clone();
            match self.sign_and_send(request).await {
                Ok((hash, raw)) => {
                    let entry = self.pending.get_mut(&nonce).expect("still pending");
                    tracing::info!(call = entry.name, nonce, tx = %hash, "transaction stuck; re-sent with higher fees");
                    entry.request = bumped;
                    entry.sent.push(hash);
                    entry.raw = raw;
                }
                // Mined meanwhile, or the node wants a larger bump: look again next time.
                Err(e) => tracing::debug!(nonce, error = %e, "fee bump not accepted"),
            }
            return Ok(());
        }
        if entry.bumps >= policy.max_bumps
            && waited >= policy.receipt_timeout
            && let Some(reply) = entry.reply.take()
        {
            let _ = reply.send(Err(MarketError::NotMined {
                call: entry.name,
                tx: entry.sent[0],
                bumps: policy.max_bumps,
            }));
        }
        if next && waited >= RECEIPT_POLL * 5 {
            let last = *entry.sent.last().expect("sent at least once");
            let raw = entry.raw.clone();
            let held = self
                .provider
                .get_transaction_by_hash(last)
                .await
                .map_err(rpc)?
                .is_some();
            if !held {
                tracing::warn!(nonce, tx = %last, "transaction dropped by the node; re-broadcasting");
                if let Err(e) = self.broadcast(&raw).await {
                    tracing::debug!(nonce, error = %e, "re-broadcast refused");
                }
            }
        }
        Ok(())
    }
}

/// The same request paying 25 % more per gas (nodes want at least 10 % to replace).
fn bump(request: &TransactionRequest) -> TransactionRequest {
    let up = |fee: Option<u128>| fee.map(|f| f + f / 4 + 1);
    let mut next = request.clone();
    next.max_fee_per_gas = up(request.max_fee_per_gas);
    next.max_priority_fee_per_gas = up(request.max_priority_fee_per_gas);
    next
}

/// Why a send failed.
#[derive(Debug)]
enum SendError {
    /// The endpoint could not be reached, or the node answered with a refusal.
    Transport(alloy::transports::TransportError),
    /// Building or signing failed here.
    Local(String),
}

impl SendError {
    /// The node's refusal message, if it answered.
    fn refusal(&self) -> Option<String> {
        match self {
            Self::Transport(e) => e.as_error_resp().map(|p| p.message.to_string()),
            Self::Local(_) => None,
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "{e}"),
            Self::Local(e) => f.write_str(e),
        }
    }
}

fn is_nonce_error(e: &SendError) -> bool {
    e.refusal()
        .is_some_and(|m| m.to_ascii_lowercase().contains("nonce"))
}

/// A failed first send as the caller sees it: insufficient funds, a refusal with the
/// node's reason, or the endpoint's trouble.
fn classify(call: &'static str, e: SendError) -> MarketError {
    let reason = e.refusal();
    match e {
        SendError::Transport(e) => match (MarketError::from_send(call, e), reason) {
            (MarketError::Rpc(_), Some(reason)) => MarketError::TxRefused { call, reason },
            (other, _) => other,
        },
        SendError::Local(reason) => MarketError::TxRefused { call, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::{DeployParams, Market, deploy, find_anvil};
    use alloy::node_bindings::{Anvil, AnvilInstance};
    use alloy::primitives::U256;
    use alloy::primitives::utils::parse_ether;
    use alloy::providers::ProviderBuilder;
    use alloy::signers::local::PrivateKeySigner;

    const FAST: TxPolicy = TxPolicy {
        stuck_after: Duration::from_millis(500),
        max_bumps: 3,
        receipt_timeout: Duration::from_secs(20),
    };

    /// A devnet with automine off (nothing is mined until the test says so) and a market
    /// handle for account 1.
    async fn paused_devnet() -> (AnvilInstance, Market) {
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
        let market = Market::connect_with(&anvil.endpoint(), signer, deployment, FAST)
            .await
            .unwrap();
        let _: serde_json::Value = market
            .provider()
            .raw_request("evm_setAutomine".into(), (false,))
            .await
            .unwrap();
        (anvil, market)
    }

    async fn mine(market: &Market) {
        let _: serde_json::Value = market
            .provider()
            .raw_request("evm_mine".into(), ())
            .await
            .unwrap();
    }

    /// Waits until the node's pool holds `n` transactions.
    async fn pool_holds(market: &Market, n: u64) {
        for _ in 0..100 {
            let status: serde_json::Value = market
                .provider()
                .raw_request("txpool_status".into(), ())
                .await
                .unwrap();
            let pending = status["pending"].as_str().map_or_else(
                || status["pending"].as_u64().unwrap_or(0),
                |s| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or(0),
            );
            if pending >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the pool never held {n} transactions");
    }

    fn stake_in_task(market: &Market, eth: &str) -> tokio::task::JoinHandle<Result<TxHash>> {
        let (m, amount) = (market.clone(), parse_ether(eth).unwrap());
        tokio::spawn(async move { m.stake(amount).await })
    }

    async fn mined(market: &Market, tx: TxHash) -> alloy::rpc::types::Transaction {
        market
            .provider()
            .get_transaction_by_hash(tx)
            .await
            .unwrap()
            .expect("the node knows the transaction")
    }

    async fn nonce_of(market: &Market, tx: TxHash) -> (u64, u64) {
        let mined = mined(market, tx).await;
        (
            alloy::consensus::Transaction::nonce(&mined),
            mined.block_number.unwrap(),
        )
    }

    #[tokio::test]
    async fn several_transactions_are_in_flight_at_once_and_mined_in_nonce_order() {
        let (_anvil, market) = paused_devnet().await;
        let sends: Vec<_> = ["1", "2", "3"]
            .iter()
            .map(|eth| stake_in_task(&market, eth))
            .collect();
        // All three reach the pool before any is mined: none waited on another's receipt.
        pool_holds(&market, 3).await;
        mine(&market).await;
        let mut mined = Vec::new();
        for send in sends {
            let tx = send.await.unwrap().expect("mined");
            mined.push(nonce_of(&market, tx).await);
        }
        let mut nonces: Vec<u64> = mined.iter().map(|(n, _)| *n).collect();
        nonces.sort_unstable();
        assert_eq!(nonces, vec![0, 1, 2], "one nonce each, no gap");
        assert!(
            mined.windows(2).all(|w| w[0].1 == w[1].1),
            "one block: {mined:?}"
        );
        let staked = market.stake_of(market.account()).await.unwrap().staked;
        assert_eq!(staked, parse_ether("6").unwrap());
    }

    #[tokio::test]
    async fn a_stuck_transaction_is_replaced_with_higher_fees_and_takes_effect_once() {
        let (_anvil, market) = paused_devnet().await;
        let first_fee = market
            .provider()
            .estimate_eip1559_fees()
            .await
            .unwrap()
            .max_fee_per_gas;
        let sending = stake_in_task(&market, "1");
        tokio::time::sleep(Duration::from_millis(1300)).await;
        mine(&market).await;
        let tx = sending.await.unwrap().expect("mined after bumping");
        let mined = mined(&market, tx).await;
        let fee = alloy::consensus::Transaction::max_fee_per_gas(&mined);
        assert!(
            fee > first_fee + first_fee / 5,
            "a bumped version was mined: {fee} vs {first_fee}"
        );
        assert_eq!(alloy::consensus::Transaction::nonce(&mined), 0);
        let account = market.account();
        assert_eq!(
            market.stake_of(account).await.unwrap().staked,
            parse_ether("1").unwrap()
        );
        assert_eq!(
            market
                .provider()
                .get_transaction_count(account)
                .await
                .unwrap(),
            1,
            "staked once"
        );
    }

    #[tokio::test]
    async fn a_transaction_the_node_dropped_is_broadcast_again() {
        let (_anvil, market) = paused_devnet().await;
        let sending = stake_in_task(&market, "1");
        pool_holds(&market, 1).await;
        let _: serde_json::Value = market
            .provider()
            .raw_request("anvil_dropAllTransactions".into(), ())
            .await
            .unwrap();
        // The manager notices the pool lost it and sends it again (before any bump).
        pool_holds(&market, 1).await;
        mine(&market).await;
        let tx = sending
            .await
            .unwrap()
            .expect("mined after the re-broadcast");
        assert_eq!(nonce_of(&market, tx).await.0, 0);
        assert_eq!(
            market.stake_of(market.account()).await.unwrap().staked,
            parse_ether("1").unwrap()
        );
    }

    #[tokio::test]
    async fn a_transaction_replaced_from_elsewhere_is_reported_dropped_and_the_next_goes_through() {
        let (anvil, market) = paused_devnet().await;
        let sending = stake_in_task(&market, "1");
        pool_holds(&market, 1).await;
        // The same key, used by another program: a plain transfer at nonce 0 paying more.
        let other = ProviderBuilder::new()
            .wallet(EthereumWallet::from(PrivateKeySigner::from(
                anvil.keys()[1].clone(),
            )))
            .connect_http(anvil.endpoint_url());
        let fees = other.estimate_eip1559_fees().await.unwrap();
        let request = TransactionRequest::default()
            .with_to(anvil.addresses()[2])
            .with_value(U256::from(1))
            .with_nonce(0)
            .with_gas_limit(21_000)
            .with_max_fee_per_gas(fees.max_fee_per_gas * 3)
            .with_max_priority_fee_per_gas(fees.max_priority_fee_per_gas * 3);
        let _replacement = other.send_transaction(request).await.unwrap();
        mine(&market).await;
        let err = sending.await.unwrap().expect_err("ours never mined");
        assert!(
            matches!(
                err,
                MarketError::TxDropped {
                    call: "stake",
                    nonce: 0
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            market.stake_of(market.account()).await.unwrap().staked,
            U256::ZERO
        );
        // The manager follows the chain's nonce: the next transaction is mined.
        let next = stake_in_task(&market, "2");
        pool_holds(&market, 1).await;
        mine(&market).await;
        let tx = next.await.unwrap().expect("mined");
        assert_eq!(nonce_of(&market, tx).await.0, 1);
    }
}
