//! AWS clients for native activities: one SDK configuration per process, loaded on first use
//! (a `worker run` that calls no AWS activity never loads it), with the region an activity asks
//! for.

use aws_config::SdkConfig;
use shared::providers::ActivityError;
use shared::providers::registry::NativeCall;
use tokio::sync::OnceCell;

static SDK: OnceCell<SdkConfig> = OnceCell::const_new();

/// The region the call asks for: its `region` argument, else `configuration.aws_region`.
pub fn region(call: &NativeCall) -> Option<String> {
    call.arguments
        .get("region")
        .or_else(|| call.configuration.get("aws_region"))
        .and_then(|v| v.as_str())
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

async fn sdk() -> &'static SdkConfig {
    SDK.get_or_init(crate::sdk::load).await
}

pub async fn ec2(call: &NativeCall) -> aws_sdk_ec2::Client {
    let mut conf = aws_sdk_ec2::config::Builder::from(sdk().await);
    if let Some(r) = region(call) {
        conf = conf.region(aws_config::Region::new(r));
    }
    aws_sdk_ec2::Client::from_conf(conf.build())
}

/// An SDK error as the activity's failure.
pub fn failed<E, R>(
    what: &str,
    resource: &str,
    e: &aws_sdk_sqs::error::SdkError<E, R>,
) -> ActivityError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    ActivityError::Failed(crate::sdk::explain(
        what,
        resource,
        "the activity's arguments and the AWS credentials",
        e,
    ))
}

pub async fn ssm(call: &NativeCall) -> aws_sdk_ssm::Client {
    let mut conf = aws_sdk_ssm::config::Builder::from(sdk().await);
    if let Some(r) = region(call) {
        conf = conf.region(aws_config::Region::new(r));
    }
    aws_sdk_ssm::Client::from_conf(conf.build())
}

/// A CloudWatch client for the call's region (see [`region`]).
pub async fn cloudwatch(call: &NativeCall) -> aws_sdk_cloudwatch::Client {
    cloudwatch_in(sdk().await, region(call).as_deref())
}

/// A CloudWatch client from `sdk`, in `region` when given (else the configuration's own).
pub fn cloudwatch_in(sdk: &SdkConfig, region: Option<&str>) -> aws_sdk_cloudwatch::Client {
    let mut conf = aws_sdk_cloudwatch::config::Builder::from(sdk);
    if let Some(r) = region.filter(|r| !r.is_empty()) {
        conf = conf.region(aws_config::Region::new(r.to_string()));
    }
    aws_sdk_cloudwatch::Client::from_conf(conf.build())
}

/// The process's shared SDK configuration (loaded on first use).
pub async fn shared_sdk() -> &'static SdkConfig {
    sdk().await
}
