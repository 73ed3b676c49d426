//! The worker's job lifecycle, generic over the ports: receive → lease → heartbeat → fetch →
//! run (checkpoints as it goes) → journal → completion event → ack.
//!
//! Invariants kept here:
//! - **Never re-inject on redelivery.** Before the engine runs, a `started` marker is created
//!   under the run's key (conditional create: one owner per run). A job received again whose
//!   marker exists and whose journal does not (its worker died or lost the lease) only runs its
//!   rollbacks and ends `interrupted`. A second copy of a job (SQS delivers at least once; a
//!   producer may resend) is told apart by the marker's message id and receive count
//!   (`claim`): it neither runs nor reverts while the owner may still be running.
//! - **A lost answer never loses a completion.** Each delivery draws a random token and puts
//!   it in the objects it creates conditionally (the `started` marker, the journal's
//!   `broker.delivery`). When a create is answered "exists" (the SDK retried a write whose
//!   answer was lost), the object is read back (`create_owned`): if it holds this delivery's
//!   bytes, it is ours and the delivery carries on (runs; publishes the journal unless its
//!   `completed` marker is there); only another delivery's object makes it stand aside.
//! - **A revert keeps what the dead owner did, and stops it.** The owner keeps the exact
//!   experiment text under the run's prefix before anything runs; the revert reads the dead
//!   owner's checkpoint first, has what its `broker.records` name stopped (`orphans`: e.g. an
//!   SSM command cancelled and seen to end), then plays the rollbacks of that copy, loaded with
//!   validation limited to what rollbacks need (`load::revert`): a source deleted or edited
//!   since, a missing variable or module never skips them. Its checkpoints and journal carry
//!   the dead owner's runs and records, then the revert (`checkpoints::carry_over`).
//! - **Nothing is lost.** Every received message ends in one journal and one completion event,
//!   then is acked: a malformed message, a missing or invalid experiment, a run the engine
//!   refuses: all become `failed` journals with the reason. A journal already written with its
//!   event published (the ack was lost) is acked without running again.
//! - **Leases are held while runs are live.** A heartbeat extends the lease every third of the
//!   visibility timeout; if the lease is lost anyway, the run is interrupted (its rollbacks
//!   run), since another worker now owns the job.
//! - **Shutdown is graceful.** When `shutdown` resolves, no new message is received; running
//!   jobs get `grace` to finish, then are interrupted (rollbacks run), journaled and acked.

use super::guard::{Tripwire, run_guarded};
use crate::engine::RunOptions;
use crate::engine::activity::now_iso;
use crate::load::document::Format;
use crate::load::revert::load_for_revert;
use crate::load::{Vars, load_experiment_text, off_runtime};
use crate::model::suite::Job;
use crate::model::{
    Experiment, HypothesisStrategy, Journal, RollbackStrategy, Status, SteadyStates,
};
use crate::ports::queue::{JobQueue, Message, QueueError};
use crate::ports::store::{Created, ObjectStore, check_key, create_owned};
use crate::ports::{Event, EventBus};
use crate::providers::Providers;
use serde_json::{Value, json};
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How a worker serves.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Jobs run at once.
    pub concurrency: usize,
    /// The lease on a received job; heartbeats renew it every third of it.
    pub visibility: Duration,
    /// Long-poll wait of each receive.
    pub wait: Duration,
    /// On shutdown, how long running jobs may go on before they are interrupted.
    pub grace: Duration,
    /// Names this worker in markers and events.
    pub worker_id: String,
}

/// The ports a worker uses.
#[derive(Debug, Clone)]
pub struct WorkerPorts<Q, S, B> {
    pub jobs: Q,
    pub store: S,
    pub bus: B,
}

/// Serve jobs until `shutdown` resolves, then drain as `ServeConfig::grace` says.
///
/// `tripwires` (the kill switch, stop conditions) are checked before each job starts and while
/// it runs; see `guard.rs`.
pub async fn serve<Q, S, B>(
    cfg: ServeConfig,
    ports: WorkerPorts<Q, S, B>,
    providers: Arc<Providers>,
    tripwires: Vec<Arc<dyn Tripwire>>,
    shutdown: impl Future<Output = ()>,
) where
    Q: JobQueue + Clone + 'static,
    S: ObjectStore + Clone + 'static,
    B: EventBus + Clone + 'static,
{
    let interrupt_all = CancellationToken::new();
    let tripwires = Arc::new(tripwires);
    let mut tasks = JoinSet::new();
    let concurrency = cfg.concurrency.max(1);
    tokio::pin!(shutdown);
    tracing::info!(worker = %cfg.worker_id, "serving jobs (concurrency {concurrency})");
    'serve: loop {
        while tasks.len() >= concurrency {
            tokio::select! {
                _ = &mut shutdown => break 'serve,
                _ = tasks.join_next() => {}
            }
        }
        let free = concurrency - tasks.len();
        let received = tokio::select! {
            _ = &mut shutdown => break 'serve,
            r = ports.jobs.receive(free, cfg.visibility, cfg.wait) => r,
        };
        match received {
            Ok(messages) => {
                for message in messages {
                    let job = JobRun {
                        cfg: cfg.clone(),
                        ports: ports.clone(),
                        providers: providers.clone(),
                        tripwires: tripwires.clone(),
                        stop: interrupt_all.child_token(),
                    };
                    tasks.spawn(async move { job.handle(message).await });
                }
            }
            Err(e) => {
                tracing::error!("receiving jobs failed: {e}; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!(
        "no longer receiving; {} job(s) running get {:?} to finish",
        tasks.len(),
        cfg.grace
    );
    let drained = tokio::time::timeout(cfg.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "grace period over: interrupting {} running job(s); their rollbacks run",
            tasks.len()
        );
        interrupt_all.cancel();
        while tasks.join_next().await.is_some() {}
    }
}

/// What a delivery of a job does, given the `started` marker already there (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// No marker: this delivery owns the run.
    Run,
    /// The marker is this message's from an earlier receive: the owner lost its lease (died,
    /// or stalled past the visibility timeout). Revert only.
    Revert,
    /// The marker belongs to another message: a copy of the job (sent twice). The owner's own
    /// message handles the run, its redelivery and its dead-lettering; this copy is dropped.
    Duplicate { owner: String },
    /// The marker is this message's at the same (or a later) receive by another worker: SQS
    /// delivered one message twice at once. Leave it to come back.
    InFlight,
}

/// Decide from another delivery's marker (pure; every case is tested below). This delivery's
/// own marker (created by an attempt whose answer was lost) is recognised before, by its token
/// (`create_owned`), and means `Run`.
pub fn claim(marker: Option<&serde_json::Value>, message: &Message) -> Claim {
    let Some(marker) = marker else {
        return Claim::Run;
    };
    let Some(owner) = marker["message_id"].as_str() else {
        // unreadable: something started this run; never run it again
        return Claim::Revert;
    };
    if owner != message.id {
        return Claim::Duplicate {
            owner: owner.to_string(),
        };
    }
    let seen = marker["receive_count"].as_u64().unwrap_or(0);
    if u64::from(message.receive_count) > seen {
        Claim::Revert
    } else {
        // the same receive, or a later one, by another delivery (its token is not ours)
        Claim::InFlight
    }
}

/// What a delivery does once its journal's conditional create has answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterJournal {
    /// The journal is this delivery's: publish its completion event, then mark it published.
    Publish,
    /// This delivery's journal, already published (its `completed` marker is there): ack.
    Done,
    /// Another delivery's journal stands, and that delivery publishes it: ack, publish nothing.
    Drop,
}

/// Decide from the create's outcome and whether the `completed` marker exists (pure; every
/// case is tested below).
pub fn after_journal(created: &Created, published: bool) -> AfterJournal {
    match (created, published) {
        (Created::Theirs(_), _) => AfterJournal::Drop,
        (_, true) => AfterJournal::Done,
        (Created::New | Created::Ours, false) => AfterJournal::Publish,
    }
}

/// Put which delivery wrote a journal into its `broker.delivery` (the ownership token).
fn stamp_delivery(journal: &mut Journal, delivery: Value) {
    let broker = journal.broker.get_or_insert_with(|| json!({}));
    if !broker.is_object() {
        *broker = json!({});
    }
    broker["delivery"] = delivery;
}

/// Keys of one run in the store.
fn run_prefix(job: &Job) -> String {
    format!("runs/{}/{}", job.suite_run_id, job.run_id)
}

/// Where a run keeps the exact experiment text it runs (what a revert plays).
fn copy_key(prefix: &str) -> String {
    format!("{prefix}/experiment")
}

/// Add `record` to a journal's `broker.records`.
fn push_record(journal: &mut Journal, record: Value) {
    let broker = journal.broker.get_or_insert_with(|| json!({}));
    if !broker.is_object() {
        *broker = json!({});
    }
    let records = &mut broker["records"];
    match records {
        Value::Array(list) => list.push(record),
        _ => *records = json!([record]),
    }
}

struct JobRun<Q, S, B> {
    cfg: ServeConfig,
    ports: WorkerPorts<Q, S, B>,
    providers: Arc<Providers>,
    tripwires: Arc<Vec<Arc<dyn Tripwire>>>,
    stop: CancellationToken,
}

impl<Q, S, B> JobRun<Q, S, B>
where
    Q: JobQueue + Clone + 'static,
    S: ObjectStore + Clone + 'static,
    B: EventBus + Clone + 'static,
{
    async fn handle(self, message: Message) {
        let heartbeat = self.heartbeat(&message);
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

    /// Renew the lease every third of the visibility timeout; stop the run if it is lost.
    fn heartbeat(&self, message: &Message) -> CancellationToken {
        let done = CancellationToken::new();
        let (jobs, receipt, visibility, stop, finished) = (
            self.ports.jobs.clone(),
            message.receipt.clone(),
            self.cfg.visibility,
            self.stop.clone(),
            done.clone(),
        );
        let id = message.id.clone();
        tokio::spawn(async move {
            // the lease runs out one visibility timeout after the last extension that
            // succeeded; a call that hangs must not outlive it
            let mut lease_end = tokio::time::Instant::now() + visibility;
            loop {
                tokio::select! {
                    _ = finished.cancelled() => return,
                    _ = tokio::time::sleep(visibility / 3) => {}
                }
                let asked = tokio::time::Instant::now();
                let left = lease_end.saturating_duration_since(asked);
                let lost = match tokio::time::timeout(left, jobs.extend(&receipt, visibility)).await
                {
                    Ok(Ok(())) => {
                        lease_end = asked + visibility;
                        false
                    }
                    Ok(Err(QueueError::LeaseLost { .. })) => true,
                    // final: the lease ends when it ends, so stop now, while it still holds
                    // (at least two thirds of a visibility timeout) for the rollbacks
                    Ok(Err(e @ QueueError::LeaseLimit { .. })) => {
                        tracing::error!(message_id = %id, "{e}: interrupting the run so its rollbacks run under the lease");
                        stop.cancel();
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(message_id = %id, "heartbeat failed: {e}");
                        tokio::time::Instant::now() >= lease_end
                    }
                    Err(_) => true,
                };
                if lost {
                    tracing::error!(message_id = %id, "lease lost while running: interrupting the run");
                    stop.cancel();
                    return;
                }
            }
        });
        done
    }

    /// Produce the journal and the completion event for this message. `Err` only when the
    /// store or the bus failed (then the message is left to come back).
    async fn complete(&self, message: &Message) -> Result<(), String> {
        let job = match Job::from_message(&message.body) {
            Ok(job) if check_key(&run_prefix(&job)).is_ok() => job,
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
        let prefix = run_prefix(&job);
        let journal_key = format!("{prefix}/journal.json");
        let published_key = format!("{prefix}/completed");
        let store = &self.ports.store;
        if let Some(bytes) = store.get(&journal_key).await.map_err(|e| e.to_string())? {
            // completed before; only the event or the ack may be missing
            if store
                .get(&published_key)
                .await
                .map_err(|e| e.to_string())?
                .is_none()
            {
                let journal: Journal =
                    serde_json::from_slice(&bytes).map_err(|e| format!("{journal_key}: {e}"))?;
                self.publish(&job, &journal, &journal_key).await?;
                store
                    .put(&published_key, b"")
                    .await
                    .map_err(|e| e.to_string())?;
            }
            return Ok(());
        }
        let started_key = format!("{prefix}/started");
        // this delivery's ownership token, in every object it creates conditionally
        let token = crate::ids::random_id();
        let delivery = json!({"worker": self.cfg.worker_id, "message_id": message.id, "receive_count": message.receive_count, "token": token});
        let mut marker = delivery.clone();
        marker["at"] = json!(now_iso());
        let existing = match create_owned(store, &started_key, marker.to_string().as_bytes())
            .await
            .map_err(|e| e.to_string())?
        {
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
                    .await
                    .map_err(|e| e.to_string())?;
                true
            }
            Claim::Duplicate { owner } => {
                tracing::warn!(message_id = %message.id, run_id = %job.run_id, "a copy of a job another delivery owns ({owner}): not run, not reverted");
                return Ok(());
            }
            Claim::InFlight => {
                return Err(format!(
                    "run {prefix} is being run by another delivery of this message; leaving it to come back"
                ));
            }
        };
        let mut journal = self.run(&job, &prefix, revert_only).await?;
        stamp_delivery(&mut journal, delivery);
        let text = serde_json::to_vec_pretty(&journal).map_err(|e| e.to_string())?;
        let created = create_owned(store, &journal_key, &text)
            .await
            .map_err(|e| e.to_string())?;
        let published = match created {
            // written by an attempt whose answer was lost: a redelivery may have published it
            Created::Ours => {
                tracing::warn!(run_id = %job.run_id, "the journal's create was answered \"exists\" but holds this delivery's journal (an answer was lost): completing it");
                store
                    .get(&published_key)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some()
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
        store
            .put(&published_key, b"")
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(run_id = %job.run_id, "journal at {journal_key}");
        Ok(())
    }

    /// Fetch, load and run the experiment; any failure becomes a failed journal. `Err` only
    /// when the store failed where going on could lose what a dead owner did (the message is
    /// then left to come back).
    async fn run(&self, job: &Job, prefix: &str, revert_only: bool) -> Result<Journal, String> {
        if revert_only {
            return self.revert(job, prefix).await;
        }
        let source = job.experiment_source.clone();
        let text = match self.fetch(job).await {
            Ok(t) => t,
            Err(reason) => return Ok(failed_journal(&source, &reason)),
        };
        // the exact text is kept before anything runs: a revert plays these rollbacks, whatever
        // becomes of the experiment's source
        let copy = copy_key(prefix);
        if let Err(e) = self.ports.store.put(&copy, text.as_bytes()).await {
            return Ok(failed_journal(
                &source,
                &format!(
                    "not started: the copy of the experiment a revert would need could not be kept at {copy}: {e}"
                ),
            ));
        }
        let vars = self.vars(job);
        // off the runtime: a slow import must not stop the other jobs' heartbeats
        let loaded = off_runtime({
            let (vars, providers, origin) = (vars.clone(), self.providers.clone(), source.clone());
            move || {
                let origin = Path::new(&origin);
                let format = Format::detect(origin, &text);
                load_experiment_text(&text, format, Some(origin), &vars, &providers)
            }
        })
        .await;
        let experiment = match loaded {
            Ok(e) => e,
            Err(problems) => {
                return Ok(failed_journal(
                    &source,
                    &format!("invalid experiment:\n{problems}"),
                ));
            }
        };
        Ok(self
            .engine(job, prefix, experiment, &vars, false, None)
            .await)
    }

    /// A job whose owner died (or lost its lease) mid-run: read the dead owner's checkpoint,
    /// have what its records name stopped, then play the rollbacks of the copy it ran. The
    /// journal carries the dead owner's runs and records, then the revert.
    async fn revert(&self, job: &Job, prefix: &str) -> Result<Journal, String> {
        let source = job.experiment_source.clone();
        let store = &self.ports.store;
        let checkpoint_key = format!("{prefix}/checkpoint.json");
        let mut prior = match store
            .get(&checkpoint_key)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(bytes) => match serde_json::from_slice::<Journal>(&bytes) {
                Ok(j) => Some(j),
                Err(e) => {
                    tracing::error!(run_id = %job.run_id, "the dead owner's checkpoint {checkpoint_key} is unreadable ({e}): its records cannot be carried over");
                    None
                }
            },
            None => None,
        };
        if let Some(prior) = &mut prior {
            let records = super::checkpoints::records_of(&prior.broker);
            if let Some(stopped) = super::orphans::stop_recorded(&self.providers, &records).await {
                push_record(prior, stopped);
                // on record before the rollbacks: a worker dying now does not stop it again
                // without knowing it was
                let bytes = serde_json::to_vec(prior).map_err(|e| e.to_string())?;
                store
                    .put(&checkpoint_key, &bytes)
                    .await
                    .map_err(|e| format!("checkpoint {checkpoint_key} not written: {e}"))?;
            }
        }
        let carried = |journal: Journal| match &prior {
            Some(p) => super::checkpoints::carry_over(p, journal),
            None => journal,
        };
        let copy = copy_key(prefix);
        let text = match store.get(&copy).await.map_err(|e| e.to_string())? {
            Some(bytes) => String::from_utf8(bytes)
                .map_err(|_| format!("the copy of the experiment at {copy} is not UTF-8 text")),
            None => {
                // started by a worker that kept no copy: the source is all there is
                tracing::warn!(run_id = %job.run_id, "no copy of the experiment at {copy}: reverting from its source");
                self.fetch(job).await
            }
        };
        let text = match text {
            Ok(t) => t,
            Err(reason) => {
                return Ok(carried(failed_journal(
                    &source,
                    &format!("the rollbacks could not run: {reason}"),
                )));
            }
        };
        let vars = self.vars(job);
        let loaded = off_runtime({
            let (vars, origin) = (vars.clone(), source.clone());
            move || {
                let origin = Path::new(&origin);
                load_for_revert(&text, Format::detect(origin, &text), Some(origin), &vars)
            }
        })
        .await;
        let loaded = match loaded {
            Ok(l) => l,
            Err(problems) => {
                return Ok(carried(failed_journal(
                    &source,
                    &format!("the rollbacks could not run: invalid experiment:\n{problems}"),
                )));
            }
        };
        for p in &loaded.dropped {
            tracing::warn!(run_id = %job.run_id, "reverting without {}: {p}", p.field);
        }
        let mut journal = self
            .engine(job, prefix, loaded.experiment, &vars, true, prior.clone())
            .await;
        if !loaded.dropped.is_empty()
            && let Some(Value::Object(b)) = &mut journal.broker
        {
            let dropped: Vec<String> = loaded.dropped.iter().map(ToString::to_string).collect();
            b.insert("revert_without".into(), json!(dropped));
        }
        Ok(carried(journal))
    }

    fn vars(&self, job: &Job) -> Vars {
        Vars {
            configuration: job.settings.vars.clone(),
            ..Vars::default()
        }
    }

    /// Run `experiment` under the tripwires, checkpointing (on top of the dead owner's
    /// `prior` checkpoint, for a revert).
    async fn engine(
        &self,
        job: &Job,
        prefix: &str,
        experiment: Experiment,
        vars: &Vars,
        revert_only: bool,
        prior: Option<Journal>,
    ) -> Journal {
        let options = RunOptions {
            hypothesis_strategy: job
                .settings
                .hypothesis_strategy
                .as_deref()
                .and_then(HypothesisStrategy::parse),
            rollback_strategy: job
                .settings
                .rollback_strategy
                .as_deref()
                .and_then(RollbackStrategy::parse),
            revert_only,
            ..RunOptions::default()
        };
        let (checkpoints, writer) = super::checkpoints::start_after(
            self.ports.store.clone(),
            format!("{prefix}/checkpoint.json"),
            prior,
        );
        let result = run_guarded(
            Arc::new(experiment),
            vars,
            &options,
            self.providers.clone(),
            self.stop.clone(),
            Some(checkpoints),
            &self.tripwires,
        )
        .await;
        let _ = writer.await;
        match result {
            Ok(journal) => journal,
            Err(problems) => failed_journal(
                &job.experiment_source,
                &format!("the experiment cannot run:\n{problems}"),
            ),
        }
    }

    async fn fetch(&self, job: &Job) -> Result<String, String> {
        let source = &job.experiment_source;
        if let Some(bucket) = job.bucket_name.as_deref().filter(|b| !b.is_empty()) {
            let version = job.experiment_version.as_deref();
            let at = version
                .map(|v| format!(" (version {v})"))
                .unwrap_or_default();
            let uri = format!("s3://{bucket}/{source}{at}");
            let got = self
                .ports
                .store
                .get_from_bucket_at(bucket, source, version)
                .await
                .map_err(|e| e.to_string())?;
            let (bytes, _) = got.ok_or_else(|| format!("{uri} does not exist"))?;
            return String::from_utf8(bytes).map_err(|_| format!("{uri} is not UTF-8 text"));
        }
        if let Some(key) = source.strip_prefix("store:") {
            let bytes = self.ports.store.get(key).await.map_err(|e| e.to_string())?;
            let bytes = bytes.ok_or_else(|| format!("store object {key} does not exist"))?;
            return String::from_utf8(bytes)
                .map_err(|_| format!("store object {key} is not UTF-8 text"));
        }
        tokio::fs::read_to_string(source)
            .await
            .map_err(|e| format!("cannot read {source}: {e}"))
    }

    async fn publish(&self, job: &Job, journal: &Journal, journal_key: &str) -> Result<(), String> {
        let event = Event {
            id: crate::ids::random_id(),
            source: "experiment-broker".into(),
            detail_type: "Experiment Completed".into(),
            time: now_iso(),
            detail: json!({
                "suite_run_id": job.suite_run_id,
                "run_id": job.run_id,
                "wave": job.wave,
                "experiment_source": job.experiment_source,
                "status": journal.status.map(Status::as_str),
                "deviated": journal.deviated,
                "journal_key": journal_key,
                "worker": self.cfg.worker_id,
            }),
        };
        self.ports
            .bus
            .publish(&event)
            .await
            .map_err(|e| e.to_string())
    }

    /// A message that is not a job: a failed journal under its message id, an event, an ack.
    async fn malformed(&self, message: &Message, reason: &str) -> Result<(), String> {
        tracing::error!(message_id = %message.id, "malformed job message: {reason}");
        let key = format!("malformed/{}/journal.json", message.id);
        let journal = failed_journal(
            "<malformed job message>",
            &format!("malformed job message: {reason}"),
        );
        let text = serde_json::to_vec_pretty(&journal).map_err(|e| e.to_string())?;
        self.ports
            .store
            .put(&key, &text)
            .await
            .map_err(|e| e.to_string())?;
        let job = Job {
            version: Job::VERSION,
            suite_run_id: String::new(),
            wave: 0,
            run_id: message.id.clone(),
            experiment_source: String::new(),
            bucket_name: None,
            experiment_version: None,
            settings: Default::default(),
        };
        self.publish(&job, &journal, &key).await
    }
}

/// The journal of a job that could not run, saying why.
pub fn failed_journal(source: &str, reason: &str) -> Journal {
    let now = now_iso();
    Journal {
        chaoslib_version: concat!("experiment-broker/", env!("CARGO_PKG_VERSION")).to_string(),
        platform: String::new(),
        node: String::new(),
        experiment: json!({"title": source, "source": source}),
        start: now.clone(),
        status: Some(Status::Failed),
        deviated: false,
        steady_states: SteadyStates::default(),
        run: Vec::new(),
        rollbacks: Vec::new(),
        end: Some(now),
        duration: Some(0.0),
        broker: Some(json!({"error": reason, "version": env!("CARGO_PKG_VERSION")})),
    }
}

#[cfg(test)]
#[path = "serve_ownership_tests.rs"]
mod ownership_tests;

#[cfg(test)]
mod claim_tests {
    use super::*;

    fn message(id: &str, receive_count: u32) -> Message {
        Message {
            id: id.into(),
            receipt: "r".into(),
            body: String::new(),
            receive_count,
        }
    }

    #[test]
    fn every_marker_case() {
        // another delivery's marker (this delivery's own is recognised by its token before)
        let marker = json!({"worker": "w1", "message_id": "m1", "receive_count": 1, "token": "t1"});
        let garbage = json!("not a marker");
        let cases = [
            (None, message("m1", 1), Claim::Run),
            (Some(&marker), message("m1", 2), Claim::Revert),
            // the same receive by another delivery (even on the same worker): SQS delivered
            // one message twice at once
            (Some(&marker), message("m1", 1), Claim::InFlight),
            (Some(&marker), message("m1", 0), Claim::InFlight),
            (
                Some(&marker),
                message("m2", 1),
                Claim::Duplicate { owner: "m1".into() },
            ),
            (
                Some(&marker),
                message("m2", 5),
                Claim::Duplicate { owner: "m1".into() },
            ),
            (Some(&garbage), message("m1", 1), Claim::Revert),
        ];
        for (marker, msg, expected) in cases {
            assert_eq!(claim(marker, &msg), expected, "{marker:?} {msg:?}");
        }
    }

    #[test]
    fn after_the_journal_create_only_our_unpublished_journal_is_published() {
        let theirs = Created::Theirs(b"{}".to_vec());
        let cases = [
            (Created::New, false, AfterJournal::Publish),
            (Created::Ours, false, AfterJournal::Publish),
            (Created::Ours, true, AfterJournal::Done),
            (Created::New, true, AfterJournal::Done),
            (theirs.clone(), false, AfterJournal::Drop),
            (theirs, true, AfterJournal::Drop),
        ];
        for (created, published, expected) in cases {
            assert_eq!(
                after_journal(&created, published),
                expected,
                "{created:?} published={published}"
            );
        }
    }
}
