//! `stp bench p2p --swarm 1,2,4,8`: one blob from a consumer to N providers at once,
//! through the consumer's uplink shaped to `--uplink-mbit` (a [`NetLab`]: two private
//! network namespaces and `tc tbf`; Linux, root). Without swarming the consumer would
//! upload the blob N times and the time would grow N-fold; with it every provider serves
//! what it verified, and the consumer uploads each chunk about once.

use std::path::Path;
use std::time::{Duration, Instant};

use eyre::WrapErr;
use futures::future::join_all;
use libp2p::identity::Keypair;
use tokio::runtime::Runtime;

use super::{BenchP2pArgs, CpuClock};
use crate::cli::common::out;
use crate::p2p::netlab::{NetLab, Side};
use crate::p2p::{self, P2pClient, P2pConfig, Role};
use stp_sdk::p2p::Naming;

/// Runs the swarm benchmark for every provider count in `args.swarm`.
pub(super) async fn run(args: &BenchP2pArgs, dir: &Path, data: Vec<u8>) -> eyre::Result<()> {
    let lab = NetLab::create("bench", args.uplink_mbit).wrap_err("building the swarm lab")?;
    let consumer_rt = lab.runtime(Side::Consumer, 1)?;
    let providers_rt = lab.runtime(Side::Providers, 2)?;
    let result = run_counts(args, &lab, (&consumer_rt, &providers_rt), dir, data).await;
    consumer_rt.shutdown_background();
    providers_rt.shutdown_background();
    result
}

async fn run_counts(
    args: &BenchP2pArgs,
    lab: &NetLab,
    (consumer_rt, providers_rt): (&Runtime, &Runtime),
    dir: &Path,
    data: Vec<u8>,
) -> eyre::Result<()> {
    let size = data.len() as u64;
    out(format_args!(
        "swarm: {} MiB from a consumer behind a {} Mbit/s uplink to {:?} providers",
        args.size_mib, args.uplink_mbit, args.swarm
    ));
    let mut times = Vec::new();
    for &n in &args.swarm {
        let dir = dir.join(format!("swarm{n}"));
        let consumer = start(args, consumer_rt, lab, Side::Consumer, &dir, "consumer").await?;
        let hash = consumer
            .client
            .add_blob(data.clone(), Naming::Blake3)
            .await?;
        let mut providers = Vec::new();
        for i in 0..n {
            let p = start(
                args,
                providers_rt,
                lab,
                Side::Providers,
                &dir,
                &format!("p{i}"),
            )
            .await?;
            p.client.dial(consumer.addr.clone()).await?;
            providers.push(p);
        }
        let (began, cpu) = (Instant::now(), CpuClock::start());
        let fetches = providers.iter().map(|p| {
            let (client, source) = (p.client.clone(), consumer.client.peer_id());
            async move { client.fetch_blob(hash, vec![source]).await }
        });
        for r in join_all(fetches).await {
            r.wrap_err("a provider's fetch failed")?;
        }
        let took = began.elapsed();
        let uploaded = consumer.client.served_bytes();
        out(format_args!(
            "{n} providers: {:.1} s ({:.0} Mbit/s delivered{}), consumer uploaded {} bytes ({:.2}x the blob)",
            took.as_secs_f64(),
            (n as u64 * size * 8) as f64 / took.as_secs_f64().max(1e-9) / 1e6,
            cpu.used(),
            uploaded,
            uploaded as f64 / size as f64
        ));
        times.push((n, took));
        for p in providers.iter().chain([&consumer]) {
            p.client.shutdown().await;
        }
    }
    if let (Some((lo, t_lo)), Some((hi, t_hi))) = (times.first(), times.last()) {
        out(format_args!(
            "swarm distribution time, {hi} providers / {lo} provider{}: {:.2}",
            if *lo == 1 { "" } else { "s" },
            ratio(*t_hi, *t_lo)
        ));
    }
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

struct Node {
    client: P2pClient,
    addr: libp2p::Multiaddr,
}

/// Starts a node on `rt`, so its sockets live in that runtime's namespace.
async fn start(
    args: &BenchP2pArgs,
    rt: &Runtime,
    lab: &NetLab,
    side: Side,
    dir: &Path,
    name: &str,
) -> eyre::Result<Node> {
    let role = match side {
        Side::Consumer => Role::Consumer,
        Side::Providers => Role::Provider,
    };
    let mut config = P2pConfig::new(Keypair::generate_ed25519(), dir.join(name), role);
    config.listen_addrs = vec![lab.listen_addr(side)];
    config.limits.streams_per_source = args.streams;
    config.limits.max_chunks_per_request = args.chunks_per_request.max(1);
    let client = rt
        .spawn(async move { p2p::spawn(config).await.map(|(client, _, _)| client) })
        .await??;
    let listen = client.listen_addrs().await?;
    let first = listen
        .first()
        .ok_or_else(|| eyre::eyre!("node has no listen address"))?;
    let addr = p2p::with_peer_id(first, client.peer_id());
    Ok(Node { client, addr })
}
