//! The object store port (S3 semantics).
//!
//! Promises, each checked by `crate::contract::store`:
//! - **get/put**: `put` then `get` returns the bytes; `get` of a missing key is `None`; a `put`
//!   replaces the object whole (a reader never sees half of it);
//! - **conditional create**: `put_if_absent` succeeds for exactly one of any number of
//!   concurrent callers, and fails with `AlreadyExists` for the others;
//! - **list**: keys under a prefix, sorted;
//! - **delete**: the key is gone afterwards; deleting a missing key succeeds.
//!
//! Keys are `/`-separated, relative, without `.` or `..` segments.

use std::future::Future;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {key} already exists")]
    AlreadyExists { key: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// The backend refused for good (no such bucket, access denied): retrying cannot help.
    #[error("object {key}: {message}")]
    Refused { key: String, message: String },
    #[error("object {key}: {message}")]
    Backend {
        key: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// An object's bytes and the version they were read at (`None` when the bucket keeps none).
pub type Versioned = (Vec<u8>, Option<String>);

pub trait ObjectStore: Send + Sync {
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    fn put(&self, key: &str, bytes: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Create the object only if no object has this key.
    fn put_if_absent(
        &self,
        key: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// Remove `key` (a missing key is not an error).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Get an object from another bucket (an experiment named `s3://bucket/key`). Only the S3
    /// adapter can; the others say which backend is needed.
    fn get_from_bucket(
        &self,
        bucket: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send {
        let error = StoreError::Refused {
            key: format!("s3://{bucket}/{key}"),
            message: "an object in S3 needs the AWS backend (--backend aws); the embedded backend \
                      reads files and store: keys"
                .into(),
        };
        async move { Err(error) }
    }

    /// `get_from_bucket` of one version of the object (`None`: the current one), with the
    /// version read (`None` when the bucket keeps none). How a job reads exactly the
    /// experiment its producer pinned. Only the S3 adapter can; the others say which backend
    /// is needed.
    fn get_from_bucket_at(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<Option<Versioned>, StoreError>> + Send {
        let at = version
            .map(|v| format!(" (version {v})"))
            .unwrap_or_default();
        let error = StoreError::Refused {
            key: format!("s3://{bucket}/{key}{at}"),
            message: "an object in S3 needs the AWS backend (--backend aws); the embedded backend \
                      reads files and store: keys"
                .into(),
        };
        async move { Err(error) }
    }
}

/// Reject keys that could escape a directory or mean different things on S3 and on disk.
pub fn check_key(key: &str) -> Result<(), StoreError> {
    let bad = |reason| {
        Err(StoreError::InvalidKey {
            key: key.to_string(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') || key.ends_with('/') {
        return bad("starts or ends with /");
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return bad("has an empty, . or .. segment");
    }
    if key.chars().any(|c| c.is_control()) {
        return bad("has a control character");
    }
    Ok(())
}
