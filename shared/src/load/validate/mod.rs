//! JSON value → `Experiment`, collecting every problem.
//!
//! The rules are the reference's `ensure_experiment_is_valid` (title, description, method,
//! activity types, providers and their fields, tolerances, refs, configuration from the
//! environment, executables on PATH), with two differences: every problem is reported, not just
//! the first, and documents the reference crashes on (a method that is not a list, an activity
//! that is not a mapping) get a plain error. Python signatures are checked in `load::mod`,
//! because that needs an interpreter.
//!
//! The verdict is the reference's: what is found beyond it is a warning (`Validated::warnings`),
//! and what the reference accepts at validation but stops on when it runs is kept apart
//! (`Validated::deferred`: warnings to `validate`, problems to a run).
//!
//! One file per part of the document: `experiment` (the top level, configuration, runtime,
//! refs), `controls` (the reference's rules for declared controls), `extension` (the `experiment-broker` settings), `activities` (the hypothesis, steps,
//! activities, pauses), `providers` (process, http, python), `tolerances`; `keys` (unknown
//! keys, "did you mean") and `warnings` (risky substitutions) flag what is valid but risky.
//! This file holds the entry points and the field helpers they share.

mod activities;
mod controls;
mod experiment;
pub mod extension;
pub mod keys;
mod providers;
mod tolerances;
mod warnings;

pub use warnings::warnings;

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
    let mut v = Validator::new(&checks);
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
    let v = validate_all(doc, checks);
    match v.experiment {
        Some(e) if v.problems.is_empty() => Ok(e),
        _ => Err(v.problems),
    }
}

/// All that one validation pass finds, whether or not the experiment is valid.
pub struct Validated {
    /// Built when the structure allows it (there may still be problems).
    pub experiment: Option<Experiment>,
    pub problems: Vec<Problem>,
    /// Found beyond the reference's verdict (not yet the keys: `keys::unknown_keys`).
    pub warnings: Vec<Problem>,
    /// What the reference accepts at validation but stops on when it runs (or, for the
    /// broker's own guard rails, what a run refuses): warnings to `validate`, problems to a run.
    pub deferred: Vec<Problem>,
    /// Every `python` activity written well enough to be checked against its function, even
    /// when the rest of the document is not: signatures are checked in the same round.
    pub python_calls: Vec<PythonCall>,
}

/// A `python` activity as the signature check needs it.
#[derive(Debug, Clone)]
pub struct PythonCall {
    /// The provider's field path (`method[0].provider`).
    pub field: String,
    pub module: String,
    pub func: String,
    pub arguments: Map<String, Value>,
    /// A tolerance probe: handed the checked output as `value`.
    pub tolerance: bool,
    /// A dynamic-configuration probe: the reference does not check it, so its findings are
    /// warnings.
    pub lenient: bool,
    pub activity_name: String,
    pub activity_type: String,
}

/// Validate `doc`, keeping what was found either way.
pub fn validate_all(doc: &Value, checks: &Checks) -> Validated {
    let mut v = Validator::new(checks);
    let experiment = v.experiment(doc);
    Validated {
        experiment,
        problems: v.problems,
        warnings: v.warnings,
        deferred: v.deferred,
        python_calls: v.python_calls,
    }
}

struct Validator<'a> {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
    deferred: Vec<Problem>,
    python_calls: Vec<PythonCall>,
    /// Inside a dynamic-configuration probe (see `PythonCall::lenient`).
    lenient: bool,
    checks: &'a Checks<'a>,
}

impl<'a> Validator<'a> {
    fn new(checks: &'a Checks<'a>) -> Self {
        Validator {
            problems: Vec::new(),
            warnings: Vec::new(),
            deferred: Vec::new(),
            python_calls: Vec::new(),
            lenient: false,
            checks,
        }
    }
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

    /// Found beyond the reference, which accepts it and runs: the experiment stays valid.
    fn warn(&mut self, field: impl Into<String>, message: impl Into<String>, expected: &str) {
        self.warnings
            .push(Problem::new(field, message).expected(expected));
    }

    /// The reference accepts it at validation and stops on it when it runs (see
    /// `Validated::deferred`).
    fn defer(&mut self, field: impl Into<String>, message: impl Into<String>, expected: &str) {
        self.deferred
            .push(Problem::new(field, message).expected(expected));
    }

    /// Run `check`, its problems turned into warnings noting that the reference does not
    /// check this part (a dynamic-configuration probe, the tolerance of a method step); its
    /// result only when it found nothing wrong.
    fn unchecked_by_reference<T>(
        &mut self,
        check: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<T> {
        let (before, lenient) = (self.problems.len(), self.lenient);
        self.lenient = true;
        let out = check(self);
        self.lenient = lenient;
        let found: Vec<Problem> = self.problems.drain(before..).collect();
        if found.is_empty() {
            return out;
        }
        self.warnings.extend(found.into_iter().map(|mut p| {
            p.message.push_str(UNCHECKED_NOTE);
            p
        }));
        None
    }

    /// A required string the reference only needs to be truthy (title, description, activity
    /// name): a number or `true` is a warning, read as Python's `str()` of it.
    fn truthy_str(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        what: &str,
    ) -> Option<String> {
        match map.get(key) {
            Some(v @ (Value::Number(_) | Value::Bool(true))) if crate::pyvalue::py_truthy(v) => {
                self.warn(
                    join(path, key),
                    format!(
                        "is {} (the Chaos Toolkit accepts any value that is not empty)",
                        kind_of(v)
                    ),
                    what,
                );
                Some(crate::pyvalue::py_str(v))
            }
            _ => self.required_str(map, path, key, what),
        }
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

/// Said of a finding in a part of the experiment the reference does not check before the run.
pub const UNCHECKED_NOTE: &str =
    " (the Chaos Toolkit does not check this before the run; it fails when it runs)";

/// The table tests' tools: a document validated, its problems as `(field, message)`.
#[cfg(test)]
mod table {
    use super::*;
    use serde_json::json;

    /// Every problem of `doc`, as `(field, message)`, in the order found, then its warnings
    /// (`warning: ` before the message) and what a run refuses (`at run: `); empty when
    /// nothing is found.
    pub fn problems(doc: &Value) -> Vec<(String, String)> {
        let vars = Vars::default();
        let checks = Checks {
            vars: &vars,
            check_executables: false,
        };
        let v = validate_all(doc, &checks);
        let tagged = |tag: &str, found: Vec<Problem>| -> Vec<(String, String)> {
            found
                .into_iter()
                .map(|p| (p.field, format!("{tag}{}", p.message)))
                .collect()
        };
        let mut out = tagged("", v.problems);
        out.extend(tagged("warning: ", v.warnings));
        out.extend(tagged("at run: ", v.deferred));
        out
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
            (
                doc(json!({"title": 1})),
                vec![(
                    "title",
                    "warning: is an integer (the Chaos Toolkit accepts any value that is not empty)",
                )],
            ),
            (doc(json!({"title": 0})), vec![("title", "is an integer")]),
            (
                doc(json!({"description": 1.5})),
                vec![(
                    "description",
                    "warning: is a float (the Chaos Toolkit accepts any value that is not empty)",
                )],
            ),
            (
                doc(json!({"description": false})),
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
