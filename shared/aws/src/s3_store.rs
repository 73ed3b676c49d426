//! The object store port on S3: one bucket, keys as the port defines them.
//!
//! Conditional create is `PutObject` with `If-None-Match: *`: S3 answers 412 to every writer but
//! the first. S3 may answer 409 `ConditionalRequestConflict` while a competing conditional write
//! is in flight; that one is retried (the competitor either wins, and the retry gets 412, or
//! fails, and the retry may win).

use crate::sdk::{ErrorKind, entry_retry, explain};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use backon::BackoffBuilder;
use broker::ports::store::{ObjectStore, StoreError, check_key};

/// An SDK error on `s3://bucket/key`: `Refused` when retrying cannot help (no such bucket,
/// access denied), `Backend` otherwise.
fn error<E, R>(bucket: &str, key: &str, what: &str, e: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let key = format!("s3://{bucket}/{key}");
    let message = explain(
        what,
        bucket,
        "BROKER_BUCKET (or the bucket named in the s3:// URI)",
        e,
    );
    let permanent = matches!(
        crate::sdk::error_kind(e.code().unwrap_or("")),
        ErrorKind::AccessDenied | ErrorKind::NotFound
    ) || e.code() == Some("InvalidBucketName");
    if permanent {
        StoreError::Refused { key, message }
    } else {
        StoreError::Backend {
            key,
            message,
            source: None,
        }
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

    fn backend<E, R>(&self, key: &str, what: &str, e: &SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
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

    /// One version of an object (`None`: the current one), with the version read. A version
    /// that does not exist is `None`, like a missing key.
    pub async fn get_version_from(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<broker::ports::store::Versioned>, StoreError> {
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
            Err(e) => return Err(error(bucket, key, "GetObject", &e)),
        };
        let read = out.version_id().map(str::to_string);
        let bytes = out.body.collect().await.map_err(|e| StoreError::Backend {
            key: uri,
            message: format!("reading the object body: {e}"),
            source: None,
        })?;
        Ok(Some((bytes.into_bytes().to_vec(), read)))
    }
}

impl ObjectStore for S3Store {
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
            .map_err(|e| self.backend(key, "PutObject", &e))?;
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
            .map_err(|e| self.backend(key, "DeleteObject", &e))?;
        Ok(())
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        let mut delays = entry_retry().build();
        loop {
            let result = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .body(ByteStream::from(bytes.to_vec()))
                .send()
                .await;
            let e = match result {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let status = e.raw_response().map(|r| r.status().as_u16());
            match (status, e.code()) {
                (Some(412), _) | (_, Some("PreconditionFailed")) => {
                    return Err(StoreError::AlreadyExists {
                        key: key.to_string(),
                    });
                }
                (Some(409), _) | (_, Some("ConditionalRequestConflict")) => match delays.next() {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => {
                        return Err(self.backend(key, "PutObject (If-None-Match)", &e));
                    }
                },
                _ => {
                    return Err(self.backend(key, "PutObject (If-None-Match)", &e));
                }
            }
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
            let page = page.map_err(|e| self.backend(prefix, "ListObjectsV2", &e))?;
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
    ) -> Result<Option<broker::ports::store::Versioned>, StoreError> {
        self.get_version_from(bucket, key, version).await
    }
}
