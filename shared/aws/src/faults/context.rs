//! What the fault library's activities share within one process, held in one value the binary
//! builds and the registered activities capture (no process-wide globals): the deployment's
//! guard rails, the store the target locks live in, the SDK configuration (loaded on first use,
//! so a `worker run` that calls no AWS activity never loads it) and the process's clean-up.
//! Also the AWS clients an activity gets, in the region it asks for.

use super::safety::FaultSettings;
use crate::Store;
use aws_config::SdkConfig;
use shared::cleanup::Cleanup;
use shared::providers::ActivityError;
use shared::providers::registry::NativeCall;
use tokio::sync::OnceCell;

/// The fault library's context: one per binary run, shared (`Arc`) by every activity.
#[derive(Debug)]
pub struct FaultContext {
    settings: FaultSettings,
    locks: Store,
    sdk: OnceCell<SdkConfig>,
    cleanup: Cleanup,
}

impl FaultContext {
    /// A context under `settings`, taking target locks in `locks` (the fleet's store, or for a
    /// lone `worker run` `target_locks::lone_store()`), leaving clean-up to `cleanup`.
    pub fn new(settings: FaultSettings, locks: Store, cleanup: Cleanup) -> FaultContext {
        FaultContext {
            settings,
            locks,
            sdk: OnceCell::new(),
            cleanup,
        }
    }

    /// A context for checking experiments, where nothing runs: the default guard rails and the
    /// lone store, so the registry can name and check every activity (`validate`, and the
    /// producer until `run` opens its backend).
    pub fn for_checking(cleanup: Cleanup) -> FaultContext {
        FaultContext::new(
            FaultSettings::default(),
            super::target_locks::lone_store(),
            cleanup,
        )
    }

    /// This context on `sdk` instead of the configuration loaded from the environment (tests
    /// on an emulator, in-process).
    pub fn with_sdk(self, sdk: SdkConfig) -> FaultContext {
        let _ = self.sdk.set(sdk);
        self
    }

    /// The guard rails in force.
    pub fn settings(&self) -> &FaultSettings {
        &self.settings
    }

    /// Where fault actions take their per-target locks.
    pub fn lock_store(&self) -> &Store {
        &self.locks
    }

    /// Where drop guards leave the work they cannot await.
    pub fn cleanup(&self) -> &Cleanup {
        &self.cleanup
    }

    /// The shared SDK configuration, loaded on first use.
    pub async fn sdk(&self) -> &SdkConfig {
        self.sdk.get_or_init(crate::sdk::load).await
    }

    pub async fn ec2(&self, call: &NativeCall) -> aws_sdk_ec2::Client {
        let mut conf = aws_sdk_ec2::config::Builder::from(self.sdk().await);
        if let Some(r) = region(call) {
            conf = conf.region(aws_config::Region::new(r));
        }
        aws_sdk_ec2::Client::from_conf(conf.build())
    }

    pub async fn ssm(&self, call: &NativeCall) -> aws_sdk_ssm::Client {
        let mut conf = aws_sdk_ssm::config::Builder::from(self.sdk().await);
        if let Some(r) = region(call) {
            conf = conf.region(aws_config::Region::new(r));
        }
        aws_sdk_ssm::Client::from_conf(conf.build())
    }

    /// A CloudWatch client for the call's region (see [`region`]).
    pub async fn cloudwatch(&self, call: &NativeCall) -> aws_sdk_cloudwatch::Client {
        cloudwatch_in(self.sdk().await, region(call).as_deref())
    }
}

/// The region the call asks for: its `region` argument, else `configuration.aws_region`.
pub fn region(call: &NativeCall) -> Option<String> {
    call.arguments
        .get("region")
        .or_else(|| call.configuration.get("aws_region"))
        .and_then(|v| v.as_str())
        .filter(|r| !r.is_empty())
        .map(str::to_string)
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

/// A CloudWatch client from `sdk`, in `region` when given (else the configuration's own).
pub fn cloudwatch_in(sdk: &SdkConfig, region: Option<&str>) -> aws_sdk_cloudwatch::Client {
    let mut conf = aws_sdk_cloudwatch::config::Builder::from(sdk);
    if let Some(r) = region.filter(|r| !r.is_empty()) {
        conf = conf.region(aws_config::Region::new(r.to_string()));
    }
    aws_sdk_cloudwatch::Client::from_conf(conf.build())
}
