//! The object store port on S3: one bucket, keys as the port defines them.
//!
//! Conditional create is `PutObject` with `If-None-Match: *`: S3 answers 412 to every writer but
//! the first. S3 may answer 409 `ConditionalRequestConflict` while a competing conditional write
//! is in flight; that one is retried (the competitor either wins, and the retry gets 412, or
//! fails, and the retry may win).
//!
//! Versioned writes use the ETag as the version: `replace_if` is `PutObject` with `If-Match`,
//! `delete_if` is `DeleteObject` with `If-Match` (both served by S3 for general purpose buckets
//! and by moto); 412 means the object changed, and `NoSuchKey` that it is gone. The same 409
//! retry applies.

use crate::sdk::{ErrorKind, entry_retry, explain};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use backon::BackoffBuilder;
use shared::ports::store::{ObjectStore, StoreError, Version, check_key};

/// An SDK error on `s3://bucket/key`: `Refused` when retrying cannot help (no such bucket,
/// access denied), `Backend` otherwise; `explain`'s sentence as the message, the SDK's error
/// as the source.
fn error<E, R>(bucket: &str, key: &str, what: &str, e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let key = format!("s3://{bucket}/{key}");
    let message = explain(
        what,
        bucket,
        "BROKER_BUCKET (or the bucket named in the s3:// URI)",
        &e,
    );
    let permanent = matches!(
        crate::sdk::error_kind(e.code().unwrap_or("")),
        ErrorKind::AccessDenied | ErrorKind::NotFound
    ) || e.code() == Some("InvalidBucketName");
    let source = Some(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
    if permanent {
        StoreError::Refused {
            key,
            message,
            source,
        }
    } else {
        StoreError::Backend {
            key,
            message,
            source,
        }
    }
}

/// How S3 answered a conditional request that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// 412: the condition does not hold (the key exists, or its ETag differs).
    ConditionFailed,
    /// The key does not exist (`If-Match` on a missing object).
    NoSuchKey,
    /// 409 (`ConditionalRequestConflict`, `OperationAborted`): a competing conditional write is
    /// in flight; retry.
    Conflict,
    /// Anything else: an error to report.
    Other,
}

/// Classify a failed conditional request by its HTTP status and error code. Pure.
fn refusal(status: Option<u16>, code: Option<&str>) -> Refusal {
    match (status, code) {
        (_, Some("PreconditionFailed")) | (Some(412), _) => Refusal::ConditionFailed,
        (_, Some("ConditionalRequestConflict")) | (Some(409), _) => Refusal::Conflict,
        (_, Some("NoSuchKey")) | (Some(404), None) => Refusal::NoSuchKey,
        _ => Refusal::Other,
    }
}

#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: Client, bucket: impl Into<String>) -> S3Store {
        S3Store {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn backend<E, R>(&self, key: &str, what: &str, e: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        error(&self.bucket, key, what, e)
    }

    /// Get an object from any bucket the credentials can read (an experiment named by
    /// `s3://bucket/key` in a suite or a seed-format job).
    pub async fn get_from(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .get_version_from(bucket, key, None)
            .await?
            .map(|(bytes, _)| bytes))
    }

    /// An object's bytes and ETag, from one `GetObject`.
    async fn fetch(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
        Ok(self
            .fetch_at(bucket, key, None)
            .await?
            .map(|(bytes, etag, _)| (bytes, etag)))
    }

    /// One version of an object (`None`: the current one), with the version read. A version
    /// that does not exist is `None`, like a missing key.
    pub async fn get_version_from(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<shared::ports::store::Versioned>, StoreError> {
        Ok(self
            .fetch_at(bucket, key, version)
            .await?
            .map(|(bytes, _, read)| (bytes, read)))
    }

    /// One `GetObject`: the bytes, the ETag and the version id read.
    async fn fetch_at(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<(Vec<u8>, Option<String>, Option<String>)>, StoreError> {
        let uri = format!("s3://{bucket}/{key}");
        let out = match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version.map(str::to_string))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) if version.is_some() && e.code() == Some("NoSuchVersion") => return Ok(None),
            Err(e) => return Err(error(bucket, key, "GetObject", e)),
        };
        let etag = out.e_tag().map(str::to_string);
        let read = out.version_id().map(str::to_string);
        let bytes = out.body.collect().await.map_err(|e| StoreError::Backend {
            key: uri,
            message: format!("reading the object body: {e}"),
            source: Some(Box::new(e)),
        })?;
        Ok(Some((bytes.into_bytes().to_vec(), etag, read)))
    }

    /// Send a conditional request until it is not refused with 409 (a competing conditional
    /// write was in flight), within the entry backoff; other refusals go to the caller.
    async fn conditional<T, E, F, Fut>(
        &self,
        key: &str,
        what: &str,
        send: F,
    ) -> Result<Result<T, Refusal>, StoreError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut delays = entry_retry().build();
        loop {
            let e = match send().await {
                Ok(out) => return Ok(Ok(out)),
                Err(e) => e,
            };
            let status = e.raw_response().map(|r| r.status().as_u16());
            match refusal(status, e.code()) {
                Refusal::Conflict => match delays.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(self.backend(key, what, e)),
                },
                Refusal::Other => return Err(self.backend(key, what, e)),
                r => return Ok(Err(r)),
            }
        }
    }

    fn mismatch(&self, key: &str, expected: &Version) -> StoreError {
        StoreError::VersionMismatch {
            key: format!("s3://{}/{key}", self.bucket),
            expected: expected.as_str().to_string(),
        }
    }
}

impl ObjectStore for S3Store {
    fn own_bucket(&self) -> Option<&str> {
        Some(&self.bucket)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        self.get_from(&self.bucket, key).await
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(|e| self.backend(key, "PutObject", e))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.backend(key, "DeleteObject", e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        let what = "PutObject (If-None-Match)";
        let sent = self
            .conditional(key, what, || {
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .if_none_match("*")
                    .body(ByteStream::from(bytes.to_vec()))
                    .send()
            })
            .await?;
        match sent {
            Ok(_) => Ok(()),
            Err(Refusal::ConditionFailed) => Err(StoreError::AlreadyExists {
                key: key.to_string(),
            }),
            Err(r) => Err(StoreError::Backend {
                key: format!("s3://{}/{key}", self.bucket),
                message: format!("{what} answered {r:?}"),
                source: None,
            }),
        }
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        check_key(key)?;
        match self.fetch(&self.bucket, key).await? {
            None => Ok(None),
            Some((bytes, Some(etag))) => Ok(Some((bytes, Version::new(etag)))),
            Some((_, None)) => Err(StoreError::Backend {
                key: format!("s3://{}/{key}", self.bucket),
                message: "GetObject answered without an ETag, so the object cannot be \
                          replaced conditionally"
                    .into(),
                source: None,
            }),
        }
    }

    async fn replace_if(
        &self,
        key: &str,
        bytes: &[u8],
        version: &Version,
    ) -> Result<Version, StoreError> {
        check_key(key)?;
        let sent = self
            .conditional(key, "PutObject (If-Match)", || {
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .if_match(version.as_str())
                    .body(ByteStream::from(bytes.to_vec()))
                    .send()
            })
            .await?;
        match sent {
            // no ETag in the answer: an empty version, which no conditional write matches
            Ok(out) => Ok(Version::new(out.e_tag().unwrap_or_default())),
            Err(_) => Err(self.mismatch(key, version)),
        }
    }

    async fn delete_if(&self, key: &str, version: &Version) -> Result<(), StoreError> {
        check_key(key)?;
        let sent = self
            .conditional(key, "DeleteObject (If-Match)", || {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .if_match(version.as_str())
                    .send()
            })
            .await?;
        match sent {
            Ok(_) | Err(Refusal::NoSuchKey) => Ok(()),
            Err(_) => Err(self.mismatch(key, version)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.backend(prefix, "ListObjectsV2", e))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        keys.sort();
        Ok(keys)
    }

    async fn get_from_bucket(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_from(bucket, key).await
    }

    async fn get_from_bucket_at(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<shared::ports::store::Versioned>, StoreError> {
        self.get_version_from(bucket, key, version).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_conditional_request_is_classified_by_status_and_code() {
        let table = [
            (
                Some(412),
                Some("PreconditionFailed"),
                Refusal::ConditionFailed,
            ),
            (Some(412), None, Refusal::ConditionFailed),
            (None, Some("PreconditionFailed"), Refusal::ConditionFailed),
            (
                Some(409),
                Some("ConditionalRequestConflict"),
                Refusal::Conflict,
            ),
            (Some(409), None, Refusal::Conflict),
            (Some(409), Some("OperationAborted"), Refusal::Conflict),
            (Some(404), Some("NoSuchKey"), Refusal::NoSuchKey),
            (Some(404), None, Refusal::NoSuchKey),
            (Some(404), Some("NoSuchBucket"), Refusal::Other),
            (Some(403), Some("AccessDenied"), Refusal::Other),
            (Some(500), Some("InternalError"), Refusal::Other),
            (None, None, Refusal::Other),
        ];
        for (status, code, want) in table {
            assert_eq!(refusal(status, code), want, "{status:?} {code:?}");
        }
    }
}
