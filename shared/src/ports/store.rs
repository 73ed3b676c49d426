//! The object store port (S3 semantics).
//!
//! Promises, each checked by `crate::contract::store`:
//! - **get/put**: `put` then `get` returns the bytes; `get` of a missing key is `None`; a `put`
//!   replaces the object whole (a reader never sees half of it);
//! - **conditional create**: `put_if_absent` succeeds for exactly one of any number of
//!   concurrent callers, and fails with `AlreadyExists` for the others;
//! - **owned create** ([`create_owned`], built on the two above): a conditional create whose
//!   answer was lost, and whose retry was answered `AlreadyExists`, is recognised as the
//!   caller's own, because the object holds exactly the bytes it sent (each writer puts a
//!   token of its own in them), so a lost answer never turns our write into someone else's;
//! - **list**: keys under a prefix, sorted;
//! - **delete**: the key is gone afterwards; deleting a missing key succeeds;
//! - **versioned writes**: `get_versioned` returns the bytes with their [`Version`];
//!   `replace_if` and `delete_if` act only if the object is still at that version, else fail
//!   with `VersionMismatch`, so of any number of concurrent callers holding one version exactly
//!   one wins (compare-and-swap: an expired lock is taken over by one taker, and a release never
//!   deletes a lock someone else wrote since it was read).
//!
//! Keys are `/`-separated, relative, without `.` or `..` segments.

use std::future::Future;

/// One written state of an object, as `get_versioned` read it: opaque, compared for equality
/// only, meaningful only to the store that issued it (the S3 ETag; on the directory store a
/// digest of the bytes). It changes whenever the bytes change; writing the very same bytes
/// again may give the same version (S3's ETag is the content's MD5), so a value whose writer
/// matters must name its writer (a lock names its owner).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    pub fn new(token: impl Into<String>) -> Version {
        Version(token.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {key} already exists")]
    AlreadyExists { key: String },
    /// A conditional write found the object changed (or gone) since its version was read.
    /// After an ambiguous failure (a retry of a write that may have landed) the caller reads
    /// the object to learn whose write it holds.
    #[error("object {key} changed since it was read (expected version {expected})")]
    VersionMismatch { key: String, expected: String },
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    /// The backend refused for good (no such bucket, access denied): retrying cannot help.
    #[error("object {key}: {message}")]
    Refused {
        key: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
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

    /// The object's bytes and the version they belong to (read together, atomically).
    fn get_versioned(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<(Vec<u8>, Version)>, StoreError>> + Send;
    /// Replace the object with `bytes` only if it is still at `version`; returns the new
    /// version. `VersionMismatch` when it changed or is gone.
    fn replace_if(
        &self,
        key: &str,
        bytes: &[u8],
        version: &Version,
    ) -> impl Future<Output = Result<Version, StoreError>> + Send;
    /// Remove the object only if it is still at `version`: `VersionMismatch` when it changed;
    /// a missing object is not an error (it is gone either way, as with `delete`).
    fn delete_if(
        &self,
        key: &str,
        version: &Version,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The bucket this store's own keys live in, when it is one (the S3 adapter): its objects can
    /// then be read at a version with `get_from_bucket_at`, so a `store:` experiment can be
    /// pinned like an `s3://` one. `None` for stores that keep no versions.
    fn own_bucket(&self) -> Option<&str> {
        None
    }

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
            source: None,
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
            source: None,
        };
        async move { Err(error) }
    }
}

/// What an owned conditional create ([`create_owned`]) found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// This call created the object.
    New,
    /// The object exists and holds exactly our bytes: an earlier attempt of ours landed and
    /// its answer was lost (the SDK's retry was answered "exists"). Carry on as if created.
    Ours,
    /// Another writer's object (its bytes): keep out of its way.
    Theirs(Vec<u8>),
}

impl Created {
    /// Whether the object is ours (created now, or by an attempt whose answer was lost).
    pub fn is_ours(&self) -> bool {
        matches!(self, Created::New | Created::Ours)
    }
}

/// Rounds of create-then-read before giving up on an object that keeps vanishing between the
/// refused create and the read (nothing the broker writes is created and deleted that fast).
const OWNED_CREATE_ROUNDS: usize = 3;

/// Create `key` only if absent, telling our own earlier write apart from another writer's:
/// on `AlreadyExists` the object is read and compared with `bytes`. `bytes` must carry a
/// token unique to this writer (a random delivery token, a unique owner), so that equal bytes
/// mean our own write: S3 answers a retried `PutObject` whose first attempt landed with 412,
/// exactly as it answers a competitor. An object gone between the refusal and the read is
/// created again.
pub async fn create_owned<S: ObjectStore + ?Sized>(
    store: &S,
    key: &str,
    bytes: &[u8],
) -> Result<Created, StoreError> {
    for _ in 0..OWNED_CREATE_ROUNDS {
        match store.put_if_absent(key, bytes).await {
            Ok(()) => return Ok(Created::New),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
        match store.get(key).await? {
            Some(existing) if existing == bytes => return Ok(Created::Ours),
            Some(existing) => return Ok(Created::Theirs(existing)),
            None => continue,
        }
    }
    Err(StoreError::Backend {
        key: key.to_string(),
        message: format!(
            "the object existed on every create and was gone on every read ({OWNED_CREATE_ROUNDS} rounds)"
        ),
        source: None,
    })
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
