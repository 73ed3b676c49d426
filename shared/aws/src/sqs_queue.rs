//! The job queue port on SQS.
//!
//! SQS gives most of the port directly: leases are visibility timeouts, `extend` is
//! `ChangeMessageVisibility`, the receive count is `ApproximateReceiveCount`, dead-lettering is
//! the queue's redrive policy, `ack_batch` is `DeleteMessageBatch`. Two promises need help
//! from this adapter:
//! - **lost leases**: SQS accepts a stale receipt handle for `ChangeMessageVisibility`, so the
//!   adapter remembers when each lease it handed out expires and reports `LeaseLost` for a
//!   receipt whose lease ran out (someone else may hold the message now; the worker must not
//!   act as if it still owned the job); `ack` past the lease is refused the same way;
//! - **dead letters as a list**: the dead-letter queue is itself a queue; the adapter leases what
//!   it reads from it and keeps the receipts, so `remove_dead_letter(id)` can delete by id
//!   (`sqs_queue/dead_letters.rs`).
//!
//! Leases are rounded up to whole seconds (SQS's unit); a lease longer than SQS's 12 hours is
//! refused, not shortened. SQS will not extend a lease past 12 hours from the first receive
//! either (`max_lease`): that refusal is `LeaseLimit`, not a transient error, so the heartbeat
//! stops the run while the lease still holds instead of asking again until it has run out.
//! Long polls are rounded down (a wait is "up to") and capped at 20 s, SQS's maximum.

use crate::sdk::{entry_retry, explain};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use backon::BackoffBuilder;
use shared::ports::queue::{DeadLetter, JobQueue, Message, QueueError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod dead_letters;
use dead_letters::DeadLetterQueue;
pub use dead_letters::parse_redrive_policy;

/// SQS's batch limit.
const BATCH: usize = 10;
/// SQS's longest lease, which is also as far as a lease can be extended from the first receive.
pub const MAX_LEASE_SECONDS: u64 = 43_200;

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter: Option<DeadLetterQueue>,
    leases: Arc<Mutex<HashMap<String, Instant>>>,
}

impl SqsQueue {
    /// A queue by URL, for sending and receiving only (`dead_letters` is empty): no call is
    /// made, so a worker needs no permission beyond receive, extend and delete.
    pub fn new(client: Client, url: &str) -> SqsQueue {
        SqsQueue {
            client,
            url: url.to_string(),
            dead_letter: None,
            leases: Arc::default(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// One `SendMessageBatch` of the `pending` entries of `chunk` (entry ids are indexes).
    async fn send_once(
        &self,
        chunk: &[String],
        pending: &[usize],
    ) -> Result<BatchOutcome, QueueError> {
        let entries = pending
            .iter()
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&chunk[*i])
                    .build()
                    .map_err(|e| sdk_failure(&self.url, e.to_string(), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                sdk_failure(
                    &self.url,
                    explain("SendMessageBatch", &self.url, "the queue URL", &e),
                    e,
                )
            })?;
        Ok(BatchOutcome {
            sent: out
                .successful()
                .iter()
                .filter_map(|ok| Some((ok.id().parse().ok()?, ok.message_id().to_string())))
                .collect(),
            failed: out
                .failed()
                .iter()
                .map(|f| format!("{}: {}", f.code(), f.message().unwrap_or("")))
                .collect(),
            permanent: out.failed().iter().any(|f| f.sender_fault()),
        })
    }

    fn lease_expired(&self, receipt: &str) -> bool {
        let leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        leases
            .get(receipt)
            .is_some_and(|until| *until <= Instant::now())
    }

    fn remember_lease(&self, receipt: &str, until: Instant) {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        // forget leases that ran out long ago, so the map stays as small as the work in flight
        let now = Instant::now();
        leases.retain(|_, t| *t + Duration::from_secs(3600) > now);
        leases.insert(receipt.to_string(), until);
    }

    fn forget_lease(&self, receipt: &str) {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        leases.remove(receipt);
    }
}

struct BatchOutcome {
    sent: Vec<(usize, String)>,
    failed: Vec<String>,
    /// SQS blamed the request (too big, invalid characters): retrying cannot help.
    permanent: bool,
}

/// When a lease granted by a response that arrived at `arrived` ends, on this machine's clock.
/// SQS starts the visibility timeout when it hands the message out, which is before the
/// response arrives (a long poll may have waited up to 20 s before that, which must not count),
/// so the end is taken a little early: by the network's share, bounded by a quarter of the
/// lease.
pub fn lease_end(arrived: Instant, visibility_secs: i32) -> Instant {
    let lease = Duration::from_secs(visibility_secs.max(0) as u64);
    arrived + lease - (lease / 4).min(Duration::from_millis(500))
}

/// Whole seconds, rounded up, within SQS's limits.
pub fn whole_seconds(d: Duration, max: u64) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.min(max).min(i32::MAX as u64) as i32
}

/// A lease in whole seconds; longer than SQS's maximum is refused, not silently shortened (a
/// worker would otherwise renew a lease it believes longer than it is).
fn lease_seconds(queue: &str, d: Duration) -> Result<i32, QueueError> {
    let secs = whole_seconds(d, u64::MAX);
    if secs as u64 > MAX_LEASE_SECONDS {
        return Err(backend(
            queue,
            format!(
                "a lease of {} s is longer than SQS allows ({MAX_LEASE_SECONDS} s)",
                d.as_secs_f64()
            ),
        ));
    }
    Ok(secs)
}

fn backend(queue: &str, message: String) -> QueueError {
    QueueError::Backend {
        queue: queue.to_string(),
        message,
        source: None,
    }
}

/// An error of the SDK as the port's: `message` (`explain`'s sentence) says what failed, the
/// SDK's error stays the source.
fn sdk_failure(
    queue: &str,
    message: String,
    source: impl std::error::Error + Send + Sync + 'static,
) -> QueueError {
    QueueError::Backend {
        queue: queue.to_string(),
        message,
        source: Some(Box::new(source)),
    }
}

impl JobQueue for SqsQueue {
    async fn send_batch(&self, bodies: &[String]) -> Result<Vec<String>, QueueError> {
        let mut ids = Vec::with_capacity(bodies.len());
        for chunk in bodies.chunks(BATCH) {
            let mut sent: Vec<Option<String>> = vec![None; chunk.len()];
            // retry only the entries SQS reported as failed on its side
            let mut delays = entry_retry().build();
            loop {
                let pending: Vec<usize> = (0..chunk.len()).filter(|i| sent[*i].is_none()).collect();
                let outcome = self.send_once(chunk, &pending).await?;
                for (i, id) in outcome.sent {
                    if let Some(slot) = sent.get_mut(i) {
                        *slot = Some(id);
                    }
                }
                if outcome.failed.is_empty() {
                    break;
                }
                match delays.next() {
                    Some(delay) if !outcome.permanent => tokio::time::sleep(delay).await,
                    _ => {
                        return Err(backend(
                            &self.url,
                            format!(
                                "SendMessageBatch rejected {} message(s): {}",
                                outcome.failed.len(),
                                outcome.failed.join("; ")
                            ),
                        ));
                    }
                }
            }
            ids.extend(sent.into_iter().flatten());
        }
        Ok(ids)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let max = max.clamp(1, BATCH) as i32;
        let lease = lease_seconds(&self.url, visibility)?;
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max)
            .visibility_timeout(lease)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| {
                sdk_failure(
                    &self.url,
                    explain("ReceiveMessage", &self.url, "the queue URL", &e),
                    e,
                )
            })?;
        let until = lease_end(Instant::now(), lease);
        let mut messages = Vec::new();
        for m in out.messages() {
            let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
                continue;
            };
            let receive_count = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            self.remember_lease(receipt, until);
            messages.push(Message {
                id: id.to_string(),
                receipt: receipt.to_string(),
                body: m.body().unwrap_or_default().to_string(),
                receive_count,
            });
        }
        Ok(messages)
    }

    async fn extend(&self, receipt: &str, visibility: Duration) -> Result<(), QueueError> {
        if self.lease_expired(receipt) {
            return Err(QueueError::LeaseLost {
                receipt: receipt.to_string(),
            });
        }
        let secs = lease_seconds(&self.url, visibility)?;
        let from = Instant::now();
        match self
            .client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs)
            .send()
            .await
        {
            Ok(_) => {
                self.remember_lease(receipt, from + Duration::from_secs(secs as u64));
                Ok(())
            }
            Err(e) => match refusal(&e) {
                Some(Refusal::LeaseGone) => Err(QueueError::LeaseLost {
                    receipt: receipt.to_string(),
                }),
                Some(Refusal::LeaseLimit) => Err(QueueError::LeaseLimit {
                    queue: self.url.clone(),
                    message: format!(
                        "SQS keeps a message for at most {MAX_LEASE_SECONDS} s from its first \
                         receive: {}",
                        aws_sdk_sqs::error::ProvideErrorMetadata::message(&e).unwrap_or("")
                    ),
                    source: Some(Box::new(e)),
                }),
                None => Err(sdk_failure(
                    &self.url,
                    explain("ChangeMessageVisibility", &self.url, "the queue URL", &e),
                    e,
                )),
            },
        }
    }

    async fn ack(&self, receipt: &str) -> Result<(), QueueError> {
        // past its lease the message may be another worker's: deleting it with a stale receipt
        // would either do nothing or take it from under them
        if self.lease_expired(receipt) {
            return Err(QueueError::LeaseLost {
                receipt: receipt.to_string(),
            });
        }
        match self
            .client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => {
                self.forget_lease(receipt);
                Ok(())
            }
            Err(e) if refusal(&e) == Some(Refusal::LeaseGone) => Err(QueueError::LeaseLost {
                receipt: receipt.to_string(),
            }),
            Err(e) => Err(sdk_failure(
                &self.url,
                explain("DeleteMessage", &self.url, "the queue URL", &e),
                e,
            )),
        }
    }

    async fn ack_batch(&self, receipts: &[String]) -> Result<(), QueueError> {
        // as `ack`: a receipt past its lease is not sent
        let mut lost: Option<String> = None;
        let live: Vec<&String> = receipts
            .iter()
            .filter(|r| {
                let expired = self.lease_expired(r);
                if expired && lost.is_none() {
                    lost = Some(r.to_string());
                }
                !expired
            })
            .collect();
        let mut failure: Option<QueueError> = None;
        for chunk in live.chunks(BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r.as_str())
                        .build()
                        .map_err(|e| sdk_failure(&self.url, e.to_string(), e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    sdk_failure(
                        &self.url,
                        explain("DeleteMessageBatch", &self.url, "the queue URL", &e),
                        e,
                    )
                })?;
            for ok in out.successful() {
                if let Some(r) = ok.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) {
                    self.forget_lease(r);
                }
            }
            for f in out.failed() {
                let Some(r) = f.id().parse::<usize>().ok().and_then(|i| chunk.get(i)) else {
                    continue;
                };
                let e = match classify(Some(f.code()), f.message().unwrap_or("")) {
                    Some(Refusal::LeaseGone) => QueueError::LeaseLost {
                        receipt: r.to_string(),
                    },
                    _ => backend(
                        &self.url,
                        format!(
                            "DeleteMessageBatch: {}: {}",
                            f.code(),
                            f.message().unwrap_or("")
                        ),
                    ),
                };
                failure.get_or_insert(e);
            }
        }
        match (lost, failure) {
            (Some(receipt), _) => Err(QueueError::LeaseLost { receipt }),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(()),
        }
    }

    fn max_lease(&self) -> Option<Duration> {
        Some(Duration::from_secs(MAX_LEASE_SECONDS))
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        self.list_dead_letters().await
    }

    async fn remove_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        self.delete_dead_letter(id).await
    }
}

/// Why SQS refused a receipt, when that is final rather than transient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The receipt no longer holds the message (expired, received again, deleted).
    LeaseGone,
    /// The lease cannot be extended past 12 hours from the first receive.
    LeaseLimit,
}

fn refusal<E: aws_sdk_sqs::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_sqs::error::SdkError<E, R>,
) -> Option<Refusal> {
    use aws_sdk_sqs::error::ProvideErrorMetadata;
    classify(e.code(), e.message().unwrap_or(""))
}

/// The decision behind `refusal`, from SQS's error code and message. Pure.
fn classify(code: Option<&str>, message: &str) -> Option<Refusal> {
    match code? {
        "ReceiptHandleIsInvalid"
        | "AWS.SimpleQueueService.MessageNotInflight"
        | "MessageNotInflight" => Some(Refusal::LeaseGone),
        // "Value 43200 for parameter VisibilityTimeout is invalid. Reason: Total
        // VisibilityTimeout for the message is beyond the limit [43200 seconds]"
        "InvalidParameterValue" if message.contains("beyond the limit") => {
            Some(Refusal::LeaseLimit)
        }
        // a timeout SQS does not take at all: the request was wrong, the lease is unchanged
        "InvalidParameterValue"
            if message.contains("VisibilityTimeout")
                || message.to_ascii_lowercase().contains("visibility timeout") =>
        {
            None
        }
        // "... for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
        "InvalidParameterValue" => Some(Refusal::LeaseGone),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds_within_limits() {
        assert_eq!(whole_seconds(Duration::ZERO, 20), 0);
        assert_eq!(whole_seconds(Duration::from_millis(1), 20), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1000), 20), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001), 20), 2);
        assert_eq!(whole_seconds(Duration::from_secs(60), 20), 20);
        assert_eq!(whole_seconds(Duration::from_secs(u64::MAX), 43_200), 43_200);
    }

    #[test]
    fn sqs_refusals_are_told_apart_by_code_and_message() {
        use Refusal::*;
        for (code, message, expected) in [
            (
                Some("ReceiptHandleIsInvalid"),
                "The input receipt handle is invalid.",
                Some(LeaseGone),
            ),
            (
                Some("AWS.SimpleQueueService.MessageNotInflight"),
                "",
                Some(LeaseGone),
            ),
            (Some("MessageNotInflight"), "", Some(LeaseGone)),
            (
                Some("InvalidParameterValue"),
                "Value AQEB for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.",
                Some(LeaseGone),
            ),
            (
                Some("InvalidParameterValue"),
                "Value 43200 for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
                Some(LeaseLimit),
            ),
            (
                Some("InvalidParameterValue"),
                "Invalid request, maximum visibility timeout is 43200",
                None,
            ),
            (
                Some("InvalidParameterValue"),
                "Value -1 for parameter VisibilityTimeout is invalid.",
                None,
            ),
            (Some("ThrottlingException"), "Rate exceeded", None),
            (Some("InternalError"), "beyond the limit", None),
            (None, "beyond the limit", None),
        ] {
            assert_eq!(classify(code, message), expected, "{code:?}: {message}");
        }
    }

    #[test]
    fn a_lease_longer_than_sqs_allows_is_refused_not_shortened() {
        for (secs, ok) in [
            (0.5, Some(1)),
            (43_200.0, Some(43_200)),
            (43_199.5, Some(43_200)),
            (43_200.001, None),
            (86_400.0, None),
            (1e12, None),
        ] {
            let got = lease_seconds("q", Duration::from_secs_f64(secs)).ok();
            assert_eq!(got, ok, "{secs}");
        }
        let e = lease_seconds("q", Duration::from_secs(86_400)).unwrap_err();
        assert!(
            e.to_string()
                .contains("a lease of 86400 s is longer than SQS allows (43200 s)"),
            "{e}"
        );
    }

    #[test]
    fn a_lease_ends_one_visibility_after_the_response_less_a_bounded_margin() {
        let t = Instant::now();
        assert_eq!(lease_end(t, 0), t);
        assert_eq!(lease_end(t, 1), t + Duration::from_millis(750));
        assert_eq!(lease_end(t, 2), t + Duration::from_millis(1500));
        assert_eq!(lease_end(t, 60), t + Duration::from_millis(59_500));
    }
}
