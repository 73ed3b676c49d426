//! The event bus port on EventBridge: `PutEvents` on a named bus. Subscriptions are rules that
//! target SQS queues; they are infrastructure (`infra/`), not something the adapter creates.
//!
//! EventBridge assigns its own event id and keeps the event's `time`; what arrives on a
//! subscribed queue is the envelope the port promises. A `PutEvents` call can succeed while an
//! entry fails (throttled, internal error): such entries are retried with backoff and jitter.

use crate::sdk::{entry_retry, explain};
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use backon::BackoffBuilder;
use shared::ports::bus::{BusError, Event, EventBus};

#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus: String,
}

impl EventBridgeBus {
    pub fn new(client: Client, bus: impl Into<String>) -> EventBridgeBus {
        EventBridgeBus {
            client,
            bus: bus.into(),
        }
    }

    fn error(&self, message: String) -> BusError {
        BusError::Backend {
            bus: self.bus.clone(),
            message,
            source: None,
        }
    }

    /// `message` says what failed (for the SDK, `explain`'s sentence); `source` is the cause.
    fn failure(
        &self,
        message: String,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> BusError {
        BusError::Backend {
            bus: self.bus.clone(),
            message,
            source: Some(Box::new(source)),
        }
    }
}

/// Entry error codes worth another attempt.
fn retryable(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "InternalFailure" | "InternalException" | "ServiceUnavailable"
    )
}

impl EventBus for EventBridgeBus {
    async fn publish(&self, event: &Event) -> Result<(), BusError> {
        let detail =
            serde_json::to_string(&event.detail).map_err(|e| self.failure(e.to_string(), e))?;
        let time = aws_sdk_eventbridge::primitives::DateTime::from_str(
            &event.time,
            aws_sdk_eventbridge::primitives::DateTimeFormat::DateTimeWithOffset,
        )
        .ok();
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(detail)
            .set_time(time)
            .build();
        let mut delays = entry_retry().build();
        loop {
            let out = self
                .client
                .put_events()
                .entries(entry.clone())
                .send()
                .await
                .map_err(|e| {
                    self.failure(explain("PutEvents", &self.bus, "BROKER_EVENT_BUS", &e), e)
                })?;
            if out.failed_entry_count() == 0 {
                return Ok(());
            }
            let (code, message) = out
                .entries()
                .first()
                .map(|e| {
                    (
                        e.error_code().unwrap_or("").to_string(),
                        e.error_message().unwrap_or("").to_string(),
                    )
                })
                .unwrap_or_default();
            match delays.next() {
                Some(delay) if retryable(&code) => tokio::time::sleep(delay).await,
                _ => {
                    return Err(self.error(format!(
                        "PutEvents rejected the {} event: {code}: {message}",
                        event.detail_type
                    )));
                }
            }
        }
    }
}
