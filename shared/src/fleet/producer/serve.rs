//! The producer's loop: dead letters drained, triggers submitted, completion events handled
//! in batches of up to 10 (at most one state write per suite run per batch; acked 10 at a
//! time, only once handled) until stopped.

use super::ProducerPorts;
use super::advance::completion_of;
use super::state::Completion;
use crate::ports::queue::{JobQueue, Message};
use crate::ports::store::ObjectStore;
use crate::ports::{Event, EventBus};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One suite run's share of a batch of events: its completions (run id, completion) and the
/// receipts of the events that carried them.
type SuiteBatch = (Vec<(String, Completion)>, Vec<String>);

/// Events received (and acked) at a time: SQS's batch limit.
const BATCH: usize = 10;
/// How long a receive of events waits for the first one (a long poll on SQS; the embedded
/// queue wakes as soon as one is sent in this process).
const EVENTS_WAIT: Duration = Duration::from_secs(5);
/// The longest a handled event waits for its ack while events keep coming (well within the
/// events' 30 s lease).
const ACK_WITHIN: Duration = Duration::from_secs(2);
/// The longest the dead letters and the triggers go unread while events keep coming.
const HOUSEKEEPING: Duration = Duration::from_secs(5);

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
        let mut looked: Option<Instant> = None;
        let mut idle = true;
        // events handled, acked together: when 10 are waiting, after an empty poll, at least
        // every `ACK_WITHIN`, and before returning
        let mut handled: Vec<String> = Vec::new();
        let mut acked = Instant::now();
        while !stop.is_cancelled() {
            // dead letters and triggers: after every empty long poll, and at least every
            // `HOUSEKEEPING` while events keep coming (each look is a request on SQS)
            if idle || looked.is_none_or(|t| t.elapsed() >= HOUSEKEEPING) {
                looked = Some(Instant::now());
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
            }
            let received = tokio::select! {
                _ = stop.cancelled() => break,
                r = self.events.receive(BATCH, Duration::from_secs(30), EVENTS_WAIT) => r,
            };
            match received {
                Ok(messages) => {
                    idle = messages.is_empty();
                    handled.extend(self.handle_events(messages, &mut on_end).await);
                    if handled.len() >= BATCH || idle || acked.elapsed() >= ACK_WITHIN {
                        self.ack_events(&mut handled).await;
                        acked = Instant::now();
                    }
                }
                Err(e) => {
                    tracing::error!("receiving events failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        self.ack_events(&mut handled).await;
    }

    /// Ack the events handled so far, in batches of 10.
    async fn ack_events(&self, handled: &mut Vec<String>) {
        for chunk in handled.chunks(BATCH) {
            if let Err(e) = self.events.ack_batch(chunk).await {
                // the events come back and change nothing
                tracing::warn!("events handled but not all acked: {e}");
            }
        }
        handled.clear();
    }

    /// Handle a batch of events: the completions of each suite run recorded and counted
    /// together, its state saved once; returns the receipts of the events handled (to ack).
    /// Events of a suite run whose handling failed are not: they come back and are handled
    /// again (idempotently).
    async fn handle_events(
        &self,
        messages: Vec<Message>,
        on_end: &mut impl FnMut(&str),
    ) -> Vec<String> {
        let mut by_suite: BTreeMap<String, SuiteBatch> = BTreeMap::new();
        let mut handled = Vec::new();
        for m in messages {
            match serde_json::from_str::<Event>(&m.body) {
                Ok(event) => match completion_of(&event) {
                    Some((id, run_id, completion)) => {
                        let (runs, receipts) = by_suite.entry(id).or_default();
                        runs.push((run_id, completion));
                        receipts.push(m.receipt);
                    }
                    None => handled.push(m.receipt),
                },
                Err(e) => {
                    tracing::warn!(message_id = %m.id, "not an event, dropped: {e}");
                    handled.push(m.receipt);
                }
            }
        }
        for (id, (runs, receipts)) in by_suite {
            match self.complete_many(&id, runs).await {
                Ok(ended) => {
                    if ended {
                        on_end(&id);
                    }
                    handled.extend(receipts);
                }
                Err(e) => tracing::error!("events of suite run {id} not handled: {e}"),
            }
        }
        handled
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
