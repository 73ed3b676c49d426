//! Create a complete broker deployment (queues, bucket, bus, rule, notification) through the
//! AWS APIs, for emulators only (the moto server the tests start): it sets no queue policies,
//! so on a real account S3 could not notify the triggers queue and the rule could not deliver
//! to the events queue. Real deployments use `infra/experiment-broker.yaml`, which sets those
//! policies, encryption and IAM.

use crate::backend::AwsSettings;
use aws_config::SdkConfig;
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::HashMap;

/// A provisioning call that failed: what was being created, with the SDK's error as the source.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{doing}")]
    Aws {
        doing: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0} has no QueueArn")]
    NoQueueArn(String),
}

/// `map_err` for a failed SDK call: keep the error, say what was being done.
fn failed<E: std::error::Error + Send + Sync + 'static>(
    doing: impl Into<String>,
) -> impl FnOnce(E) -> ProvisionError {
    let doing = doing.into();
    move |e| ProvisionError::Aws {
        doing,
        source: Box::new(e),
    }
}

/// The detail types the producer consumes, routed by the rule to the events queue.
pub const ROUTED_DETAIL_TYPES: [&str; 3] =
    ["Experiment Completed", "Wave Released", "Suite Completed"];

/// Create a queue (and a dead-letter queue `<name>-dlq` when `max_receive_count` is given).
pub async fn queue(
    sdk: &SdkConfig,
    name: &str,
    max_receive_count: Option<u32>,
) -> Result<String, ProvisionError> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut attributes = HashMap::new();
    if let Some(max) = max_receive_count {
        let dlq = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .send()
            .await
            .map_err(failed(format!("creating {name}-dlq")))?;
        let dlq_arn = queue_arn(&sqs, dlq.queue_url().unwrap_or_default()).await?;
        attributes.insert(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max}).to_string(),
        );
    }
    let out = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes))
        .send()
        .await
        .map_err(failed(format!("creating queue {name}")))?;
    Ok(out.queue_url().unwrap_or_default().to_string())
}

pub async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String, ProvisionError> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(failed(format!("reading the ARN of {url}")))?;
    attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| ProvisionError::NoQueueArn(url.to_string()))
}

pub async fn bucket(sdk: &SdkConfig, name: &str) -> Result<(), ProvisionError> {
    let s3 = crate::sdk::s3_client(sdk);
    let mut create = s3.create_bucket().bucket(name);
    if let Some(region) = sdk
        .region()
        .map(|r| r.as_ref().to_string())
        .filter(|r| r != "us-east-1")
    {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                    region.as_str(),
                ))
                .build(),
        );
    }
    create
        .send()
        .await
        .map_err(failed(format!("creating bucket {name}")))?;
    // versioned, as infra/ makes it: the producer pins each job to the version it planned
    s3.put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .map_err(failed(format!("enabling versioning on bucket {name}")))?;
    Ok(())
}

/// An event bus (unless it is the default one).
pub async fn bus(sdk: &SdkConfig, name: &str) -> Result<(), ProvisionError> {
    if name == "default" {
        return Ok(());
    }
    aws_sdk_eventbridge::Client::new(sdk)
        .create_event_bus()
        .name(name)
        .send()
        .await
        .map_err(failed(format!("creating event bus {name}")))?;
    Ok(())
}

/// A rule on `bus` sending the broker's events of `detail_types` to the queue at `queue_url`.
pub async fn subscribe(
    sdk: &SdkConfig,
    bus: &str,
    rule: &str,
    detail_types: &[&str],
    queue_url: &str,
) -> Result<(), ProvisionError> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let arn = queue_arn(&aws_sdk_sqs::Client::new(sdk), queue_url).await?;
    let pattern = serde_json::json!({"source": ["experiment-broker"], "detail-type": detail_types});
    events
        .put_rule()
        .name(rule)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .map_err(failed(format!("creating rule {rule}")))?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("queue")
        .arn(arn)
        .build()
        .map_err(failed(format!("building the target of rule {rule}")))?;
    events
        .put_targets()
        .rule(rule)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(failed(format!("targeting {queue_url} from rule {rule}")))?;
    Ok(())
}

/// Send `ObjectCreated` notifications for keys under `suites/` to the triggers queue.
pub async fn notify_uploads(
    sdk: &SdkConfig,
    bucket: &str,
    triggers_url: &str,
) -> Result<(), ProvisionError> {
    use aws_sdk_s3::types::{
        Event, FilterRule, FilterRuleName, NotificationConfiguration,
        NotificationConfigurationFilter, QueueConfiguration, S3KeyFilter,
    };
    let arn = queue_arn(&aws_sdk_sqs::Client::new(sdk), triggers_url).await?;
    let filter = NotificationConfigurationFilter::builder()
        .key(
            S3KeyFilter::builder()
                .filter_rules(
                    FilterRule::builder()
                        .name(FilterRuleName::Prefix)
                        .value("suites/")
                        .build(),
                )
                .build(),
        )
        .build();
    let queue = QueueConfiguration::builder()
        .queue_arn(arn)
        .events(Event::from("s3:ObjectCreated:*"))
        .filter(filter)
        .build()
        .map_err(failed(format!("building the notification of {bucket}")))?;
    crate::sdk::s3_client(sdk)
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(queue)
                .build(),
        )
        .send()
        .await
        .map_err(failed(format!("configuring notifications on {bucket}")))?;
    Ok(())
}

/// Everything a deployment has, named `<prefix>-jobs`, `<prefix>-events`, … (the bucket is
/// `<prefix>-bucket`, so `prefix` must be lowercase and DNS-safe).
pub async fn deployment(sdk: &SdkConfig, prefix: &str) -> Result<AwsSettings, ProvisionError> {
    let jobs = queue(
        sdk,
        &format!("{prefix}-jobs"),
        Some(shared::config::MAX_RECEIVE_COUNT),
    )
    .await?;
    let events = queue(sdk, &format!("{prefix}-events"), Some(5)).await?;
    let triggers = queue(sdk, &format!("{prefix}-triggers"), Some(5)).await?;
    let bucket_name = format!("{prefix}-bucket");
    bucket(sdk, &bucket_name).await?;
    let bus_name = format!("{prefix}-bus");
    bus(sdk, &bus_name).await?;
    subscribe(
        sdk,
        &bus_name,
        &format!("{prefix}-to-events"),
        &ROUTED_DETAIL_TYPES,
        &events,
    )
    .await?;
    notify_uploads(sdk, &bucket_name, &triggers).await?;
    Ok(AwsSettings {
        jobs_queue_url: jobs,
        events_queue_url: Some(events),
        triggers_queue_url: Some(triggers),
        bucket: bucket_name,
        event_bus: bus_name,
    })
}
