//! Suite files → `Suite`, with every problem located, like experiments.
//!
//! Two shapes are accepted: the broker's own (`name`, `defaults`, `waves`) and the seed's Step
//! Function payload (`{"state", "list": [{"experiment_source", "bucket_name", "state"}]}`, bare
//! or wrapped as the Step Function hands it on, `{"Payload": {...}}`), which becomes one
//! experiment per wave, in order, each stopping the suite on failure as the seed's loop did; an
//! item whose `state` is `completed` is a skipped wave, so a half-done payload resumes. `check_experiments` then loads every experiment file a suite names, so a
//! suite is refused before anything is enqueued.

use super::document::Format;
use super::problem::{Problem, Problems};
use super::{Purpose, Vars};
use crate::model::suite::{ExperimentRef, JobSettings, OnFailure, Suite, Wave};
use crate::providers::Providers;
use serde_json::{Map, Value};
use std::path::Path;

/// Read and validate a suite file.
pub fn load_suite(path: &Path) -> Result<Suite, Problems> {
    let text = super::document::read_text(path, "the suite").map_err(|p| Problems(vec![p]))?;
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("suite");
    load_suite_text(&text, Format::detect(path, &text), Some(path), name)
}

/// Parse and validate suite text; `default_name` names a suite that has no `name` (the seed's).
pub fn load_suite_text(
    text: &str,
    format: Format,
    origin: Option<&Path>,
    default_name: &str,
) -> Result<Suite, Problems> {
    let mut doc = super::parse_located(text, format, origin)?;
    let mut problems = Vec::new();
    let suite = match &doc.value {
        Value::Object(root) if root.contains_key("list") && !root.contains_key("waves") => {
            seed_payload(root, "", default_name, &mut problems)
        }
        Value::Object(root) if root.len() == 1 && root.contains_key("Payload") => {
            match root.get("Payload") {
                Some(Value::Object(inner)) if inner.contains_key("list") => {
                    seed_payload(inner, "Payload.", default_name, &mut problems)
                }
                _ => {
                    problems.push(
                        Problem::new("Payload", "is not the seed's payload")
                            .expected("a mapping with `list` (the seed's Step Function input)"),
                    );
                    None
                }
            }
        }
        Value::Object(root) => suite(root, default_name, &mut problems),
        other => {
            problems.push(
                Problem::new("", format!("the document is {}", kind(other)))
                    .expected("a mapping with `waves` (or the seed's `list` payload)"),
            );
            None
        }
    };
    match suite {
        Some(s) if problems.is_empty() => Ok(s),
        _ => Err(super::locate_all(problems, &mut doc, origin)),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn suite(
    root: &Map<String, Value>,
    default_name: &str,
    problems: &mut Vec<Problem>,
) -> Option<Suite> {
    for key in root.keys() {
        if !matches!(
            key.as_str(),
            "name" | "description" | "defaults" | "waves" | "strict"
        ) {
            problems.push(
                Problem::new(key.as_str(), "unknown key")
                    .expected("name, description, defaults, waves or strict"),
            );
        }
    }
    let strict = match root.get("strict") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problems.push(
                Problem::new("strict", format!("is {}", kind(other))).expected("true or false"),
            );
            false
        }
    };
    let name = match root.get("name") {
        None | Some(Value::Null) => default_name.to_string(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(other) => {
            problems.push(
                Problem::new("name", format!("is {}", kind(other))).expected("a non-empty string"),
            );
            String::new()
        }
    };
    let defaults = match root.get("defaults") {
        None | Some(Value::Null) => JobSettings::default(),
        Some(v) => match serde_json::from_value::<JobSettings>(v.clone()) {
            Ok(d) => {
                unknown_defaults(v, problems);
                check_strategies(&d, problems);
                d
            }
            Err(e) => {
                problems.push(
                    Problem::new("defaults", e.to_string())
                        .expected("vars (a mapping), rollback_strategy, hypothesis_strategy"),
                );
                JobSettings::default()
            }
        },
    };
    let waves = match root.get("waves") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .filter_map(|(i, w)| wave(w, &format!("waves[{i}]"), problems))
            .collect(),
        Some(Value::Array(_)) => {
            problems.push(Problem::new("waves", "is empty").expected("at least one wave"));
            Vec::new()
        }
        None | Some(Value::Null) => {
            problems.push(
                Problem::new("waves", "missing")
                    .expected("a list of waves, each with `experiments`"),
            );
            Vec::new()
        }
        Some(other) => {
            problems.push(
                Problem::new("waves", format!("is {}", kind(other))).expected("a list of waves"),
            );
            Vec::new()
        }
    };
    Some(Suite {
        name,
        defaults,
        waves,
        strict,
    })
}

/// Unknown keys in `defaults`: a misspelt `rollback_strategy` must not be dropped silently.
fn unknown_defaults(value: &Value, problems: &mut Vec<Problem>) {
    for key in value.as_object().into_iter().flat_map(|m| m.keys()) {
        if !matches!(
            key.as_str(),
            "vars" | "rollback_strategy" | "hypothesis_strategy"
        ) {
            problems.push(
                Problem::new(format!("defaults.{key}"), "unknown key")
                    .expected("vars, rollback_strategy or hypothesis_strategy"),
            );
        }
    }
}

fn check_strategies(d: &JobSettings, problems: &mut Vec<Problem>) {
    use crate::model::{HypothesisStrategy, RollbackStrategy};
    if let Some(s) = &d.rollback_strategy
        && RollbackStrategy::parse(s).is_none()
    {
        problems.push(
            Problem::new(
                "defaults.rollback_strategy",
                format!("unknown strategy '{s}'"),
            )
            .expected(RollbackStrategy::NAMES.join(", ")),
        );
    }
    if let Some(s) = &d.hypothesis_strategy
        && HypothesisStrategy::parse(s).is_none()
    {
        problems.push(
            Problem::new(
                "defaults.hypothesis_strategy",
                format!("unknown strategy '{s}'"),
            )
            .expected(HypothesisStrategy::NAMES.join(", ")),
        );
    }
}

fn wave(value: &Value, path: &str, problems: &mut Vec<Problem>) -> Option<Wave> {
    let Value::Object(map) = value else {
        problems.push(
            Problem::new(path, format!("is {}", kind(value)))
                .expected("a mapping with `experiments`"),
        );
        return None;
    };
    for key in map.keys() {
        if !matches!(
            key.as_str(),
            "experiments" | "on_failure" | "max_parallel" | "name"
        ) {
            problems.push(
                Problem::new(format!("{path}.{key}"), "unknown key")
                    .expected("experiments, on_failure, max_parallel or name"),
            );
        }
    }
    let experiments = match map.get("experiments") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let field = format!("{path}.experiments[{i}]");
                match e.as_str().map(ExperimentRef::parse) {
                    Some(Ok(r)) => Some(r),
                    Some(Err(why)) => {
                        problems.push(
                            Problem::new(field, why)
                                .expected("a file path, s3://bucket/key or store:key"),
                        );
                        None
                    }
                    None => {
                        problems.push(
                            Problem::new(field, format!("is {}", kind(e)))
                                .expected("a file path, s3://bucket/key or store:key"),
                        );
                        None
                    }
                }
            })
            .collect(),
        Some(Value::Array(_)) => {
            problems.push(
                Problem::new(format!("{path}.experiments"), "is empty")
                    .expected("at least one experiment"),
            );
            Vec::new()
        }
        _ => {
            problems.push(
                Problem::new(format!("{path}.experiments"), "missing")
                    .expected("a list of experiment references"),
            );
            Vec::new()
        }
    };
    let on_failure = match map.get("on_failure") {
        None | Some(Value::Null) => OnFailure::default(),
        Some(Value::String(s)) if s == "continue" => OnFailure::Continue,
        Some(Value::String(s)) if s == "stop" => OnFailure::Stop,
        Some(other) => {
            problems.push(
                Problem::new(
                    format!("{path}.on_failure"),
                    format!("unknown policy {other}"),
                )
                .expected("continue or stop"),
            );
            OnFailure::default()
        }
    };
    let max_parallel = match map.get("max_parallel") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_u64().is_some_and(|m| (1..=10_000).contains(&m)) => {
            n.as_u64().map(|m| m as u32)
        }
        Some(other) => {
            problems.push(
                Problem::new(format!("{path}.max_parallel"), format!("is {other}"))
                    .expected("a whole number from 1 to 10000"),
            );
            None
        }
    };
    Some(Wave {
        experiments,
        on_failure,
        max_parallel,
        skipped: false,
    })
}

/// The seed's `{"state", "list": [{"experiment_source", "bucket_name", "state"}]}`; `at` is
/// where it sits in the document (`Payload.` when wrapped), for the problems' field paths.
fn seed_payload(
    root: &Map<String, Value>,
    at: &str,
    default_name: &str,
    problems: &mut Vec<Problem>,
) -> Option<Suite> {
    let Some(Value::Array(list)) = root.get("list") else {
        problems.push(
            Problem::new(format!("{at}list"), "is not a list")
                .expected("a list of {experiment_source, bucket_name, state}"),
        );
        return None;
    };
    if list.is_empty() {
        problems.push(
            Problem::new(format!("{at}list"), "is empty").expected("at least one experiment"),
        );
    }
    let mut waves = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let path = format!("{at}list[{i}]");
        let source = item.get("experiment_source").and_then(Value::as_str);
        let bucket = item.get("bucket_name").and_then(Value::as_str);
        // the seed marks an item `completed` once its experiment ran: never run it again
        let skipped = item.get("state").and_then(Value::as_str) == Some("completed");
        match source.map(|s| ExperimentRef::from_seed(s, bucket)) {
            Some(Ok(r)) => waves.push(Wave {
                experiments: vec![r],
                on_failure: OnFailure::Stop,
                max_parallel: None,
                skipped,
            }),
            Some(Err(why)) => problems.push(
                Problem::new(format!("{path}.experiment_source"), why).expected("a path or key"),
            ),
            None => problems.push(
                Problem::new(format!("{path}.experiment_source"), "missing")
                    .expected("the experiment's path or S3 key"),
            ),
        }
    }
    Some(Suite {
        name: default_name.to_string(),
        defaults: JobSettings::default(),
        waves,
        strict: false,
    })
}

/// What checking a suite's experiments found.
#[derive(Debug)]
pub struct Checked {
    pub problems: Problems,
    /// The experiments' warnings (problems instead under strictness).
    pub warnings: Vec<Problem>,
    /// S3 objects and store keys, not reachable from here.
    pub unchecked: Vec<ExperimentRef>,
}

/// Load every experiment file the suite names (relative to `base`) for `purpose`, collecting
/// all problems and warnings; under `strict` (or the suite's `strict: true`, or an
/// experiment's own) the warnings are problems. S3 objects and store keys are listed as
/// unchecked. A skipped wave's experiments are not loaded (they will not run).
pub fn check_experiments(
    suite: &Suite,
    base: &Path,
    vars: &Vars,
    providers: &Providers,
    (purpose, strict): (Purpose, bool),
) -> Checked {
    let strict = strict || suite.strict;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut unchecked = Vec::new();
    let mut vars = vars.clone();
    for (k, v) in &suite.defaults.vars {
        vars.configuration
            .entry(k.clone())
            .or_insert_with(|| v.clone());
    }
    for wave in suite.waves.iter().filter(|w| !w.skipped) {
        for r in &wave.experiments {
            match r {
                ExperimentRef::File { path } => {
                    match super::load_file(&base.join(path), &vars, providers, purpose) {
                        Err(p) => problems.extend(p.0),
                        Ok(e) if super::is_strict(&e, strict) => problems.extend(e.warnings),
                        Ok(e) => warnings.extend(e.warnings),
                    }
                }
                other => unchecked.push(other.clone()),
            }
        }
    }
    Checked {
        problems: Problems(problems),
        warnings,
        unchecked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<Suite, Problems> {
        load_suite_text(text, Format::Yaml, Some(Path::new("suite.yaml")), "suite")
    }

    #[test]
    fn the_minimal_suite_of_the_issue() {
        let s = yaml("name: nightly\nwaves:\n  - experiments: [a.json, b.json, c.json]\n    on_failure: continue\n  - experiments: [d.yaml]\n").unwrap();
        assert_eq!(s.name, "nightly");
        assert_eq!(s.waves.len(), 2);
        assert_eq!(s.waves[0].experiments.len(), 3);
        assert_eq!(s.waves[0].on_failure, OnFailure::Continue);
        assert_eq!(
            s.waves[1].on_failure,
            OnFailure::Stop,
            "stop is the default"
        );
    }

    #[test]
    fn the_same_experiment_may_appear_several_times() {
        let s = yaml("waves:\n  - experiments: [a.json, a.json]\n").unwrap();
        assert_eq!(s.waves[0].experiments.len(), 2);
        assert_eq!(s.name, "suite", "the file name names an unnamed suite");
    }

    #[test]
    fn the_seed_payload_is_a_suite_of_one_experiment_per_wave() {
        let text = r#"{"state": "in-progress", "list": [
            {"experiment_source": "experiments/a.yaml", "bucket_name": "bkt", "state": "pending"},
            {"experiment_source": "local.json", "bucket_name": "", "state": "pending"}]}"#;
        let s = load_suite_text(text, Format::Json, None, "seed").unwrap();
        assert_eq!(s.waves.len(), 2);
        assert_eq!(
            s.waves[0].experiments[0].to_string(),
            "s3://bkt/experiments/a.yaml"
        );
        assert_eq!(s.waves[1].experiments[0].to_string(), "local.json");
    }

    #[test]
    fn the_seed_payload_wrapped_by_the_step_function_resumes_past_completed_items() {
        let text = r#"{"Payload": {"state": "in-progress", "list": [
            {"experiment_source": "a.yaml", "bucket_name": "bkt", "state": "completed"},
            {"experiment_source": "b.yaml", "bucket_name": "other", "state": "pending"}]}}"#;
        let s = load_suite_text(text, Format::Json, None, "seed").unwrap();
        assert_eq!(s.waves.len(), 2, "a completed item is planned and reported");
        assert!(s.waves[0].skipped && !s.waves[1].skipped);
        assert_eq!(s.waves[1].experiments[0].to_string(), "s3://other/b.yaml");
        let err = load_suite_text(
            "{\"Payload\": {\"list\": [{\"bucket_name\": \"b\"}]}}",
            Format::Json,
            Some(Path::new("p.json")),
            "seed",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("Payload.list[0].experiment_source: missing"),
            "{err}"
        );
        let err = load_suite_text("{\"Payload\": 3}", Format::Json, None, "seed")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Payload: is not the seed's payload"), "{err}");
    }

    #[test]
    fn every_problem_is_located() {
        let err = yaml("name: 3\nwaves:\n  - experiments: []\n  - experiments: [ok.json, 5]\n    on_failure: maybe\n    max_parallel: 0\n  - nope\ndefaults:\n  rollback_strategy: sometimes\n  rollbak_strategy: always\n").unwrap_err();
        let text = err.to_string();
        for expected in [
            "suite.yaml:1:1: name: is a number",
            "suite.yaml:3:5: waves[0].experiments: is empty",
            "waves[1].experiments[1]: is a number",
            "suite.yaml:5:5: waves[1].on_failure: unknown policy",
            "suite.yaml:6:5: waves[1].max_parallel: is 0",
            "suite.yaml:7:5: waves[2]: is a string",
            "suite.yaml:9:3: defaults.rollback_strategy: unknown strategy 'sometimes'",
            "suite.yaml:10:3: defaults.rollbak_strategy: unknown key",
        ] {
            assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
        }
    }

    #[test]
    fn no_waves_is_refused() {
        assert!(
            yaml("name: x\n")
                .unwrap_err()
                .to_string()
                .contains("waves: missing")
        );
        assert!(
            yaml("name: x\nwaves: []\n")
                .unwrap_err()
                .to_string()
                .contains("waves: is empty")
        );
    }
}
