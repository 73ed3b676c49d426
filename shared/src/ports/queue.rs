//! The job queue port (SQS semantics).
//!
//! Promises, each checked by `crate::contract::queue`:
//! - **send**: messages are sent in batches and received with their body intact;
//! - **lease**: a received message is invisible to every consumer until its visibility timeout
//!   expires; receive returns at most `max` messages and long-polls up to `wait`;
//! - **extend**: `extend` with the current receipt pushes the expiry out (a heartbeat keeps a
//!   job invisible for as long as it runs), up to `max_lease` from the first receive, if the
//!   queue has such a limit (past it, `LeaseLimit`);
//! - **ack**: `ack` with the current receipt deletes the message for good; `ack_batch` does so
//!   for many at once (SQS: `DeleteMessageBatch`, 10 a request), deleting every message whose
//!   lease still holds even when another's was lost;
//! - **redelivery**: a message whose lease expired is received again, with its receive count
//!   increased;
//! - **dead-letter**: a message received `max_receive_count` times and still not acked is moved
//!   to the dead letters on its next receive, and can be listed and removed from there.

use std::future::Future;
use std::time::Duration;

/// A received message. `receipt` identifies this lease: it changes at every receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: String,
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this time included (1 on first delivery).
    pub receive_count: u32,
}

/// A message that was received too many times without being acked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub id: String,
    pub body: String,
    pub receive_count: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The receipt does not hold a lease any more (it expired and the message was received
    /// again, or it was acked).
    #[error("message lease lost for receipt {receipt}")]
    LeaseLost { receipt: String },
    /// The queue will not extend this lease any further (SQS: 12 hours from the first
    /// receive). Not transient: asking again cannot help, and the lease ends when it ends.
    #[error("queue {queue}: the lease cannot be extended any further ({message})")]
    LeaseLimit {
        queue: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error("queue {queue}: {message}")]
    Backend {
        queue: String,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

pub trait JobQueue: Send + Sync {
    /// Send messages; returns their ids, in order.
    fn send_batch(
        &self,
        bodies: &[String],
    ) -> impl Future<Output = Result<Vec<String>, QueueError>> + Send;

    /// Receive up to `max` messages, each leased for `visibility`; waits up to `wait` for the
    /// first one to arrive.
    fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> impl Future<Output = Result<Vec<Message>, QueueError>> + Send;

    /// Keep a leased message invisible for `visibility` from now.
    fn extend(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// How long a lease can last in all, extensions included, counted from the first receive;
    /// `None` when it can be extended for as long as a job runs (the embedded queue).
    fn max_lease(&self) -> Option<Duration> {
        None
    }

    /// Delete a leased message.
    fn ack(&self, receipt: &str) -> impl Future<Output = Result<(), QueueError>> + Send;

    /// Delete leased messages, as few requests as the queue allows. Every message whose lease
    /// still holds is deleted; `Err` names the first that was not (`LeaseLost` when its lease
    /// was lost).
    fn ack_batch(&self, receipts: &[String])
    -> impl Future<Output = Result<(), QueueError>> + Send;

    /// The dead letters, oldest first.
    fn dead_letters(&self) -> impl Future<Output = Result<Vec<DeadLetter>, QueueError>> + Send;

    /// Remove a dead letter once it has been dealt with.
    fn remove_dead_letter(&self, id: &str) -> impl Future<Output = Result<(), QueueError>> + Send;
}
