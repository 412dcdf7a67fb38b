//! `Market`: a connection to one deployment as one account, resolved like the CLI resolves
//! its flags (`ETH_RPC_URL`, `STP_DEPLOYMENT`, `STP_PRIVATE_KEY`, `STP_KEYSTORE`, ...), with
//! the consumer's libp2p node started on the first post or fetch.

use std::path::PathBuf;
use std::sync::Arc;

use alloy::primitives::{Address, U256};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use stp_node::cli::common::{
    ChainArgs, DeploymentArgs, InMarketUnit, RpcArgs, WalletArgs, format_amount, parse_amount,
    parse_positive_amount, paying,
};
use stp_node::cli::job::P2pArgs;
use stp_node::consumer::{self, ModelWork, Order};
use stp_node::p2p::P2pClient;

use crate::job::Job;
use crate::kernels;
use crate::runtime::{block_on, spawn};

/// The model and samples of a model job's input, if it is one (a `ValueError` if broken).
pub(crate) fn model_work(input: &[u8]) -> PyResult<Option<ModelWork>> {
    ModelWork::from_job_input(input).map_err(|e| PyValueError::new_err(format!("{e:#}")))
}

/// The CLI's default RPC endpoint (`--rpc-url`).
const DEFAULT_RPC: &str = "http://127.0.0.1:8545";
/// The CLI's default consumer directory (`--data-dir` of `stp job post`).
const DEFAULT_CONSUMER_DIR: &str = ".stp/consumer";

/// The CLI's sentence for a missing wallet, in this API's terms.
const NO_WALLET: &str = "this call sends transactions: pass private_key= (or STP_PRIVATE_KEY), or keystore= with password= (or STP_KEYSTORE and STP_KEYSTORE_PASSWORD) to Market.connect; `stp devnet up` prints dev keys";

/// What a `Market` and its jobs share.
pub(crate) struct Inner {
    /// The typed client.
    pub(crate) market: stp_sdk::market::Market,
    /// How the consumer's p2p node is started.
    p2p_args: P2pArgs,
    /// The consumer's p2p node, once started.
    p2p: tokio::sync::OnceCell<P2pClient>,
    /// Why this connection cannot send transactions (no key or keystore given), if so.
    read_only: Option<String>,
}

impl Inner {
    /// An error for a call that sends a transaction on a read-only connection.
    pub(crate) fn need_wallet(&self) -> PyResult<()> {
        match &self.read_only {
            Some(why) => Err(crate::errors::StpError::new_err(why.clone())),
            None => Ok(()),
        }
    }

    /// Where the consumer keeps its blobs and batch records.
    pub(crate) fn consumer_dir(&self) -> &std::path::Path {
        &self.p2p_args.data_dir
    }

    /// The consumer's p2p node, started on first use.
    pub(crate) async fn p2p(&self) -> eyre::Result<&P2pClient> {
        self.p2p.get_or_try_init(|| self.p2p_args.spawn()).await
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(p2p) = self.p2p.take() {
            spawn(async move { p2p.shutdown().await });
        }
    }
}

/// A connection to one ShareThePower market deployment, acting as one account.
#[pyclass(module = "sharethepower._native", frozen)]
pub struct Market {
    pub(crate) inner: Arc<Inner>,
}

fn env_or(arg: Option<String>, var: &str) -> Option<String> {
    arg.or_else(|| std::env::var(var).ok().filter(|v| !v.is_empty()))
}

fn amount(s: &str, positive: bool) -> PyResult<U256> {
    let parsed = if positive {
        parse_positive_amount(s)
    } else {
        parse_amount(s)
    };
    parsed.map_err(PyValueError::new_err)
}

fn address(s: Option<&str>, default: Address) -> PyResult<Address> {
    match s {
        Some(s) => stp_node::cli::common::parse_address(s).map_err(PyValueError::new_err),
        None => Ok(default),
    }
}

/// The terms of a post or of every chunk of a batch, as given from Python.
struct Terms<'a> {
    replicas: u8,
    bounty: &'a str,
    collateral: &'a str,
    min_reputation: u32,
    windows: (Option<u64>, Option<u64>),
    force: bool,
}

impl Market {
    /// The order of `kernel` on `input` with `terms` (checked: a bad amount or replica
    /// count is a `ValueError`).
    fn order(&self, kernel: &str, input: Vec<u8>, terms: &Terms<'_>) -> PyResult<Order> {
        consumer::check_replicas(terms.replicas)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(Order {
            kernel: kernels::resolve(kernel)?,
            input,
            served: None,
            replicas: terms.replicas,
            bounty: amount(terms.bounty, true)?,
            collateral: amount(terms.collateral, false)?,
            force: terms.force,
            min_reputation: terms.min_reputation,
            commit_secs: terms.windows.0,
            reveal_secs: terms.windows.1,
            max_output: None,
            announce: !self.inner.p2p_args.bootstrap.is_empty(),
            optimistic: false,
        })
    }
}

/// `v` (wei) as a `decimal.Decimal` in ETH (token) units, exact.
pub(crate) fn decimal<'py>(py: Python<'py>, v: U256) -> PyResult<Bound<'py, PyAny>> {
    py.import("decimal")?
        .getattr("Decimal")?
        .call1((format_amount(v),))
}

#[pymethods]
impl Market {
    /// Connects like the CLI: each argument falls back to its environment variable, then
    /// to the CLI's default (`http://127.0.0.1:8545`, `deployments/<chainId>.json`).
    #[staticmethod]
    #[pyo3(signature = (rpc_url=None, deployment=None, private_key=None, keystore=None, password=None, bootstrap=None, consumer_dir=None, listen=None))]
    #[allow(clippy::too_many_arguments)]
    fn connect(
        py: Python<'_>,
        rpc_url: Option<String>,
        deployment: Option<PathBuf>,
        private_key: Option<String>,
        keystore: Option<PathBuf>,
        password: Option<String>,
        bootstrap: Option<Vec<String>>,
        consumer_dir: Option<PathBuf>,
        listen: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let multiaddrs = |list: Vec<String>, what: &str| {
            list.iter()
                .map(|a| {
                    a.parse().map_err(|e| {
                        PyValueError::new_err(format!("{what} {a:?} is not a multiaddr: {e}"))
                    })
                })
                .collect::<PyResult<Vec<_>>>()
        };
        let p2p_args = P2pArgs {
            listen: multiaddrs(
                listen.unwrap_or_else(|| vec!["/ip4/127.0.0.1/tcp/0".into()]),
                "listen",
            )?,
            bootstrap: multiaddrs(bootstrap.unwrap_or_default(), "bootstrap")?,
            data_dir: consumer_dir
                .or_else(|| env_or(None, "STP_CONSUMER_DIR").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from(DEFAULT_CONSUMER_DIR)),
        };
        let chain = ChainArgs {
            rpc: RpcArgs {
                rpc_url: env_or(rpc_url, "ETH_RPC_URL").unwrap_or_else(|| DEFAULT_RPC.into()),
            },
            wallet: WalletArgs {
                private_key: env_or(private_key, "STP_PRIVATE_KEY"),
                keystore: keystore.or_else(|| env_or(None, "STP_KEYSTORE").map(PathBuf::from)),
                password: env_or(password, "STP_KEYSTORE_PASSWORD"),
            },
            deployment: DeploymentArgs {
                deployment: deployment
                    .or_else(|| env_or(None, "STP_DEPLOYMENT").map(PathBuf::from)),
            },
        };
        let read_only = (chain.wallet.private_key.is_none() && chain.wallet.keystore.is_none())
            .then(|| NO_WALLET.to_owned());
        let market = block_on(py, async move { chain.market_read_only().await })?;
        Ok(Self {
            inner: Arc::new(Inner {
                market,
                p2p_args,
                p2p: tokio::sync::OnceCell::new(),
                read_only,
            }),
        })
    }

    /// The account this connection acts as (0x address).
    #[getter]
    fn account(&self) -> String {
        self.inner.market.account().to_string()
    }

    /// The chain id of the deployment.
    #[getter]
    fn chain_id(&self) -> u64 {
        self.inner.market.deployment().chain_id
    }

    /// The address of the market's JobEscrow.
    #[getter]
    fn escrow(&self) -> String {
        self.inner.market.deployment().job_escrow.to_string()
    }

    /// Whether amounts are ETH (`True`) or the market's ERC-20 token (`False`).
    #[getter]
    fn is_native(&self) -> bool {
        self.inner.market.deployment().is_native()
    }

    /// Posts a job (checked first as `stp job post` checks it) and serves its input from
    /// this process's libp2p node. Amounts are decimal strings in ETH (token) units.
    #[pyo3(signature = (kernel, input, *, replicas=1, bounty="0.01", collateral="0", min_reputation=0, commit_secs=None, reveal_secs=None, max_output=None, force=false))]
    #[allow(clippy::too_many_arguments)]
    fn post(
        &self,
        py: Python<'_>,
        kernel: &str,
        input: Vec<u8>,
        replicas: u8,
        bounty: &str,
        collateral: &str,
        min_reputation: u32,
        commit_secs: Option<u64>,
        reveal_secs: Option<u64>,
        max_output: Option<u64>,
        force: bool,
    ) -> PyResult<Job> {
        let model = model_work(&input)?;
        let terms = Terms {
            replicas,
            bounty,
            collateral,
            min_reputation,
            windows: (commit_secs, reveal_secs),
            force,
        };
        let order = Order {
            max_output,
            ..self.order(kernel, input, &terms)?
        };
        // A model job posts a parts input; the model file is served once, as a blob.
        let order = match &model {
            Some(work) => work.order(order),
            None => order,
        };
        // A bad input is a ValueError, before anything is sent.
        order.output_bound().map_err(crate::errors::to_py)?;
        self.inner.need_wallet()?;
        let inner = Arc::clone(&self.inner);
        let posted = block_on(py, async {
            order.check(&inner.market).await?;
            let p2p = inner.p2p().await?;
            if let Some(work) = &model {
                p2p.add_blob(work.file.clone(), stp_sdk::p2p::Naming::Blake3)
                    .await?;
            }
            consumer::send(&inner.market, p2p, &order).await
        })?;
        Ok(Job::posted(Arc::clone(&self.inner), &posted, order))
    }

    /// Splits `input` into chunk jobs (`chunks` of them, or `chunk_rows` units each),
    /// posts them, follows them to the end (posting a failed chunk again, up to
    /// `max_attempts` postings), checks each output and returns (batch id, the aggregate
    /// output, the batch's record as JSON). Amounts are per chunk.
    #[pyo3(signature = (kernel, input, *, chunks=None, chunk_rows=None, replicas=1, bounty="0.001", collateral="0", min_reputation=0, commit_secs=None, reveal_secs=None, max_attempts=3, check=true, poll_secs=0.5, force=false))]
    #[allow(clippy::too_many_arguments)]
    fn run_batch<'py>(
        &self,
        py: Python<'py>,
        kernel: &str,
        input: Vec<u8>,
        chunks: Option<u32>,
        chunk_rows: Option<u32>,
        replicas: u8,
        bounty: &str,
        collateral: &str,
        min_reputation: u32,
        commit_secs: Option<u64>,
        reveal_secs: Option<u64>,
        max_attempts: u32,
        check: bool,
        poll_secs: f64,
        force: bool,
    ) -> PyResult<(u64, Bound<'py, PyBytes>, String)> {
        let by = crate::batch::split_by(chunks, chunk_rows)?;
        let terms = Terms {
            replicas,
            bounty,
            collateral,
            min_reputation,
            windows: (commit_secs, reveal_secs),
            force,
        };
        let order = self.order(kernel, Vec::new(), &terms)?;
        let poll = std::time::Duration::from_secs_f64(poll_secs.clamp(0.05, 60.0));
        let (id, output, record) = crate::batch::run(
            py,
            &self.inner,
            order,
            &input,
            (by, max_attempts, check, poll),
        )?;
        Ok((id, PyBytes::new(py, &output), record))
    }

    /// A job of this market by id (its input unknown: its output is checked only by hash
    /// unless `input` is given).
    #[pyo3(signature = (job_id, input=None))]
    fn job(&self, py: Python<'_>, job_id: u64, input: Option<Vec<u8>>) -> PyResult<Job> {
        Job::load(py, Arc::clone(&self.inner), job_id, input)
    }

    /// Stakes `amount` (ETH or token units) as a provider; returns the transaction hash.
    fn stake(&self, py: Python<'_>, amount: &str) -> PyResult<String> {
        let value = self::amount(amount, true)?;
        self.inner.need_wallet()?;
        let m = &self.inner.market;
        block_on(py, async move {
            Ok(paying(m, "stake", value, m.stake(value)).await?.to_string())
        })
    }

    /// Takes `amount` of free stake out to the wallet; returns the transaction hash.
    fn unstake(&self, py: Python<'_>, amount: &str) -> PyResult<String> {
        let value = self::amount(amount, true)?;
        self.inner.need_wallet()?;
        let m = &self.inner.market;
        block_on(py, async move {
            Ok(m.unstake(value).await.in_unit_of(m)?.to_string())
        })
    }

    /// Withdraws the whole credited balance (payouts, refunds) to the wallet; returns
    /// `(tx hash, amount)`.
    fn withdraw<'py>(&self, py: Python<'py>) -> PyResult<(String, Bound<'py, PyAny>)> {
        self.inner.need_wallet()?;
        let m = &self.inner.market;
        let (tx, amount) = block_on(py, async move {
            let amount = m.balance_of(m.account()).await?;
            let tx = m.withdraw().await.in_unit_of(m)?;
            Ok((tx.to_string(), amount))
        })?;
        Ok((tx, decimal(py, amount)?))
    }

    /// `{"credited": ..., "wallet": ...}` of `address` (default: this account), as Decimals.
    #[pyo3(signature = (address=None))]
    fn balance<'py>(&self, py: Python<'py>, address: Option<&str>) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.inner.market;
        let who = self::address(address, m.account())?;
        let (credited, wallet) = block_on(py, async move {
            Ok((m.balance_of(who).await?, m.wallet_balance(who).await?))
        })?;
        let d = PyDict::new(py);
        d.set_item("credited", decimal(py, credited)?)?;
        d.set_item("wallet", decimal(py, wallet)?)?;
        Ok(d)
    }

    /// A provider's stake and reputation (default: this account): staked, locked, free,
    /// minimum (Decimals), bonded_at, completed, slashed, missed, score.
    #[pyo3(signature = (address=None))]
    fn provider_status<'py>(
        &self,
        py: Python<'py>,
        address: Option<&str>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let m = &self.inner.market;
        let who = self::address(address, m.account())?;
        let (stake, rep, min) = block_on(py, async move {
            Ok((
                m.stake_of(who).await?,
                m.reputation_of(who).await?,
                m.min_stake().await?,
            ))
        })?;
        let d = PyDict::new(py);
        d.set_item("address", who.to_string())?;
        d.set_item("staked", decimal(py, stake.staked)?)?;
        d.set_item("locked", decimal(py, stake.locked)?)?;
        d.set_item(
            "free",
            decimal(py, stake.staked.saturating_sub(stake.locked))?,
        )?;
        d.set_item("minimum", decimal(py, min)?)?;
        d.set_item("bonded_at", stake.bonded_at)?;
        d.set_item("completed", rep.completed)?;
        d.set_item("slashed", rep.slashed)?;
        d.set_item("missed", rep.missed)?;
        d.set_item("score", rep.score)?;
        Ok(d)
    }

    /// Total stake burned by slashes so far (Decimal).
    fn burned<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = &self.inner.market;
        let burned = block_on(py, async move { Ok(m.burned().await?) })?;
        decimal(py, burned)
    }

    fn __repr__(&self) -> String {
        format!(
            "Market(account={}, chain_id={}, escrow={})",
            self.account(),
            self.chain_id(),
            self.escrow()
        )
    }
}
