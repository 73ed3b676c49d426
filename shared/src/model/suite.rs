//! Suites (ordered waves of experiments) and the job message a producer sends for each.
//!
//! A suite is what operators schedule: wave N+1 starts only when every experiment of wave N
//! has completed, and `on_failure` says whether a failed or deviated experiment stops the suite.
//! The seed's Step Function payload (`{"state", "list": [{"experiment_source", "bucket_name",
//! "state"}]}`, bare or wrapped as the Step Function passes it, `{"Payload": {...}}`) is a
//! suite too: one experiment per wave, in order; an item already `completed` is skipped.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    pub name: String,
    pub defaults: JobSettings,
    pub waves: Vec<Wave>,
    /// `strict: true`: the warnings of its experiments are errors (as `--strict`).
    pub strict: bool,
}

/// How a job runs: a suite's `defaults`, carried by each of its jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSettings {
    /// Configuration values, as `--var` gives them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub vars: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hypothesis_strategy: Option<String>,
    /// The suite's strictness (`strict: true` or `--strict` at submit): the worker treats the
    /// experiment's warnings as problems, as for an experiment the producer could not check
    /// (an S3 object, a store key). Absent when false, so older workers read the message.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wave {
    pub experiments: Vec<ExperimentRef>,
    pub on_failure: OnFailure,
    /// At most this many experiments of the wave run at once (all of them when `None`).
    pub max_parallel: Option<u32>,
    /// Already done: a seed payload's item whose `state` is `completed`. The wave is planned
    /// and reported (`skipped`), never run, so a half-done payload resumes where it stopped.
    pub skipped: bool,
}

/// What a failed or deviated experiment does to the rest of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// The next wave runs anyway.
    Continue,
    /// No further wave runs; the suite ends `halted`. The default: a suite that found a
    /// weakness should not go on injecting faults unless told to.
    #[default]
    Stop,
}

/// Where an experiment is: a file (relative to the suite), an S3 object, or a store key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ExperimentRef {
    File { path: String },
    S3 { bucket: String, key: String },
    Store { key: String },
}

impl ExperimentRef {
    /// `s3://bucket/key`, `store:key`, or a file path.
    pub fn parse(text: &str) -> Result<ExperimentRef, &'static str> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, key) = rest
                .split_once('/')
                .ok_or("an s3:// reference needs a bucket and a key")?;
            if bucket.is_empty() || key.is_empty() {
                return Err("an s3:// reference needs a bucket and a key");
            }
            return Ok(ExperimentRef::S3 {
                bucket: bucket.into(),
                key: key.into(),
            });
        }
        if let Some(key) = text.strip_prefix("store:") {
            if key.is_empty() {
                return Err("a store: reference needs a key");
            }
            return Ok(ExperimentRef::Store { key: key.into() });
        }
        if text.trim().is_empty() {
            return Err("an experiment reference cannot be empty");
        }
        Ok(ExperimentRef::File { path: text.into() })
    }

    /// The seed's `experiment_source` + `bucket_name` pair.
    pub fn from_seed(source: &str, bucket: Option<&str>) -> Result<ExperimentRef, &'static str> {
        match bucket.filter(|b| !b.is_empty()) {
            Some(bucket) if !source.is_empty() => Ok(ExperimentRef::S3 {
                bucket: bucket.into(),
                key: source.trim_start_matches('/').into(),
            }),
            _ => ExperimentRef::parse(source),
        }
    }
}

impl std::fmt::Display for ExperimentRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExperimentRef::File { path } => write!(f, "{path}"),
            ExperimentRef::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            ExperimentRef::Store { key } => write!(f, "store:{key}"),
        }
    }
}

/// The job message: one experiment of one wave of one suite run. Small and versioned; the
/// experiment itself is referenced, never inlined. Schema: `docs/job-message.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Schema version of this message; readers refuse versions they do not know.
    pub version: u32,
    pub suite_run_id: String,
    /// 0-based wave index.
    pub wave: u32,
    /// Stable across redeliveries: the journal key and the checkpoint are named after it.
    pub run_id: String,
    /// As in the seed: a path or key, with `bucket_name` when it lives in S3.
    pub experiment_source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_name: Option<String>,
    /// The S3 version of the experiment the producer planned (a versioned bucket): the worker
    /// reads that version, so an object replaced after the submit does not change the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_version: Option<String>,
    /// The W3C trace context (`traceparent`) of the suite run's wave, when the producer exports
    /// traces (OpenTelemetry): the worker's spans join the suite run's trace. Never acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// `vars`, `rollback_strategy`, `hypothesis_strategy`, at the top level of the message.
    #[serde(flatten)]
    pub settings: JobSettings,
}

impl Job {
    pub const VERSION: u32 = 1;

    /// Read a job message; an unknown version or a missing field is an error naming it.
    pub fn from_message(body: &str) -> Result<Job, String> {
        let value = crate::load::document::parse_json_message(body)?;
        match value.get("version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(Job::VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "job message version {v} is not supported (this worker reads version {})",
                    Job::VERSION
                ));
            }
            None => return Err("job message has no numeric `version`".into()),
        }
        serde_json::from_value(value).map_err(|e| format!("invalid job message: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn experiment_references() {
        assert_eq!(
            ExperimentRef::parse("s3://b/exp/a.yaml").unwrap(),
            ExperimentRef::S3 {
                bucket: "b".into(),
                key: "exp/a.yaml".into()
            }
        );
        assert_eq!(
            ExperimentRef::parse("store:suites/x.json").unwrap(),
            ExperimentRef::Store {
                key: "suites/x.json".into()
            }
        );
        assert_eq!(
            ExperimentRef::parse("a.json").unwrap(),
            ExperimentRef::File {
                path: "a.json".into()
            }
        );
        assert!(ExperimentRef::parse("s3://bucket-only").is_err());
        assert!(ExperimentRef::parse("").is_err());
        assert_eq!(
            ExperimentRef::from_seed("experiments/x.yaml", Some("bkt"))
                .unwrap()
                .to_string(),
            "s3://bkt/experiments/x.yaml"
        );
        assert_eq!(
            ExperimentRef::from_seed("x.yaml", Some(""))
                .unwrap()
                .to_string(),
            "x.yaml"
        );
    }

    #[test]
    fn job_messages_round_trip_and_refuse_unknown_versions() {
        let job = Job {
            version: Job::VERSION,
            suite_run_id: "sr-1".into(),
            wave: 0,
            run_id: "r-1".into(),
            experiment_source: "experiments/a.json".into(),
            bucket_name: Some("bkt".into()),
            experiment_version: Some("v-1".into()),
            traceparent: Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()),
            settings: JobSettings {
                vars: json!({"k": 1}).as_object().unwrap().clone(),
                rollback_strategy: None,
                hypothesis_strategy: Some("continuously".into()),
                strict: false,
            },
        };
        let body = serde_json::to_string(&job).unwrap();
        let wire: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            wire["hypothesis_strategy"], "continuously",
            "settings sit at the top level"
        );
        assert_eq!(wire["vars"], json!({"k": 1}));
        assert!(wire.get("settings").is_none());
        assert_eq!(Job::from_message(&body).unwrap(), job);
        assert!(
            Job::from_message(r#"{"version": 2}"#)
                .unwrap_err()
                .contains("version 2 is not supported")
        );
        assert!(Job::from_message("{").unwrap_err().starts_with("not JSON"));
        assert!(
            Job::from_message(r#"{"version": 1, "wave": 0}"#)
                .unwrap_err()
                .contains("missing field")
        );
    }

    #[test]
    fn hostile_job_messages_are_refused_naming_the_limit() {
        let deep = format!(
            "{{\"version\": 1, \"vars\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = Job::from_message(&deep).unwrap_err();
        assert!(
            err.contains("deeper than 100 levels at line 1 column"),
            "{err}"
        );
        let max = crate::load::document::MAX_NODES;
        let many = format!("{{\"version\": 1, \"vars\": [{}0]}}", "0,".repeat(max));
        let err = Job::from_message(&many).unwrap_err();
        assert!(err.contains(&format!("more than {max} values")), "{err}");
    }
}
