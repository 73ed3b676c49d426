//! The producer, generic over the ports: a suite run's plan and state live in the store; jobs
//! go to the jobs queue; completion events come back through the events queue and release the
//! next wave through the pure `advance::gate::decide`.
//!
//! Invariants: the plan is written before any job is sent; a completion is recorded once per
//! run id (its own record), so duplicate and out-of-order events never release a wave twice;
//! records and state are saved before the events are acked, and a restarted producer rebuilds
//! its view from them (`view`), so it resumes where it stopped; the cost of a completion does
//! not grow with the suite (counts, not lists; the plan read once); a dead-lettered
//! job becomes a failed completion (with a journal saying so), so a suite always finishes. The
//! dead-letter journal is an owned conditional create (`create_owned`), never an overwrite: a
//! journal a worker wrote stands, and the job counts as that journal says (a completed run
//! dead-lettered only because its answers or its ack were lost stays completed).
//! One producer serves a state at a time (state writes are last-writer-wins).
//!
//! One job per file: `plan` (the plan of a suite, its ids), `state` (where a suite run stands,
//! completion records), `view` (the in-memory view of running suite runs),
//! `submit`, `trigger` (the triggers queue), `advance` (completions and wave gating),
//! `dead_letters`, `interrupt` (a run its operator stopped), `serve` (the event loop), `status`
//! (the status document), `lease_fit`, `error` (why an operation failed), `history` (a record
//! per suite run, by suite name).

pub mod advance;
pub mod dead_letters;
pub mod error;
pub mod history;
pub mod interrupt;
pub mod lease_fit;
pub mod plan;
pub mod serve;
pub mod state;
pub mod status;
pub mod submit;
pub mod trigger;
pub mod view;

#[cfg(test)]
mod testing;

use crate::fleet::events::Detail;
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use serde::{Deserialize, Serialize};

pub use dead_letters::dead_letter_completion;
pub use error::{PlanError, ProducerError};
pub use history::HistoryEntry;
pub use plan::{Origin, Plan, PlannedWave, join_key, new_suite_run_id, plan, triggered_run_id};
pub use state::{Completion, State};
pub use status::status_document;
pub use view::Views;

/// The producer's ports.
#[derive(Debug, Clone)]
pub struct ProducerPorts<Q, E, S, B> {
    pub jobs: Q,
    pub events: E,
    /// Schedules, S3 upload notifications and pipelines post here (see `triggers`).
    pub triggers: Option<E>,
    /// The bucket behind `store` (AWS): notifications naming it are read through `store`.
    pub bucket: Option<String>,
    pub store: S,
    pub bus: B,
    /// What this producer knows of the suite runs it serves (clones share it).
    pub views: Views,
}

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Publish one of the producer's events.
    async fn event(&self, detail: Detail) -> Result<(), ProducerError> {
        Ok(self.bus.publish(&detail.envelope()).await?)
    }

    async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), ProducerError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| ProducerError::Json {
            key: key.to_string(),
            source,
        })?;
        Ok(self.store.put(key, &bytes).await?)
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        key: &str,
    ) -> Result<Option<T>, ProducerError> {
        match self.store.get(key).await? {
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| ProducerError::Json {
                        key: key.to_string(),
                        source,
                    })
            }
            None => Ok(None),
        }
    }
}
