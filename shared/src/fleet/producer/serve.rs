//! The producer's loop: dead letters drained, triggers submitted, completion events handled
//! (and acked only once handled) until stopped.

use super::ProducerPorts;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use crate::ports::{Event, EventBus};
use std::time::Duration;

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Consume events until `stop`; calls `on_end` for every suite run that ends.
    pub async fn serve(
        &self,
        stop: tokio_util::sync::CancellationToken,
        mut on_end: impl FnMut(&str),
    ) {
        while !stop.is_cancelled() {
            match self.drain_dead_letters().await {
                Ok(ended) => ended.iter().for_each(|id| on_end(id)),
                Err(e) => tracing::error!("dead letters: {e}"),
            }
            match self.drain_dead_events().await {
                Ok(ended) => ended.iter().for_each(|id| on_end(id)),
                Err(e) => tracing::error!("dead-lettered events: {e}"),
            }
            if let Some(triggers) = &self.triggers {
                self.serve_triggers(triggers).await;
            }
            let received = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.events.receive(10, Duration::from_secs(30), Duration::from_secs(1)) => r,
            };
            let messages = match received {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!("receiving events failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            for m in messages {
                let handled = match serde_json::from_str::<Event>(&m.body) {
                    Ok(event) => self.on_event(&event).await,
                    Err(e) => {
                        tracing::warn!(message_id = %m.id, "not an event, dropped: {e}");
                        Ok(None)
                    }
                };
                match handled {
                    Ok(ended) => {
                        if let Some(id) = ended {
                            on_end(&id);
                        }
                        let _ = self.events.ack(&m.receipt).await;
                    }
                    // not acked: the event comes back and is handled again (idempotently)
                    Err(e) => tracing::error!(message_id = %m.id, "event not handled: {e}"),
                }
            }
        }
    }

    /// Submit what the waiting trigger messages ask for; a message is acked once handled. One
    /// at a time, leased for long enough to fetch, plan and enqueue a large suite.
    async fn serve_triggers(&self, triggers: &E) {
        let messages = match triggers
            .receive(1, Duration::from_secs(300), Duration::ZERO)
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("receiving triggers failed: {e}");
                return;
            }
        };
        for m in messages {
            match self
                .on_trigger(&m.id, &m.body, self.bucket.as_deref())
                .await
            {
                Ok(_) => {
                    if let Err(e) = triggers.ack(&m.receipt).await {
                        // it comes back, and resumes the same suite runs
                        tracing::warn!(message_id = %m.id, "trigger handled but not acked: {e}");
                    }
                }
                // not acked: the trigger comes back (and is dead-lettered if it keeps failing)
                Err(e) => tracing::error!(message_id = %m.id, "trigger not handled: {e}"),
            }
        }
    }
}
