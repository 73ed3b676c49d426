//! Why a worker could not complete a job delivery (the message is then left to come back), and
//! why an experiment's text could not be fetched (that becomes the job's failed journal). The
//! port error or serde error met is kept: whole (`transparent`) for a bare port failure, as the
//! `#[source]` of a variant naming the key otherwise. Messages read as the worker's did before.

use crate::ports::{BusError, StoreError};

/// Why a job delivery could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The store failed (its message names the key).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The completion event could not be published.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The journal stored at `key` cannot be read.
    #[error("{key}: {source}")]
    Journal {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// A journal or checkpoint for `key` cannot be serialised.
    #[error("{source}")]
    Serialise {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The checkpoint at `key` could not be written.
    #[error("checkpoint {key} not written: {source}")]
    Checkpoint {
        key: String,
        #[source]
        source: StoreError,
    },
    /// Another delivery of this message holds the run under `prefix`.
    #[error(
        "run {prefix} is being run by another delivery of this message; leaving it to come back"
    )]
    InFlight { prefix: String },
}

/// Why the text of an experiment could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The store failed (its message names the key).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `what` (`s3://bucket/key (version v)` or `store object key`) does not exist.
    #[error("{what} does not exist")]
    Missing { what: String },
    /// `what` is not UTF-8 text.
    #[error("{what} is not UTF-8 text")]
    NotText { what: String },
    /// The run's own copy of the experiment, at `key`, is not UTF-8 text.
    #[error("the copy of the experiment at {key} is not UTF-8 text")]
    CopyNotText { key: String },
    /// The local file `path` could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
}
