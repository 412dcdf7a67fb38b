//! Typed access to a deployed market: the consumer's and the provider's on-chain
//! operations, views, event scans and decoded custom errors.
//!
//! Every write waits for its receipt and checks its status; reverts come back as
//! [`MarketError::Reverted`] with the contract's custom error decoded (`revert()`). Writes
//! may be sent concurrently from clones of one [`Market`]: one task per handle owns the
//! account's nonce and keeps them all in flight (`tx`). Every JSON-RPC request is counted
//! ([`Market::rpc_requests`]).

mod announce;
mod deploy;
mod deployment;
mod error;
mod events;
mod history;
pub mod lifecycle;
mod post_jobs;
mod rpc_count;
mod spec;
mod tx;

pub use announce::{announced_job_id, announcement, is_for, matches_chain};
pub use deploy::{DeployParams, NPM_ANVIL_PATH, TokenParams, deploy, find_anvil};
pub use deployment::Deployment;
pub use error::{AmountUnit, MarketError, Result, describe_revert, format_amount, text_of};
pub use events::{EventKind, MarketEvent, Outcome, decode as decode_event, job_id_u64, split_draw};
pub use history::{JobHistory, Slot};
pub use lifecycle::Counters as JobCounters;
pub use post_jobs::MAX_POST_BATCH;
pub use rpc_count::RpcCounter;
pub use spec::{
    JobKind, JobSpec, JobSpecExt, JobTerms, ReplicaPhase, ResultDomain, commitment, slot_key,
    spec_hash, terms,
};
use tx::TxManager;
pub use tx::TxPolicy;

use alloy::network::EthereumWallet;
use alloy::primitives::{Address, B256, TxHash, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::ClientBuilder;
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
    /// Part of `staked` locked as collateral of active jobs (slashable until they settle).
    pub locked: U256,
    /// The block in which the stake last grew: it is in the draw of jobs posted in later
    /// blocks.
    pub bonded_at: u64,
}

/// Where a provider stands in one job's stake-weighted draw (the escrow's `drawOf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Draw {
    /// May commit now, as far as the draw goes.
    pub eligible: bool,
    /// Drawn at the base rate (its work counts for reputation).
    pub drawn: bool,
    /// From when it is eligible (unix seconds); `None`: not before the commit deadline.
    pub eligible_from: Option<u64>,
}

/// A market's bounds on job windows (deploy parameters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Windows {
    /// Least seconds from the post to the commit deadline.
    pub min_commit: u64,
    /// Least seconds from the commit deadline to the reveal deadline.
    pub min_reveal: u64,
    /// Most seconds from the post to the reveal deadline.
    pub max_horizon: u64,
}

/// A job just posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PostedJob {
    /// Its id.
    pub job_id: u64,
    /// The post transaction.
    pub tx: TxHash,
    /// The post's block timestamp (part of its terms).
    pub posted_at: u64,
    /// The post's block number (its hash fixes the draw; part of the terms).
    pub post_block: u64,
    /// Which rules it follows (part of the terms).
    pub kind: JobKind,
}

/// A challenge just made: the escalation job it posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// The challenged optimistic job.
    pub job_id: u64,
    /// The escalation job (m fresh replicas recompute it).
    pub escalation_id: u64,
    /// The bond escrowed.
    pub bond: U256,
    /// The challenge transaction.
    pub tx: TxHash,
}

/// A live escalation: the challenged job and its one replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    /// The challenged optimistic job (whose identity the escalation's result hashes use).
    pub job_id: u64,
    /// Its replica, excluded from the escalation.
    pub defendant: Address,
    /// The defendant's lane.
    pub lane: u64,
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
    txs: TxManager,
    rpc_requests: RpcCounter,
}

impl Market {
    /// Connects to `rpc_url` as `signer` and checks that the deployment is on that chain.
    pub async fn connect(
        rpc_url: &str,
        signer: PrivateKeySigner,
        deployment: Deployment,
    ) -> Result<Self> {
        Self::connect_with(rpc_url, signer, deployment, TxPolicy::default()).await
    }

    /// [`Market::connect`] with its own rules for replacing stuck transactions.
    pub async fn connect_with(
        rpc_url: &str,
        signer: PrivateKeySigner,
        deployment: Deployment,
        policy: TxPolicy,
    ) -> Result<Self> {
        let url = rpc_url.parse().map_err(|e| MarketError::BadRpcUrl {
            url: rpc_url.to_string(),
            reason: format!("{e}"),
        })?;
        let account = signer.address();
        let wallet = EthereumWallet::from(signer);
        let rpc_requests = RpcCounter::default();
        let client = ClientBuilder::default()
            .layer(rpc_requests.clone())
            .http(url);
        let provider = ProviderBuilder::default()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(wallet.clone())
            .connect_client(client)
            .erased();
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        if chain_id != deployment.chain_id {
            return Err(MarketError::WrongChain {
                deployment: deployment.chain_id,
                rpc: chain_id,
            });
        }
        let txs = TxManager::spawn(provider.clone(), wallet, account, chain_id, policy);
        let escrow = JobEscrow::new(deployment.job_escrow, provider.clone());
        let token =
            (!deployment.is_native()).then(|| TestToken::new(deployment.asset, provider.clone()));
        Ok(Self {
            provider,
            escrow,
            token,
            deployment,
            account,
            txs,
            rpc_requests,
        })
    }

    /// JSON-RPC requests this handle (and its clones) sent so far.
    pub fn rpc_requests(&self) -> u64 {
        self.rpc_requests.get()
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

    /// The median gap between the timestamps of the last `n` blocks, in seconds (robust to
    /// the idle gaps of a chain that mines on demand); 1 on a chain shorter than that.
    pub async fn block_time_estimate(&self, n: u64) -> Result<u64> {
        let head = self.block_number().await?;
        let n = n.min(head);
        if n < 2 {
            return Ok(1);
        }
        let mut stamps = Vec::with_capacity(n as usize + 1);
        for number in head - n..=head {
            let block = self
                .provider
                .get_block_by_number(number.into())
                .await
                .map_err(rpc)?
                .ok_or_else(|| MarketError::Unexpected(format!("no block {number}")))?;
            stamps.push(block.header.timestamp);
        }
        let mut gaps: Vec<u64> = stamps
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]))
            .collect();
        gaps.sort_unstable();
        Ok(gaps[gaps.len() / 2].max(1))
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
    /// the ERC-20 first in token mode).
    pub async fn post_job(&self, spec: JobSpec) -> Result<PostedJob> {
        self.post(spec, JobKind::Plain).await
    }

    /// Posts `spec` as an optimistic job (one replica, paid after the challenge window
    /// unless this account challenges it; its collateral's slash must cover the bond).
    pub async fn post_optimistic_job(&self, spec: JobSpec) -> Result<PostedJob> {
        self.post(spec, JobKind::Optimistic).await
    }

    async fn post(&self, mut spec: JobSpec, kind: JobKind) -> Result<PostedJob> {
        spec.consumer = self.account;
        let bounty = spec.bounty_amount();
        self.approve_if_token(bounty).await?;
        let value = self.native_value(bounty);
        let receipt = if kind == JobKind::Optimistic {
            let call = self.escrow.postOptimisticJob(spec).value(value);
            self.txs.send("postOptimisticJob", call).await?
        } else {
            self.txs
                .send("postJob", self.escrow.postJob(spec).value(value))
                .await?
        };
        let (job_id, (post_block, posted_at)) = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|l| l.log_decode::<JobEscrow::JobPosted>().ok())
            .find_map(|l| {
                Some((
                    job_id_u64(l.inner.data.jobId)?,
                    split_draw(l.inner.data.draw),
                ))
            })
            .ok_or_else(|| MarketError::Unexpected("postJob receipt has no JobPosted".into()))?;
        Ok(PostedJob {
            job_id,
            tx: receipt.transaction_hash,
            posted_at,
            post_block,
            kind,
        })
    }

    /// Challenges optimistic job `job` (this account posted it) whose one replica is
    /// `defendant` in `lane`, escrowing the bond (`escalationReplicas` x bounty).
    pub async fn challenge(
        &self,
        job: &JobRef<'_>,
        defendant: Address,
        lane: u64,
    ) -> Result<Challenge> {
        let (_, m) = self.optimistic_params().await?;
        let bond = job.spec.bounty_amount() * U256::from(m);
        self.approve_if_token(bond).await?;
        let call = self
            .escrow
            .challenge(
                U256::from(job.id),
                job.spec.clone(),
                job.kind.draw(job.posted_at, job.post_block),
                slot_key(defendant, lane),
            )
            .value(self.native_value(bond));
        let receipt = self.txs.send("challenge", call).await?;
        let escalation_id = receipt
            .inner
            .logs()
            .iter()
            .filter_map(|l| l.log_decode::<JobEscrow::JobChallenged>().ok())
            .find_map(|l| job_id_u64(l.inner.data.escalationId))
            .ok_or_else(|| {
                MarketError::Unexpected("challenge receipt has no JobChallenged".into())
            })?;
        Ok(Challenge {
            job_id: job.id,
            escalation_id,
            bond,
            tx: receipt.transaction_hash,
        })
    }

    /// The share of a failing replica's collateral that is slashed, in basis points.
    pub async fn slash_bps(&self) -> Result<u64> {
        let bps = self
            .escrow
            .slashBps()
            .call()
            .await
            .map_err(|e| view("slashBps", e))?;
        Ok(bps.saturating_to())
    }

    /// The challenge window (seconds after an optimistic job's reveal deadline) and the
    /// replicas of an escalation.
    pub async fn optimistic_params(&self) -> Result<(u64, u64)> {
        let p = self
            .escrow
            .optimisticParams()
            .call()
            .await
            .map_err(|e| view("optimisticParams", e))?;
        Ok((
            p.challengeWindow.saturating_to(),
            p.escalationReplicas.saturating_to(),
        ))
    }

    /// The live escalation job `escalation_id`: the challenged job and its defendant;
    /// `None` once settled (or for any other job).
    pub async fn escalation_of(&self, escalation_id: u64) -> Result<Option<Escalation>> {
        let e = self
            .escrow
            .escalationOf(U256::from(escalation_id))
            .call()
            .await
            .map_err(|e| view("escalationOf", e))?;
        Ok((!e.jobId.is_zero()).then(|| Escalation {
            job_id: e.jobId.saturating_to(),
            defendant: e.defendant,
            lane: e.lane.saturating_to(),
        }))
    }

    fn native_value(&self, amount: U256) -> U256 {
        if self.deployment.is_native() {
            amount
        } else {
            U256::ZERO
        }
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
        Ok(self
            .txs
            .send("stake", self.escrow.stake(amount).value(value))
            .await?
            .transaction_hash)
    }

    /// Takes `amount` of free (unlocked) stake out to this account's wallet, at once.
    pub async fn unstake(&self, amount: U256) -> Result<TxHash> {
        Ok(self
            .txs
            .send("unstake", self.escrow.unstake(amount))
            .await?
            .transaction_hash)
    }

    /// One-time provider set-up (optional): pre-pays this account's balance slot and its
    /// replica lanes `0..lanes` (at most 256), so commits and settlements write slots that
    /// are already non-zero (~17k gas less each, the first time each lane is used).
    pub async fn open_account(&self, lanes: u64) -> Result<TxHash> {
        Ok(self
            .txs
            .send("openAccount", self.escrow.openAccount(U256::from(lanes)))
            .await?
            .transaction_hash)
    }

    /// Takes a slot of `job_id` in this account's `lane` with the commitment to
    /// `result_hash` and `salt` (one transaction; the escrow checks the draw). An optimistic
    /// job's one slot takes `result_hash` itself: revealed at once, no reveal follows.
    pub async fn commit(
        &self,
        job: &JobRef<'_>,
        lane: u64,
        result_hash: B256,
        salt: B256,
    ) -> Result<TxHash> {
        let c = match job.kind {
            JobKind::Optimistic => result_hash,
            JobKind::Plain | JobKind::Escalation => {
                commitment(job.id, self.account, result_hash, salt)
            }
        };
        let call = self
            .escrow
            .commit(U256::from(job.id), job.terms(), U256::from(lane), c);
        Ok(self.txs.send("commit", call).await?.transaction_hash)
    }

    /// Reveals the committed `result_hash` and `salt` of our slot in `lane`. The reveal that
    /// completes the job (every slot revealed) settles it in the same transaction, so every
    /// reveal of a multi-replica job passes what that settlement needs: the other slots and,
    /// for a result that may lose, the hash the others revealed most (both from one scan of
    /// the job's logs; a single-replica job needs neither and scans nothing). The returned
    /// [`Revealed::settled`] says whether this reveal settled the job.
    pub async fn reveal(
        &self,
        job: &JobRef<'_>,
        lane: u64,
        result_hash: B256,
        salt: B256,
    ) -> Result<Revealed> {
        let (others, quorum_hash) = if job.spec.replicas <= 1 {
            (Vec::new(), B256::ZERO)
        } else {
            let history = self.job_history_since(job.id, job.post_block).await?;
            (
                history.other_keys(self.account, lane),
                history.likely_quorum_hash(self.account, result_hash),
            )
        };
        let call = self.escrow.reveal(
            U256::from(job.id),
            job.terms(),
            U256::from(lane),
            result_hash,
            salt,
            others,
            quorum_hash,
        );
        let receipt = self.txs.send("reveal", call).await?;
        Ok(Revealed::from_receipt(job.id, &receipt))
    }

    /// Takes the only slot of a one-replica plain job ([`JobRef::is_solo`]) in this
    /// account's `lane` with `result_hash` in the clear, which settles the job in the same
    /// transaction: commit and reveal in one, for about half the gas (nobody else holds a
    /// slot that could copy the hash). [`Revealed::settled`] holds the outcome. Any other
    /// job is refused on-chain (`EscrowNotSoloJob`).
    pub async fn commit_result(
        &self,
        job: &JobRef<'_>,
        lane: u64,
        result_hash: B256,
    ) -> Result<Revealed> {
        let call = self.escrow.commitResult(
            U256::from(job.id),
            job.terms(),
            U256::from(lane),
            result_hash,
        );
        let receipt = self.txs.send("commitResult", call).await?;
        Ok(Revealed::from_receipt(job.id, &receipt))
    }

    /// Finalizes `job_id` from its on-chain history (slots and reveals): the deadline paths
    /// (unfilled, a reveal missing). Checks the timing rules first
    /// ([`lifecycle::next`]) so an early call fails here with the second it becomes
    /// possible, not with a revert.
    pub async fn finalize(&self, job_id: u64) -> Result<TxHash> {
        self.finalize_since(job_id, self.deployment.deploy_block)
            .await
    }

    /// [`Market::finalize`] reading the job's history from `from_block` (its post block).
    pub async fn finalize_since(&self, job_id: u64, from_block: u64) -> Result<TxHash> {
        let history = self.job_history_since(job_id, from_block).await?;
        let job = history.job_ref()?;
        let spec = job.spec;
        let live = self.job_counters(job_id).await?;
        let timing = self.timing(&job).await?;
        let now = self.now().await?;
        match lifecycle::next(&timing, live, lifecycle::Ours::Outside, now) {
            (_, lifecycle::Action::Finalize) => {}
            (lifecycle::Phase::Settled, _) => return Err(MarketError::AlreadySettled(job_id)),
            _ => {
                return Err(MarketError::NotFinalizableYet {
                    job_id,
                    from: lifecycle::finalizable_from(&timing, live).unwrap_or_default(),
                });
            }
        }
        let winning = history.majority_result(spec.quorum).unwrap_or_default();
        let call =
            self.escrow
                .finalize(U256::from(job_id), job.terms(), history.all_keys(), winning);
        Ok(self.txs.send("finalize", call).await?.transaction_hash)
    }

    /// The timing rules of `job`: its spec's deadlines, and for an optimistic job the
    /// market's challenge window (one call).
    pub async fn timing(&self, job: &JobRef<'_>) -> Result<lifecycle::Timing> {
        let window = match job.kind {
            JobKind::Optimistic => self.optimistic_params().await?.0,
            JobKind::Plain | JobKind::Escalation => 0,
        };
        Ok(lifecycle::Timing::of(job.spec, job.kind, window))
    }

    /// Withdraws this account's whole credited balance to its wallet.
    pub async fn withdraw(&self) -> Result<TxHash> {
        Ok(self
            .txs
            .send("withdraw", self.escrow.withdraw_1())
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
            bonded_at: s.bondedAt.saturating_to(),
        })
    }

    /// All bonded stake of the market (the denominator of every draw).
    pub async fn total_stake(&self) -> Result<U256> {
        self.escrow
            .totalStake()
            .call()
            .await
            .map_err(|e| view("totalStake", e))
    }

    /// All slashed collateral, burned (held by the escrow for good).
    pub async fn burned(&self) -> Result<U256> {
        self.escrow
            .burned()
            .call()
            .await
            .map_err(|e| view("burned", e))
    }

    /// The market's window bounds.
    pub async fn windows(&self) -> Result<Windows> {
        let w = self
            .escrow
            .windows()
            .call()
            .await
            .map_err(|e| view("windows", e))?;
        Ok(Windows {
            min_commit: w.minCommitWindow.saturating_to(),
            min_reveal: w.minRevealWindow.saturating_to(),
            max_horizon: w.maxHorizon.saturating_to(),
        })
    }

    /// Where `provider` stands in the draw of live job `job`, as a transaction sent now
    /// would see it: asked of the pending block, in which the post's block hash (the draw's
    /// seed) is known even when the post is the latest block (a devnet that mines on demand
    /// has no later block until the commit itself).
    pub async fn draw_of(&self, job: &JobRef<'_>, provider: Address) -> Result<Draw> {
        let d = self
            .escrow
            .drawOf(U256::from(job.id), job.terms(), provider)
            .call()
            .block(alloy::eips::BlockId::pending())
            .await
            .map_err(|e| view("drawOf", e))?;
        let from: u64 = d.eligibleFrom.saturating_to();
        Ok(Draw {
            eligible: d.eligible,
            drawn: d.drawn,
            eligible_from: (from != 0).then_some(from),
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

    /// `provider`'s phase in live job `job_id`, in its `lane`.
    pub async fn replica_status(
        &self,
        job_id: u64,
        provider: Address,
        lane: u64,
    ) -> Result<ReplicaPhase> {
        let raw: u8 = self
            .escrow
            .replicaOf(U256::from(job_id), provider, U256::from(lane))
            .call()
            .await
            .map_err(|e| view("replicaOf", e))?;
        ReplicaPhase::from_u8(raw)
            .ok_or_else(|| MarketError::Unexpected(format!("replica status {raw} out of range")))
    }

    /// A live job's counters from one `jobState` call; `None` once the job is settled (by
    /// its last reveal or finalize) or never existed: the escrow deletes settled jobs.
    pub async fn job_counters(&self, job_id: u64) -> Result<Option<JobCounters>> {
        let s = self
            .escrow
            .jobState(U256::from(job_id))
            .call()
            .await
            .map_err(|e| view("jobState", e))?;
        Ok(
            (s.specHash != alloy::primitives::FixedBytes::ZERO).then_some(JobCounters {
                committed: s.committed,
                revealed: s.revealed,
            }),
        )
    }

    /// Who this market's results belong to for `job_id` (see [`ResultDomain`]).
    pub fn result_domain(&self, job_id: u64) -> ResultDomain {
        ResultDomain {
            chain_id: self.deployment.chain_id,
            escrow: self.deployment.job_escrow,
            job_id,
        }
    }

    /// The id the next posted job gets (jobs posted so far + 1).
    pub async fn next_job_id(&self) -> Result<u64> {
        let id = self
            .escrow
            .nextJobId()
            .call()
            .await
            .map_err(|e| view("nextJobId", e))?;
        Ok(id.saturating_to())
    }

    /// The minimum stake to commit to jobs.
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

    /// Everything the chain says about `job_id` (scans from the deployment block: use
    /// [`Market::job_history_since`] where the post block is known).
    pub async fn job_history(&self, job_id: u64) -> Result<JobHistory> {
        self.job_history_since(job_id, self.deployment.deploy_block)
            .await
    }

    /// Everything the chain says about `job_id`, scanning from `from_block` (its post
    /// block: a job lives at most the market's horizon, so this is one bounded request,
    /// however long the chain's history).
    pub async fn job_history_since(&self, job_id: u64, from_block: u64) -> Result<JobHistory> {
        let to = self.block_number().await?;
        let filter = Filter::new()
            .address(self.deployment.job_escrow)
            .topic1(B256::from(U256::from(job_id)));
        let from = from_block.max(self.deployment.deploy_block);
        let events = self.scan(filter, from, to).await?;
        Ok(JobHistory::from_events(job_id, events))
    }

    /// The escrow's raw logs in blocks `from..=to`, oldest first (what a chain index
    /// stores; decode each with [`decode_event`]).
    pub async fn logs(&self, from: u64, to: u64) -> Result<Vec<alloy::rpc::types::Log>> {
        self.raw_logs(Filter::new().address(self.deployment.job_escrow), from, to)
            .await
    }

    /// The hash of block `number` on the chain the endpoint follows now (`None`: no such
    /// block yet).
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>> {
        Ok(self
            .provider
            .get_block_by_number(number.into())
            .await
            .map_err(rpc)?
            .map(|b| b.header.hash))
    }

    async fn scan(&self, filter: Filter, from: u64, to: u64) -> Result<Vec<MarketEvent>> {
        Ok(self
            .raw_logs(filter, from, to)
            .await?
            .iter()
            .filter_map(decode_event)
            .collect())
    }

    /// `filter`'s logs in `from..=to`, asked in ranges of at most [`LOG_CHUNK`] blocks.
    async fn raw_logs(
        &self,
        filter: Filter,
        from: u64,
        to: u64,
    ) -> Result<Vec<alloy::rpc::types::Log>> {
        let mut out = Vec::new();
        let mut start = from;
        while start <= to {
            let end = to.min(start.saturating_add(LOG_CHUNK - 1));
            let logs = self
                .provider
                .get_logs(&filter.clone().from_block(start).to_block(end))
                .await
                .map_err(rpc)?;
            out.extend(logs);
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
            self.txs
                .send("approve", token.approve(spender, U256::MAX))
                .await?;
        }
        Ok(())
    }
}

/// What [`Market::reveal`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revealed {
    /// The reveal transaction.
    pub tx: TxHash,
    /// `Some((outcome, winning hash))` if this reveal completed the job and settled it.
    pub settled: Option<(Outcome, B256)>,
}

/// A live job as the calls after `postJob` name it: id, spec and post time.
#[derive(Debug, Clone, Copy)]
pub struct JobRef<'a> {
    /// The job.
    pub id: u64,
    /// Its spec, as posted.
    pub spec: &'a JobSpec,
    /// The post's block timestamp.
    pub posted_at: u64,
    /// The post's block number.
    pub post_block: u64,
    /// Which rules it follows.
    pub kind: JobKind,
}

impl JobRef<'_> {
    /// The terms every call passes back.
    pub fn terms(&self) -> JobTerms {
        terms(self.spec, self.posted_at, self.post_block, self.kind)
    }

    /// A plain job with one replica: its slot is taken and settled by one
    /// [`Market::commit_result`] instead of a commit and a reveal.
    pub fn is_solo(&self) -> bool {
        self.kind == JobKind::Plain && self.spec.replicas == 1
    }
}

impl Revealed {
    /// What the receipt of a transaction that may settle `job_id` says.
    fn from_receipt(job_id: u64, receipt: &alloy::rpc::types::TransactionReceipt) -> Self {
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
        Self {
            tx: receipt.transaction_hash,
            settled,
        }
    }
}

/// Sends a contract call, waits for its receipt and checks that it succeeded.
pub(crate) fn rpc(e: alloy::transports::TransportError) -> MarketError {
    MarketError::Rpc(e)
}

fn view(name: &'static str, e: alloy::contract::Error) -> MarketError {
    MarketError::from_contract(name, e)
}
