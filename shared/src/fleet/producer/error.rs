//! Why a producer operation failed: the port error or serde error it met is kept (a port error
//! as the error itself, `transparent`, so a `{:#}` chain names it once; a serde or I/O error as
//! the `#[source]` of a variant naming the key or file), and the suite run id or key involved is
//! named; each message reads as the text the producer printed before it had types.

use crate::ports::{BusError, QueueError, StoreError};
use std::path::PathBuf;

/// Why a producer operation (submit, a trigger, a completion, a dead letter) failed.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// The store failed (its message names the key).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The jobs or events queue failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The event bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The document at `key` could not be written or read as JSON.
    #[error("{key}: {source}")]
    Json {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    /// The suite run `id` has no plan in the store.
    #[error("no suite run {id}")]
    NoSuiteRun { id: String },
    /// The suite run `id` has a plan but no state.
    #[error("suite run {id} has no state")]
    NoState { id: String },
    /// The suite run `id`'s plan was there a moment ago and is not now.
    #[error("suite run {id} has no plan")]
    NoPlan { id: String },
    /// The suite cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An experiment file of a suite could not be read for upload.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Experiments of the suite cannot finish under the jobs queue's lease limit (one line
    /// each, see `lease_fit`).
    #[error("{}", refused.join("\n"))]
    Unfit { refused: Vec<String> },
}

/// Why a suite cannot be planned: a file reference leaves the place the suite came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// `path` climbs out of the store from the suite at `key`.
    #[error("{path} climbs out of the bucket from {key}")]
    OutOfStore { path: String, key: String },
    /// `path` climbs out of the bucket from the suite at `s3://bucket/key`.
    #[error("{path} climbs out of s3://{bucket}/{key}")]
    OutOfBucket {
        path: String,
        bucket: String,
        key: String,
    },
}
