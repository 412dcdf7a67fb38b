//! Typed access to a deployed market: the consumer's and the provider's on-chain
//! operations, views, event scans and decoded custom errors.
//!
//! Every write waits for its receipt and checks its status; reverts come back as
//! [`MarketError::Reverted`] with the contract's custom error decoded. Writes on one
//! [`Market`] must not be sent concurrently (the nonce is read from the chain for each),
//! which the provider node guarantees by sending from one task.

mod announce;
mod deploy;
mod deployment;
mod error;
mod events;
mod spec;
mod tx;

pub use announce::{announced_job_id, announcement, is_for, matches_chain};
pub use deploy::{DeployParams, NPM_ANVIL_PATH, TokenParams, deploy, find_anvil};
pub use deployment::Deployment;
pub use error::{MarketError, Result};
pub use events::{EventKind, MarketEvent, Outcome, decode as decode_event, job_id_u64};
pub use spec::{JobSpec, JobSpecExt, JobTerms, ReplicaPhase, commitment, spec_hash, terms};
use tx::send;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, TxHash, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::Filter;
use alloy::signers::local::PrivateKeySigner;

use crate::bindings::{
    JobEscrow::{self, JobEscrowInstance},
    TestToken::{self, TestTokenInstance},
};

/// Largest block range asked of `eth_getLogs` at once.
const LOG_CHUNK: u64 = 5_000;

/// A provider's bonded stake, as the escrow reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct StakeInfo {
    /// Total bonded stake (free + locked).
    pub staked: U256,
    /// Part of `staked` locked as collateral of active jobs.
    pub locked: U256,
    /// Amount waiting out the unbonding delay (still slashable).
    pub unbonding: U256,
    /// When `unbonding` can be withdrawn (unix seconds; 0 if nothing is unbonding).
    pub release_at: u64,
}

/// A provider's reputation counters and score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Reputation {
    /// Jobs completed with the quorum.
    pub completed: u64,
    /// Jobs where it revealed a dissenting result.
    pub slashed: u64,
    /// Jobs where it never committed or revealed.
    pub missed: u64,
    /// The score jobs compare with their `minReputation`.
    pub score: u64,
}

/// A connection to one market deployment, acting as one account.
#[derive(Debug, Clone)]
pub struct Market {
    provider: DynProvider,
    escrow: JobEscrowInstance<DynProvider>,
    token: Option<TestTokenInstance<DynProvider>>,
    deployment: Deployment,
    account: Address,
}

impl Market {
    /// Connects to `rpc_url` as `signer` and checks that the deployment is on that chain.
    pub async fn connect(
        rpc_url: &str,
        signer: PrivateKeySigner,
        deployment: Deployment,
    ) -> Result<Self> {
        let url = rpc_url
            .parse()
            .map_err(|e| MarketError::Rpc(format!("bad RPC URL: {e}")))?;
        let account = signer.address();
        let provider = ProviderBuilder::default()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_http(url)
            .erased();
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        if chain_id != deployment.chain_id {
            return Err(MarketError::WrongChain {
                deployment: deployment.chain_id,
                rpc: chain_id,
            });
        }
        Ok(Self::from_provider(provider, deployment, account))
    }

    /// Builds a market handle over an existing provider whose wallet signs for `account`.
    pub fn from_provider(provider: DynProvider, deployment: Deployment, account: Address) -> Self {
        let escrow = JobEscrow::new(deployment.job_escrow, provider.clone());
        let token =
            (!deployment.is_native()).then(|| TestToken::new(deployment.asset, provider.clone()));
        Self {
            provider,
            escrow,
            token,
            deployment,
            account,
        }
    }

    /// The account this handle signs for.
    pub fn account(&self) -> Address {
        self.account
    }

    /// The deployment this handle talks to.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The underlying alloy provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64> {
        self.provider.get_block_number().await.map_err(rpc)
    }

    /// Timestamp of the latest block (the chain's notion of "now" for deadlines).
    pub async fn chain_time(&self) -> Result<u64> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?
            .ok_or_else(|| MarketError::Unexpected("no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    /// "Now" for deadline decisions: the later of the latest block's timestamp and this
    /// machine's clock. A chain that mines on demand (a devnet) keeps an old timestamp
    /// until the next transaction, whose block is stamped with the current time; a chain
    /// whose clock was moved ahead (time travel in tests) is ahead of the wall clock. Both
    /// the daemon and the CLI decide with this one notion of time.
    pub async fn now(&self) -> Result<u64> {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(self.chain_time().await?.max(wall))
    }

    // ----- consumer -----

    /// Posts `spec` (its `consumer` is set to this account), escrowing the bounty (approving
    /// the ERC-20 first in token mode). Returns the new job id.
    pub async fn post_job(&self, mut spec: JobSpec) -> Result<(u64, TxHash)> {
        spec.consumer = self.account;
        let bounty = spec.bounty_amount();
        self.approve_if_token(bounty).await?;
        let value = if self.deployment.is_native() {
            bounty
        } else {
            U256::ZERO
        };
        let receipt = send("postJob", self.escrow.postJob(spec).value(value)).await?;
        let job_id = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|l| l.log_decode::<JobEscrow::JobPosted>().ok())
            .find_map(|l| job_id_u64(l.inner.data.jobId))
            .ok_or_else(|| MarketError::Unexpected("postJob receipt has no JobPosted".into()))?;
        Ok((job_id, receipt.transaction_hash))
    }

    /// Cancels an unclaimed job of this consumer; the bounty is credited back.
    pub async fn cancel(&self, job_id: u64, spec: &JobSpec) -> Result<TxHash> {
        let call = self.escrow.cancel(U256::from(job_id), terms(spec));
        Ok(send("cancel", call).await?.transaction_hash)
    }

    // ----- provider -----

    /// Adds `amount` to this account's stake.
    pub async fn stake(&self, amount: U256) -> Result<TxHash> {
        self.approve_if_token(amount).await?;
        let value = if self.deployment.is_native() {
            amount
        } else {
            U256::ZERO
        };
        Ok(send("stake", self.escrow.stake(amount).value(value))
            .await?
            .transaction_hash)
    }

    /// Starts unbonding `amount` of free stake.
    pub async fn request_unstake(&self, amount: U256) -> Result<TxHash> {
        Ok(send("requestUnstake", self.escrow.requestUnstake(amount))
            .await?
            .transaction_hash)
    }

    /// Withdraws stake whose unbonding delay has passed.
    pub async fn withdraw_stake(&self) -> Result<TxHash> {
        Ok(send("withdrawStake", self.escrow.withdrawStake())
            .await?
            .transaction_hash)
    }

    /// One-time provider set-up (optional): pre-pays this account's balance slot and its
    /// replica lanes `0..lanes` (at most 64), so claims and settlements write slots that
    /// are already non-zero (~17k gas less each, the first time each lane is used).
    pub async fn open_account(&self, lanes: u64) -> Result<TxHash> {
        Ok(
            send("openAccount", self.escrow.openAccount(U256::from(lanes)))
                .await?
                .transaction_hash,
        )
    }

    /// Claims a replica slot of `job_id` (in this account's lane `job_id % 64`).
    pub async fn claim(&self, job_id: u64, spec: &JobSpec) -> Result<TxHash> {
        let call = self.escrow.claim(U256::from(job_id), terms(spec));
        Ok(send("claim", call).await?.transaction_hash)
    }

    /// Commits to `result_hash` with `salt`.
    pub async fn commit(
        &self,
        job_id: u64,
        spec: &JobSpec,
        result_hash: B256,
        salt: B256,
    ) -> Result<TxHash> {
        let c = commitment(job_id, self.account, result_hash, salt);
        let call = self.escrow.commit(U256::from(job_id), terms(spec), c);
        Ok(send("commit", call).await?.transaction_hash)
    }

    /// Reveals the committed `result_hash` and `salt`. The reveal that completes the job
    /// (every replica revealed) settles it in the same transaction, so every reveal of a
    /// multi-replica job passes what that settlement needs: the other claimers and, for a
    /// result that may lose, the hash the others revealed most (both from one scan of the
    /// job's logs; a single-replica job needs neither and scans nothing). The returned
    /// [`Revealed::settled`] says whether this reveal settled the job.
    pub async fn reveal(
        &self,
        job_id: u64,
        spec: &JobSpec,
        result_hash: B256,
        salt: B256,
    ) -> Result<Revealed> {
        let (others, quorum_hash) = if spec.replicas <= 1 {
            (Vec::new(), B256::ZERO)
        } else {
            let history = self.job_history(job_id).await?;
            (
                history.others(self.account),
                history.likely_quorum_hash(self.account, result_hash),
            )
        };
        let call = self.escrow.reveal(
            U256::from(job_id),
            terms(spec),
            result_hash,
            salt,
            others,
            quorum_hash,
        );
        let receipt = send("reveal", call).await?;
        let settled = receipt
            .inner
            .logs()
            .iter()
            .filter_map(decode_event)
            .find_map(|e| match e.kind {
                EventKind::Finalized {
                    job_id: id,
                    outcome,
                    result_hash,
                    ..
                } if id == job_id => Some((outcome, result_hash)),
                _ => None,
            });
        Ok(Revealed {
            tx: receipt.transaction_hash,
            settled,
        })
    }

    /// Finalizes `job_id` from its on-chain history (claimers and reveals): the deadline
    /// paths (a replica missing, unfilled, unclaimed). A job whose replicas all revealed was
    /// settled by the last reveal: this reverts with `EscrowJobNotFound` then.
    pub async fn finalize(&self, job_id: u64) -> Result<TxHash> {
        let history = self.job_history(job_id).await?;
        let spec = history
            .spec
            .clone()
            .ok_or_else(|| MarketError::Unexpected(format!("job {job_id} was never posted")))?;
        let mut providers = history.claimers.clone();
        providers.sort();
        let winning = history.majority_result(spec.quorum).unwrap_or_default();
        let call = self
            .escrow
            .finalize(U256::from(job_id), terms(&spec), providers, winning);
        Ok(send("finalize", call).await?.transaction_hash)
    }

    /// Withdraws this account's whole credited balance to its wallet.
    pub async fn withdraw(&self) -> Result<TxHash> {
        Ok(send("withdraw", self.escrow.withdraw_1())
            .await?
            .transaction_hash)
    }

    // ----- views -----

    /// The credited, withdrawable balance of `account`.
    pub async fn balance_of(&self, account: Address) -> Result<U256> {
        self.escrow
            .balanceOf(account)
            .call()
            .await
            .map_err(|e| view("balanceOf", e))
    }

    /// The stake of `provider`.
    pub async fn stake_of(&self, provider: Address) -> Result<StakeInfo> {
        let s = self
            .escrow
            .stakeOf(provider)
            .call()
            .await
            .map_err(|e| view("stakeOf", e))?;
        Ok(StakeInfo {
            staked: s.staked,
            locked: s.locked,
            unbonding: s.unbonding,
            release_at: s.releaseAt.saturating_to(),
        })
    }

    /// The reputation of `provider`.
    pub async fn reputation_of(&self, provider: Address) -> Result<Reputation> {
        let r = self
            .escrow
            .reputationOf(provider)
            .call()
            .await
            .map_err(|e| view("reputationOf", e))?;
        Ok(Reputation {
            completed: r.completed.saturating_to(),
            slashed: r.slashed.saturating_to(),
            missed: r.missed.saturating_to(),
            score: r.score.saturating_to(),
        })
    }

    /// `provider`'s phase in live job `job_id`.
    pub async fn replica_status(&self, job_id: u64, provider: Address) -> Result<ReplicaPhase> {
        let raw: u8 = self
            .escrow
            .replicaOf(U256::from(job_id), provider)
            .call()
            .await
            .map_err(|e| view("replicaOf", e))?;
        ReplicaPhase::from_u8(raw)
            .ok_or_else(|| MarketError::Unexpected(format!("replica status {raw} out of range")))
    }

    /// A live job's counters from one `jobState` call; `None` once the job is settled (by
    /// its last reveal or finalize) or cancelled, or never existed: the escrow deletes
    /// settled jobs.
    pub async fn job_counters(&self, job_id: u64) -> Result<Option<JobCounters>> {
        let s = self
            .escrow
            .jobState(U256::from(job_id))
            .call()
            .await
            .map_err(|e| view("jobState", e))?;
        Ok(
            (s.specHash != alloy::primitives::FixedBytes::ZERO).then_some(JobCounters {
                claimed: s.claimed,
                committed: s.committed,
                revealed: s.revealed,
            }),
        )
    }

    /// The minimum stake to claim jobs.
    pub async fn min_stake(&self) -> Result<U256> {
        self.escrow
            .minStake()
            .call()
            .await
            .map_err(|e| view("minStake", e))
    }

    /// Native balance of `account` (ETH), or its token balance in ERC-20 mode.
    pub async fn wallet_balance(&self, account: Address) -> Result<U256> {
        match &self.token {
            Some(t) => t
                .balanceOf(account)
                .call()
                .await
                .map_err(|e| view("balanceOf", e)),
            None => self.provider.get_balance(account).await.map_err(rpc),
        }
    }

    // ----- events -----

    /// Decoded escrow events in blocks `from..=to`, oldest first.
    pub async fn events(&self, from: u64, to: u64) -> Result<Vec<MarketEvent>> {
        self.scan(Filter::new().address(self.deployment.job_escrow), from, to)
            .await
    }

    /// Everything the chain says about `job_id`.
    pub async fn job_history(&self, job_id: u64) -> Result<JobHistory> {
        let to = self.block_number().await?;
        let filter = Filter::new()
            .address(self.deployment.job_escrow)
            .topic1(B256::from(U256::from(job_id)));
        let events = self.scan(filter, self.deployment.deploy_block, to).await?;
        Ok(JobHistory::from_events(job_id, events))
    }

    async fn scan(&self, filter: Filter, from: u64, to: u64) -> Result<Vec<MarketEvent>> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(LOG_CHUNK - 1));
            let logs = self
                .provider
                .get_logs(&filter.clone().from_block(start).to_block(end))
                .await
                .map_err(rpc)?;
            out.extend(logs.iter().filter_map(decode_event));
            start = end + 1;
        }
        Ok(out)
    }

    async fn approve_if_token(&self, amount: U256) -> Result<()> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let spender = self.deployment.job_escrow;
        let allowance = token
            .allowance(self.account, spender)
            .call()
            .await
            .map_err(|e| view("allowance", e))?;
        if allowance < amount {
            send("approve", token.approve(spender, U256::MAX)).await?;
        }
        Ok(())
    }
}

/// How many replicas of a live job claimed and committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct JobCounters {
    /// Slots claimed.
    pub claimed: u8,
    /// Commitments made.
    pub committed: u8,
    /// Reveals made; always below `replicas` on a live job (the last reveal settles it).
    pub revealed: u8,
}

/// What [`Market::reveal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revealed {
    /// The reveal transaction.
    pub tx: TxHash,
    /// `Some((outcome, winning hash))` if this reveal completed the job and settled it.
    pub settled: Option<(Outcome, B256)>,
}

/// A job's on-chain history, folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobHistory {
    /// The job.
    pub job_id: u64,
    /// Its spec, from `JobPosted`.
    pub spec: Option<JobSpec>,
    /// Block of `JobPosted`.
    pub posted_block: Option<u64>,
    /// Claimers in claim order.
    pub claimers: Vec<Address>,
    /// Providers that committed.
    pub committed: Vec<Address>,
    /// Reveals in order.
    pub reveals: Vec<(Address, B256)>,
    /// How it ended, with the winning hash, if finalized or cancelled.
    pub outcome: Option<(Outcome, B256)>,
}

impl JobHistory {
    /// Folds `events` (oldest first) that concern `job_id` into its history.
    pub fn from_events(job_id: u64, events: Vec<MarketEvent>) -> Self {
        let mut h = Self {
            job_id,
            ..Self::default()
        };
        for MarketEvent { block, kind } in events {
            match kind {
                EventKind::JobPosted { spec, .. } => {
                    h.spec = Some(spec);
                    h.posted_block = Some(block);
                }
                EventKind::Claimed { provider, .. } => h.claimers.push(provider),
                EventKind::Committed { provider, .. } => h.committed.push(provider),
                EventKind::Revealed {
                    provider,
                    result_hash,
                    ..
                } => h.reveals.push((provider, result_hash)),
                EventKind::Finalized {
                    outcome,
                    result_hash,
                    ..
                } => h.outcome = Some((outcome, result_hash)),
                EventKind::Cancelled { .. } => h.outcome = Some((Outcome::Cancelled, B256::ZERO)),
                EventKind::Credited { .. } | EventKind::Withdrawn { .. } => {}
            }
        }
        h
    }

    /// Every claimer but `me`, in ascending address order (what the last reveal takes).
    pub fn others(&self, me: Address) -> Vec<Address> {
        let mut others: Vec<Address> = self.claimers.iter().copied().filter(|a| *a != me).collect();
        others.sort();
        others.dedup();
        others
    }

    /// The hint a reveal of `mine` by `me` passes as `quorumHash`: the hash other replicas
    /// revealed most often, if it is not `mine` (zero otherwise). The escrow only reads it
    /// when this reveal is the last one and `mine` lacks the quorum.
    pub fn likely_quorum_hash(&self, me: Address, mine: B256) -> B256 {
        let mut counts: Vec<(B256, usize)> = Vec::new();
        for (who, hash) in &self.reveals {
            if *who == me || *hash == mine {
                continue;
            }
            match counts.iter_mut().find(|(h, _)| h == hash) {
                Some((_, n)) => *n += 1,
                None => counts.push((*hash, 1)),
            }
        }
        counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map_or(B256::ZERO, |(h, _)| h)
    }

    /// The result hash revealed by at least `quorum` replicas, if any.
    pub fn majority_result(&self, quorum: u8) -> Option<B256> {
        let mut counts: Vec<(B256, usize)> = Vec::new();
        for (_, hash) in &self.reveals {
            match counts.iter_mut().find(|(h, _)| h == hash) {
                Some((_, n)) => *n += 1,
                None => counts.push((*hash, 1)),
            }
        }
        counts
            .into_iter()
            .find(|(_, n)| *n >= usize::from(quorum))
            .map(|(h, _)| h)
    }
}

/// Sends a contract call, waits for its receipt and checks that it succeeded.
pub(crate) fn rpc(e: impl std::fmt::Display) -> MarketError {
    MarketError::Rpc(e.to_string())
}

fn view(name: &'static str, e: alloy::contract::Error) -> MarketError {
    MarketError::from_contract(name, e)
}
