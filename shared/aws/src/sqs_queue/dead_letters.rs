//! The SQS queue's dead letters as a list: the dead-letter queue is found from the redrive
//! policy; what is read from it is leased and its receipts kept, so `remove_dead_letter(id)` can
//! delete by id.

use super::{BATCH, SqsQueue, backend, sdk_failure};
use crate::sdk::explain;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use shared::ports::queue::{DeadLetter, QueueError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the adapter holds a dead letter it has listed before another reader may see it.
const DEAD_LETTER_LEASE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub(super) struct DeadLetterQueue {
    url: String,
    max_receive_count: u32,
    /// Dead letters listed and leased by this adapter, by message id.
    held: Arc<Mutex<HashMap<String, HeldLetter>>>,
}

/// A dead letter this adapter holds a lease on.
#[derive(Debug, Clone)]
struct HeldLetter {
    receipt: String,
    letter: DeadLetter,
    until: Instant,
    /// `SentTimestamp` (ms), for oldest-first order.
    sent: i64,
}

impl SqsQueue {
    /// A queue by URL with its dead letters: the dead-letter queue is found from the queue's
    /// redrive policy (`GetQueueAttributes`, then `GetQueueUrl`).
    pub async fn with_dead_letters(client: Client, url: &str) -> Result<SqsQueue, QueueError> {
        let attrs = client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| {
                sdk_failure(
                    url,
                    explain("GetQueueAttributes", url, "the queue URL", &e),
                    e,
                )
            })?;
        let policy = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy))
            .cloned();
        let dead_letter = match policy {
            None => None,
            Some(text) => {
                let (arn, max_receive_count) = parse_redrive_policy(&text)
                    .map_err(|e| backend(url, format!("redrive policy {text:?}: {e}")))?;
                let name = arn.rsplit(':').next().unwrap_or_default();
                let dlq_url = client
                    .get_queue_url()
                    .queue_name(name)
                    .set_queue_owner_aws_account_id(arn.split(':').nth(4).map(str::to_string))
                    .send()
                    .await
                    .map_err(|e| {
                        sdk_failure(
                            url,
                            explain(
                                "GetQueueUrl",
                                &arn,
                                "the redrive policy's dead-letter queue",
                                &e,
                            ),
                            e,
                        )
                    })?
                    .queue_url
                    .ok_or_else(|| {
                        backend(url, format!("GetQueueUrl returned no URL for {arn}"))
                    })?;
                Some(DeadLetterQueue {
                    url: dlq_url,
                    max_receive_count,
                    held: Arc::default(),
                })
            }
        };
        Ok(SqsQueue {
            dead_letter,
            ..SqsQueue::new(client, url)
        })
    }

    /// The dead-letter queue's URL, when the queue has a redrive policy.
    pub fn dead_letter_url(&self) -> Option<&str> {
        self.dead_letter.as_ref().map(|d| d.url.as_str())
    }

    /// The dead letters, oldest first, each leased for `DEAD_LETTER_LEASE`.
    pub(super) async fn list_dead_letters(&self) -> Result<Vec<DeadLetter>, QueueError> {
        let Some(dlq) = &self.dead_letter else {
            return Ok(Vec::new());
        };
        loop {
            let leased_at = Instant::now();
            let out = self
                .client
                .receive_message()
                .queue_url(&dlq.url)
                .max_number_of_messages(BATCH as i32)
                .visibility_timeout(DEAD_LETTER_LEASE.as_secs() as i32)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .map_err(|e| {
                    sdk_failure(
                        &dlq.url,
                        explain("ReceiveMessage", &dlq.url, "the dead-letter queue", &e),
                        e,
                    )
                })?;
            if out.messages().is_empty() {
                break;
            }
            let mut held = dlq.held.lock().unwrap_or_else(|p| p.into_inner());
            for m in out.messages() {
                let (Some(id), Some(receipt)) = (m.message_id(), m.receipt_handle()) else {
                    continue;
                };
                let sent = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0);
                let letter = DeadLetter {
                    id: id.to_string(),
                    body: m.body().unwrap_or_default().to_string(),
                    // a message reaches the dead-letter queue after exactly this many receives
                    receive_count: dlq.max_receive_count,
                };
                held.insert(
                    id.to_string(),
                    HeldLetter {
                        receipt: receipt.to_string(),
                        letter,
                        until: leased_at + DEAD_LETTER_LEASE,
                        sent,
                    },
                );
            }
        }
        let mut held = dlq.held.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // a lease that ran out may have been taken by another reader: list it again only once
        // it is received again
        held.retain(|_, h| h.until > now);
        let mut letters: Vec<&HeldLetter> = held.values().collect();
        letters.sort_by(|a, b| {
            a.sent
                .cmp(&b.sent)
                .then_with(|| a.letter.id.cmp(&b.letter.id))
        });
        Ok(letters.into_iter().map(|h| h.letter.clone()).collect())
    }

    /// Delete a listed dead letter by its id.
    pub(super) async fn delete_dead_letter(&self, id: &str) -> Result<(), QueueError> {
        let Some(dlq) = &self.dead_letter else {
            return Err(backend(
                &self.url,
                format!("no dead-letter queue, so no dead letter {id}"),
            ));
        };
        let receipt = {
            let held = dlq.held.lock().unwrap_or_else(|p| p.into_inner());
            held.get(id).map(|h| h.receipt.clone())
        };
        let Some(receipt) = receipt else {
            return Err(backend(
                &dlq.url,
                format!("dead letter {id} is not listed; list dead letters first"),
            ));
        };
        self.client
            .delete_message()
            .queue_url(&dlq.url)
            .receipt_handle(&receipt)
            .send()
            .await
            .map_err(|e| {
                sdk_failure(
                    &dlq.url,
                    explain("DeleteMessage", &dlq.url, "the dead-letter queue", &e),
                    e,
                )
            })?;
        dlq.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }
}

/// `{"deadLetterTargetArn": "...", "maxReceiveCount": 3}` (the count may be a string).
pub fn parse_redrive_policy(text: &str) -> Result<(String, u32), String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let arn = v["deadLetterTargetArn"]
        .as_str()
        .filter(|a| a.starts_with("arn:") && a.split(':').count() == 6)
        .ok_or("no deadLetterTargetArn")?
        .to_string();
    let count = match &v["maxReceiveCount"] {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .and_then(|n| u32::try_from(n).ok())
    .ok_or("no maxReceiveCount")?;
    Ok((arn, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redrive_policies_parse_with_numeric_or_string_counts() {
        let arn = "arn:aws:sqs:eu-west-1:123456789012:jobs-dlq";
        for text in [
            format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":3}}"#),
            format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"3"}}"#),
        ] {
            assert_eq!(parse_redrive_policy(&text).unwrap(), (arn.to_string(), 3));
        }
        for bad in [
            "not json",
            r#"{"maxReceiveCount":3}"#,
            r#"{"deadLetterTargetArn":"jobs-dlq","maxReceiveCount":3}"#,
            &format!(r#"{{"deadLetterTargetArn":"{arn}"}}"#),
            &format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":-1}}"#),
        ] {
            assert!(parse_redrive_policy(bad).is_err(), "{bad}");
        }
    }
}
