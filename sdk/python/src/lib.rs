//! # sharethepower (native part)
//!
//! PyO3 bindings of the ShareThePower consumer and provider basics over the Rust crates:
//! everything that encodes, signs, hashes, verifies or moves bytes over libp2p is
//! `stp_sdk` / `stp_node` code; the Python package (`python/sharethepower`) adds NumPy
//! plumbing and a progress display only. Calls block on one tokio runtime owned by the
//! module, with the GIL released and Ctrl-C honoured.

mod batch;
mod errors;
mod job;
mod kernels;
mod market;
mod model;
mod runtime;

use pyo3::prelude::*;

/// The native module `sharethepower._native`.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Errors print as the `stp` CLI prints them (message, then "Caused by").
    stp_node::cli::install_error_report();
    errors::register(m)?;
    kernels::register(m)?;
    model::register(m)?;
    m.add_class::<market::Market>()?;
    m.add_class::<job::Job>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
