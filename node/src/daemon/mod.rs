//! The provider daemon (`stp provider run`): chain watcher -> scheduler -> input fetch over
//! libp2p -> executor -> transaction manager, with every job's state in the [`JobStore`].
//!
//! One loop owns the chain side: it polls escrow events (with confirmations, resuming from
//! the last processed block after a restart), decides on new jobs, and sends every
//! transaction itself, so the account has one nonce source. Fetching inputs and running
//! kernels happen in spawned tasks that report back over a bounded channel.
//!
//! Protocol v2: a job is fetched and run before anything is at stake; the commit that takes
//! a slot (and locks collateral) is sent only with the result in hand. Outputs are served
//! only once the job completed with our hash.
//!
//! Crash safety: a job's record is written before its input is fetched, and its result
//! blob, result hash, salt and lane are written and synced before its commit is sent. On
//! start, every active record is reconciled with the chain and carried on from where it
//! stood.

mod backoff;
mod config;
mod driver;
mod gossip;
mod location;
pub mod metrics;
mod parts;
mod prefer;
mod results;
pub mod scheduler;

pub use config::DaemonConfig;
#[cfg(feature = "fault-injection")]
pub use config::Fault;
pub use gossip::{ChainCheck, verdict as gossip_verdict};
pub use location::{encode_input_location, parse_input_location};
pub use metrics::Metrics;
pub use parts::DEFAULT_PART_CACHE_BYTES;

use eyre::WrapErr;
use std::future::Future;
use std::sync::Arc;
use stp_sdk::market::Market;
use stp_sdk::p2p::{Capabilities, ProviderRecord};
use tokio::sync::mpsc;

use crate::exec::{ExecConfig, Executor};
use crate::p2p::{self, P2pConfig, Role};
use crate::store::{JobStore, now_secs};

/// Longest time spent sending due transactions after a shutdown signal.
const WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs the provider daemon until `shutdown` resolves (or a fatal error occurs).
pub async fn run(config: DaemonConfig, shutdown: impl Future<Output = ()>) -> eyre::Result<()> {
    let store = Arc::new(
        JobStore::open(&config.data_dir.join("jobs.redb")).wrap_err("opening the job store")?,
    );
    let market = Market::connect(
        &config.rpc_url,
        config.signer.clone(),
        config.deployment.clone(),
    )
    .await
    .wrap_err_with(|| format!("connecting to the market at {}", config.rpc_url))?;
    let exec_config = ExecConfig::new(config.backend).wrap_err("locating the exec worker")?;
    let executor = Arc::new(
        Executor::new(exec_config)
            .await
            .wrap_err("starting the executor")?,
    );
    let adapter = executor.adapter_info();
    tracing::info!(adapter = %adapter.name, backend = %adapter.backend, "executor ready");

    let keypair = p2p::load_or_create_keypair(&config.data_dir.join("p2p.key"))?;
    let mut p2p_config = P2pConfig::new(keypair, config.data_dir.join("blobs"), Role::Provider);
    p2p_config.listen_addrs = config.listen.clone();
    p2p_config.bootstrap = config.bootstrap.clone();
    p2p_config.limits.max_upload_peers = config.max_upload_peers;
    p2p_config.limits.max_upload_rate = config.max_upload_rate;
    let chain_check = ChainCheck::new(market.clone());
    p2p_config.announcement_check = Arc::new(chain_check.clone());
    let (p2p_client, mut p2p_events, _p2p_task) =
        p2p::spawn(p2p_config).await.wrap_err("starting libp2p")?;
    let addrs = p2p_client.listen_addrs().await?;
    tracing::info!(peer_id = %p2p_client.peer_id(), ?addrs, account = %market.account(), "provider node up");
    let record = ProviderRecord {
        location: p2p::records::to_location(&p2p_client.peer_id(), &addrs),
        eth_address: market.account().into_array(),
        capabilities: Capabilities {
            adapter: adapter.name.clone(),
            backend: adapter.backend.clone(),
            memory_bytes: 0,
            benchmark_score: 0,
            price_floor: config.price_floor.saturating_to(),
        },
        published_at: now_secs(),
        parts: Vec::new(),
    };
    match p2p_client.put_provider_record(&record).await {
        Ok(()) => tracing::info!("provider record published to the DHT"),
        // Held and listed locally; the p2p layer publishes it when a DHT peer connects.
        Err(e @ p2p::P2pError::ProviderRecordNotReplicated(_)) => tracing::info!(%e),
        Err(e) => tracing::warn!(error = %e, "could not publish the provider record"),
    }

    let metrics = Metrics::default();
    let _metrics_task = match config.metrics_addr {
        Some(addr) => {
            let (bound, task) = metrics::serve(addr, metrics.clone(), store.clone())
                .await
                .wrap_err_with(|| format!("serving metrics on {addr}"))?;
            tracing::info!(url = %format!("http://{bound}/metrics"), "metrics endpoint up");
            Some(task)
        }
        None => None,
    };

    let held = results::HeldResults::open(config.data_dir.join("results"))
        .wrap_err("opening the held results directory")?;
    let (results_tx, mut results_rx) = mpsc::channel(64);
    let (steps_tx, mut steps_rx) = mpsc::channel(256);
    let mut driver = driver::Driver::new(
        config, market, store, executor, p2p_client, metrics, results_tx, steps_tx, held,
    );
    driver.advertise_from(record);
    driver.recover().await;
    // The driver returns only with a fatal error; either way, wind down before stopping.
    let stopped = tokio::select! {
        res = driver.run(&mut results_rx, &mut steps_rx, &mut p2p_events, &chain_check) => res,
        () = shutdown => Ok(()),
    };
    match &stopped {
        Ok(()) => {
            tracing::info!("shutting down: sending the commits and reveals that are due first")
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "fatal error; sending the commits and reveals that are due, then stopping")
        }
    }
    if tokio::time::timeout(WIND_DOWN, driver.wind_down(&mut steps_rx))
        .await
        .is_err()
    {
        tracing::warn!("wind-down timed out; the store carries every job to the next start");
    }
    tracing::info!("stopped; in-flight jobs resume from the store on the next start");
    stopped
}
