use std::path::PathBuf;

/// Errors of the provider's job store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error(
        "cannot open the job store at {path}: {source} (is another `stp provider run` using the same --data-dir?)"
    )]
    Open {
        /// The database file.
        path: PathBuf,
        /// What redb reported.
        source: Box<redb::DatabaseError>,
    },
    /// A filesystem operation around the store failed.
    #[error("store directory {path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A read or write transaction failed (disk full, I/O error).
    #[error("job store transaction failed: {0}")]
    Database(Box<redb::Error>),
    /// A record could not be serialised.
    #[error("cannot encode a job record: {0}")]
    Encode(serde_json::Error),
    /// A stored record does not decode: the file was written by an incompatible version.
    #[error("stored record of job {job_id} is unreadable: {source}")]
    Corrupt {
        /// The job whose record is broken.
        job_id: u64,
        /// The decoding error.
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn db(e: impl Into<redb::Error>) -> Self {
        Self::Database(Box::new(e.into()))
    }
}
