//! Which adapters back the ports: the embedded defaults (a SQLite file and a directory under
//! one state directory) or AWS (SQS, S3, EventBridge). This is the only place the choice is
//! made; everything above it sees one `Queue`, one `Store` and one `Bus` type.
//!
//! The ports use `async fn` in traits, which are not object-safe, so the choice is an enum per
//! port that forwards each call: static dispatch, no boxing, and a `match` a reader can follow.

use crate::{EventBridgeBus, S3Store, SqsQueue};
use shared::adapters::embedded::{DirStore, SqliteBus, SqliteQueue};
use shared::config::Embedded;
use shared::ports::bus::{BusError, Event, EventBus};
use shared::ports::queue::{DeadLetter, JobQueue, Message, QueueError};
use shared::ports::store::{ObjectStore, StoreError, Version};
use std::path::PathBuf;
use std::time::Duration;

/// What a binary needs from the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Jobs queue, bucket and bus.
    Worker,
    /// Everything: jobs, events (and triggers, when set), bucket and bus.
    Producer,
}

/// Where the AWS backend's resources are (the CloudFormation stack's outputs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsSettings {
    pub jobs_queue_url: String,
    /// Not needed by workers.
    pub events_queue_url: Option<String>,
    pub triggers_queue_url: Option<String>,
    pub bucket: String,
    pub event_bus: String,
}

#[derive(Debug, Clone)]
pub enum Queue {
    Sqlite(SqliteQueue),
    Sqs(SqsQueue),
}

#[derive(Debug, Clone)]
pub enum Store {
    Dir(DirStore),
    S3(S3Store),
}

#[derive(Debug, Clone)]
pub enum Bus {
    Sqlite(SqliteBus),
    EventBridge(EventBridgeBus),
}

/// The ports of one deployment.
#[derive(Debug, Clone)]
pub struct Backend {
    pub jobs: Queue,
    /// The completion events the producer consumes (not opened for workers).
    pub events: Option<Queue>,
    /// Where schedules, S3 upload notifications and pipelines post suites to run (AWS only).
    pub triggers: Option<Queue>,
    pub store: Store,
    pub bus: Bus,
    /// The state directory, on the embedded backend.
    pub state_dir: Option<PathBuf>,
    /// One line for logs: which backend, which resources.
    pub description: String,
}

impl Backend {
    pub async fn local(state_dir: &std::path::Path) -> Result<Backend, String> {
        let e = Embedded::open(state_dir).await?;
        Ok(Backend {
            jobs: Queue::Sqlite(e.jobs),
            events: Some(Queue::Sqlite(e.events)),
            triggers: None,
            store: Store::Dir(e.store),
            bus: Bus::Sqlite(e.bus),
            state_dir: Some(e.state_dir),
            description: format!("embedded backend in {}", state_dir.display()),
        })
    }

    /// Open the AWS resources. The producer's jobs queue knows its dead-letter queue (read
    /// from its redrive policy); the worker's makes no call at all until it receives.
    pub async fn aws(
        settings: &AwsSettings,
        sdk: &aws_config::SdkConfig,
        role: Role,
    ) -> Result<Backend, String> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let jobs = match role {
            Role::Producer => SqsQueue::with_dead_letters(sqs.clone(), &settings.jobs_queue_url)
                .await
                .map_err(|e| e.to_string())?,
            Role::Worker => SqsQueue::new(sqs.clone(), &settings.jobs_queue_url),
        };
        let plain = |url: &Option<String>| {
            url.as_ref()
                .map(|u| Queue::Sqs(SqsQueue::new(sqs.clone(), u)))
        };
        // the producer also handles the events that ran out of receives
        let events = match (&settings.events_queue_url, role) {
            (Some(url), Role::Producer) => Some(Queue::Sqs(
                SqsQueue::with_dead_letters(sqs.clone(), url)
                    .await
                    .map_err(|e| e.to_string())?,
            )),
            (url, _) => plain(url),
        };
        let triggers = plain(&settings.triggers_queue_url);
        Ok(Backend {
            jobs: Queue::Sqs(jobs),
            events,
            triggers,
            store: Store::S3(S3Store::new(crate::sdk::s3_client(sdk), &settings.bucket)),
            bus: Bus::EventBridge(EventBridgeBus::new(
                aws_sdk_eventbridge::Client::new(sdk),
                &settings.event_bus,
            )),
            state_dir: None,
            description: format!(
                "AWS backend: jobs {}, bucket {}, bus {}",
                settings.jobs_queue_url, settings.bucket, settings.event_bus
            ),
        })
    }
}

impl JobQueue for Queue {
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, QueueError> {
        match self {
            Queue::Sqlite(q) => q.send_batch(bodies).await,
            Queue::Sqs(q) => q.send_batch(bodies).await,
        }
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        match self {
            Queue::Sqlite(q) => q.receive(max, visibility, wait).await,
            Queue::Sqs(q) => q.receive(max, visibility, wait).await,
        }
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<(), QueueError> {
        match self {
            Queue::Sqlite(q) => q.extend(receipt, visibility).await,
            Queue::Sqs(q) => q.extend(receipt, visibility).await,
        }
    }

    fn max_lease(&self) -> Option<Duration> {
        match self {
            Queue::Sqlite(q) => q.max_lease(),
            Queue::Sqs(q) => q.max_lease(),
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        match self {
            Queue::Sqlite(q) => q.ack(receipt).await,
            Queue::Sqs(q) => q.ack(receipt).await,
        }
    }

    async fn ack_batch(&self, receipts: &[String]) -> Result<(), QueueError> {
        match self {
            Queue::Sqlite(q) => q.ack_batch(receipts).await,
            Queue::Sqs(q) => q.ack_batch(receipts).await,
        }
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        match self {
            Queue::Sqlite(q) => q.dead_letters().await,
            Queue::Sqs(q) => q.dead_letters().await,
        }
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        match self {
            Queue::Sqlite(q) => q.remove_dead_letter(id).await,
            Queue::Sqs(q) => q.remove_dead_letter(id).await,
        }
    }
}

impl ObjectStore for Store {
    fn own_bucket(&self) -> Option<&str> {
        match self {
            Store::Dir(s) => s.own_bucket(),
            Store::S3(s) => s.own_bucket(),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Dir(s) => s.get(key).await,
            Store::S3(s) => s.get(key).await,
        }
    }

    async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::Dir(s) => s.put(key, bytes).await,
            Store::S3(s) => s.put(key, bytes).await,
        }
    }

    async fn put_if_absent(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match self {
            Store::Dir(s) => s.put_if_absent(key, bytes).await,
            Store::S3(s) => s.put_if_absent(key, bytes).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Store::Dir(s) => s.delete(key).await,
            Store::S3(s) => s.delete(key).await,
        }
    }

    async fn get_versioned(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, StoreError> {
        match self {
            Store::Dir(s) => s.get_versioned(key).await,
            Store::S3(s) => s.get_versioned(key).await,
        }
    }

    async fn replace_if(
        &self,
        key: &str,
        bytes: &[u8],
        version: &Version,
    ) -> Result<Version, StoreError> {
        match self {
            Store::Dir(s) => s.replace_if(key, bytes, version).await,
            Store::S3(s) => s.replace_if(key, bytes, version).await,
        }
    }

    async fn delete_if(&self, key: &str, version: &Version) -> Result<(), StoreError> {
        match self {
            Store::Dir(s) => s.delete_if(key, version).await,
            Store::S3(s) => s.delete_if(key, version).await,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Dir(s) => s.list(prefix).await,
            Store::S3(s) => s.list(prefix).await,
        }
    }

    async fn get_from_bucket(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Dir(s) => s.get_from_bucket(bucket, key).await,
            Store::S3(s) => s.get_from_bucket(bucket, key).await,
        }
    }

    async fn get_from_bucket_at(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<shared::ports::store::Versioned>, StoreError> {
        match self {
            Store::Dir(s) => s.get_from_bucket_at(bucket, key, version).await,
            Store::S3(s) => s.get_from_bucket_at(bucket, key, version).await,
        }
    }
}

impl EventBus for Bus {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        match self {
            Bus::Sqlite(b) => b.publish(event).await,
            Bus::EventBridge(b) => b.publish(event).await,
        }
    }
}
