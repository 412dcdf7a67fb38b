//! `Job`: one job of a market, followed, fetched and checked with the consumer flow of
//! `stp job post --wait --output` ([`stp_node::consumer`]).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use alloy::primitives::B256;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use stp_node::cli::job::JobView;
use stp_node::consumer::{self, ConsumerError, Order, Posted, Progress};
use stp_sdk::kernels::{KernelId, kernel_name};
use stp_sdk::market::{JobHistory, Outcome};
use stp_sdk::verify::Verdict;

use crate::market::Inner;
use crate::runtime::block_on;

/// What a job learnt so far.
#[derive(Default)]
struct State {
    /// The settled history, once seen.
    settled: Option<JobHistory>,
    /// The fetched, verified output.
    output: Option<Vec<u8>>,
    /// What was checked (JSON), once the output was fetched.
    receipt: Option<String>,
}

/// One job of a market.
#[pyclass(module = "sharethepower._native", frozen)]
pub struct Job {
    inner: Arc<Inner>,
    job_id: u64,
    /// The block the post was mined in (following starts there).
    from_block: u64,
    kernel: KernelId,
    /// The input, when this process posted it or was given it.
    input: Option<Vec<u8>>,
    state: Mutex<State>,
}

impl Job {
    /// The job just posted from `order`.
    pub(crate) fn posted(inner: Arc<Inner>, posted: &Posted, order: Order) -> Self {
        Self {
            inner,
            job_id: posted.job_id,
            from_block: posted.post_block,
            kernel: order.kernel,
            input: Some(order.input),
            state: Mutex::default(),
        }
    }

    /// Job `job_id` read from the chain; `JobNotFound` if it was never posted. A given
    /// `input` must be the job's (its BLAKE3 hash is the posted input hash).
    pub(crate) fn load(
        py: Python<'_>,
        inner: Arc<Inner>,
        job_id: u64,
        input: Option<Vec<u8>>,
    ) -> PyResult<Self> {
        let m = &inner.market;
        let h = block_on(py, async move { Ok(m.job_history(job_id).await?) })?;
        let Some(spec) = &h.spec else {
            let escrow = inner.market.deployment().job_escrow;
            return Err(crate::errors::to_py(
                ConsumerError::NotPosted { job_id, escrow }.into(),
            ));
        };
        if let Some(input) = &input
            && stp_sdk::p2p::input_hash(input) != spec.inputHash.0
        {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "the input given is not job {job_id}'s input (its BLAKE3 hash differs from the job's inputHash)"
            )));
        }
        let state = State {
            settled: h.outcome.is_some().then(|| h.clone()),
            ..State::default()
        };
        Ok(Self {
            from_block: h.posted_block.unwrap_or(0),
            kernel: KernelId(spec.kernelId.0),
            inner,
            job_id,
            input,
            state: Mutex::new(state),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Follows the job until it is settled (finalizing it once a deadline allows), calling
    /// `progress(message, phase, slots, reveals, replicas)` each poll.
    fn settle(
        &self,
        py: Python<'_>,
        progress: Option<Py<PyAny>>,
        poll: Duration,
    ) -> PyResult<JobHistory> {
        if let Some(h) = &self.state().settled {
            return Ok(h.clone());
        }
        let report = move |p: &Progress| {
            if let Some(cb) = &progress {
                Python::attach(|py| {
                    let args = (
                        p.to_string(),
                        format!("{:?}", p.phase),
                        p.slots,
                        p.reveals,
                        p.replicas,
                    );
                    if let Err(e) = cb.call1(py, args) {
                        e.print(py);
                    }
                });
            }
        };
        let m = &self.inner.market;
        let job = (self.job_id, self.from_block);
        let h = block_on(py, async move {
            consumer::follow(m, job, true, poll, report).await
        })?;
        self.state().settled = Some(h.clone());
        Ok(h)
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Completed => "completed",
        Outcome::NoQuorum => "no_quorum",
        Outcome::Unfilled => "unfilled",
        Outcome::Overturned => "overturned",
    }
}

#[pymethods]
impl Job {
    /// The job id.
    #[getter]
    fn id(&self) -> u64 {
        self.job_id
    }

    /// The kernel's name (`custom` for a custom kernel).
    #[getter]
    fn kernel(&self) -> String {
        kernel_name(&self.kernel).into_owned()
    }

    /// The kernel's 64-hex id.
    #[getter]
    fn kernel_id(&self) -> String {
        self.kernel.to_string()
    }

    /// The input, if known here (posted by this process or given to `Market.job`).
    #[getter]
    fn input<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.input.as_deref().map(|i| PyBytes::new(py, i))
    }

    /// What `stp job status --json` prints for this job, as JSON.
    fn status_json(&self, py: Python<'_>) -> PyResult<String> {
        let m = &self.inner.market;
        let job = (self.job_id, self.from_block);
        block_on(py, async move {
            let h = m.job_history_since(job.0, job.1).await?;
            let now = m.now().await?;
            let view =
                JobView::new(&h, now).ok_or_else(|| eyre::eyre!("job {} vanished", job.0))?;
            Ok(serde_json::to_string(&view)?)
        })
    }

    /// Waits until the job is settled; returns its outcome (`completed`, `no_quorum`,
    /// `unfilled`).
    #[pyo3(signature = (progress=None, poll_secs=0.5))]
    fn wait(
        &self,
        py: Python<'_>,
        progress: Option<Py<PyAny>>,
        poll_secs: f64,
    ) -> PyResult<&'static str> {
        let poll = Duration::from_secs_f64(poll_secs.clamp(0.05, 60.0));
        let h = self.settle(py, progress, poll)?;
        Ok(h.outcome.map_or("settled", |(o, _)| outcome_name(o)))
    }

    /// The agreed output: waits for the settlement, fetches it from the winning providers
    /// over libp2p, checks its hash against the on-chain result and (unless `check` is
    /// false, or the input is unknown) checks it against the input (Freivalds / sampled
    /// recomputation). Raises `NoOutput` or `OutputCheckFailed`.
    #[pyo3(signature = (check=true, progress=None, poll_secs=0.5))]
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        check: bool,
        progress: Option<Py<PyAny>>,
        poll_secs: f64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        if let Some(out) = &self.state().output {
            return Ok(PyBytes::new(py, out));
        }
        let poll = Duration::from_secs_f64(poll_secs.clamp(0.05, 60.0));
        let h = self.settle(py, progress, poll)?;
        let inner = &self.inner;
        let (hash, output) = block_on(py, async {
            let p2p = inner.p2p().await?;
            consumer::fetch_output(&inner.market, p2p, &h).await
        })?;
        let verdict = match (&self.input, check) {
            (Some(input), true) => {
                let (id, kernel) = (self.job_id, self.kernel);
                let v = py.detach(|| consumer::check_output(id, &kernel, input, &output));
                Some(v.map_err(crate::errors::to_py)?)
            }
            _ => None,
        };
        let receipt = receipt(&h, hash, output.len(), verdict.as_ref());
        let bytes = PyBytes::new(py, &output);
        let mut state = self.state();
        state.receipt = Some(receipt.to_string());
        state.output = Some(output);
        Ok(bytes)
    }

    /// What was checked about the fetched output, as JSON (`None` before `fetch`).
    #[getter]
    fn receipt_json(&self) -> Option<String> {
        self.state().receipt.clone()
    }

    fn __repr__(&self) -> String {
        format!("Job(id={}, kernel={})", self.job_id, self.kernel())
    }
}

/// The receipt of a fetched output: the agreement it won, the hash and identity checks
/// done on fetch, and the consumer's own check.
fn receipt(
    h: &JobHistory,
    hash: B256,
    size: usize,
    verdict: Option<&Verdict>,
) -> serde_json::Value {
    let spec = h.spec.as_ref();
    serde_json::json!({
        "job_id": h.job_id,
        "kernel_id": spec.map(|s| s.kernelId),
        "input_hash": spec.map(|s| s.inputHash),
        "replicas": spec.map(|s| s.replicas),
        "quorum": spec.map(|s| s.quorum),
        "outcome": h.outcome.map(|(o, _)| outcome_name(o)),
        "result_hash": hash,
        "agreeing_replicas": h.revealers_of(hash),
        "dissenting_replicas": h.reveals.iter().filter(|(_, r)| *r != hash).map(|(a, _)| *a).collect::<Vec<_>>(),
        "output_size": size,
        "hash_verified": true,
        "identity_verified": true,
        "check": verdict,
    })
}
