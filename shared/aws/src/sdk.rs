//! The AWS SDK configuration every adapter shares, and the one place SDK errors become
//! sentences a user can act on.
//!
//! Retries: the SDK's own standard retry mode (exponential backoff with full jitter on
//! throttling, 5xx and transient network errors), with more attempts than its default because a
//! worker that gives up mid-run leaves a job to redelivery. Partial failures inside a successful
//! batch call (SQS `SendMessageBatch`, EventBridge `PutEvents`) are not retried by the SDK; the
//! adapters retry those entries themselves with `backon` (see [`entry_retry`]).

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;

/// Attempts per AWS call (the first one included).
pub const MAX_ATTEMPTS: u32 = 6;

/// Load the standard AWS configuration: credential chain, `AWS_REGION` / profile, and
/// `AWS_ENDPOINT_URL` (an emulator, a VPC endpoint), with the broker's retry settings.
pub async fn load() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

/// No call may hang: a heartbeat stuck on a dead connection would otherwise never notice its
/// lease ran out. An attempt gets 30 s (a long poll waits up to 20 s), a call with its retries
/// 2 minutes.
pub fn timeout_config() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .read_timeout(Duration::from_secs(30))
        .operation_attempt_timeout(Duration::from_secs(30))
        .operation_timeout(Duration::from_secs(120))
        .build()
}

/// Configuration for an AWS emulator at `endpoint` (the moto server the tests start): fixed
/// test credentials and region, the broker's retry settings.
pub async fn emulator(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "emulator",
        ))
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(10))
}

/// Backoff for entries that a batch call reported as failed but retryable.
pub fn entry_retry() -> backon::ExponentialBuilder {
    backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(MAX_ATTEMPTS as usize - 1)
        .with_jitter()
}

/// The S3 client: path-style addressing when an endpoint override is set for S3
/// (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3`: emulators do not resolve `bucket.host`
/// names), unless `BROKER_S3_PATH_STYLE` says otherwise (`true` or `false`).
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let overridden = sdk.endpoint_url().is_some() || env("AWS_ENDPOINT_URL_S3").is_some();
    let path_style = path_style(env("BROKER_S3_PATH_STYLE").as_deref(), overridden);
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Path-style S3 addressing: as `BROKER_S3_PATH_STYLE` says, else when the endpoint is
/// overridden.
pub fn path_style(setting: Option<&str>, endpoint_overridden: bool) -> bool {
    match setting.map(str::to_ascii_lowercase).as_deref() {
        Some("1" | "true" | "yes") => true,
        Some("0" | "false" | "no") => false,
        _ => endpoint_overridden,
    }
}

/// An SDK error as one line: what failed, on which resource, the service's code and message, and
/// what to check for the two errors users cause themselves (missing permission, wrong name).
pub fn explain<E, R>(
    what: &str,
    resource: &str,
    setting: &str,
    err: &aws_sdk_sqs::error::SdkError<E, R>,
) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    let code = err.code().unwrap_or("");
    let detail = match err.message() {
        Some(m) => format!("{code}: {m}"),
        None if !code.is_empty() => code.to_string(),
        None => aws_sdk_sqs::error::DisplayErrorContext(err).to_string(),
    };
    let hint = match error_kind(code) {
        ErrorKind::AccessDenied => {
            format!(" (access denied: the role needs permission for {what} on {resource})")
        }
        ErrorKind::NotFound => format!(" ({resource} does not exist: check {setting})"),
        ErrorKind::Other => String::new(),
    };
    format!("{what} on {resource} failed: {detail}{hint}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    AccessDenied,
    NotFound,
    Other,
}

/// Classify a service error code (SQS, S3 and EventBridge spell them differently).
pub fn error_kind(code: &str) -> ErrorKind {
    match code {
        "AccessDenied"
        | "AccessDeniedException"
        | "AuthorizationError"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "KMS.AccessDeniedException" => ErrorKind::AccessDenied,
        "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist"
        | "NoSuchBucket"
        | "ResourceNotFoundException"
        | "NotFound" => ErrorKind::NotFound,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_follows_the_setting_then_the_endpoint() {
        for (setting, overridden, expected) in [
            (None, false, false),
            (None, true, true),
            (Some("true"), false, true),
            (Some("TRUE"), false, true),
            (Some("false"), true, false),
            (Some("0"), true, false),
            (Some("maybe"), true, true),
        ] {
            assert_eq!(
                path_style(setting, overridden),
                expected,
                "{setting:?} {overridden}"
            );
        }
    }

    #[test]
    fn codes_are_classified_across_services() {
        for code in [
            "AccessDenied",
            "AccessDeniedException",
            "AuthorizationError",
        ] {
            assert_eq!(error_kind(code), ErrorKind::AccessDenied, "{code}");
        }
        for code in [
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
            "NoSuchBucket",
            "ResourceNotFoundException",
        ] {
            assert_eq!(error_kind(code), ErrorKind::NotFound, "{code}");
        }
        for code in ["ThrottlingException", "InternalError", ""] {
            assert_eq!(error_kind(code), ErrorKind::Other, "{code}");
        }
    }
}
