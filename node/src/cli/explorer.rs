//! `stp explorer`: serves the web explorer (jobs, providers, earnings, network totals,
//! live) from this binary, keeping its own chain index synced in the background.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use eyre::WrapErr;
use libp2p::Multiaddr;

use super::common::{DeploymentArgs, RpcArgs, out, unit};
use crate::explorer::state::SyncStatus;
use crate::explorer::sync::{Syncer, watch_records};
use crate::explorer::{Shared, router};
use crate::p2p::{self, P2pConfig, Role, load_or_create_keypair};
use crate::store::JobStore;

/// Serve a read-only web explorer of the market: jobs (live list, timelines), providers
/// (stake, reputation, earnings chart), network totals. Prints its URL, then serves until
/// Ctrl-C.
///
/// Example: stp explorer --listen 127.0.0.1:8080
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExplorerArgs {
    /// Address to serve on (port 0: any free port; the URL is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the explorer's chain index (one file per market).
    #[arg(long, env = "STP_EXPLORER_INDEX_DIR", default_value = ".stp/explorer")]
    pub index_dir: PathBuf,
    /// Milliseconds between syncs with the chain.
    #[arg(long, default_value_t = 1000)]
    pub poll_ms: u64,
    /// Blocks below the head the index stays (0: include the head).
    #[arg(long, default_value_t = 0)]
    pub confirmations: u64,
    /// libp2p peer (with `/p2p/<peer id>`, repeatable), e.g. a provider node: provider
    /// records (adapter, peer id) are read from the network through it.
    #[arg(long)]
    pub bootstrap: Vec<Multiaddr>,
    /// The chain's JSON-RPC endpoint.
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// The market's deployment file.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

impl ExplorerArgs {
    /// Runs `stp explorer`.
    pub async fn run(self) -> eyre::Result<()> {
        let deployment = self.deployment.load(&self.rpc).await?;
        let path = self.index_dir.join(format!(
            "{}-{}.redb",
            deployment.chain_id, deployment.job_escrow
        ));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        }
        let store = JobStore::open(&path).wrap_err_with(|| {
            format!(
                "opening the explorer's index {} (is another `stp explorer` using it? pass another --index-dir)",
                path.display()
            )
        })?;
        let shared = Shared::new(SyncStatus {
            chain_id: deployment.chain_id,
            escrow: deployment.job_escrow,
            unit: unit(&deployment),
            ..SyncStatus::default()
        });
        let listener = tokio::net::TcpListener::bind(self.listen)
            .await
            .wrap_err_with(|| {
                format!("cannot listen on {} (choose another --listen)", self.listen)
            })?;
        let bound = listener.local_addr()?;
        let syncer = Syncer {
            rpc_url: self.rpc.rpc_url.clone(),
            deployment,
            store,
            poll: Duration::from_millis(self.poll_ms.max(50)),
            confirmations: self.confirmations,
        };
        tokio::spawn(syncer.run(shared.clone()));
        if !self.bootstrap.is_empty() {
            self.spawn_records(&shared).await?;
        }
        out(format!("explorer at http://{bound}/"));
        tracing::info!(url = %format!("http://{bound}/"), "explorer up");
        axum::serve(listener, router(shared))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .wrap_err("serving the explorer")
    }

    /// Joins the p2p network as a client to read provider records.
    async fn spawn_records(&self, shared: &Shared) -> eyre::Result<()> {
        let dir = self.index_dir.join("p2p");
        let keypair = load_or_create_keypair(&dir.join("node.key"))?;
        let mut config = P2pConfig::new(keypair, dir.join("blobs"), Role::Consumer);
        config.listen_addrs = vec!["/ip4/127.0.0.1/tcp/0".parse()?];
        config.bootstrap = self.bootstrap.clone();
        let (client, mut events, _handle) = p2p::spawn(config)
            .await
            .wrap_err("starting the explorer's p2p node")?;
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        tokio::spawn(watch_records(
            client,
            self.bootstrap.clone(),
            shared.clone(),
            Duration::from_secs(2),
        ));
        Ok(())
    }
}
