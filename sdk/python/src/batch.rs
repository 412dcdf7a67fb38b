//! `Market.run_batch`: a workload split into chunk jobs on many providers, failed chunks
//! posted again, the verified outputs aggregated (`stp_node::consumer::batch`, what
//! `stp batch post --wait` runs). Model jobs split by samples, built-in kernels as the CLI
//! splits them; the data every chunk needs (a model, matmul's B) travels once, by hash.

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use stp_node::consumer::Order;
use stp_node::consumer::batch::{self, BatchOrder};
use stp_sdk::batch::{Batch, SplitBy, parts, split};

use crate::market::{Inner, model_work};
use crate::runtime::block_on_made;

/// How to cut the workload: `chunks` even chunks, or `chunk_rows` units (samples, rows of
/// A, messages, pixel rows) each.
pub(crate) fn split_by(chunks: Option<u32>, chunk_rows: Option<u32>) -> PyResult<SplitBy> {
    match (chunks, chunk_rows) {
        (Some(n), None) => Ok(SplitBy::Chunks(n)),
        (None, Some(r)) => Ok(SplitBy::Rows(r)),
        _ => Err(PyValueError::new_err(
            "give exactly one of chunks= (how many chunks) and chunk_rows= (units per chunk)",
        )),
    }
}

/// The batch of `input` (a model job's, or a built-in kernel's whole workload).
fn workload(order: &Order, input: &[u8], by: SplitBy) -> PyResult<Batch> {
    let bad = |e: &dyn std::fmt::Display| PyValueError::new_err(e.to_string());
    match model_work(input)? {
        Some(work) => work.split(by).map_err(|e| bad(&format!("{e:#}"))),
        None => split(&order.kernel, input, by).map_err(|e| bad(&e)),
    }
}

/// Runs the batch to the end; returns its id, the aggregate output and its record (JSON).
pub(crate) fn run(
    py: Python<'_>,
    inner: &Arc<Inner>,
    terms: Order,
    input: &[u8],
    (by, max_attempts, check, poll): (SplitBy, u32, bool, Duration),
) -> PyResult<(u64, Vec<u8>, String)> {
    let batch = workload(&terms, input, by)?;
    let order = BatchOrder {
        shared: parts::share(&batch),
        terms,
        batch,
        max_attempts: max_attempts.max(1),
        verify: check,
        wait: true,
        poll,
    };
    inner.need_wallet()?;
    let inner = Arc::clone(inner);
    let finished = block_on_made(py, || async {
        let p2p = inner.p2p().await?;
        batch::run(
            &inner.market,
            p2p,
            &order,
            inner.consumer_dir(),
            |_, _, _| {},
        )
        .await
    })?;
    let record = serde_json::to_string(&finished.manifest)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    let output = finished.output.ok_or_else(|| {
        crate::errors::StpError::new_err(format!(
            "batch {} ended without every chunk verified; see its record",
            finished.manifest.batch_id
        ))
    })?;
    Ok((finished.manifest.batch_id, output, record))
}
