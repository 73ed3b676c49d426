//! One delivery of a job: read it, claim its run (the `started` marker), have the run made,
//! store its journal (an owned conditional create), publish its completion event, ack.

use super::claim::{AfterJournal, Claim, after_journal, claim};
use super::error::WorkerError;
use super::heartbeat::heartbeat;
use super::{ServeConfig, WorkerPorts};
use crate::clock::now_iso;
use crate::fleet::events::{Detail, ExperimentCompleted};
use crate::fleet::keys::RunKeys;
use crate::fleet::safety::guard::Tripwire;
use crate::model::suite::Job;
use crate::model::{Journal, failed_journal};
use crate::ports::EventBus;
use crate::ports::queue::{JobQueue, Message, QueueError};
use crate::ports::store::{Created, ObjectStore, check_key, create_owned};
use crate::providers::Providers;
use serde_json::{Value, json};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Put which delivery wrote a journal into its `broker.delivery` (the ownership token).
fn stamp_delivery(journal: &mut Journal, delivery: Value) {
    let broker = journal.broker.get_or_insert_with(|| json!({}));
    if !broker.is_object() {
        *broker = json!({});
    }
    broker["delivery"] = delivery;
}

pub(super) struct JobRun<Q, S, B> {
    pub(super) cfg: ServeConfig,
    pub(super) ports: WorkerPorts<Q, S, B>,
    pub(super) providers: Arc<Providers>,
    pub(super) tripwires: Arc<Vec<Arc<dyn Tripwire>>>,
    pub(super) stop: CancellationToken,
}

impl<Q, S, B> JobRun<Q, S, B>
where
    Q: JobQueue + Clone + 'static,
    S: ObjectStore + Clone + 'static,
    B: EventBus + Clone + 'static,
{
    pub(super) async fn handle(self, message: Message) {
        let heartbeat = heartbeat(&self.ports.jobs, &message, self.cfg.visibility, &self.stop);
        let outcome = self.complete(&message).await;
        heartbeat.cancel();
        match outcome {
            Ok(()) => match self.ports.jobs.ack(&message.receipt).await {
                Ok(()) => {}
                Err(QueueError::LeaseLost { .. }) => {
                    tracing::warn!(message_id = %message.id, "lease lost before the ack; the next receiver will find the journal")
                }
                Err(e) => tracing::error!(message_id = %message.id, "ack failed: {e}"),
            },
            // not acked: the message comes back after its lease and is retried (or dead-lettered)
            Err(e) => tracing::error!(message_id = %message.id, "job not completed: {e}"),
        }
    }

    /// Produce the journal and the completion event for this message. `Err` only when the
    /// store or the bus failed (then the message is left to come back).
    async fn complete(&self, message: &Message) -> Result<(), WorkerError> {
        let job = match Job::from_message(&message.body) {
            Ok(job) if check_key(RunKeys::of(&job).prefix()).is_ok() => job,
            Ok(job) => {
                return self
                    .malformed(
                        message,
                        &format!(
                            "run ids {:?}/{:?} cannot name a run",
                            job.suite_run_id, job.run_id
                        ),
                    )
                    .await;
            }
            Err(reason) => return self.malformed(message, &reason).await,
        };
        // every line the job logs, and its trace, carry its ids (`docs/observability.md`)
        let span = tracing::info_span!(
            "job",
            suite_run_id = %job.suite_run_id,
            wave = job.wave,
            run_id = %job.run_id,
            experiment = %job.experiment_source,
        );
        crate::fleet::trace::adopt(&span, job.traceparent.as_deref());
        self.complete_job(message, job).instrument(span).await
    }

    /// `complete` for a message that is a job.
    async fn complete_job(&self, message: &Message, job: Job) -> Result<(), WorkerError> {
        let keys = RunKeys::of(&job);
        let journal_key = keys.journal();
        let published_key = keys.completed();
        let store = &self.ports.store;
        // a first delivery whose `started` marker is new cannot find a journal (one is only
        // written after a marker), so it skips that read: one request fewer per job; a
        // redelivery, or a delivery that finds a marker, looks for the journal first
        if message.receive_count > 1 && self.finished_before(&job, &keys).await? {
            return Ok(());
        }
        let started_key = keys.started();
        // this delivery's ownership token, in every object it creates conditionally
        let token = crate::ids::random_id();
        let delivery = json!({"worker": self.cfg.worker_id, "message_id": message.id, "receive_count": message.receive_count, "token": token});
        let mut marker = delivery.clone();
        marker["at"] = json!(now_iso());
        let created = create_owned(store, &started_key, marker.to_string().as_bytes()).await?;
        if created != Created::New
            && message.receive_count <= 1
            && self.finished_before(&job, &keys).await?
        {
            return Ok(());
        }
        let existing = match created {
            Created::New => None,
            Created::Ours => {
                tracing::warn!(run_id = %job.run_id, "the started marker's create was answered \"exists\" but holds this delivery's marker (an answer was lost): running");
                None
            }
            Created::Theirs(bytes) => {
                Some(serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
            }
        };
        let revert_only = match claim(existing.as_ref(), message) {
            Claim::Run => false,
            Claim::Revert => {
                // the marker now names this delivery, so a copy of it is told apart too
                store
                    .put(&started_key, marker.to_string().as_bytes())
                    .await?;
                true
            }
            Claim::Duplicate { owner } => {
                tracing::warn!(message_id = %message.id, run_id = %job.run_id, "a copy of a job another delivery owns ({owner}): not run, not reverted");
                return Ok(());
            }
            Claim::InFlight => {
                return Err(WorkerError::InFlight {
                    prefix: keys.prefix().to_string(),
                });
            }
        };
        let mut journal = self.run(&job, &keys, revert_only).await?;
        stamp_delivery(&mut journal, delivery);
        let text =
            serde_json::to_vec_pretty(&journal).map_err(|source| WorkerError::Serialise {
                key: journal_key.clone(),
                source,
            })?;
        let created = create_owned(store, &journal_key, &text).await?;
        let published = match created {
            // written by an attempt whose answer was lost: a redelivery may have published it
            Created::Ours => {
                tracing::warn!(run_id = %job.run_id, "the journal's create was answered \"exists\" but holds this delivery's journal (an answer was lost): completing it");
                store.get(&published_key).await?.is_some()
            }
            _ => false,
        };
        match after_journal(&created, published) {
            AfterJournal::Publish => {}
            AfterJournal::Done => return Ok(()),
            AfterJournal::Drop => {
                // another delivery finished first; its journal stands and it publishes
                tracing::warn!(run_id = %job.run_id, "a journal was written by another delivery; this one is dropped");
                return Ok(());
            }
        }
        self.publish(&job, &journal, &journal_key).await?;
        store.put(&published_key, b"").await?;
        tracing::info!(run_id = %job.run_id, "journal at {journal_key}");
        Ok(())
    }

    /// Whether the run's journal is already stored (completed before; only the event or the
    /// ack may be missing): then the event is published if it was not, and true is returned.
    async fn finished_before(&self, job: &Job, keys: &RunKeys) -> Result<bool, WorkerError> {
        let store = &self.ports.store;
        let journal_key = keys.journal();
        let Some(bytes) = store.get(&journal_key).await? else {
            return Ok(false);
        };
        let published_key = keys.completed();
        if store.get(&published_key).await?.is_none() {
            let journal: Journal =
                serde_json::from_slice(&bytes).map_err(|source| WorkerError::Journal {
                    key: journal_key.clone(),
                    source,
                })?;
            self.publish(job, &journal, &journal_key).await?;
            store.put(&published_key, b"").await?;
        }
        Ok(true)
    }

    async fn publish(
        &self,
        job: &Job,
        journal: &Journal,
        journal_key: &str,
    ) -> Result<(), WorkerError> {
        let detail = Detail::ExperimentCompleted(ExperimentCompleted {
            suite_run_id: job.suite_run_id.clone(),
            run_id: job.run_id.clone(),
            wave: job.wave,
            experiment_source: job.experiment_source.clone(),
            status: journal.status,
            deviated: journal.deviated,
            journal_key: journal_key.to_string(),
            worker: self.cfg.worker_id.clone(),
            start: Some(journal.start.clone()).filter(|s| !s.is_empty()),
            end: journal.end.clone(),
            duration: journal.duration,
            title: crate::model::journal_title(journal),
        });
        self.ports.bus.publish(&detail.envelope()).await?;
        Ok(())
    }

    /// A message that is not a job: a failed journal under its message id, an event, an ack.
    async fn malformed(&self, message: &Message, reason: &str) -> Result<(), WorkerError> {
        tracing::error!(message_id = %message.id, "malformed job message: {reason}");
        let key = RunKeys::malformed(&message.id).journal();
        let journal = failed_journal(
            "<malformed job message>",
            &format!("malformed job message: {reason}"),
        );
        let text =
            serde_json::to_vec_pretty(&journal).map_err(|source| WorkerError::Serialise {
                key: key.clone(),
                source,
            })?;
        self.ports.store.put(&key, &text).await?;
        let job = Job {
            version: Job::VERSION,
            suite_run_id: String::new(),
            wave: 0,
            run_id: message.id.clone(),
            experiment_source: String::new(),
            bucket_name: None,
            experiment_version: None,
            traceparent: None,
            settings: Default::default(),
        };
        self.publish(&job, &journal, &key).await
    }
}
