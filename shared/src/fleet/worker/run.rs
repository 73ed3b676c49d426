//! Making a run: fetch the experiment, keep the exact text a revert would play (unless its
//! source can never change), load and run it under the tripwires with checkpoints; or, for a job
//! whose owner died, stop what its records name and play the rollbacks of the text it ran. Any
//! failure becomes a failed journal.

use super::checkpoints;
use super::error::{FetchError, WorkerError};
use super::job::JobRun;
use crate::engine::RunOptions;
use crate::fleet::keys::RunKeys;
use crate::fleet::safety::guard::run_guarded;
use crate::fleet::safety::orphans;
use crate::load::document::Format;
use crate::load::revert::load_for_revert;
use crate::load::{Vars, load_experiment_text, off_runtime};
use crate::model::suite::Job;
use crate::model::{Experiment, HypothesisStrategy, Journal, RollbackStrategy, failed_journal};
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// Whether the text a job runs can never change under it, so a revert can read it again from
/// its source and the run keeps no copy (one S3 PUT a job fewer): an object pinned to a version
/// (the producer pins `s3://` and `store:` experiments in a versioned bucket), or an experiment
/// the producer uploaded with this job's own suite run (`suite-runs/<id>/experiments/`, written
/// once, never replaced). A file path, an unpinned object or any other store key may be
/// replaced mid-run: those are copied before anything runs.
pub(crate) fn source_is_immutable(job: &Job) -> bool {
    let pinned = job
        .experiment_version
        .as_deref()
        .is_some_and(|v| !v.is_empty());
    if job.bucket_name.as_deref().is_some_and(|b| !b.is_empty()) {
        return pinned;
    }
    if pinned && job.experiment_source.starts_with("store:") {
        return true;
    }
    let uploaded = format!(
        "store:{}/",
        crate::fleet::keys::SuiteRunKeys::new(&job.suite_run_id).experiments()
    );
    job.experiment_source
        .strip_prefix(&uploaded)
        .is_some_and(|name| !name.is_empty() && !name.contains('/') && !job.suite_run_id.is_empty())
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

impl<Q, S, B> JobRun<Q, S, B>
where
    Q: JobQueue + Clone + 'static,
    S: ObjectStore + Clone + 'static,
    B: EventBus + Clone + 'static,
{
    /// Fetch, load and run the experiment; any failure becomes a failed journal. `Err` only
    /// when the store failed where going on could lose what a dead owner did (the message is
    /// then left to come back).
    pub(super) async fn run(
        &self,
        job: &Job,
        keys: &RunKeys,
        revert_only: bool,
    ) -> Result<Journal, WorkerError> {
        if revert_only {
            return self.revert(job, keys).await;
        }
        let source = job.experiment_source.clone();
        let text = match self.fetch(job).await {
            Ok(t) => t,
            Err(reason) => return Ok(failed_journal(&source, &reason.to_string())),
        };
        // the exact text is kept before anything runs: a revert plays these rollbacks, whatever
        // becomes of the experiment's source (a source that cannot change is its own copy)
        let copy = keys.experiment();
        if !source_is_immutable(job)
            && let Err(e) = self.ports.store.put(&copy, text.as_bytes()).await
        {
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
        // the suite's strictness, or `strict: true` in the experiment-broker extension: its
        // warnings are problems
        let strict = job.settings.strict;
        let loaded = loaded.and_then(|e| match crate::load::strict_problems(&e, strict) {
            Some(problems) => Err(problems),
            None => Ok(e),
        });
        let experiment = match loaded {
            Ok(e) => e,
            Err(problems) => {
                return Ok(failed_journal(
                    &source,
                    &format!("invalid experiment:\n{problems}"),
                ));
            }
        };
        Ok(self.engine(job, keys, experiment, &vars, false, None).await)
    }

    /// A job whose owner died (or lost its lease) mid-run: read the dead owner's checkpoint,
    /// have what its records name stopped, then play the rollbacks of the copy it ran. The
    /// journal carries the dead owner's runs and records, then the revert.
    async fn revert(&self, job: &Job, keys: &RunKeys) -> Result<Journal, WorkerError> {
        let source = job.experiment_source.clone();
        let store = &self.ports.store;
        let checkpoint_key = keys.checkpoint();
        let mut prior = match store.get(&checkpoint_key).await? {
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
            let records = checkpoints::records_of(&prior.broker);
            if let Some(stopped) = orphans::stop_recorded(&self.providers, &records).await {
                push_record(prior, stopped);
                // on record before the rollbacks: a worker dying now does not stop it again
                // without knowing it was
                let bytes = serde_json::to_vec(prior).map_err(|source| WorkerError::Serialise {
                    key: checkpoint_key.clone(),
                    source,
                })?;
                store.put(&checkpoint_key, &bytes).await.map_err(|source| {
                    WorkerError::Checkpoint {
                        key: checkpoint_key.clone(),
                        source,
                    }
                })?;
            }
        }
        let carried = |journal: Journal| match &prior {
            Some(p) => checkpoints::carry_over(p, journal),
            None => journal,
        };
        let copy = keys.experiment();
        let kept = if source_is_immutable(job) {
            None
        } else {
            store.get(&copy).await?
        };
        let text = match kept {
            None if source_is_immutable(job) => self.fetch(job).await,
            Some(bytes) => {
                String::from_utf8(bytes).map_err(|_| FetchError::CopyNotText { key: copy.clone() })
            }
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
            .engine(job, keys, loaded.experiment, &vars, true, prior.clone())
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
        keys: &RunKeys,
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
        let (checkpoints, writer) =
            checkpoints::start_after(self.ports.store.clone(), keys.checkpoint(), prior);
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

    pub(super) async fn fetch(&self, job: &Job) -> Result<String, FetchError> {
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
                .await?;
            let Some((bytes, _)) = got else {
                return Err(FetchError::Missing { what: uri });
            };
            return String::from_utf8(bytes).map_err(|_| FetchError::NotText { what: uri });
        }
        if let Some(key) = source.strip_prefix("store:") {
            // pinned by the producer (a versioned bucket): exactly that version
            if let (Some(version), Some(bucket)) = (
                job.experiment_version.as_deref().filter(|v| !v.is_empty()),
                self.ports.store.own_bucket(),
            ) {
                let what = format!("store object {key} (version {version})");
                let got = self
                    .ports
                    .store
                    .get_from_bucket_at(bucket, key, Some(version))
                    .await?;
                let Some((bytes, _)) = got else {
                    return Err(FetchError::Missing { what });
                };
                return String::from_utf8(bytes).map_err(|_| FetchError::NotText { what });
            }
            let what = format!("store object {key}");
            let Some(bytes) = self.ports.store.get(key).await? else {
                return Err(FetchError::Missing { what });
            };
            return String::from_utf8(bytes).map_err(|_| FetchError::NotText { what });
        }
        tokio::fs::read_to_string(source)
            .await
            .map_err(|e| FetchError::Read {
                path: source.clone(),
                source: e,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::source_is_immutable;
    use crate::model::suite::Job;

    fn job(source: &str, bucket: Option<&str>, version: Option<&str>) -> Job {
        Job {
            version: Job::VERSION,
            suite_run_id: "sr-1".into(),
            wave: 0,
            run_id: "w0-j0".into(),
            experiment_source: source.into(),
            bucket_name: bucket.map(Into::into),
            experiment_version: version.map(Into::into),
            traceparent: None,
            settings: Default::default(),
        }
    }

    #[test]
    fn only_a_pinned_object_or_this_suite_runs_own_upload_is_its_own_copy() {
        let cases = [
            // S3: pinned to a version or not
            (job("experiments/e.json", Some("b"), Some("v1")), true),
            (job("experiments/e.json", Some("b"), None), false),
            (job("experiments/e.json", Some("b"), Some("")), false),
            // the producer's upload for this suite run
            (
                job("store:suite-runs/sr-1/experiments/w0-j0-e.json", None, None),
                true,
            ),
            // another suite run's upload, a nested key, the folder itself, any other key
            (
                job("store:suite-runs/sr-2/experiments/w0-j0-e.json", None, None),
                false,
            ),
            (
                job("store:suite-runs/sr-1/experiments/x/e.json", None, None),
                false,
            ),
            (job("store:suite-runs/sr-1/experiments/", None, None), false),
            (job("store:experiments/e.json", None, None), false),
            // a store key pinned to a version (only a versioned store pins one)
            (job("store:experiments/e.json", None, Some("v1")), true),
            (job("store:experiments/e.json", None, Some("")), false),
            // a file may be edited at any time, even named like an upload
            (
                job("suite-runs/sr-1/experiments/w0-j0-e.json", None, None),
                false,
            ),
            (job("/tmp/e.json", None, Some("v1")), false),
            // an empty bucket name is no bucket
            (
                job(
                    "store:suite-runs/sr-1/experiments/w0-j0-e.json",
                    Some(""),
                    None,
                ),
                true,
            ),
        ];
        for (job, expected) in cases {
            assert_eq!(
                source_is_immutable(&job),
                expected,
                "{:?} in {:?} at {:?}",
                job.experiment_source,
                job.bucket_name,
                job.experiment_version
            );
        }
    }
}
