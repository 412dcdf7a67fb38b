//! Result blobs held back until their job settles as completed.
//!
//! A provider must not serve its output before the job settled with our hash winning:
//! the result hash is public from the reveal on, and a consumer that forced NoQuorum (one
//! Sybil revealing junk) would otherwise fetch the output for free. So the result blob
//! (the job's identity prefix followed by the output) is written here, outside the p2p
//! blob store, durably before the commit is sent; once the job completes with our hash it
//! moves into the blob store (served from then on), and on any other outcome it is deleted.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The held-back result blobs under `<data-dir>/results/`.
#[derive(Debug, Clone)]
pub(super) struct HeldResults {
    dir: PathBuf,
}

impl HeldResults {
    /// Opens (creating) `dir`.
    pub(super) fn open(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Where job `job_id`'s result blob is held.
    pub(super) fn path(&self, job_id: u64) -> PathBuf {
        self.dir.join(format!("job-{job_id}.blob"))
    }

    /// Writes job `job_id`'s result blob durably (temp file, fsync, rename, fsync of the
    /// directory): after this returns, a crash cannot lose it.
    pub(super) fn hold(&self, job_id: u64, blob: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("job-{job_id}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(blob)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.path(job_id))?;
        sync_dir(&self.dir)
    }

    /// Forgets job `job_id`'s result blob (missing is fine).
    pub(super) fn drop_result(&self, job_id: u64) {
        match std::fs::remove_file(self.path(job_id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(job = job_id, error = %e, "cannot delete a held result"),
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_is_durable_and_drop_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let held = HeldResults::open(dir.path().join("results")).unwrap();
        held.hold(7, b"prefix+output").unwrap();
        assert_eq!(std::fs::read(held.path(7)).unwrap(), b"prefix+output");
        held.hold(7, b"again").unwrap();
        assert_eq!(std::fs::read(held.path(7)).unwrap(), b"again");
        held.drop_result(7);
        held.drop_result(7);
        assert!(!held.path(7).exists());
    }
}
