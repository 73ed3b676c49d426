//! JSON value → `Experiment`, collecting every problem.
//!
//! The rules are the reference's `ensure_experiment_is_valid` (title, description, method,
//! activity types, providers and their fields, tolerances, refs, configuration from the
//! environment, executables on PATH), with two differences: every problem is reported, not just
//! the first, and documents the reference crashes on (a method that is not a list, an activity
//! that is not a mapping) get a plain error. Python signatures are checked in `load::mod`,
//! because that needs an interpreter.
//!
//! One file per part of the document: `experiment` (the top level, configuration, runtime,
//! refs), `extension` (the `experiment-broker` settings), `activities` (the hypothesis, steps,
//! activities, pauses), `providers` (process, http, python), `tolerances`; `warnings` flags
//! what is valid but risky. This file holds the entry points and the field helpers they share.

mod activities;
mod experiment;
pub mod extension;
mod providers;
mod tolerances;
mod warnings;

pub use warnings::{file_warnings, warnings};

use super::problem::Problem;
use super::vars::Vars;
use crate::model::*;
use serde_json::{Map, Value};

/// A tolerance from a value, as if it had been written in the experiment (used when a string
/// tolerance is exactly `${name}` and the referenced value decides the tolerance's kind).
pub fn tolerance_from_value(value: &Value, field: &str) -> Result<Tolerance, Vec<Problem>> {
    let vars = Vars::default();
    let checks = Checks {
        vars: &vars,
        check_executables: false,
    };
    let mut v = Validator {
        problems: Vec::new(),
        checks: &checks,
    };
    match v.tolerance(value, field) {
        Some(t) if v.problems.is_empty() => Ok(t),
        _ => Err(v.problems),
    }
}

/// What validation may consult besides the document.
pub struct Checks<'a> {
    pub vars: &'a Vars,
    /// Look process paths up on PATH, as the reference does.
    pub check_executables: bool,
}

/// Validate `doc`; on success the experiment, otherwise every problem found.
pub fn validate(doc: &Value, checks: &Checks) -> Result<Experiment, Vec<Problem>> {
    let mut v = Validator {
        problems: Vec::new(),
        checks,
    };
    let experiment = v.experiment(doc);
    match experiment {
        Some(e) if v.problems.is_empty() => Ok(e),
        _ => Err(v.problems),
    }
}

struct Validator<'a> {
    problems: Vec<Problem>,
    checks: &'a Checks<'a>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// A value as it reads in a message: strings in single quotes, like the reference.
fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl Validator<'_> {
    fn problem(&mut self, field: impl Into<String>, message: impl Into<String>, expected: &str) {
        self.problems
            .push(Problem::new(field, message).expected(expected));
    }

    /// A required, non-empty string field.
    fn required_str(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        what: &str,
    ) -> Option<String> {
        match map.get(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            None | Some(Value::Null) => {
                self.problem(join(path, key), "missing", what);
                None
            }
            Some(Value::String(_)) => {
                self.problem(join(path, key), "is empty", what);
                None
            }
            Some(other) => {
                self.problem(join(path, key), format!("is {}", kind_of(other)), what);
                None
            }
        }
    }

    fn optional_number(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<f64> {
        match map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(other) => {
                self.problem(
                    join(path, key),
                    format!("is {}", kind_of(other)),
                    "a number of seconds",
                );
                None
            }
        }
    }

    fn list_of_mappings(&mut self, value: Option<&Value>, path: &str, what: &str) -> Vec<Value> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if !item.is_object() {
                        self.problem(
                            format!("{path}[{i}]"),
                            format!("is {}", kind_of(item)),
                            "a mapping",
                        );
                    }
                }
                items.clone()
            }
            Some(other) => {
                self.problem(path, format!("is {}", kind_of(other)), what);
                Vec::new()
            }
        }
    }

    fn mapping(&mut self, value: Option<&Value>, path: &str) -> Map<String, Value> {
        match value {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                self.problem(path, format!("is {}", kind_of(other)), "a mapping");
                Map::new()
            }
        }
    }
}

/// The table tests' tools: a document validated, its problems as `(field, message)`.
#[cfg(test)]
mod table {
    use super::*;
    use serde_json::json;

    /// Every problem of `doc`, as `(field, message)`, in the order found; empty when valid.
    pub fn problems(doc: &Value) -> Vec<(String, String)> {
        let vars = Vars::default();
        let checks = Checks {
            vars: &vars,
            check_executables: false,
        };
        match validate(doc, &checks) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.into_iter().map(|p| (p.field, p.message)).collect(),
        }
    }

    /// A valid experiment (title, description, an empty method) with `fields` added over it.
    pub fn doc(fields: Value) -> Value {
        let mut doc = json!({"title": "t", "description": "d", "method": []});
        for (k, v) in fields.as_object().expect("fields are a mapping") {
            doc[k] = v.clone();
        }
        doc
    }

    /// An experiment whose method is the one activity `activity`.
    pub fn one_activity(activity: Value) -> Value {
        doc(json!({"method": [activity]}))
    }

    /// An experiment whose method is one action calling `provider`.
    pub fn one_provider(provider: Value) -> Value {
        one_activity(json!({"type": "action", "name": "a", "provider": provider}))
    }

    /// Each case: a document → the problems expected, as `(field, message)` (none: valid).
    pub fn check(cases: Vec<(Value, Vec<(&str, &str)>)>) {
        for (doc, expected) in cases {
            let expected: Vec<(String, String)> = expected
                .into_iter()
                .map(|(f, m)| (f.to_string(), m.to_string()))
                .collect();
            assert_eq!(problems(&doc), expected, "{doc}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::table::{check, doc};
    use super::*;
    use serde_json::json;

    #[test]
    fn field_helpers_name_the_kind_found() {
        check(vec![
            (doc(json!({})), vec![]),
            (json!([]), vec![("", "the document is a list")]),
            (json!("x"), vec![("", "the document is a string")]),
            (doc(json!({"title": null})), vec![("title", "missing")]),
            (doc(json!({"title": ""})), vec![("title", "is empty")]),
            (doc(json!({"title": 1})), vec![("title", "is an integer")]),
            (
                doc(json!({"description": 1.5})),
                vec![("description", "is a float")],
            ),
            (
                doc(json!({"description": true})),
                vec![("description", "is a boolean")],
            ),
            (
                doc(json!({"description": {}})),
                vec![("description", "is a mapping")],
            ),
            (
                doc(json!({"controls": "c"})),
                vec![("controls", "is a string")],
            ),
            (
                doc(json!({"controls": [1]})),
                vec![("controls[0]", "is an integer")],
            ),
            (
                doc(json!({"configuration": []})),
                vec![("configuration", "is a list")],
            ),
        ]);
    }

    #[test]
    fn a_tolerance_from_a_value_is_checked_as_written() {
        assert!(matches!(
            tolerance_from_value(&json!(true), "t"),
            Ok(Tolerance::Bool(true))
        ));
        let problems =
            tolerance_from_value(&json!({"type": "range", "range": [1]}), "t").unwrap_err();
        assert_eq!(problems[0].field, "t.range");
        assert_eq!(problems[0].message, "must be made of two values, not 1");
    }
}
