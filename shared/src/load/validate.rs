//! JSON value → `Experiment`, collecting every problem.
//!
//! The rules are the reference's `ensure_experiment_is_valid` (title, description, method,
//! activity types, providers and their fields, tolerances, refs, configuration from the
//! environment, executables on PATH), with two differences: every problem is reported, not just
//! the first, and documents the reference crashes on (a method that is not a list, an activity
//! that is not a mapping) get a plain error. Python signatures are checked in `load::mod`,
//! because that needs an interpreter.

use super::config::{resolve_configuration, resolve_secrets};
use super::problem::Problem;
use super::vars::Vars;
use crate::model::*;
use crate::pyregex;
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

    fn experiment(&mut self, doc: &Value) -> Option<Experiment> {
        let Value::Object(root) = doc else {
            self.problem(
                "",
                format!("the document is {}", kind_of(doc)),
                "a mapping with title, description and method",
            );
            return None;
        };
        let title = self.required_str(root, "", "title", "a non-empty string");
        let description = self.required_str(root, "", "description", "a non-empty string");
        let version = match root.get("version") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ Value::Number(_)) => Some(v.to_string()),
            Some(other) => {
                self.problem(
                    "version",
                    format!("is {}", kind_of(other)),
                    "a version string such as 1.0.0",
                );
                None
            }
        };
        let tags = self.tags(root.get("tags"));
        let contributions = match root.get("contributions") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(other) => {
                self.problem(
                    "contributions",
                    format!("is {}", kind_of(other)),
                    "a mapping of contribution to level",
                );
                None
            }
        };
        let extensions = self.extensions(root.get("extensions"));
        let controls =
            self.list_of_mappings(root.get("controls"), "controls", "a list of controls");
        let configuration = self.mapping(root.get("configuration"), "configuration");
        let secrets = self.mapping(root.get("secrets"), "secrets");
        let config_probes = self.configuration(&configuration);
        for scope in secrets.iter() {
            if !scope.1.is_object() {
                self.problem(
                    format!("secrets.{}", scope.0),
                    format!("is {}", kind_of(scope.1)),
                    "a mapping of secret names to values",
                );
            }
        }
        if let Err(problems) = resolve_secrets(&secrets, self.checks.vars) {
            self.problems.extend(problems);
        }
        let runtime = self.runtime(root.get("runtime"));
        let hypothesis = self.hypothesis(root.get("steady-state-hypothesis"));
        let method = match root.get("method") {
            None | Some(Value::Null) => {
                self.problem(
                    "method",
                    "missing",
                    "a list of activities (it can be empty to only check the steady-state hypothesis)",
                );
                None
            }
            Some(m) => Some(self.steps(m, "method")),
        };
        let rollbacks = match root.get("rollbacks") {
            None | Some(Value::Null) => Vec::new(),
            Some(r) => self.steps(r, "rollbacks"),
        };
        self.refs(root);
        Some(Experiment {
            version,
            title: title?,
            description: description?,
            tags,
            contributions,
            configuration,
            config_probes,
            secrets,
            extensions,
            controls,
            runtime,
            hypothesis,
            method: method?,
            rollbacks,
            raw: doc.clone(),
        })
    }

    fn tags(&mut self, tags: Option<&Value>) -> Vec<String> {
        match tags {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, t)| match t {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    other => {
                        self.problem(
                            format!("tags[{i}]"),
                            format!("is {}", kind_of(other)),
                            "a non-empty string",
                        );
                        None
                    }
                })
                .collect(),
            Some(other) => {
                self.problem(
                    "tags",
                    format!("is {}", kind_of(other)),
                    "a list of strings",
                );
                Vec::new()
            }
        }
    }

    fn extensions(&mut self, extensions: Option<&Value>) -> Vec<Value> {
        let list = self.list_of_mappings(extensions, "extensions", "a list of extensions");
        for (i, ext) in list.iter().enumerate() {
            if ext
                .get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                self.problem(
                    format!("extensions[{i}].name"),
                    "missing",
                    "a non-empty string naming the extension",
                );
            }
            // the tripwire settings: a bad one must not leave a run unwatched
            if ext["name"] == crate::engine::run::BROKER_EXTENSION {
                for e in crate::fleet::safety::guard::setting_errors(ext) {
                    self.problem(
                        format!("extensions[{i}].{}", e.field),
                        format!("is {}", e.got),
                        e.expected,
                    );
                }
            }
        }
        list
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

    /// Check `{type: env}` entries resolve and parse `{type: probe}` ones.
    fn configuration(&mut self, config: &Map<String, Value>) -> Vec<(String, Activity)> {
        let mut probes = Vec::new();
        for (key, value) in config {
            let path = format!("configuration.{key}");
            let Some(def) = value.as_object() else {
                continue;
            };
            match def.get("type").and_then(Value::as_str) {
                Some("env") => {
                    if !def.get("key").is_some_and(Value::is_string) {
                        self.problem(
                            join(&path, "key"),
                            "missing",
                            "the name of an environment variable",
                        );
                    }
                    if let Some(t) = def.get("env_var_type")
                        && !matches!(
                            t.as_str(),
                            Some(
                                "str"
                                    | "string"
                                    | "int"
                                    | "integer"
                                    | "float"
                                    | "number"
                                    | "bytes"
                                    | "bool"
                                    | "json"
                            )
                        )
                    {
                        self.problem(
                            join(&path, "env_var_type"),
                            format!("unknown type {}", quoted(t)),
                            "str, int, float, bool, bytes or json",
                        );
                    }
                }
                Some("probe") => {
                    if let Some(a) = self.activity(value, &path) {
                        probes.push((key.clone(), a));
                    }
                }
                _ => {}
            }
        }
        if let Err(problems) = resolve_configuration(config, self.checks.vars) {
            self.problems.extend(problems);
        }
        probes
    }

    fn runtime(&mut self, runtime: Option<&Value>) -> Runtime {
        let mut out = Runtime::default();
        let Some(runtime) = runtime.filter(|v| !v.is_null()) else {
            return out;
        };
        let Some(map) = runtime.as_object() else {
            self.problem(
                "runtime",
                format!("is {}", kind_of(runtime)),
                "a mapping with hypothesis and rollbacks",
            );
            return out;
        };
        if let Some(s) = map.get("hypothesis").and_then(|h| h.get("strategy")) {
            out.hypothesis_strategy = s.as_str().and_then(HypothesisStrategy::parse);
            if out.hypothesis_strategy.is_none() {
                self.problem(
                    "runtime.hypothesis.strategy",
                    format!("unknown strategy {}", quoted(s)),
                    &HypothesisStrategy::NAMES.join(", "),
                );
            }
        }
        if let Some(s) = map.get("rollbacks").and_then(|h| h.get("strategy")) {
            out.rollback_strategy = s.as_str().and_then(RollbackStrategy::parse);
            if out.rollback_strategy.is_none() {
                self.problem(
                    "runtime.rollbacks.strategy",
                    format!("unknown strategy {}", quoted(s)),
                    &RollbackStrategy::NAMES.join(", "),
                );
            }
        }
        out
    }

    fn hypothesis(&mut self, value: Option<&Value>) -> Option<Hypothesis> {
        let value = value.filter(|v| !v.is_null())?;
        let path = "steady-state-hypothesis";
        let Some(map) = value.as_object() else {
            self.problem(
                path,
                format!("is {}", kind_of(value)),
                "a mapping with a title and probes",
            );
            return None;
        };
        let title = self
            .required_str(map, path, "title", "a non-empty string")
            .unwrap_or_default();
        let probes_path = join(path, "probes");
        let probes = match map.get("probes") {
            None | Some(Value::Null) => Vec::new(),
            Some(p) => self.steps(p, &probes_path),
        };
        if let Some(Value::Array(raw)) = map.get("probes") {
            for (i, probe) in raw.iter().enumerate() {
                if probe.is_object() && probe.get("tolerance").is_none() {
                    self.problem(
                        format!("{probes_path}[{i}].tolerance"),
                        "missing",
                        "a tolerance for every hypothesis probe",
                    );
                }
            }
        }
        Some(Hypothesis { title, probes })
    }

    fn steps(&mut self, value: &Value, path: &str) -> Vec<Step> {
        let Value::Array(items) = value else {
            self.problem(
                path,
                format!("is {}", kind_of(value)),
                "a list of activities",
            );
            return Vec::new();
        };
        let mut steps = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            if let Some(r) = item.get("ref") {
                match r {
                    Value::String(s) if !s.is_empty() => {
                        let tolerance = item
                            .get("tolerance")
                            .and_then(|t| self.tolerance(t, &join(&item_path, "tolerance")));
                        steps.push(Step::Ref {
                            name: s.clone(),
                            tolerance,
                        });
                    }
                    other => self.problem(
                        join(&item_path, "ref"),
                        format!("is {}", kind_of(other)),
                        "the name of an activity",
                    ),
                }
                continue;
            }
            if let Some(a) = self.activity(item, &item_path) {
                steps.push(Step::Activity(Box::new(a)));
            }
        }
        steps
    }

    fn activity(&mut self, value: &Value, path: &str) -> Option<Activity> {
        let Some(map) = value.as_object().filter(|m| !m.is_empty()) else {
            self.problem(
                path,
                format!(
                    "is {}",
                    if value.is_object() {
                        "an empty mapping"
                    } else {
                        kind_of(value)
                    }
                ),
                "an activity (a mapping with type, name and provider)",
            );
            return None;
        };
        let kind = match map.get("type") {
            Some(Value::String(t)) if t == "action" => Some(ActivityKind::Action),
            Some(Value::String(t)) if t == "probe" => Some(ActivityKind::Probe),
            None | Some(Value::Null) => {
                self.problem(join(path, "type"), "missing", "action or probe");
                None
            }
            Some(other) => {
                self.problem(
                    join(path, "type"),
                    format!("{} is not a supported activity type", quoted(other)),
                    "action or probe",
                );
                None
            }
        };
        let name = self.required_str(map, path, "name", "a non-empty activity name");
        let provider = self.provider(map.get("provider"), &join(path, "provider"));
        let timeout = self.optional_number(map, path, "timeout");
        let (pause_before, pause_after) = self.pauses(map.get("pauses"), &join(path, "pauses"));
        let background = match map.get("background") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(
                    join(path, "background"),
                    format!("is {}", kind_of(other)),
                    "true or false",
                );
                false
            }
        };
        let dry = match map.get("dry") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if Dry::parse(s).is_some() => Dry::parse(s),
            Some(other) => {
                self.problem(
                    join(path, "dry"),
                    format!("unknown dry mode {}", quoted(other)),
                    "probes, actions, activities or pause",
                );
                None
            }
        };
        let tolerance = match map.get("tolerance") {
            None => None,
            Some(t) => self.tolerance(t, &join(path, "tolerance")),
        };
        Some(Activity {
            kind: kind?,
            name: name?,
            provider: provider?,
            tolerance,
            pause_before,
            pause_after,
            background,
            timeout,
            dry,
            raw: value.clone(),
        })
    }

    fn pauses(&mut self, value: Option<&Value>, path: &str) -> (Option<Value>, Option<Value>) {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return (None, None);
        };
        let Some(map) = value.as_object() else {
            self.problem(
                path,
                format!("is {}", kind_of(value)),
                "a mapping with before and/or after",
            );
            return (None, None);
        };
        let mut pause = |key: &str| match map.get(key) {
            None | Some(Value::Null) => None,
            Some(v @ Value::Number(_)) => Some(v.clone()),
            Some(Value::String(s)) if s.starts_with("${") && s.ends_with('}') => {
                Some(Value::String(s.clone()))
            }
            Some(other) => {
                self.problem(
                    join(path, key),
                    format!("is {}", kind_of(other)),
                    "a number of seconds or a ${name} reference",
                );
                None
            }
        };
        (pause("before"), pause("after"))
    }

    fn provider(&mut self, value: Option<&Value>, path: &str) -> Option<Provider> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            self.problem(
                path,
                "missing",
                "a provider mapping with a type: python, process or http",
            );
            return None;
        };
        let Some(map) = value.as_object() else {
            self.problem(
                path,
                format!("is {}", kind_of(value)),
                "a provider mapping with a type: python, process or http",
            );
            return None;
        };
        match map.get("type").and_then(Value::as_str) {
            Some("process") => self.process(map, path).map(Provider::Process),
            Some("http") => self.http(map, path).map(Provider::Http),
            Some("python") => self.python(map, path).map(Provider::Python),
            Some(other) => {
                self.problem(
                    join(path, "type"),
                    format!("unknown provider type '{other}'"),
                    "python, process or http",
                );
                None
            }
            None => {
                self.problem(join(path, "type"), "missing", "python, process or http");
                None
            }
        }
    }

    fn process(&mut self, map: &Map<String, Value>, path: &str) -> Option<ProcessProvider> {
        let exe = self.required_str(map, path, "path", "the path or name of an executable");
        let arguments = match map.get("arguments") {
            None | Some(Value::Null) => Value::Array(Vec::new()),
            Some(v @ (Value::String(_) | Value::Array(_) | Value::Object(_))) => v.clone(),
            Some(other) => {
                self.problem(
                    join(path, "arguments"),
                    format!("is {}", kind_of(other)),
                    "a string, a list or a mapping",
                );
                Value::Array(Vec::new())
            }
        };
        let timeout = self.optional_number(map, path, "timeout");
        let exe = exe?;
        if self.checks.check_executables
            && crate::providers::process::find_executable(&exe).is_none()
        {
            self.problem(
                join(path, "path"),
                format!("`{exe}` cannot be found"),
                "an executable file, absolute or on PATH",
            );
        }
        Some(ProcessProvider {
            path: exe,
            arguments,
            timeout,
        })
    }

    fn http(&mut self, map: &Map<String, Value>, path: &str) -> Option<HttpProvider> {
        let url = self.required_str(map, path, "url", "the URL to call");
        let method = match map.get("method") {
            None | Some(Value::Null) => "GET".to_string(),
            Some(Value::String(m)) if !m.is_empty() => m.to_ascii_uppercase(),
            Some(other) => {
                self.problem(
                    join(path, "method"),
                    format!("is {}", kind_of(other)),
                    "an HTTP method such as GET or POST",
                );
                "GET".to_string()
            }
        };
        let headers = match map.get("headers") {
            None | Some(Value::Null) => Value::Null,
            Some(v @ Value::Object(_)) => v.clone(),
            Some(other) => {
                self.problem(
                    join(path, "headers"),
                    format!("is {}", kind_of(other)),
                    "a mapping of header names to values",
                );
                Value::Null
            }
        };
        let timeout = match map.get("timeout") {
            None | Some(Value::Null) => Value::Null,
            Some(v @ Value::Number(_)) => v.clone(),
            Some(Value::String(s)) if s.starts_with("${") => Value::String(s.clone()),
            Some(v @ Value::Array(pair))
                if pair.len() == 2 && pair.iter().all(Value::is_number) =>
            {
                v.clone()
            }
            Some(other) => {
                self.problem(
                    join(path, "timeout"),
                    format!("is {other}"),
                    "a number of seconds or [connect, read]",
                );
                Value::Null
            }
        };
        let expected_status = match map.get("expected_status") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|s| (100..600).contains(&s)) => {
                n.as_u64().map(|s| s as u16)
            }
            Some(other) => {
                self.problem(
                    join(path, "expected_status"),
                    format!("is {other}"),
                    "an HTTP status code (100-599)",
                );
                None
            }
        };
        let verify_tls = match map.get("verify_tls") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(
                    join(path, "verify_tls"),
                    format!("is {}", kind_of(other)),
                    "true or false",
                );
                true
            }
        };
        let arguments = map.get("arguments").cloned().unwrap_or(Value::Null);
        let max_retries = match map.get("max_retries") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) if n.as_u64().is_some_and(|r| r <= 100) => {
                n.as_u64().unwrap_or(0) as u32
            }
            Some(other) => {
                self.problem(
                    join(path, "max_retries"),
                    format!("is {other}"),
                    "a number of retries from 0 to 100",
                );
                0
            }
        };
        Some(HttpProvider {
            url: Value::String(url?),
            method,
            headers,
            arguments,
            timeout,
            expected_status,
            verify_tls,
            max_retries,
        })
    }

    fn python(&mut self, map: &Map<String, Value>, path: &str) -> Option<PythonProvider> {
        let module = self.required_str(map, path, "module", "a dotted Python module path");
        let func = self.required_str(map, path, "func", "the name of a function in the module");
        let arguments = match map.get("arguments") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                self.problem(
                    join(path, "arguments"),
                    format!("is {}", kind_of(other)),
                    "a mapping of argument names to values",
                );
                Map::new()
            }
        };
        let secrets = match map.get("secrets") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect(),
            Some(other) => {
                self.problem(
                    join(path, "secrets"),
                    format!("is {}", kind_of(other)),
                    "a list of secret scope names",
                );
                Vec::new()
            }
        };
        Some(PythonProvider {
            module: module?,
            func: func?,
            arguments,
            secrets,
        })
    }

    fn tolerance(&mut self, value: &Value, path: &str) -> Option<Tolerance> {
        const KINDS: &str = "a boolean, an integer, a string, a list, or a mapping of type probe, regex, jsonpath or range";
        match value {
            Value::Bool(b) => Some(Tolerance::Bool(*b)),
            Value::Number(n) if n.is_i64() || n.is_u64() => match n.as_i64() {
                Some(i) => Some(Tolerance::Int(i)),
                None => {
                    self.problem(
                        path,
                        format!("{n} is too large"),
                        "an integer that fits in 64 bits",
                    );
                    None
                }
            },
            Value::String(s) => Some(Tolerance::Str(s.clone())),
            Value::Array(items) => Some(Tolerance::List(items.clone())),
            Value::Object(map) => self.tolerance_mapping(map, value, path),
            other => {
                self.problem(path, format!("is {}", kind_of(other)), KINDS);
                None
            }
        }
    }

    fn tolerance_mapping(
        &mut self,
        map: &Map<String, Value>,
        value: &Value,
        path: &str,
    ) -> Option<Tolerance> {
        let target = map.get("target").and_then(Value::as_str).map(String::from);
        match map.get("type").and_then(Value::as_str) {
            Some("probe") => self
                .activity(value, path)
                .map(|a| Tolerance::Probe(Box::new(a))),
            Some("regex") => {
                let pattern = self.required_str(map, path, "pattern", "a regular expression")?;
                if let Err(e) = pyregex::compile(&pattern) {
                    self.problem(
                        join(path, "pattern"),
                        format!("invalid regular expression: {e}"),
                        "a valid regular expression",
                    );
                }
                Some(Tolerance::Regex { pattern, target })
            }
            Some("jsonpath") => {
                let jp =
                    self.required_str(map, path, "path", "a JSONPath expression such as $.status")?;
                if !jp.contains("${")
                    && let Err(e) = serde_json_path::JsonPath::parse(jp.trim())
                {
                    self.problem(
                        join(path, "path"),
                        format!("invalid JSONPath: {e}"),
                        "a JSONPath expression such as $.items[*]",
                    );
                }
                let count = match map.get("count") {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
                    Some(other) => {
                        self.problem(
                            join(path, "count"),
                            format!("is {other}"),
                            "a non-negative integer",
                        );
                        None
                    }
                };
                Some(Tolerance::JsonPath {
                    path: jp,
                    expect: map.get("expect").cloned(),
                    count,
                    target,
                })
            }
            Some("range") => {
                let range_path = join(path, "range");
                match map.get("range") {
                    Some(Value::Array(pair)) if pair.len() == 2 => {
                        match (pair[0].as_f64(), pair[1].as_f64()) {
                            (Some(low), Some(high))
                                if !pair[0].is_boolean() && !pair[1].is_boolean() =>
                            {
                                Some(Tolerance::Range { low, high, target })
                            }
                            _ => {
                                self.problem(
                                    range_path,
                                    "boundaries must be numbers",
                                    "[lower, upper] as two numbers",
                                );
                                None
                            }
                        }
                    }
                    Some(Value::Array(items)) => {
                        self.problem(
                            range_path,
                            format!("must be made of two values, not {}", items.len()),
                            "[lower, upper]: a sequence of two numbers",
                        );
                        None
                    }
                    None => {
                        self.problem(
                            range_path,
                            "missing",
                            "[lower, upper]: a sequence of two numbers",
                        );
                        None
                    }
                    Some(other) => {
                        self.problem(
                            range_path,
                            format!("is {}", kind_of(other)),
                            "[lower, upper]: a sequence of two numbers",
                        );
                        None
                    }
                }
            }
            Some(other) => {
                self.problem(
                    join(path, "type"),
                    format!("tolerance type '{other}' is unsupported"),
                    "probe, regex, jsonpath or range",
                );
                None
            }
            None => {
                self.problem(
                    join(path, "type"),
                    "missing",
                    "probe, regex, jsonpath or range",
                );
                None
            }
        }
    }

    /// Every `ref` must name an activity of the method or the hypothesis. Checked on the raw
    /// document so indexes stay true and an invalid activity still counts as declared.
    fn refs(&mut self, root: &Map<String, Value>) {
        fn list(v: Option<&Value>) -> &[Value] {
            v.and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[])
        }
        let probes = list(
            root.get("steady-state-hypothesis")
                .and_then(|h| h.get("probes")),
        );
        let method = list(root.get("method"));
        let declared = |name: &str| {
            method.iter().chain(probes).any(|a| {
                a.get("ref").is_none() && a.get("name").and_then(Value::as_str) == Some(name)
            })
        };
        let lists = [
            ("steady-state-hypothesis.probes", probes),
            ("method", method),
            ("rollbacks", list(root.get("rollbacks"))),
        ];
        for (path, items) in lists {
            for (i, item) in items.iter().enumerate() {
                if let Some(Value::String(name)) = item.get("ref")
                    && !name.is_empty()
                    && !declared(name)
                {
                    self.problem(
                        format!("{path}[{i}].ref"),
                        format!(
                            "referenced activity '{name}' could not be found in the experiment"
                        ),
                        "the name of an activity declared in the method or the hypothesis",
                    );
                }
            }
        }
    }
}

/// Warnings: what is valid but risky. Same shape as problems (field, message, expectation) and
/// located the same way, but they never make an experiment invalid; `worker validate` prints
/// them and keeps its exit status.
///
/// One warning today: a `process` activity whose `arguments` is one string runs through
/// `/bin/sh`, so a `${name}` in it puts text into a shell command line. Values from probes are
/// quoted there, but an operator's values (`--var`, var files, suite defaults, configuration)
/// are inserted as written, as in the reference, and a command that runs its own arguments
/// through a shell re-reads even a quoted value as shell. Flagged: every `${name}`, and `$name`
/// when `name` is a configuration key (otherwise `$name` is most likely a shell variable).
pub fn warnings(e: &Experiment) -> Vec<Problem> {
    let mut warnings = Vec::new();
    for (field, activity) in super::activities_with_paths(e) {
        let Provider::Process(p) = &activity.provider else {
            continue;
        };
        let Value::String(arguments) = &p.arguments else {
            continue;
        };
        let mut names: Vec<&str> = crate::engine::substitute::references(arguments)
            .into_iter()
            .filter(|(name, braced)| *braced || e.configuration.contains_key(*name))
            .map(|(name, _)| name)
            .collect();
        names.dedup();
        if names.is_empty() {
            continue;
        }
        let listed = names
            .iter()
            .map(|n| format!("`${{{n}}}`"))
            .collect::<Vec<_>>()
            .join(", ");
        warnings.push(
            Problem::new(
                format!("{field}.provider.arguments"),
                format!(
                    "arguments given as one string run through the shell and substitute {listed}: \
                     values from probes are quoted, values from --var, var files, suite defaults \
                     and configuration are inserted as shell text"
                ),
            )
            .expected("arguments as a list, which never go through the shell"),
        );
    }
    warnings
}

/// The warnings of the experiment file at `path` (already loaded as `experiment`), located.
pub fn file_warnings(path: &std::path::Path, experiment: &Experiment) -> Vec<Problem> {
    let warnings = warnings(experiment);
    if warnings.is_empty() {
        return warnings;
    }
    let Ok(text) = std::fs::read_to_string(path) else {
        return warnings;
    };
    let format = super::document::Format::detect(path, &text);
    match super::parse_located(&text, format, Some(path)) {
        Ok(mut doc) => super::locate_all(warnings, &mut doc, Some(path)).0,
        Err(_) => warnings,
    }
}

#[cfg(test)]
mod warning_tests {
    use super::*;
    use serde_json::json;

    fn experiment(arguments: Value) -> Experiment {
        let doc = json!({"title": "t", "description": "d",
            "configuration": {"known": "k"},
            "method": [{"type": "action", "name": "a",
                "provider": {"type": "process", "path": "echo", "arguments": arguments}}]});
        let vars = Vars::default();
        let checks = Checks {
            vars: &vars,
            check_executables: false,
        };
        validate(&doc, &checks).unwrap()
    }

    #[test]
    fn a_substitution_in_string_process_arguments_is_warned_about() {
        for (arguments, warned) in [
            (json!("hello ${name}"), Some("`${name}`")),
            (json!("$known and ${known}"), Some("`${known}`")),
            (json!("$HOME $$x"), None),
            (json!("plain"), None),
            (json!(["${name}"]), None),
            (json!({"--x": "${name}"}), None),
        ] {
            let w = warnings(&experiment(arguments.clone()));
            match warned {
                Some(text) => {
                    assert_eq!(w.len(), 1, "{arguments}");
                    assert_eq!(w[0].field, "method[0].provider.arguments");
                    assert!(w[0].message.contains(text), "{}", w[0].message);
                }
                None => assert!(w.is_empty(), "{arguments}: {w:?}"),
            }
        }
    }
}
