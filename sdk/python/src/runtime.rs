//! The module's tokio runtime and the one way Python calls wait on it.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::prelude::*;

use crate::errors;

/// The runtime every call runs on; its worker threads keep serving inputs over libp2p
/// between calls.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("stp-runtime")
            .build()
            .expect("the operating system refused to start the runtime's threads")
    })
}

/// How often a blocked call looks for Ctrl-C (Python's signal handlers run only when asked).
const SIGNAL_POLL: Duration = Duration::from_millis(200);

/// Runs `fut` to completion with the GIL released; a Ctrl-C raises `KeyboardInterrupt`
/// (the future is dropped), an error report becomes the matching `StpError` subclass.
pub(crate) fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = eyre::Result<T>> + Send,
{
    block_on_made(py, move || fut)
}

/// [`block_on`] for a future that need not be `Send`: `make` builds it once the GIL is
/// released, and it runs to completion on this thread.
pub(crate) fn block_on_made<T, F>(py: Python<'_>, make: impl FnOnce() -> F + Send) -> PyResult<T>
where
    T: Send,
    F: Future<Output = eyre::Result<T>>,
{
    let outcome = py.detach(|| {
        runtime().block_on(async {
            tokio::select! {
                r = make() => Ok(r),
                e = interrupted() => Err(e),
            }
        })
    })?;
    outcome.map_err(errors::to_py)
}

/// Resolves once Python reports a pending signal's exception (e.g. `KeyboardInterrupt`).
async fn interrupted() -> PyErr {
    loop {
        tokio::time::sleep(SIGNAL_POLL).await;
        if let Err(e) = Python::attach(|py| py.check_signals()) {
            return e;
        }
    }
}

/// Spawns `fut` on the runtime (for work that outlives the call, e.g. shutting a node).
pub(crate) fn spawn<F>(fut: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    runtime().spawn(fut);
}
