//! The triggers queue: each message names suites to submit (`parse`); a suite that cannot be
//! read or is invalid becomes a `rejected` suite run, announced, so nothing is lost.

pub mod parse;

#[cfg(test)]
mod tests;

use super::plan::{Origin, Plan, plan, triggered_run_id};
use super::state::State;
use super::{ProducerError, ProducerPorts};
use crate::clock::now_iso;
use crate::fleet::events::{Detail, SuiteCompleted};
use crate::fleet::keys::SuiteRunKeys;
use crate::fleet::outcome::{SuiteOutcome, SuiteStatus};
use crate::model::suite::{ExperimentRef, OnFailure, Suite};
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::{ObjectStore, StoreError};
use serde_json::Value;
use std::path::Path;

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
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
    ) -> Result<Vec<String>, ProducerError> {
        use parse::{Trigger, parse_trigger};
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
        location: &parse::SuiteLocation,
    ) -> Result<Result<(Suite, Origin), Vec<String>>, ProducerError> {
        use crate::load::document::Format;
        use parse::SuiteLocation;
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
            Err(e) => return Err(e.into()),
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
                strict: false,
                waves: vec![crate::model::suite::Wave {
                    experiments: vec![me],
                    on_failure: OnFailure::Stop,
                    max_parallel: None,
                    skipped: false,
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
    ) -> Result<(), ProducerError> {
        let keys = SuiteRunKeys::new(id);
        if let Some(state) = self.get_json::<State>(&keys.state()).await?
            && state.status != SuiteStatus::Rejected
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
            status: SuiteStatus::Rejected,
            outcome: Some(SuiteOutcome::Invalid),
            problems,
            ..State::running()
        };
        self.put_json(&keys.plan(), &plan).await?;
        self.put_json(&keys.state(), &state).await?;
        self.index(&plan, &state).await;
        self.event(Detail::SuiteCompleted(SuiteCompleted {
            suite_run_id: id.to_string(),
            score: super::history::score(&plan, &state),
            name: plan.name,
            status: SuiteStatus::Rejected,
            outcome: SuiteOutcome::Invalid,
            problems: Some(state.problems),
            skipped: Vec::new(),
        }))
        .await
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
