//! Deliberate misbehaviour for demos and tests (`stp provider run --fault <point>`),
//! compiled in only with the `fault-injection` feature. A build without it has no fault to
//! name: the node is honest and its crash points are gone.

use super::Driver;
#[cfg(feature = "fault-injection")]
use crate::daemon::Fault;
#[cfg(feature = "fault-injection")]
use crate::store::JobPhase;
use crate::store::{JobRecord, StoreError};

#[cfg(feature = "fault-injection")]
impl Driver {
    /// Exits the process here, as `kill -9` would, when the node was started with
    /// `--fault <point>` (nothing is flushed or wound down: that is the point).
    pub(super) fn crash_point(&self, point: Fault) {
        if self.config.fault == Some(point) {
            tracing::warn!(?point, "fault injection: exiting now");
            std::process::exit(137);
        }
    }

    /// Whether this node ignores the draw on purpose (`--fault ignore-draw`).
    pub(super) fn greedy(&self) -> bool {
        self.config.fault == Some(Fault::IgnoreDraw)
    }

    /// Whether this node commits and then never reveals (`--fault no-reveal`).
    pub(super) fn withholds_reveals(&self) -> bool {
        self.config.fault == Some(Fault::NoReveal)
    }

    /// Whether this node corrupts its outputs before hashing them (`--fault wrong-result`).
    pub(super) fn corrupts_results(&self) -> bool {
        self.config.fault == Some(Fault::WrongResult)
    }

    /// Writes `record` to the job store; with `--fault store-fails-at-computed`, fails for
    /// a computed result as a full disk would.
    pub(super) fn write(&self, record: &JobRecord) -> Result<(), StoreError> {
        if self.config.fault == Some(Fault::StoreFailsAtComputed)
            && record.phase == JobPhase::Computed
        {
            return Err(StoreError::Io {
                path: self.config.data_dir.join("jobs.redb"),
                source: std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "no space left on device (fault injection)",
                ),
            });
        }
        self.store.put(record)
    }
}

#[cfg(not(feature = "fault-injection"))]
impl Driver {
    /// Never: this build has no faults.
    pub(super) fn greedy(&self) -> bool {
        false
    }

    /// Never: this build has no faults.
    pub(super) fn withholds_reveals(&self) -> bool {
        false
    }

    /// Writes `record` to the job store.
    pub(super) fn write(&self, record: &JobRecord) -> Result<(), StoreError> {
        self.store.put(record)
    }
}
