//! The producer, generic over the ports: a suite run's plan and state live in the store; jobs
//! go to the jobs queue; completion events come back through the events queue and release the
//! next wave through the pure `gate::decide`.
//!
//! Invariants: the plan is written before any job is sent; a completion is recorded once per
//! run id, so duplicate and out-of-order events never release a wave twice; state is saved
//! before the event is acked, so a restarted producer resumes where it stopped; a dead-lettered
//! job becomes a failed completion (with a journal saying so), so a suite always finishes. The
//! dead-letter journal is an owned conditional create (`create_owned`), never an overwrite: a
//! journal a worker wrote stands, and the job counts as that journal says (a completed run
//! dead-lettered only because its answers or its ack were lost stays completed).
//! One producer serves a state at a time (state writes are last-writer-wins).

use super::gate::{Decision, JobOutcome, decide};
use super::serve::failed_journal;
use crate::engine::activity::now_iso;
use crate::model::Status;
use crate::model::suite::{ExperimentRef, Job, OnFailure, Suite};
use crate::ports::queue::{DeadLetter, JobQueue};
use crate::ports::store::{Created, ObjectStore, StoreError, create_owned};
use crate::ports::{Event, EventBus};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// A suite run as submitted: every job of every wave, with its run id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub suite_run_id: String,
    pub name: String,
    /// Where the suite came from (a file, a store key, an S3 URI), for the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub created: String,
    pub waves: Vec<PlannedWave>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedWave {
    pub on_failure: OnFailure,
    pub max_parallel: Option<u32>,
    pub jobs: Vec<Job>,
}

/// Where a suite run stands. Saved after every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// `running`, `completed` or `halted`.
    pub status: String,
    pub current_wave: usize,
    /// Run ids sent to the jobs queue.
    pub enqueued: Vec<String>,
    pub completions: BTreeMap<String, Completion>,
    /// `held`, `deviated` or `failed` once the suite ended; `invalid` when it was rejected.
    pub outcome: Option<String>,
    /// Why a triggered suite was rejected (status `rejected`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub status: String,
    pub deviated: bool,
    pub journal_key: String,
}

impl Completion {
    fn outcome(&self) -> JobOutcome {
        match (self.status.as_str(), self.deviated) {
            ("completed", false) => JobOutcome::Held,
            ("completed", true) => JobOutcome::Deviated,
            _ => JobOutcome::Failed,
        }
    }
}

pub fn outcome_name(o: JobOutcome) -> &'static str {
    match o {
        JobOutcome::Held => "held",
        JobOutcome::Deviated => "deviated",
        JobOutcome::Failed => "failed",
    }
}

/// Suite runs live under `suite-runs/`, not `suites/`: uploads under `suites/` trigger runs,
/// and the producer's own writes must never trigger one.
fn plan_key(id: &str) -> String {
    format!("suite-runs/{id}/plan.json")
}
fn state_key(id: &str) -> String {
    format!("suite-runs/{id}/state.json")
}

/// The suite run id of the `index`th suite a trigger message names: the same on every
/// delivery of that message.
pub fn triggered_run_id(message_id: &str, index: usize) -> String {
    let safe: String = message_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect();
    format!("sr-trigger-{safe}-{index}")
}

/// A fresh suite run id: sortable by time, unique.
pub fn new_suite_run_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let random = crate::ids::random_id();
    format!("sr-{stamp}-{}", &random[..8])
}

/// Where a suite was read from: its file references are relative to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A directory on this machine: references become absolute paths.
    Dir(std::path::PathBuf),
    /// A key in the store: references become `store:` keys beside it.
    Store { key: String },
    /// An object in another bucket: references become objects beside it.
    S3 { bucket: String, key: String },
}

/// `dir/relative` with `.` and `..` resolved; `None` when it climbs out of the root.
pub fn join_key(suite_key: &str, relative: &str) -> Option<String> {
    let mut parts: Vec<&str> = suite_key.split('/').collect();
    parts.pop(); // the suite's own name
    for seg in relative.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Build the plan of a suite: file references resolved against its origin, suite defaults
/// copied into every job.
pub fn plan(suite: &Suite, suite_run_id: &str, origin: &Origin) -> Result<Plan, String> {
    let resolve = |r: &ExperimentRef| -> Result<(String, Option<String>), String> {
        Ok(match (r, origin) {
            (ExperimentRef::File { path }, Origin::Dir(base)) => {
                let p = base.join(path);
                let p = std::fs::canonicalize(&p).unwrap_or(p);
                (p.to_string_lossy().into_owned(), None)
            }
            (ExperimentRef::File { path }, Origin::Store { key }) => {
                let k = join_key(key, path)
                    .ok_or_else(|| format!("{path} climbs out of the bucket from {key}"))?;
                (format!("store:{k}"), None)
            }
            (ExperimentRef::File { path }, Origin::S3 { bucket, key }) => {
                let k = join_key(key, path)
                    .ok_or_else(|| format!("{path} climbs out of s3://{bucket}/{key}"))?;
                (k, Some(bucket.clone()))
            }
            (ExperimentRef::S3 { bucket, key }, _) => (key.clone(), Some(bucket.clone())),
            (ExperimentRef::Store { key }, _) => (format!("store:{key}"), None),
        })
    };
    let mut waves = Vec::new();
    for (w, wave) in suite.waves.iter().enumerate() {
        let mut jobs = Vec::new();
        for (j, r) in wave.experiments.iter().enumerate() {
            let (experiment_source, bucket_name) = resolve(r)?;
            jobs.push(Job {
                version: Job::VERSION,
                suite_run_id: suite_run_id.to_string(),
                wave: w as u32,
                run_id: format!("w{w}-j{j}"),
                experiment_source,
                bucket_name,
                experiment_version: None,
                settings: suite.defaults.clone(),
            });
        }
        waves.push(PlannedWave {
            on_failure: wave.on_failure,
            max_parallel: wave.max_parallel,
            jobs,
        });
    }
    Ok(Plan {
        suite_run_id: suite_run_id.to_string(),
        name: suite.name.clone(),
        source: None,
        created: now_iso(),
        waves,
    })
}

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
}

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Store the plan of a suite read from a directory here, then enqueue its first wave.
    /// Returns the suite run id.
    pub async fn submit(&self, suite: &Suite, base: &Path) -> Result<String, String> {
        let source = None;
        self.submit_from(
            &new_suite_run_id(),
            suite,
            &Origin::Dir(base.to_path_buf()),
            source,
        )
        .await
    }

    /// Submit a suite read from a directory here to workers elsewhere: every experiment file
    /// it names is copied into the store first (`suite-runs/<id>/experiments/`), so the
    /// workers read exactly what was submitted, and the audit trail keeps it.
    pub async fn submit_uploading(&self, suite: &Suite, base: &Path) -> Result<String, String> {
        let id = new_suite_run_id();
        // refused before anything is uploaded
        let local = plan(suite, &id, &Origin::Dir(base.to_path_buf()))?;
        self.refuse_unfit(&local).await?;
        let mut uploaded = suite.clone();
        for (w, wave) in uploaded.waves.iter_mut().enumerate() {
            for (j, r) in wave.experiments.iter_mut().enumerate() {
                if let ExperimentRef::File { path } = r {
                    let file = base.join(&*path);
                    let bytes = std::fs::read(&file)
                        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
                    let name = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("experiment");
                    let key = format!("suite-runs/{id}/experiments/w{w}-j{j}-{name}");
                    self.store
                        .put(&key, &bytes)
                        .await
                        .map_err(|e| e.to_string())?;
                    *r = ExperimentRef::Store { key };
                }
            }
        }
        self.store_and_start(&id, &uploaded, &Origin::Dir(base.to_path_buf()), None)
            .await
    }

    /// Store the plan, then enqueue the first wave; refused, storing and sending nothing, when
    /// a job cannot finish under the jobs queue's lease limit (see `lease_fit`).
    pub async fn submit_from(
        &self,
        id: &str,
        suite: &Suite,
        origin: &Origin,
        source: Option<String>,
    ) -> Result<String, String> {
        self.refuse_unfit(&plan(suite, id, origin)?).await?;
        self.store_and_start(id, suite, origin, source).await
    }

    /// `Err` naming every experiment of `plan` too long for the jobs queue's leases.
    async fn refuse_unfit(&self, plan: &Plan) -> Result<(), String> {
        let refused = super::lease_fit::refusals(&self.jobs, &self.store, plan).await?;
        if refused.is_empty() {
            Ok(())
        } else {
            Err(refused.join("\n"))
        }
    }

    async fn store_and_start(
        &self,
        id: &str,
        suite: &Suite,
        origin: &Origin,
        source: Option<String>,
    ) -> Result<String, String> {
        let mut plan = plan(suite, id, origin)?;
        plan.source = source;
        self.pin_versions(&mut plan).await;
        let bytes = serde_json::to_vec_pretty(&plan).map_err(|e| e.to_string())?;
        match self.store.put_if_absent(&plan_key(id), &bytes).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists { .. }) => {
                // submitted before (a trigger delivered again): finish what was started, once
                let plan: Plan = self
                    .get_json(&plan_key(id))
                    .await?
                    .ok_or_else(|| format!("suite run {id} has no plan"))?;
                if self.get_json::<State>(&state_key(id)).await?.is_some() {
                    tracing::info!("suite run {id} was already submitted");
                    return Ok(id.to_string());
                }
                return self.start(&plan).await;
            }
            Err(e) => return Err(e.to_string()),
        }
        self.start(&plan).await
    }

    /// Pin each S3 experiment of `plan` to its current version (in a versioned bucket), so the
    /// workers read what was submitted even if the object is replaced before their wave. An
    /// object that cannot be read now is left unpinned: its worker reports why it cannot run.
    async fn pin_versions(&self, plan: &mut Plan) {
        for job in plan.waves.iter_mut().flat_map(|w| w.jobs.iter_mut()) {
            let Some(bucket) = job.bucket_name.as_deref().filter(|b| !b.is_empty()) else {
                continue;
            };
            match self
                .store
                .get_from_bucket_at(bucket, &job.experiment_source, None)
                .await
            {
                Ok(Some((_, version))) => job.experiment_version = version,
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    "s3://{bucket}/{}: its version could not be pinned: {e}",
                    job.experiment_source
                ),
            }
        }
    }

    /// Enqueue a stored plan's first wave and save its state.
    async fn start(&self, plan: &Plan) -> Result<String, String> {
        let id = &plan.suite_run_id;
        let mut state = State {
            status: "running".into(),
            current_wave: 0,
            enqueued: Vec::new(),
            completions: BTreeMap::new(),
            outcome: None,
            problems: Vec::new(),
        };
        self.release(plan, &mut state, 0).await?;
        self.put_json(&state_key(id), &state).await?;
        Ok(id.to_string())
    }

    /// Handle one message from the triggers queue: fetch each suite it names and submit it.
    /// A suite that cannot be read or is invalid becomes a `rejected` suite run with its
    /// problems, announced by "Suite Completed" (outcome `invalid`), so nothing is lost.
    /// Suite run ids derive from the message id, so a trigger delivered twice (a lost ack, a
    /// failure half-way) resumes its suite runs instead of starting them again.
    /// Returns the suite run ids started or rejected.
    pub async fn on_trigger(
        &self,
        message_id: &str,
        body: &str,
        bucket: Option<&str>,
    ) -> Result<Vec<String>, String> {
        use super::triggers::{Trigger, parse_trigger};
        let locations = match parse_trigger(body, bucket) {
            Ok(Trigger::Run(locations)) => locations,
            Ok(Trigger::Nothing(why)) => {
                tracing::info!("trigger ignored: {why}");
                return Ok(Vec::new());
            }
            Err(why) => {
                let id = triggered_run_id(message_id, 0);
                self.reject(
                    &id,
                    "trigger",
                    None,
                    vec![format!("invalid trigger message: {why}")],
                )
                .await?;
                return Ok(vec![id]);
            }
        };
        let mut ids = Vec::new();
        for (i, location) in locations.iter().enumerate() {
            let id = triggered_run_id(message_id, i);
            let source = location.to_string();
            let read = self.read_triggered(location).await?;
            let mut planned = read.and_then(|(suite, origin)| {
                let p = plan(&suite, &id, &origin).map_err(|e| vec![format!("{source}: {e}")])?;
                Ok((suite, origin, p))
            });
            if let Ok((_, _, p)) = &planned {
                let refused = super::lease_fit::refusals(&self.jobs, &self.store, p).await?;
                if !refused.is_empty() {
                    planned = Err(refused);
                }
            }
            match planned {
                Ok((suite, origin, _)) => {
                    self.store_and_start(&id, &suite, &origin, Some(source.clone()))
                        .await?;
                    tracing::info!("suite run {id} submitted from {source}");
                }
                Err(problems) => {
                    self.reject(&id, &source, Some(source.clone()), problems)
                        .await?
                }
            }
            ids.push(id);
        }
        Ok(ids)
    }

    /// Read a triggered suite: `Ok(Err(problems))` when it is missing or invalid; `Err` only
    /// when the store itself failed (the trigger is then retried).
    async fn read_triggered(
        &self,
        location: &super::triggers::SuiteLocation,
    ) -> Result<Result<(Suite, Origin), Vec<String>>, String> {
        use super::triggers::SuiteLocation;
        use crate::load::document::Format;
        let (fetched, key, origin) = match location {
            SuiteLocation::Store { key } => (
                self.store.get(key).await,
                key.clone(),
                Origin::Store { key: key.clone() },
            ),
            SuiteLocation::S3 { bucket, key } => (
                self.store.get_from_bucket(bucket, key).await,
                key.clone(),
                Origin::S3 {
                    bucket: bucket.clone(),
                    key: key.clone(),
                },
            ),
        };
        let bytes = match fetched {
            Ok(bytes) => bytes,
            // retrying cannot help: a bad key, no such bucket, no permission
            Err(e @ (StoreError::InvalidKey { .. } | StoreError::Refused { .. })) => {
                return Ok(Err(vec![format!("{location}: {e}")]));
            }
            Err(e) => return Err(e.to_string()),
        };
        let Some(bytes) = bytes else {
            return Ok(Err(vec![format!("{location} does not exist")]));
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return Ok(Err(vec![format!("{location} is not UTF-8 text")]));
        };
        let path = Path::new(&key);
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("suite");
        let format = Format::detect(path, &text);
        if let Some(title) = lone_experiment_title(&text, format) {
            // an experiment uploaded alone runs as a suite of one
            let me = ExperimentRef::File {
                path: path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string(),
            };
            let suite = Suite {
                name: title.unwrap_or_else(|| name.to_string()),
                defaults: Default::default(),
                waves: vec![crate::model::suite::Wave {
                    experiments: vec![me],
                    on_failure: OnFailure::Stop,
                    max_parallel: None,
                }],
            };
            return Ok(Ok((suite, origin)));
        }
        Ok(
            crate::load::suite::load_suite_text(&text, format, Some(path), name)
                .map(|suite| (suite, origin))
                .map_err(|p| p.0.iter().map(|p| format!("{location}: {p}")).collect()),
        )
    }

    /// Record a suite run that never started, and say so on the bus.
    async fn reject(
        &self,
        id: &str,
        name: &str,
        source: Option<String>,
        problems: Vec<String>,
    ) -> Result<(), String> {
        if let Some(state) = self.get_json::<State>(&state_key(id)).await?
            && state.status != "rejected"
        {
            // an earlier delivery of this trigger submitted it: that run stands
            return Ok(());
        }
        for p in &problems {
            tracing::error!("suite run {id} rejected: {p}");
        }
        let plan = Plan {
            suite_run_id: id.to_string(),
            name: name.to_string(),
            source,
            created: now_iso(),
            waves: Vec::new(),
        };
        let state = State {
            status: "rejected".into(),
            current_wave: 0,
            enqueued: Vec::new(),
            completions: BTreeMap::new(),
            outcome: Some("invalid".into()),
            problems,
        };
        self.put_json(&plan_key(id), &plan).await?;
        self.put_json(&state_key(id), &state).await?;
        self.event(
            "Suite Completed",
            json!({"suite_run_id": id, "name": plan.name, "status": state.status,
                   "outcome": state.outcome, "problems": state.problems}),
        )
        .await
    }

    pub async fn load(&self, id: &str) -> Result<(Plan, State), String> {
        let plan: Plan = self
            .get_json(&plan_key(id))
            .await?
            .ok_or_else(|| format!("no suite run {id}"))?;
        let state: State = self
            .get_json(&state_key(id))
            .await?
            .ok_or_else(|| format!("suite run {id} has no state"))?;
        Ok((plan, state))
    }

    /// Handle one event from the events queue; `Ok(Some(id))` when it ended suite run `id`.
    pub async fn on_event(&self, event: &Event) -> Result<Option<String>, String> {
        if event.detail_type != "Experiment Completed" {
            return Ok(None);
        }
        let d = &event.detail;
        let (Some(id), Some(run_id)) = (d["suite_run_id"].as_str(), d["run_id"].as_str()) else {
            return Ok(None);
        };
        if id.is_empty() {
            return Ok(None); // a malformed job's event belongs to no suite
        }
        let completion = Completion {
            status: d["status"].as_str().unwrap_or("failed").to_string(),
            deviated: d["deviated"].as_bool().unwrap_or(false),
            journal_key: d["journal_key"].as_str().unwrap_or_default().to_string(),
        };
        self.complete(id, run_id, completion).await
    }

    /// Record a completion and move the suite on.
    pub async fn complete(
        &self,
        id: &str,
        run_id: &str,
        completion: Completion,
    ) -> Result<Option<String>, String> {
        let (plan, mut state) = self.load(id).await?;
        if state.status != "running" || state.completions.contains_key(run_id) {
            return Ok(None); // duplicate, or late for an ended suite
        }
        state.completions.insert(run_id.to_string(), completion);
        let ended = self.advance(&plan, &mut state).await?;
        self.put_json(&state_key(id), &state).await?;
        Ok(ended.then(|| id.to_string()))
    }

    /// Apply the gate until nothing changes; true when the suite ended.
    async fn advance(&self, plan: &Plan, state: &mut State) -> Result<bool, String> {
        loop {
            let w = state.current_wave;
            let wave = &plan.waves[w];
            let ids: Vec<String> = wave.jobs.iter().map(|j| j.run_id.clone()).collect();
            let outcomes: BTreeMap<String, JobOutcome> = state
                .completions
                .iter()
                .map(|(k, c)| (k.clone(), c.outcome()))
                .collect();
            let earlier = plan.waves[..w]
                .iter()
                .flat_map(|pw| pw.jobs.iter())
                .filter_map(|j| outcomes.get(&j.run_id).copied())
                .max();
            match decide(
                &ids,
                &outcomes,
                wave.on_failure,
                w + 1 == plan.waves.len(),
                earlier,
            ) {
                Decision::Wait { .. } => {
                    self.release(plan, state, w).await?;
                    return Ok(false);
                }
                Decision::ReleaseNext => {
                    state.current_wave = w + 1;
                    self.release(plan, state, w + 1).await?;
                }
                Decision::Complete(o) => return self.finish(plan, state, "completed", o).await,
                Decision::Halt(o) => return self.finish(plan, state, "halted", o).await,
            }
        }
    }

    /// End the suite run and say so on the bus.
    async fn finish(
        &self,
        plan: &Plan,
        state: &mut State,
        status: &str,
        outcome: JobOutcome,
    ) -> Result<bool, String> {
        state.status = status.into();
        state.outcome = Some(outcome_name(outcome).into());
        self.event(
            "Suite Completed",
            json!({"suite_run_id": plan.suite_run_id, "name": plan.name, "status": state.status, "outcome": state.outcome}),
        )
        .await?;
        Ok(true)
    }

    /// Enqueue the jobs of wave `w` not sent yet, up to its `max_parallel` in flight.
    async fn release(&self, plan: &Plan, state: &mut State, w: usize) -> Result<(), String> {
        let wave = &plan.waves[w];
        let in_flight = wave
            .jobs
            .iter()
            .filter(|j| {
                state.enqueued.contains(&j.run_id) && !state.completions.contains_key(&j.run_id)
            })
            .count();
        let room = wave
            .max_parallel
            .map_or(usize::MAX, |m| (m as usize).saturating_sub(in_flight));
        let first_release = !wave.jobs.iter().any(|j| state.enqueued.contains(&j.run_id));
        let batch: Vec<&Job> = wave
            .jobs
            .iter()
            .filter(|j| !state.enqueued.contains(&j.run_id))
            .take(room)
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        for chunk in batch.chunks(10) {
            let bodies: Vec<String> = chunk
                .iter()
                .map(|j| serde_json::to_string(j).unwrap_or_default())
                .collect();
            self.jobs
                .send_batch(&bodies)
                .await
                .map_err(|e| e.to_string())?;
            state
                .enqueued
                .extend(chunk.iter().map(|j| j.run_id.clone()));
        }
        if first_release {
            self.event(
                "Wave Released",
                json!({"suite_run_id": plan.suite_run_id, "wave": w, "jobs": wave.jobs.len()}),
            )
            .await?;
        }
        Ok(())
    }

    /// Handle completion events that could not be handled in time (the store was down for
    /// longer than their retries) or that the rule could not deliver: they land in the events
    /// queue's dead letters and are handled from there, so a suite never waits forever.
    pub async fn drain_dead_events(&self) -> Result<Vec<String>, String> {
        let mut ended = Vec::new();
        for dead in self
            .events
            .dead_letters()
            .await
            .map_err(|e| e.to_string())?
        {
            match serde_json::from_str::<Event>(&dead.body) {
                Ok(event) => match self.on_event(&event).await {
                    Ok(done) => ended.extend(done),
                    Err(e) => {
                        tracing::error!(message_id = %dead.id, "dead-lettered event still not handled: {e}");
                        continue;
                    }
                },
                Err(e) => {
                    tracing::warn!(message_id = %dead.id, "dead-lettered message is not an event, dropped: {e}")
                }
            }
            self.events
                .remove_dead_letter(&dead.id)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(ended)
    }

    /// Turn dead-lettered jobs into failed completions, so their suites finish.
    pub async fn drain_dead_letters(&self) -> Result<Vec<String>, String> {
        let mut ended = Vec::new();
        for DeadLetter {
            id,
            body,
            receive_count,
        } in self.jobs.dead_letters().await.map_err(|e| e.to_string())?
        {
            if let Ok(job) = Job::from_message(&body) {
                let completion = self.dead_letter_journal(&job, &id, receive_count).await?;
                if let Some(done) = self
                    .complete(&job.suite_run_id, &job.run_id, completion)
                    .await?
                {
                    ended.push(done);
                }
            }
            self.jobs
                .remove_dead_letter(&id)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(ended)
    }

    /// The journal of a dead-lettered job: a failed one saying so, created only if the job has
    /// none (with this dead letter's own token, so a lost answer is recognised as ours); a
    /// journal already there (a worker's, or an earlier drain's) stands, and the completion is
    /// what it says.
    async fn dead_letter_journal(
        &self,
        job: &Job,
        message_id: &str,
        receive_count: u32,
    ) -> Result<Completion, String> {
        let key = format!("runs/{}/{}/journal.json", job.suite_run_id, job.run_id);
        let reason = format!(
            "the job was received {receive_count} times without completing and was dead-lettered"
        );
        let mut journal = failed_journal(&job.experiment_source, &reason);
        if let Some(Value::Object(broker)) = &mut journal.broker {
            broker.insert(
                "dead_letter".into(),
                json!({"message_id": message_id, "token": crate::ids::random_id()}),
            );
        }
        let bytes = serde_json::to_vec_pretty(&journal).map_err(|e| format!("{key}: {e}"))?;
        let created = create_owned(&self.store, &key, &bytes)
            .await
            .map_err(|e| e.to_string())?;
        if let Created::Theirs(_) = &created {
            tracing::warn!(
                "dead-lettered job {}/{}: its journal {key} was already written; it stands",
                job.suite_run_id,
                job.run_id
            );
        }
        Ok(dead_letter_completion(&created, key))
    }

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

    async fn event(&self, detail_type: &str, detail: Value) -> Result<(), String> {
        let event = Event {
            id: crate::ids::random_id(),
            source: "experiment-broker".into(),
            detail_type: detail_type.into(),
            time: now_iso(),
            detail,
        };
        self.bus.publish(&event).await.map_err(|e| e.to_string())
    }

    async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| format!("{key}: {e}"))?;
        self.store.put(key, &bytes).await.map_err(|e| e.to_string())
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, key: &str) -> Result<Option<T>, String> {
        match self.store.get(key).await.map_err(|e| e.to_string())? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format!("{key}: {e}")),
            None => Ok(None),
        }
    }
}

/// How a dead-lettered job counts, given what its journal's create found (pure): failed when
/// the dead-letter journal is ours; as the journal that stands says otherwise (its `status`
/// and `deviated`; failed when unreadable).
pub fn dead_letter_completion(created: &Created, journal_key: String) -> Completion {
    let failed = Completion {
        status: Status::Failed.as_str().into(),
        deviated: false,
        journal_key,
    };
    let Created::Theirs(bytes) = created else {
        return failed;
    };
    let Ok(journal) = serde_json::from_slice::<Value>(bytes) else {
        return failed;
    };
    match journal["status"].as_str() {
        Some(status) => Completion {
            status: status.to_string(),
            deviated: journal["deviated"].as_bool().unwrap_or(false),
            ..failed
        },
        None => failed,
    }
}

/// `Some(title)` when the text is an experiment rather than a suite (it has a `method` or a
/// `steady-state-hypothesis` and no `waves`); the title, when it is a string.
fn lone_experiment_title(
    text: &str,
    format: crate::load::document::Format,
) -> Option<Option<String>> {
    let doc = crate::load::document::parse(text, format).ok()?;
    let root = doc.value.as_object()?;
    let experiment = (root.contains_key("method") || root.contains_key("steady-state-hypothesis"))
        && !root.contains_key("waves")
        && !root.contains_key("list");
    experiment.then(|| {
        root.get("title")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
}

/// The status document `producer status --json` prints.
pub fn status_document(plan: &Plan, state: &State) -> Value {
    let waves: Vec<Value> = plan
        .waves
        .iter()
        .enumerate()
        .map(|(w, wave)| {
            let jobs: Vec<Value> = wave
                .jobs
                .iter()
                .map(|j| {
                    let c = state.completions.get(&j.run_id);
                    json!({
                        "run_id": j.run_id,
                        "experiment_source": j.experiment_source,
                        "state": if c.is_some() { "completed" } else if state.enqueued.contains(&j.run_id) { "enqueued" } else { "pending" },
                        "outcome": c.map(|c| outcome_name(c.outcome())),
                        "status": c.map(|c| c.status.clone()),
                        "journal_key": c.map(|c| c.journal_key.clone()),
                    })
                })
                .collect();
            json!({"wave": w, "on_failure": wave.on_failure, "jobs": jobs})
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("suite_run_id".into(), json!(plan.suite_run_id));
    doc.insert("name".into(), json!(plan.name));
    doc.insert("source".into(), json!(plan.source));
    doc.insert("status".into(), json!(state.status));
    doc.insert("outcome".into(), json!(state.outcome));
    doc.insert("current_wave".into(), json!(state.current_wave));
    doc.insert("problems".into(), json!(state.problems));
    doc.insert("waves".into(), Value::Array(waves));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{Db, DirStore, SqliteBus, SqliteQueue};
    use crate::model::suite::{JobSettings, Wave};

    async fn ports(dir: &Path) -> ProducerPorts<SqliteQueue, SqliteQueue, DirStore, SqliteBus> {
        ports_on(dir, DirStore::new(dir.join("store"))).await
    }

    async fn ports_on<S: ObjectStore>(
        dir: &Path,
        store: S,
    ) -> ProducerPorts<SqliteQueue, SqliteQueue, S, SqliteBus> {
        let db = Db::open(&dir.join("broker.db")).unwrap();
        let bus = SqliteBus::new(db.clone(), "b");
        bus.subscribe("Suite Completed", "suites").await.unwrap();
        ProducerPorts {
            jobs: SqliteQueue::new(db.clone(), "jobs", 3),
            events: SqliteQueue::new(db.clone(), "events", 3),
            triggers: Some(SqliteQueue::new(db.clone(), "triggers", 3)),
            bucket: Some("broker".into()),
            store,
            bus,
        }
    }

    #[test]
    fn keys_beside_a_suite_resolve_dot_segments_and_never_climb_out() {
        for (suite, rel, expected) in [
            ("suites/nightly.yaml", "a.yaml", Some("suites/a.yaml")),
            (
                "suites/nightly.yaml",
                "../experiments/a.yaml",
                Some("experiments/a.yaml"),
            ),
            ("suites/team/x.yaml", "./../../e/a.yaml", Some("e/a.yaml")),
            ("nightly.yaml", "a.yaml", Some("a.yaml")),
            ("suites/nightly.yaml", "../../a.yaml", None),
            ("nightly.yaml", "..", None),
        ] {
            assert_eq!(join_key(suite, rel).as_deref(), expected, "{suite} + {rel}");
        }
    }

    /// The next "Suite Completed" event's detail (the test ports route them to `suites`).
    async fn suite_completed(dir: &Path) -> Value {
        let db = Db::open(&dir.join("broker.db")).unwrap();
        let q = SqliteQueue::new(db, "suites", 3);
        let m = crate::contract::next_message(&q, Duration::from_secs(30), "Suite Completed").await;
        serde_json::from_str::<Event>(&m.body).unwrap().detail
    }

    #[tokio::test]
    async fn an_uploaded_suite_runs_its_experiments_from_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let ports = ports(dir.path()).await;
        ports
            .store
            .put(
                "suites/team/nightly.yaml",
                b"name: nightly\nwaves:\n  - experiments: [../../experiments/a.yaml, b.json]\n",
            )
            .await
            .unwrap();
        let body = r#"{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": "broker"}, "object": {"key": "suites%2Fteam%2Fnightly.yaml"}}}]}"#;
        let ids = ports.on_trigger("m1", body, Some("broker")).await.unwrap();
        let (plan, state) = ports.load(&ids[0]).await.unwrap();
        assert_eq!(
            plan.source.as_deref(),
            Some("store:suites/team/nightly.yaml")
        );
        let sources: Vec<&str> = plan.waves[0]
            .jobs
            .iter()
            .map(|j| j.experiment_source.as_str())
            .collect();
        assert_eq!(
            sources,
            ["store:experiments/a.yaml", "store:suites/team/b.json"]
        );
        assert_eq!(state.enqueued.len(), 2, "the first wave is enqueued");
    }

    #[tokio::test]
    async fn an_experiment_uploaded_alone_is_a_suite_of_one() {
        let dir = tempfile::tempdir().unwrap();
        let ports = ports(dir.path()).await;
        ports
            .store
            .put(
                "suites/disk.json",
                br#"{"title": "Disk fills", "description": "d", "method": []}"#,
            )
            .await
            .unwrap();
        let ids = ports
            .on_trigger(
                "m1",
                r#"{"version": 1, "suite": "suites/disk.json"}"#,
                Some("broker"),
            )
            .await
            .unwrap();
        let (plan, _) = ports.load(&ids[0]).await.unwrap();
        assert_eq!(plan.name, "Disk fills");
        assert_eq!(plan.waves.len(), 1);
        assert_eq!(
            plan.waves[0].jobs[0].experiment_source,
            "store:suites/disk.json"
        );
    }

    #[tokio::test]
    async fn a_missing_or_invalid_suite_is_rejected_and_announced() {
        let dir = tempfile::tempdir().unwrap();
        let ports = ports(dir.path()).await;
        ports
            .store
            .put("suites/bad.yaml", b"name: bad\nwaves: []\n")
            .await
            .unwrap();
        ports
            .store
            .put(
                "suites/up.yaml",
                b"waves:\n  - experiments: [../../etc/x.yaml]\n",
            )
            .await
            .unwrap();
        for (body, needle) in [
            (r#"{"suite": "suites/team/"}"#, "invalid object key"),
            (r#"{"suite": "suites/up.yaml"}"#, "climbs out of the bucket"),
            (r#"{"Records": []}"#, "Records is empty"),
            (
                r#"{"suite": "suites/none.yaml"}"#,
                "store:suites/none.yaml does not exist",
            ),
            (r#"{"suite": "suites/bad.yaml"}"#, "waves: is empty"),
            ("not json", "invalid trigger message"),
        ] {
            let ids = ports.on_trigger(body, body, Some("broker")).await.unwrap();
            let (_, state) = ports.load(&ids[0]).await.unwrap();
            assert_eq!(
                (state.status.as_str(), state.outcome.as_deref()),
                ("rejected", Some("invalid"))
            );
            assert!(
                state.problems.iter().any(|p| p.contains(needle)),
                "{body}: {:?}",
                state.problems
            );
            let detail = suite_completed(dir.path()).await;
            assert_eq!(detail["suite_run_id"], ids[0].as_str());
            assert_eq!(detail["outcome"], "invalid");
        }
    }

    #[tokio::test]
    async fn a_trigger_delivered_again_resumes_its_suite_run_instead_of_starting_another() {
        let dir = tempfile::tempdir().unwrap();
        let ports = ports(dir.path()).await;
        ports
            .store
            .put(
                "suites/n.yaml",
                b"waves:\n  - experiments: [a.json, b.json]\n",
            )
            .await
            .unwrap();
        let body = r#"{"suite": "suites/n.yaml"}"#;
        let first = ports.on_trigger("msg-1", body, None).await.unwrap();
        let again = ports.on_trigger("msg-1", body, None).await.unwrap();
        assert_eq!(first, again, "the same suite run");
        let jobs = ports
            .jobs
            .receive(10, Duration::from_secs(30), Duration::from_millis(200))
            .await
            .unwrap();
        assert_eq!(jobs.len(), 2, "its jobs were sent once");
        // the suite is gone by the third delivery: the run that was submitted stands
        ports
            .store
            .put("suites/n.yaml", b"not: a suite\n")
            .await
            .unwrap();
        ports.on_trigger("msg-1", body, None).await.unwrap();
        let (_, state) = ports.load(&first[0]).await.unwrap();
        assert_eq!(state.status, "running");
        // a plan stored without its state (a crash between the two) is started on redelivery
        let id = triggered_run_id("msg-2", 0);
        ports
            .store
            .put("suites/n.yaml", b"waves:\n  - experiments: [a.json]\n")
            .await
            .unwrap();
        ports.on_trigger("msg-2", body, None).await.unwrap();
        std::fs::remove_file(dir.path().join("store").join(state_key(&id))).unwrap();
        ports.on_trigger("msg-2", body, None).await.unwrap();
        let (_, state) = ports.load(&id).await.unwrap();
        assert_eq!(state.enqueued, ["w0-j0"]);
    }

    #[tokio::test]
    async fn a_suite_whose_plan_create_lost_its_answer_is_still_started_once() {
        use crate::contract::store::{Interference, Interfering};
        let dir = tempfile::tempdir().unwrap();
        let store = Interfering::new(
            DirStore::new(dir.path().join("store")),
            "plan.json",
            Interference::LoseAnswer,
        );
        let p = ports_on(dir.path(), store).await;
        p.store
            .put("suites/n.yaml", b"waves:\n  - experiments: [a.json]\n")
            .await
            .unwrap();
        let ids = p
            .on_trigger("m1", r#"{"suite": "suites/n.yaml"}"#, None)
            .await
            .unwrap();
        assert_eq!(
            p.store.interfered(),
            [plan_key(&ids[0])],
            "the answer was lost"
        );
        let (_, state) = p.load(&ids[0]).await.unwrap();
        assert_eq!(state.enqueued, ["w0-j0"], "started");
        let jobs = p
            .jobs
            .receive(10, Duration::from_secs(30), Duration::from_millis(200))
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1, "its job was sent once");
    }

    #[tokio::test]
    async fn a_dead_lettered_completion_event_still_completes_its_suite() {
        let dir = tempfile::tempdir().unwrap();
        let ports = ports(dir.path()).await;
        ports
            .store
            .put("suites/n.yaml", b"waves:\n  - experiments: [a.json]\n")
            .await
            .unwrap();
        let ids = ports
            .on_trigger("m", r#"{"suite": "suites/n.yaml"}"#, None)
            .await
            .unwrap();
        let event = Event {
            id: "e1".into(),
            source: "experiment-broker".into(),
            detail_type: "Experiment Completed".into(),
            time: now_iso(),
            detail: json!({"suite_run_id": ids[0], "run_id": "w0-j0", "status": "completed",
                           "deviated": false, "journal_key": "runs/x/journal.json"}),
        };
        ports
            .events
            .send_batch(&[serde_json::to_string(&event).unwrap()])
            .await
            .unwrap();
        // received until the queue gives up on it (the store was down, say)
        for _ in 0..4 {
            let _ = ports
                .events
                .receive(1, Duration::from_millis(1), Duration::from_millis(50))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(ports.events.dead_letters().await.unwrap().len(), 1);
        assert_eq!(ports.drain_dead_events().await.unwrap(), ids);
        let (_, state) = ports.load(&ids[0]).await.unwrap();
        assert_eq!(
            (state.status.as_str(), state.outcome.as_deref()),
            ("completed", Some("held"))
        );
        assert!(ports.events.dead_letters().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_s3_test_event_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ports = ports(dir.path()).await;
        let ids = ports
            .on_trigger(
                "m1",
                r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"broker"}"#,
                Some("broker"),
            )
            .await
            .unwrap();
        assert!(ids.is_empty());
        assert!(ports.store.list("suite-runs").await.unwrap().is_empty());
    }

    fn suite(waves: Vec<(usize, OnFailure, Option<u32>)>) -> Suite {
        Suite {
            name: "s".into(),
            defaults: JobSettings::default(),
            waves: waves
                .into_iter()
                .map(|(n, on_failure, max_parallel)| Wave {
                    experiments: (0..n)
                        .map(|i| ExperimentRef::Store {
                            key: format!("e{i}"),
                        })
                        .collect(),
                    on_failure,
                    max_parallel,
                })
                .collect(),
        }
    }

    fn done(status: &str, deviated: bool) -> Completion {
        Completion {
            status: status.into(),
            deviated,
            journal_key: "k".into(),
        }
    }

    async fn queued(p: &ProducerPorts<SqliteQueue, SqliteQueue, DirStore, SqliteBus>) -> Vec<Job> {
        let ms = p
            .jobs
            .receive(100, Duration::from_secs(60), Duration::ZERO)
            .await
            .unwrap();
        ms.iter()
            .map(|m| Job::from_message(&m.body).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn waves_are_released_one_after_the_other_and_duplicates_count_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = ports(dir.path()).await;
        let id = p
            .submit(
                &suite(vec![
                    (2, OnFailure::Continue, None),
                    (1, OnFailure::Stop, None),
                ]),
                dir.path(),
            )
            .await
            .unwrap();
        assert_eq!(queued(&p).await.len(), 2, "wave 0 only");
        assert_eq!(
            p.complete(&id, "w0-j0", done("completed", false))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            p.complete(&id, "w0-j0", done("completed", false))
                .await
                .unwrap(),
            None,
            "duplicate"
        );
        assert!(
            queued(&p).await.is_empty(),
            "a duplicate does not release the wave"
        );
        assert_eq!(
            p.complete(&id, "w0-j1", done("failed", false))
                .await
                .unwrap(),
            None
        );
        let next = queued(&p).await;
        assert_eq!(
            next.len(),
            1,
            "continue: wave 1 released despite the failure"
        );
        assert_eq!(next[0].wave, 1);
        assert_eq!(
            p.complete(&id, "w1-j0", done("completed", false))
                .await
                .unwrap(),
            Some(id.clone())
        );
        let (_, state) = p.load(&id).await.unwrap();
        assert_eq!(
            (state.status.as_str(), state.outcome.as_deref()),
            ("completed", Some("failed"))
        );
    }

    #[tokio::test]
    async fn stop_halts_and_max_parallel_limits_what_is_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let p = ports(dir.path()).await;
        let id = p
            .submit(
                &suite(vec![
                    (3, OnFailure::Stop, Some(1)),
                    (1, OnFailure::Stop, None),
                ]),
                dir.path(),
            )
            .await
            .unwrap();
        assert_eq!(queued(&p).await.len(), 1, "max_parallel 1");
        p.complete(&id, "w0-j0", done("completed", true))
            .await
            .unwrap();
        assert_eq!(queued(&p).await.len(), 1, "the next job of the wave");
        p.complete(&id, "w0-j1", done("completed", false))
            .await
            .unwrap();
        assert_eq!(queued(&p).await.len(), 1);
        assert_eq!(
            p.complete(&id, "w0-j2", done("completed", false))
                .await
                .unwrap(),
            Some(id.clone())
        );
        assert!(queued(&p).await.is_empty(), "halted: wave 1 never released");
        let (_, state) = p.load(&id).await.unwrap();
        assert_eq!(
            (state.status.as_str(), state.outcome.as_deref()),
            ("halted", Some("deviated"))
        );
    }

    #[tokio::test]
    async fn a_restarted_producer_resumes_from_the_stored_state() {
        let dir = tempfile::tempdir().unwrap();
        let first = ports(dir.path()).await;
        let id = first
            .submit(
                &suite(vec![(2, OnFailure::Stop, None), (1, OnFailure::Stop, None)]),
                dir.path(),
            )
            .await
            .unwrap();
        first
            .complete(&id, "w0-j0", done("completed", false))
            .await
            .unwrap();
        drop(first);
        let second = ports(dir.path()).await; // a new process: new connections, same state dir
        assert_eq!(
            queued(&second).await.len(),
            2,
            "wave 0's jobs are still queued"
        );
        second
            .complete(&id, "w0-j0", done("completed", false))
            .await
            .unwrap();
        let (_, state) = second.load(&id).await.unwrap();
        assert_eq!(
            state.current_wave, 0,
            "the replayed completion changed nothing"
        );
        second
            .complete(&id, "w0-j1", done("completed", false))
            .await
            .unwrap();
        let (_, state) = second.load(&id).await.unwrap();
        assert_eq!(state.current_wave, 1, "wave 1 released after the restart");
    }

    /// Receive the suite's one job until the queue dead-letters it (3 receives, never acked).
    async fn receive_until_dead_lettered<S: ObjectStore>(
        p: &ProducerPorts<SqliteQueue, SqliteQueue, S, SqliteBus>,
    ) {
        for _ in 0..3 {
            let m = p
                .jobs
                .receive(1, Duration::from_millis(1), Duration::from_secs(2))
                .await
                .unwrap();
            assert_eq!(m.len(), 1);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            p.jobs
                .receive(1, Duration::from_secs(1), Duration::from_millis(50))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn dead_letters_become_failed_completions() {
        let dir = tempfile::tempdir().unwrap();
        let p = ports(dir.path()).await;
        let id = p
            .submit(&suite(vec![(1, OnFailure::Stop, None)]), dir.path())
            .await
            .unwrap();
        receive_until_dead_lettered(&p).await;
        assert_eq!(p.drain_dead_letters().await.unwrap(), vec![id.clone()]);
        let (_, state) = p.load(&id).await.unwrap();
        assert_eq!(state.outcome.as_deref(), Some("failed"));
        let journal = p
            .store
            .get(&format!("runs/{id}/w0-j0/journal.json"))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&journal).contains("dead-lettered"));
    }
    #[test]
    fn a_dead_lettered_job_counts_as_the_journal_that_stands() {
        let theirs = |j: Value| Created::Theirs(j.to_string().into_bytes());
        let table = [
            (Created::New, ("failed", false)),
            (Created::Ours, ("failed", false)),
            (
                theirs(json!({"status": "completed", "deviated": false})),
                ("completed", false),
            ),
            (
                theirs(json!({"status": "completed", "deviated": true})),
                ("completed", true),
            ),
            (
                theirs(json!({"status": "interrupted"})),
                ("interrupted", false),
            ),
            (theirs(json!({"no": "status"})), ("failed", false)),
            (Created::Theirs(b"not json".to_vec()), ("failed", false)),
        ];
        for (created, (status, deviated)) in table {
            let c = dead_letter_completion(&created, "k".into());
            assert_eq!(
                (c.status.as_str(), c.deviated, c.journal_key.as_str()),
                (status, deviated, "k"),
                "{created:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_dead_lettered_job_never_overwrites_the_workers_journal_and_a_completed_one_stays_completed()
     {
        use crate::contract::store::{Interference, Interfering};
        let dir = tempfile::tempdir().unwrap();
        // the worker's journal (its answers were lost, so its job was dead-lettered) lands
        // just as the producer writes the dead-letter journal
        let workers = serde_json::to_vec_pretty(&json!({"status": "completed", "deviated": false,
            "broker": {"delivery": {"worker": "w1", "token": "t1"}}}))
        .unwrap();
        let store = Interfering::new(
            DirStore::new(dir.path().join("store")),
            "journal.json",
            Interference::Competitor(workers.clone()),
        );
        let p = ports_on(dir.path(), store).await;
        let id = p
            .submit(&suite(vec![(1, OnFailure::Stop, None)]), dir.path())
            .await
            .unwrap();
        receive_until_dead_lettered(&p).await;
        assert_eq!(p.drain_dead_letters().await.unwrap(), vec![id.clone()]);
        let key = format!("runs/{id}/w0-j0/journal.json");
        assert_eq!(
            p.store.interfered(),
            std::slice::from_ref(&key),
            "the worker's journal landed"
        );
        let stands = p.store.get(&key).await.unwrap().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&stands),
            String::from_utf8_lossy(&workers),
            "the worker's journal stands"
        );
        let (_, state) = p.load(&id).await.unwrap();
        assert_eq!(
            (state.status.as_str(), state.outcome.as_deref()),
            ("completed", Some("held")),
            "the job counts as its journal says"
        );
        assert_eq!(state.completions["w0-j0"].status, "completed");
    }
}
