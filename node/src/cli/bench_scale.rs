//! `stp bench scale`: the load side of `scripts/bench-scale`. Against a running market with
//! provider nodes, several consumers post jobs at a steady rate (1 and 3 replicas mixed),
//! one libp2p node serves their input, and every job is followed through the chain index
//! until it settles. Prints what the engine achieved (a benchmark, not a test).

use std::collections::HashMap;
use std::time::Duration;

use alloy::primitives::{B256, Bytes, U256, aliases::U40, aliases::U96, utils::parse_ether};
use alloy::signers::local::PrivateKeySigner;
use clap::Args;
use eyre::{WrapErr, bail};
use stp_sdk::kernels::{cpu_reference, find_kernel, sample::SplitMix64};
use stp_sdk::market::{EventKind, JobSpec, Market, Outcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::common::{DeploymentArgs, RpcArgs, out, out_json};
use super::job::P2pArgs;
use crate::daemon::encode_input_location;
use crate::store::{JobStore, sync_index};
use stp_sdk::p2p::Naming;

/// `stp bench scale`.
#[derive(Debug, Clone, Args)]
pub struct BenchScaleArgs {
    /// Jobs to post.
    #[arg(long, default_value_t = 1000)]
    pub jobs: u64,
    /// Jobs posted per second, spread over the consumers.
    #[arg(long, default_value_t = 12.0)]
    pub rate: f64,
    /// Every n-th job has 3 replicas, the others 1 (0: all single-replica).
    #[arg(long, default_value_t = 4)]
    pub k3_every: u64,
    /// A consumer's private key (repeat for several consumers).
    #[arg(long = "consumer-key", required = true, value_name = "HEX")]
    pub consumer_keys: Vec<String>,
    /// A provider's metrics address (host:port; repeat), read for its RPC request count.
    #[arg(long = "provider-metrics", value_name = "ADDR")]
    pub provider_metrics: Vec<String>,
    /// Seconds from the post to the commit deadline.
    #[arg(long, default_value_t = 60)]
    pub commit_secs: u64,
    /// Seconds from the commit deadline to the reveal deadline.
    #[arg(long, default_value_t = 30)]
    pub reveal_secs: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// libp2p options for moving inputs and outputs.
    #[command(flatten)]
    pub p2p: P2pArgs,
    /// The chain's JSON-RPC endpoint.
    #[command(flatten)]
    pub rpc: RpcArgs,
    /// The market's deployment file.
    #[command(flatten)]
    pub deployment: DeploymentArgs,
}

/// One posted job as the benchmark follows it.
struct Followed {
    /// Index of the consumer that posted it (it finalizes a job nobody settled).
    consumer: usize,
    post_block: u64,
    finalizing: bool,
    posted: Instant,
    replicas: u8,
    reveal_deadline: u64,
    settled: Option<(Instant, Outcome, bool)>,
}

/// What the run measured.
#[derive(Debug, serde::Serialize)]
struct Figures {
    jobs: u64,
    posted: u64,
    completed: u64,
    lost: u64,
    refunded: u64,
    slashed_jobs: u64,
    jobs_per_minute: f64,
    latency_p50_s: f64,
    latency_p99_s: f64,
    rpc_requests_per_job: f64,
    provider_rpc_requests: u64,
    consumer_rpc_requests: u64,
}

impl BenchScaleArgs {
    /// Runs the load and prints the figures.
    pub async fn run(self) -> eyre::Result<()> {
        if self.rate <= 0.0 || !self.rate.is_finite() {
            bail!("--rate must be a positive number of jobs per second");
        }
        let deployment = self.deployment.load(&self.rpc).await?;
        let mut consumers = Vec::new();
        for key in &self.consumer_keys {
            let signer: PrivateKeySigner = key.parse().wrap_err("--consumer-key")?;
            consumers.push(Market::connect(&self.rpc.rpc_url, signer, deployment.clone()).await?);
        }
        let p2p = self.p2p.spawn().await?;
        let input = matmul_input();
        let kernel = find_kernel("matmul-u32").expect("built-in kernel");
        let output_size = cpu_reference(&kernel.id, &input)?.len() as u64;
        let input_hash = B256::from(p2p.add_blob(input.clone(), Naming::Blake3).await?);
        let addrs = p2p.dialable_addrs().await?;
        let template = JobSpec {
            consumer: consumers[0].account(),
            kernelId: B256::from(kernel.id.0),
            inputHash: input_hash,
            inputSize: input.len() as u64,
            maxOutputSize: output_size,
            bounty: U96::saturating_from(parse_ether("0.001")?),
            collateral: U96::ZERO,
            replicas: 1,
            quorum: 1,
            minReputation: 0,
            commitDeadline: U40::ZERO,
            revealDeadline: U40::ZERO,
            inputLocation: Bytes::from(encode_input_location(&addrs)),
        };
        let result = self.load(&consumers, template).await;
        p2p.shutdown().await;
        let figures = result?;
        if self.json {
            return out_json(&figures);
        }
        out(format!(
            "jobs completed: {} of {}, lost: {}",
            figures.completed, figures.jobs, figures.lost
        ));
        out(format!(
            "jobs settled without a quorum or unfilled (consumer refunded): {}",
            figures.refunded
        ));
        out(format!("jobs per minute: {:.1}", figures.jobs_per_minute));
        out(format!(
            "latency p50/p99: {:.2} s / {:.2} s",
            figures.latency_p50_s, figures.latency_p99_s
        ));
        out(format!(
            "rpc requests per job: {:.1}",
            figures.rpc_requests_per_job
        ));
        Ok(())
    }

    /// Posts the jobs at the steady rate while following them, then waits for the rest.
    async fn load(&self, consumers: &[Market], template: JobSpec) -> eyre::Result<Figures> {
        let dir = std::env::temp_dir().join(format!("stp-bench-scale-{}", std::process::id()));
        let index = JobStore::open(&dir.join("index.redb"))?;
        let result = self.follow(consumers, template, &index).await;
        drop(index);
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    async fn follow(
        &self,
        consumers: &[Market],
        template: JobSpec,
        index: &JobStore,
    ) -> eyre::Result<Figures> {
        let watcher = &consumers[0];
        sync_index(index, watcher, 0).await?;
        let (tx, mut posted_rx) = tokio::sync::mpsc::channel(1024);
        let start = Instant::now();
        let chain_start = watcher.now().await?;
        let every = Duration::from_secs_f64(1.0 / self.rate);
        let mut followed: HashMap<u64, Followed> = HashMap::new();
        let mut failed_posts = 0u64;
        let mut next_post = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let mut post_tick = tokio::time::interval(every);
        let mut in_posting = 0u64;
        loop {
            tokio::select! {
                _ = post_tick.tick(), if next_post < self.jobs => {
                    let i = next_post;
                    next_post += 1;
                    in_posting += 1;
                    let k = if self.k3_every > 0 && i % self.k3_every == self.k3_every - 1 { 3 } else { 1 };
                    let now = chain_start + start.elapsed().as_secs();
                    let mut spec = template.clone();
                    spec.replicas = k;
                    spec.quorum = k / 2 + 1;
                    spec.commitDeadline = U40::from(now + self.commit_secs);
                    spec.revealDeadline = U40::from(now + self.commit_secs + self.reveal_secs);
                    let c = i as usize % consumers.len();
                    let m = consumers[c].clone();
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let at = Instant::now();
                        let reveal = spec.revealDeadline.to::<u64>();
                        let r = m.post_job(spec).await;
                        let _ = tx.send((r, at, (c, k), reveal)).await;
                    });
                }
                Some((r, at, (consumer, k), reveal)) = posted_rx.recv() => {
                    in_posting -= 1;
                    match r {
                        Ok(p) => {
                            followed.insert(p.job_id, Followed {
                                consumer,
                                post_block: p.post_block,
                                finalizing: false,
                                posted: at,
                                replicas: k,
                                reveal_deadline: reveal,
                                settled: None,
                            });
                        }
                        Err(e) => {
                            failed_posts += 1;
                            tracing::warn!(error = %e, "post failed");
                        }
                    }
                }
                _ = tick.tick() => {
                    let update = sync_index(index, watcher, 0).await?;
                    for event in update.events {
                        if let EventKind::Finalized { job_id, outcome, slashed, .. } = event.kind
                            && let Some(f) = followed.get_mut(&job_id)
                        {
                            f.settled = Some((Instant::now(), outcome, slashed > U256::ZERO));
                        }
                    }
                    let done = followed.values().filter(|f| f.settled.is_some()).count() as u64;
                    if next_post >= self.jobs && in_posting == 0 && done + failed_posts >= self.jobs {
                        break;
                    }
                    let chain_now = watcher.now().await?;
                    finalize_expired(consumers, &mut followed, chain_now);
                    if next_post >= self.jobs && in_posting == 0
                        && followed.values().all(|f| f.settled.is_some() || f.reveal_deadline + 30 < chain_now)
                    {
                        break;
                    }
                }
            }
        }
        let provider_rpc = self.provider_rpc_requests().await;
        let consumer_rpc: u64 = consumers.iter().map(Market::rpc_requests).sum();
        Ok(figures(
            self.jobs,
            &followed,
            start,
            provider_rpc,
            consumer_rpc,
        ))
    }

    /// The providers' `stp_rpc_requests_total`, summed.
    async fn provider_rpc_requests(&self) -> u64 {
        let mut total = 0;
        for addr in &self.provider_metrics {
            match scrape(addr, "stp_rpc_requests_total").await {
                Ok(n) => total += n,
                Err(e) => tracing::warn!(%addr, error = %e, "cannot read provider metrics"),
            }
        }
        total
    }
}

fn figures(
    jobs: u64,
    followed: &HashMap<u64, Followed>,
    start: Instant,
    provider_rpc: u64,
    consumer_rpc: u64,
) -> Figures {
    let settled: Vec<_> = followed
        .values()
        .filter_map(|f| f.settled.map(|s| (f, s)))
        .collect();
    let completed: Vec<_> = settled
        .iter()
        .filter(|(_, (_, o, _))| *o == Outcome::Completed)
        .collect();
    let mut latency: Vec<f64> = completed
        .iter()
        .map(|(f, (at, ..))| at.duration_since(f.posted).as_secs_f64())
        .collect();
    latency.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latency
            .get(((latency.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let last = completed
        .iter()
        .map(|(_, (at, ..))| *at)
        .max()
        .unwrap_or(start);
    let minutes = last.duration_since(start).as_secs_f64() / 60.0;
    let slashed = settled.iter().filter(|(_, (.., s))| *s).count() as u64;
    let unsettled = followed.len() as u64 - settled.len() as u64;
    let k3 = followed.values().filter(|f| f.replicas == 3).count();
    tracing::info!(k3, "jobs with 3 replicas");
    Figures {
        jobs,
        posted: followed.len() as u64,
        completed: completed.len() as u64,
        lost: unsettled + slashed + (jobs - followed.len() as u64),
        refunded: settled.len() as u64 - completed.len() as u64,
        slashed_jobs: slashed,
        jobs_per_minute: completed.len() as f64 / minutes.max(f64::MIN_POSITIVE),
        latency_p50_s: pct(0.5),
        latency_p99_s: pct(0.99),
        rpc_requests_per_job: (provider_rpc + consumer_rpc) as f64 / jobs.max(1) as f64,
        provider_rpc_requests: provider_rpc,
        consumer_rpc_requests: consumer_rpc,
    }
}

/// Finalizes, as its consumer, each job past its reveal deadline that nobody settled (an
/// unfilled job whose slots nobody took has no provider to do it): the consumer's refund.
fn finalize_expired(consumers: &[Market], followed: &mut HashMap<u64, Followed>, now: u64) {
    for (id, f) in followed.iter_mut() {
        if f.settled.is_some() || f.finalizing || now <= f.reveal_deadline + 2 {
            continue;
        }
        f.finalizing = true;
        let (m, id, from) = (consumers[f.consumer].clone(), *id, f.post_block);
        tokio::spawn(async move {
            if let Err(e) = m.finalize_since(id, from).await {
                tracing::debug!(job = id, error = %e, "consumer finalize");
            }
        });
    }
}

/// A 16x16x16 matmul-u32 input (the same for every job: providers fetch it once).
fn matmul_input() -> Vec<u8> {
    let mut input = Vec::new();
    for v in [16u32, 16, 16] {
        input.extend_from_slice(&v.to_le_bytes());
    }
    input.extend(SplitMix64::new(7).bytes(2 * 16 * 16 * 4));
    input
}

/// Reads counter `name` from a Prometheus text endpoint at `addr` (plain HTTP/1.0 GET).
async fn scrape(addr: &str, name: &str) -> eyre::Result<u64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| eyre::eyre!("{name} not found at {addr}"))
}
