//! The plan of a suite run: every job of every wave with its run id, built once at submit
//! from the suite and where it was read from; and the ids a suite run goes by.

use super::error::PlanError;
use crate::clock::now_iso;
use crate::model::suite::{ExperimentRef, Job, JobSettings, OnFailure, Suite};
use serde::{Deserialize, Serialize};

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
    /// Already done (a seed payload's `completed` item): reported `skipped`, never enqueued.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
}

impl Plan {
    /// The run ids of the skipped waves' jobs, in order.
    pub fn skipped(&self) -> Vec<String> {
        self.waves
            .iter()
            .filter(|w| w.skipped)
            .flat_map(|w| w.jobs.iter().map(|j| j.run_id.clone()))
            .collect()
    }
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
pub fn plan(suite: &Suite, suite_run_id: &str, origin: &Origin) -> Result<Plan, PlanError> {
    let resolve = |r: &ExperimentRef| -> Result<(String, Option<String>), PlanError> {
        Ok(match (r, origin) {
            (ExperimentRef::File { path }, Origin::Dir(base)) => {
                let p = base.join(path);
                let p = std::fs::canonicalize(&p).unwrap_or(p);
                (p.to_string_lossy().into_owned(), None)
            }
            (ExperimentRef::File { path }, Origin::Store { key }) => {
                let k = join_key(key, path).ok_or_else(|| PlanError::OutOfStore {
                    path: path.clone(),
                    key: key.clone(),
                })?;
                (format!("store:{k}"), None)
            }
            (ExperimentRef::File { path }, Origin::S3 { bucket, key }) => {
                let k = join_key(key, path).ok_or_else(|| PlanError::OutOfBucket {
                    path: path.clone(),
                    bucket: bucket.clone(),
                    key: key.clone(),
                })?;
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
                traceparent: None,
                settings: JobSettings {
                    strict: suite.strict || suite.defaults.strict,
                    ..suite.defaults.clone()
                },
            });
        }
        waves.push(PlannedWave {
            on_failure: wave.on_failure,
            max_parallel: wave.max_parallel,
            jobs,
            skipped: wave.skipped,
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_strict_suite_makes_every_job_strict_and_a_lenient_one_leaves_the_message_as_it_was() {
        let suite = |strict: bool| Suite {
            name: "s".into(),
            defaults: Default::default(),
            waves: vec![crate::model::suite::Wave {
                experiments: vec![ExperimentRef::File {
                    path: "e.json".into(),
                }],
                on_failure: OnFailure::Continue,
                max_parallel: None,
                skipped: false,
            }],
            strict,
        };
        let origin = Origin::Dir(std::path::PathBuf::from("."));
        for strict in [true, false] {
            let plan = plan(&suite(strict), "sr-1", &origin).unwrap();
            let job = &plan.waves[0].jobs[0];
            assert_eq!(job.settings.strict, strict);
            let message = serde_json::to_value(job).unwrap();
            // the settings sit at the message's top level
            assert_eq!(message.get("strict").is_some(), strict, "{message}");
        }
    }
}
