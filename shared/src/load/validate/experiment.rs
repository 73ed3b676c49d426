//! The experiment's top level: title, description, version, tags, contributions, controls,
//! configuration (environment entries resolve, probe entries parse), secrets, runtime
//! strategies, and every `ref` naming a declared activity.

use super::{Validator, join, kind_of, quoted};
use crate::load::config::{resolve_configuration, resolve_secrets};
use crate::model::*;
use serde_json::{Map, Value};

impl Validator<'_> {
    pub(super) fn experiment(&mut self, doc: &Value) -> Option<Experiment> {
        let Value::Object(root) = doc else {
            self.problem(
                "",
                format!("the document is {}", kind_of(doc)),
                "a mapping with title, description and method",
            );
            return None;
        };
        let title = self.truthy_str(root, "", "title", "a non-empty string");
        let description = self.truthy_str(root, "", "description", "a non-empty string");
        let version = match root.get("version") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v @ Value::Number(_)) => Some(v.to_string()),
            Some(other) => {
                self.warn(
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
                self.warn(
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
        self.controls(doc);
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
            warnings: Vec::new(),
        })
    }

    pub(super) fn tags(&mut self, tags: Option<&Value>) -> Vec<String> {
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

    /// Check `{type: env}` entries resolve and parse `{type: probe}` ones.
    pub(super) fn configuration(&mut self, config: &Map<String, Value>) -> Vec<(String, Activity)> {
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
                    // the reference does not validate dynamic configuration: a probe that is
                    // wrong fails when it runs and its key stays unresolved, so what is wrong
                    // here is a warning, and the probe is left out
                    if let Some(a) = self.unchecked_by_reference(|v| v.activity(value, &path)) {
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

    pub(super) fn runtime(&mut self, runtime: Option<&Value>) -> Runtime {
        let mut out = Runtime::default();
        let Some(runtime) = runtime.filter(|v| !v.is_null()) else {
            return out;
        };
        let Some(map) = runtime.as_object() else {
            self.defer(
                "runtime",
                format!("is {}", kind_of(runtime)),
                "a mapping with hypothesis and rollbacks",
            );
            return out;
        };
        if let Some(s) = map.get("hypothesis").and_then(|h| h.get("strategy")) {
            out.hypothesis_strategy = s.as_str().and_then(HypothesisStrategy::parse);
            if out.hypothesis_strategy.is_none() {
                self.defer(
                    "runtime.hypothesis.strategy",
                    format!("unknown strategy {}", quoted(s)),
                    &HypothesisStrategy::NAMES.join(", "),
                );
            }
        }
        if let Some(s) = map.get("rollbacks").and_then(|h| h.get("strategy")) {
            out.rollback_strategy = s.as_str().and_then(RollbackStrategy::parse);
            if out.rollback_strategy.is_none() {
                // the reference compares it with each strategy in turn: none matches, and
                // rollbacks are never played
                out.rollback_strategy = Some(RollbackStrategy::Never);
                self.warn(
                    "runtime.rollbacks.strategy",
                    format!(
                        "unknown strategy {}: rollbacks are never played, as in the Chaos Toolkit",
                        quoted(s)
                    ),
                    &RollbackStrategy::NAMES.join(", "),
                );
            }
        }
        out
    }

    /// Every `ref` must name an activity of the method or the hypothesis. Checked on the raw
    /// document so indexes stay true and an invalid activity still counts as declared.
    pub(super) fn refs(&mut self, root: &Map<String, Value>) {
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
                    // the reference looks refs up at validation in the method only; elsewhere
                    // it stops when the run reaches the ref
                    let found = crate::load::Problem::new(
                        format!("{path}[{i}].ref"),
                        format!(
                            "referenced activity '{name}' could not be found in the experiment"
                        ),
                    )
                    .expected("the name of an activity declared in the method or the hypothesis");
                    match path {
                        "method" => self.problems.push(found),
                        _ => self.deferred.push(found),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{check, doc};
    use serde_json::json;

    #[test]
    fn top_level_fields() {
        check(vec![
            (
                json!({"method": []}),
                vec![("title", "missing"), ("description", "missing")],
            ),
            (
                json!({"title": "t", "description": "d"}),
                vec![("method", "missing")],
            ),
            (
                doc(json!({"version": "1.0.0", "tags": ["a"], "contributions": {"x": "high"}})),
                vec![],
            ),
            (doc(json!({"version": 1})), vec![]),
            (
                doc(json!({"version": []})),
                vec![("version", "warning: is a list")],
            ),
            (doc(json!({"tags": "a"})), vec![("tags", "is a string")]),
            (
                doc(json!({"tags": ["a", "", 3]})),
                vec![("tags[1]", "is a string"), ("tags[2]", "is an integer")],
            ),
            (
                doc(json!({"contributions": ["x"]})),
                vec![("contributions", "warning: is a list")],
            ),
            (doc(json!({"method": {}})), vec![("method", "is a mapping")]),
            (
                doc(json!({"rollbacks": "r"})),
                vec![("rollbacks", "is a string")],
            ),
        ]);
    }

    #[test]
    fn configuration_and_secrets() {
        check(vec![
            (
                doc(json!({"configuration": {"plain": 1, "env": {"type": "env", "key": "PATH"}}})),
                vec![],
            ),
            (
                doc(json!({"configuration": {"e": {"type": "env"}}})),
                vec![
                    ("configuration.e.key", "missing"),
                    (
                        "configuration.e",
                        "refers to environment variable ``, which is not set",
                    ),
                ],
            ),
            (
                doc(
                    json!({"configuration": {"e": {"type": "env", "key": "PATH", "env_var_type": "list"}}}),
                ),
                vec![
                    ("configuration.e.env_var_type", "unknown type 'list'"),
                    (
                        "configuration.e",
                        "environment variable `PATH`: unknown type `list` (expected str, int, float, bool, bytes or json)",
                    ),
                ],
            ),
            (
                doc(json!({"configuration": {"p": {"type": "probe", "name": "p"}}})),
                vec![(
                    "configuration.p.provider",
                    "warning: missing (the Chaos Toolkit does not check this before the run; it fails when it runs)",
                )],
            ),
            (doc(json!({"secrets": {"s": {"k": "v"}}})), vec![]),
            (
                doc(json!({"secrets": {"s": "v"}})),
                vec![("secrets.s", "is a string")],
            ),
        ]);
    }

    #[test]
    fn runtime_strategies() {
        check(vec![
            (
                doc(
                    json!({"runtime": {"hypothesis": {"strategy": "default"}, "rollbacks": {"strategy": "always"}}}),
                ),
                vec![],
            ),
            (doc(json!({"runtime": null})), vec![]),
            (
                doc(json!({"runtime": 1})),
                vec![("runtime", "at run: is an integer")],
            ),
            (
                doc(json!({"runtime": {"hypothesis": {"strategy": "sometimes"}}})),
                vec![(
                    "runtime.hypothesis.strategy",
                    "at run: unknown strategy 'sometimes'",
                )],
            ),
            (
                doc(json!({"runtime": {"rollbacks": {"strategy": 3}}})),
                vec![(
                    "runtime.rollbacks.strategy",
                    "warning: unknown strategy 3: rollbacks are never played, as in the Chaos Toolkit",
                )],
            ),
        ]);
    }

    #[test]
    fn refs_name_a_declared_activity() {
        let probe =
            json!({"type": "probe", "name": "p", "provider": {"type": "process", "path": "true"}});
        check(vec![
            (
                doc(json!({"method": [probe.clone(), {"ref": "p"}], "rollbacks": [{"ref": "p"}]})),
                vec![],
            ),
            (
                doc(
                    json!({"steady-state-hypothesis": {"title": "h", "probes": [{"ref": "p"}]}, "method": [probe.clone()]}),
                ),
                vec![("steady-state-hypothesis.probes[0].tolerance", "missing")],
            ),
            (
                doc(json!({"method": [probe.clone()], "rollbacks": [{"ref": "q"}]})),
                vec![(
                    "rollbacks[0].ref",
                    "at run: referenced activity 'q' could not be found in the experiment",
                )],
            ),
            (
                doc(json!({"method": [{"ref": "p"}]})),
                vec![(
                    "method[0].ref",
                    "referenced activity 'p' could not be found in the experiment",
                )],
            ),
            (
                doc(json!({"method": [{"ref": 1}]})),
                vec![("method[0].ref", "is an integer")],
            ),
        ]);
    }
}
