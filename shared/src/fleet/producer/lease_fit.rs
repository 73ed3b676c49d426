//! Submit-time check that every job of a plan can finish under its lease.
//!
//! SQS cannot extend a lease past 12 hours from the first receive. A job that runs longer loses
//! its lease mid-run: the heartbeat's refusal interrupts it (rollbacks run), or worse, another
//! worker receives it while faults are still injected. So before anything is stored or enqueued
//! on a queue with such a limit (`JobQueue::max_lease`), each experiment the plan names is read
//! the way a worker will read it and its declared duration (`model::duration`) is compared with
//! the limit. The embedded queue has no limit (its heartbeat extends a lease for as long as a
//! job runs), so nothing is read there.
//!
//! An experiment that cannot be read or is invalid is not refused here: the worker reports it
//! in a failed journal, as it always has.

use super::plan::Plan;
use crate::load::Vars;
use crate::load::document::{self, Format};
use crate::load::validate::{Checks, validate};
use crate::model::duration::{estimate, fits};
use crate::model::suite::Job;
use crate::model::{Experiment, HypothesisStrategy};
use crate::ports::queue::JobQueue;
use crate::ports::store::{ObjectStore, StoreError};
use serde_json::{Map, Value};
use std::path::Path;

/// Why each job of `plan` cannot fit in `jobs`'s lease limit (empty when all fit or there is no
/// limit). `Err` only when the store failed.
pub async fn refusals<Q: JobQueue, S: ObjectStore>(
    jobs: &Q,
    store: &S,
    plan: &Plan,
) -> Result<Vec<String>, StoreError> {
    let Some(limit) = jobs.max_lease() else {
        return Ok(Vec::new());
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut refused = Vec::new();
    for job in plan
        .waves
        .iter()
        .filter(|w| !w.skipped)
        .flat_map(|w| &w.jobs)
    {
        // each experiment is read and estimated once per settings, however many jobs name it
        let settings = serde_json::to_string(&job.settings).unwrap_or_default();
        let what = (
            job.experiment_source.clone(),
            job.bucket_name.clone(),
            job.experiment_version.clone(),
            settings,
        );
        if !seen.insert(what) {
            continue;
        }
        let (name, text) = match read(store, job).await? {
            Some(read) => read,
            None => continue,
        };
        let Some(experiment) = parse(&text, &name, job) else {
            continue;
        };
        let strategy = job
            .settings
            .hypothesis_strategy
            .as_deref()
            .and_then(HypothesisStrategy::parse)
            .or(experiment.runtime.hypothesis_strategy)
            .unwrap_or_default();
        let found = estimate(&experiment, strategy, &values(&experiment, job));
        if !found.unknown.is_empty() {
            tracing::info!("{name}: no declared bound for {}", found.unknown.join("; "));
        }
        if let Err(why) = fits(&name, &found, limit) {
            refused.push(why);
        }
    }
    Ok(refused)
}

/// The text a worker would run, named as the user knows it; `None` when it cannot be read (the
/// worker says why in the job's journal).
async fn read<S: ObjectStore>(
    store: &S,
    job: &Job,
) -> Result<Option<(String, String)>, StoreError> {
    let source = &job.experiment_source;
    let (name, bytes) = if let Some(bucket) = job.bucket_name.as_deref().filter(|b| !b.is_empty()) {
        let bytes = match store.get_from_bucket(bucket, source).await {
            Ok(bytes) => bytes,
            // another bucket we may not read: the worker says so in the job's journal
            Err(StoreError::InvalidKey { .. } | StoreError::Refused { .. }) => None,
            Err(e) => return Err(e),
        };
        (format!("s3://{bucket}/{source}"), bytes)
    } else if let Some(key) = source.strip_prefix("store:") {
        let bytes = store.get(key).await?;
        (source.clone(), bytes)
    } else {
        (source.clone(), tokio::fs::read(source).await.ok())
    };
    Ok(bytes
        .and_then(|b| String::from_utf8(b).ok())
        .map(|text| (name, text)))
}

/// The experiment as the worker will load it (no executable or Python checks: those are the
/// worker's); `None` when invalid.
fn parse(text: &str, name: &str, job: &Job) -> Option<Experiment> {
    let doc = document::parse(text, Format::detect(Path::new(name), text)).ok()?;
    let vars = Vars {
        configuration: job.settings.vars.clone(),
        ..Vars::default()
    };
    let checks = Checks {
        vars: &vars,
        check_executables: false,
    };
    validate(&doc.value, &checks).ok()
}

/// What `${name}` can be resolved to before the run: the experiment's plain configuration
/// values, overridden by the job's vars.
fn values(e: &Experiment, job: &Job) -> Map<String, Value> {
    let mut out: Map<String, Value> = e
        .configuration
        .iter()
        .filter(|(_, v)| !v.is_object())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(job.settings.vars.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::{Db, DirStore, SqliteQueue};
    use crate::fleet::producer::plan::{Origin, plan};
    use crate::model::suite::{ExperimentRef, OnFailure, Suite, Wave};
    use serde_json::json;

    #[tokio::test]
    async fn the_embedded_queue_has_no_lease_limit_so_a_long_job_is_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let long = json!({"title": "long", "description": "d",
            "method": [{"type": "action", "name": "wait", "pauses": {"after": 500_000},
                "provider": {"type": "process", "path": "true", "timeout": 1}}]});
        std::fs::write(dir.path().join("long.json"), long.to_string()).unwrap();
        let suite = Suite {
            name: "s".into(),
            defaults: Default::default(),
            strict: false,
            waves: vec![Wave {
                experiments: vec![ExperimentRef::File {
                    path: "long.json".into(),
                }],
                on_failure: OnFailure::Stop,
                max_parallel: None,
                skipped: false,
            }],
        };
        let plan = plan(&suite, "sr", &Origin::Dir(dir.path().to_path_buf())).unwrap();
        let db = Db::open(&dir.path().join("broker.db")).unwrap();
        let jobs = SqliteQueue::new(db, "jobs", 3);
        assert_eq!(
            jobs.max_lease(),
            None,
            "SQLite extends a lease for as long as asked"
        );
        let store = DirStore::new(dir.path().join("store"));
        assert_eq!(
            refusals(&jobs, &store, &plan).await.unwrap(),
            Vec::<String>::new()
        );
    }
}
