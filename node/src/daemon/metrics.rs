//! Prometheus metrics of the provider daemon, served as OpenMetrics text on
//! `GET /metrics` (`stp provider run --metrics 127.0.0.1:9464`).
//!
//! Jobs by phase are read from the job store's per-phase counts at each scrape (no record
//! is decoded), so they are right after a restart; stake and credited earnings are refreshed from the chain by the daemon's loop;
//! GPU busy time, executions, transactions and failed chain polls count from the start.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::store::{JobPhase, JobStore};

/// A label with one value, e.g. `phase="committed"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct PhaseLabel {
    phase: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabel {
    call: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ReasonLabel {
    reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Raises `counter` to `total` (a running count kept elsewhere).
fn raise(counter: &Counter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

/// The daemon's metrics; cheap to clone (shared handles).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    jobs: Family<PhaseLabel, Gauge>,
    stake: FloatGauge,
    locked: FloatGauge,
    credited: FloatGauge,
    gpu_busy: Counter<f64, AtomicU64>,
    executions: Family<OutcomeLabel, Counter>,
    transactions: Family<CallLabel, Counter>,
    refused: Family<ReasonLabel, Counter>,
    poll_failures: Counter,
    served: Counter,
    parts: Family<SourceLabel, Counter>,
    rpc_requests: Counter,
    reorgs: Counter,
}

const PHASES: [JobPhase; 8] = [
    JobPhase::Waiting,
    JobPhase::Fetching,
    JobPhase::Computed,
    JobPhase::Committed,
    JobPhase::Revealed,
    JobPhase::Serving,
    JobPhase::Settled,
    JobPhase::Abandoned,
];

impl Metrics {
    fn registry(&self) -> Registry {
        let mut r = Registry::with_prefix("stp");
        r.register(
            "jobs",
            "Jobs in the node's store, by phase",
            self.jobs.clone(),
        );
        r.register(
            "stake",
            "Bonded stake of the provider account (ETH or token units)",
            self.stake.clone(),
        );
        r.register(
            "stake_locked",
            "Stake locked as collateral of active jobs (ETH or token units)",
            self.locked.clone(),
        );
        r.register(
            "earnings_credited",
            "Earnings and refunds credited and not yet withdrawn (ETH or token units)",
            self.credited.clone(),
        );
        r.register(
            "gpu_busy_seconds",
            "Time spent running kernels",
            self.gpu_busy.clone(),
        );
        r.register(
            "executions",
            "Kernel executions, by outcome",
            self.executions.clone(),
        );
        r.register(
            "transactions",
            "Transactions confirmed, by contract call",
            self.transactions.clone(),
        );
        r.register(
            "jobs_refused",
            "Jobs the node passed on or gave up before committing, by reason",
            self.refused.clone(),
        );
        r.register(
            "p2p_served_bytes",
            "Bytes of inputs and outputs this node uploaded to other peers",
            self.served.clone(),
        );
        r.register(
            "input_parts",
            "Shared input parts (blobs referenced by hash) a job needed, by where they came from",
            self.parts.clone(),
        );
        r.register(
            "rpc_requests",
            "JSON-RPC requests sent to the chain endpoint",
            self.rpc_requests.clone(),
        );
        r.register(
            "chain_reorgs",
            "Chain reorganisations the index rolled back",
            self.reorgs.clone(),
        );
        r.register(
            "chain_poll_failures",
            "Chain polls that failed (RPC unreachable or erroring)",
            self.poll_failures.clone(),
        );
        r
    }

    /// Sets the account gauges (asset units, e.g. ETH).
    pub fn set_account(&self, stake: f64, locked: f64, credited: f64) {
        self.stake.set(stake);
        self.locked.set(locked);
        self.credited.set(credited);
    }

    /// Records one kernel execution that took `secs`.
    pub fn executed(&self, secs: f64, ok: bool) {
        self.gpu_busy.inc_by(secs);
        let outcome = if ok { "ok" } else { "error" };
        self.executions
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Records a job refused or given up before committing, with a short `reason` label
    /// (e.g. `collateral_too_high`, `window_too_short`, `not_drawn`, `input_unavailable`).
    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// Records a confirmed transaction of `call` (commit, reveal, finalize, ...).
    pub fn transaction(&self, call: &str) {
        self.transactions
            .get_or_create(&CallLabel { call: call.into() })
            .inc();
    }

    /// Records a shared input part a job needed: `fetched` over the network, or `cached`
    /// (already in the blob store from an earlier chunk or job).
    pub fn part(&self, source: &str) {
        self.parts
            .get_or_create(&SourceLabel {
                source: source.into(),
            })
            .inc();
    }

    /// Raises the served-bytes counter to `total` (the p2p layer's running count).
    pub fn set_served_bytes(&self, total: u64) {
        raise(&self.served, total);
    }

    /// Raises the RPC request counter to `total` (the market handle's running count).
    pub fn set_rpc_requests(&self, total: u64) {
        raise(&self.rpc_requests, total);
    }

    /// Records a chain reorganisation undone in the index.
    pub fn reorg(&self) {
        self.reorgs.inc();
    }

    /// Records a failed chain poll.
    pub fn poll_failed(&self) {
        self.poll_failures.inc();
    }

    /// Renders every metric as OpenMetrics text, counting jobs from `store` first.
    pub fn render(&self, store: &JobStore) -> String {
        for phase in PHASES {
            let n = store.phase_count(phase).unwrap_or(0);
            let label = format!("{phase:?}").to_lowercase();
            self.jobs
                .get_or_create(&PhaseLabel { phase: label })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry());
        text
    }
}

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` and serves `GET /metrics` until the task is dropped.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    store: Arc<JobStore>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (metrics, store) = (metrics.clone(), store.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let (metrics, store) = (metrics.clone(), store.clone());
                    async move { Ok::<_, Infallible>(respond(&req, &metrics, &store)) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    tracing::debug!(error = %e, "metrics connection ended with an error");
                }
            });
        }
    });
    Ok((local, task))
}

fn respond(req: &Request<Incoming>, metrics: &Metrics, store: &JobStore) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, metrics.render(store)),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::JobRecord;

    #[test]
    fn renders_jobs_by_phase_and_counters() {
        let dir = tempfile::tempdir().unwrap();
        let store = JobStore::open(&dir.path().join("jobs.redb")).unwrap();
        let mut job = JobRecord::accepted(7, Default::default(), (0, 0, Default::default()), None);
        job.advance(JobPhase::Committed);
        store.put(&job).unwrap();
        store
            .put(&JobRecord::accepted(
                8,
                Default::default(),
                (0, 0, Default::default()),
                Some(5),
            ))
            .unwrap();
        let m = Metrics::default();
        m.set_account(1.5, 0.25, 0.03);
        m.executed(0.5, true);
        m.executed(0.25, false);
        m.transaction("commit");
        m.transaction("commit");
        m.refused("not_drawn");
        m.set_served_bytes(4096);
        m.set_served_bytes(1000);
        let text = m.render(&store);
        for line in [
            "stp_jobs{phase=\"committed\"} 1",
            "stp_jobs{phase=\"waiting\"} 1",
            "stp_jobs{phase=\"settled\"} 0",
            "stp_stake 1.5",
            "stp_stake_locked 0.25",
            "stp_earnings_credited 0.03",
            "stp_gpu_busy_seconds_total 0.75",
            "stp_executions_total{outcome=\"error\"} 1",
            "stp_transactions_total{call=\"commit\"} 2",
            "stp_jobs_refused_total{reason=\"not_drawn\"} 1",
            "stp_p2p_served_bytes_total 4096",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
