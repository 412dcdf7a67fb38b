//! `stp bench p2p`: moves one blob between two local nodes over libp2p and the same bytes
//! over a plain TCP socket, `--runs` times in the same process (the ratio printed last is
//! the median), then fetches it from several peers at once. With `--swarm 1,2,4,8` it
//! instead measures swarming through a shaped consumer uplink ([`swarm`]).

mod swarm;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use eyre::WrapErr;
use libp2p::identity::Keypair;
use rand::RngCore;

use crate::cli::common::out;
use crate::p2p::{self, P2pClient, P2pConfig, Role};
use stp_sdk::p2p::Naming;

/// Arguments of `stp bench p2p`.
#[derive(Debug, Clone, Args)]
pub struct BenchP2pArgs {
    /// Blob size in MiB.
    #[arg(long, default_value_t = 256)]
    pub size_mib: usize,
    /// Number of peers in the multi-source fetch (0 skips it).
    #[arg(long, default_value_t = 4)]
    pub sources: usize,
    /// Parallel streams per source peer.
    #[arg(long, default_value_t = 4)]
    pub streams: usize,
    /// Chunks per request on each stream.
    #[arg(long, default_value_t = 16)]
    pub chunks_per_request: u32,
    /// Working directory for the nodes' blob stores (default: a fresh temp dir, removed after).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Single-source runs (each beside its own plain TCP run); the ratio is their median.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Swarm benchmark instead: the blob to each of these numbers of providers at once,
    /// through a consumer uplink shaped to `--uplink-mbit` (Linux network namespaces; root).
    #[arg(long, value_delimiter = ',')]
    pub swarm: Vec<usize>,
    /// Consumer uplink for `--swarm`, Mbit/s.
    #[arg(long, default_value_t = 200)]
    pub uplink_mbit: u32,
}

impl BenchP2pArgs {
    /// Runs the benchmark and prints its figures.
    pub async fn run(self) -> eyre::Result<()> {
        let dir = self.dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("stp-bench-p2p-{}", std::process::id()))
        });
        std::fs::create_dir_all(&dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
        let result = self.run_async(&dir).await;
        if self.dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        result
    }

    async fn run_async(&self, dir: &Path) -> eyre::Result<()> {
        let size = self.size_mib << 20;
        let mut data = vec![0u8; size];
        rand::rng().fill_bytes(&mut data);
        if !self.swarm.is_empty() {
            return swarm::run(self, dir, data).await;
        }
        out(format_args!(
            "blob: {} MiB, {} streams per source, {} chunks per request",
            self.size_mib, self.streams, self.chunks_per_request
        ));
        let source = self.node(dir, "source", Role::Provider).await?;
        let hash = source.add_blob(data.clone(), Naming::Blake3).await?;
        let mut ratios = Vec::new();
        for run in 1..=self.runs.max(1) {
            let cpu = CpuClock::start();
            let tcp = plain_tcp(data.clone())?;
            let tcp_mbs = mbs(size, tcp);
            out(format_args!(
                "run {run}: plain tcp (memory to memory, 1 MiB writes): {tcp_mbs:.0} MB/s ({:.2} s{})",
                tcp.as_secs_f64(),
                cpu.used()
            ));
            let consumer = self
                .node(dir, &format!("consumer{run}"), Role::Consumer)
                .await?;
            consumer.dial(addr_of(&source).await?).await?;
            let (start, cpu) = (Instant::now(), CpuClock::start());
            let report = consumer.fetch_blob(hash, vec![source.peer_id()]).await?;
            let p2p_time = start.elapsed();
            let p2p_cpu = cpu.used();
            eyre::ensure!(
                report.size as usize == size,
                "fetched blob has the wrong size"
            );
            let p2p_mbs = mbs(size, p2p_time);
            out(format_args!(
                "run {run}: p2p (tcp+noise(AES-GCM)+yamux, BLAKE3-named: every byte hashed once as its chunk is verified, written to disk): {p2p_mbs:.0} MB/s ({:.2} s{p2p_cpu})",
                p2p_time.as_secs_f64()
            ));
            ratios.push(p2p_mbs / tcp_mbs);
            consumer.shutdown().await;
        }
        if self.sources > 0 {
            self.multi_source(dir, &data, hash).await?;
        }
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        out(format_args!("p2p/tcp ratio per run: {}", shown.join(", ")));
        out(format_args!(
            "p2p/tcp throughput ratio: {:.2}",
            median(&mut ratios)
        ));
        Ok(())
    }

    async fn multi_source(&self, dir: &Path, data: &[u8], hash: [u8; 32]) -> eyre::Result<()> {
        let size = data.len();
        let mut peers = Vec::new();
        let multi = self.node(dir, "multi", Role::Consumer).await?;
        for i in 0..self.sources {
            let s = self
                .node(dir, &format!("source{i}"), Role::Provider)
                .await?;
            s.add_blob(data.to_vec(), Naming::Blake3).await?;
            multi.dial(addr_of(&s).await?).await?;
            peers.push(s);
        }
        let (start, cpu) = (Instant::now(), CpuClock::start());
        let report = multi
            .fetch_blob(hash, peers.iter().map(|p| p.peer_id()).collect())
            .await?;
        let t = start.elapsed();
        let multi_cpu = cpu.used();
        let split: Vec<String> = report
            .chunks_per_peer
            .iter()
            .map(|(_, n)| n.to_string())
            .collect();
        out(format_args!(
            "p2p multi-source fetch from {} peers: {:.0} MB/s aggregate ({:.2} s{multi_cpu}, chunks per peer: {})",
            self.sources,
            mbs(size, t),
            t.as_secs_f64(),
            split.join("/")
        ));
        Ok(())
    }

    async fn node(&self, dir: &Path, name: &str, role: Role) -> eyre::Result<P2pClient> {
        let mut config = P2pConfig::new(Keypair::generate_ed25519(), dir.join(name), role);
        config.limits.streams_per_source = self.streams;
        config.limits.max_chunks_per_request = self.chunks_per_request.max(1);
        let (client, _events, _handle) = p2p::spawn(config).await?;
        Ok(client)
    }
}

async fn addr_of(client: &P2pClient) -> eyre::Result<libp2p::Multiaddr> {
    let addrs = client.listen_addrs().await?;
    let first = addrs
        .first()
        .ok_or_else(|| eyre::eyre!("node has no listen address"))?;
    Ok(p2p::with_peer_id(first, client.peer_id()))
}

/// Median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn mbs(bytes: usize, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64().max(1e-9) / 1e6
}

/// CPU time used by the whole process (every node, both sides) since `start`, so a figure
/// can be read as CPU cost per byte as well as wall-clock speed on a loaded machine.
pub(crate) struct CpuClock(Option<Duration>);

impl CpuClock {
    pub(crate) fn start() -> Self {
        Self(process_cpu_time())
    }

    /// `", N.NN CPU-s"`, or nothing where the process CPU time cannot be read.
    pub(crate) fn used(&self) -> String {
        match (self.0, process_cpu_time()) {
            (Some(a), Some(b)) => format!(", {:.2} CPU-s", b.saturating_sub(a).as_secs_f64()),
            _ => String::new(),
        }
    }
}

/// User + system CPU time of this process from `/proc/self/stat` (Linux; 10 ms ticks).
fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name start at field 3; utime and stime are
    // fields 14 and 15, in USER_HZ (100 per second) ticks.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Sends `data` over a loopback TCP socket in 1 MiB writes; returns the receive time.
fn plain_tcp(data: Vec<u8>) -> eyre::Result<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let size = data.len();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        for chunk in data.chunks(1 << 20) {
            s.write_all(chunk)?;
        }
        Ok(())
    });
    let (mut conn, _) = listener.accept()?;
    let start = Instant::now();
    let mut buf = vec![0u8; size];
    conn.read_exact(&mut buf)?;
    let t = start.elapsed();
    sender
        .join()
        .map_err(|_| eyre::eyre!("tcp sender thread panicked"))??;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [0.4, 0.2, 0.3]), 0.3);
        assert_eq!(median(&mut [0.4, 0.2, 0.3, 0.1]), 0.25);
    }
}
