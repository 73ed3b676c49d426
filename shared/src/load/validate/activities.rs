//! The steady-state hypothesis, lists of steps (an activity or a `ref`) and the activity
//! itself: type, name, provider, timeout, pauses, background, dry mode and tolerance.

use super::{Validator, join, kind_of, quoted};
use crate::model::*;
use serde_json::Value;

impl Validator<'_> {
    pub(super) fn hypothesis(&mut self, value: Option<&Value>) -> Option<Hypothesis> {
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

    pub(super) fn steps(&mut self, value: &Value, path: &str) -> Vec<Step> {
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

    pub(super) fn activity(&mut self, value: &Value, path: &str) -> Option<Activity> {
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
        let name = self.truthy_str(map, path, "name", "a non-empty activity name");
        let provider = self.provider(map.get("provider"), &join(path, "provider"));
        self.note_python_call(map, path);
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
                // the reference never reads an activity's `dry` as a mode (docs/compatibility.md)
                self.warn(
                    join(path, "dry"),
                    format!("unknown dry mode {} (ignored)", quoted(other)),
                    "probes, actions, activities or pause",
                );
                None
            }
        };
        let tolerance = match map.get("tolerance") {
            None => None,
            // the reference checks tolerances in the hypothesis only; a method or rollback
            // step's tolerance is never used by it, so what is wrong there is a warning
            Some(t) if path.starts_with("steady-state-hypothesis") => {
                self.tolerance(t, &join(path, "tolerance"))
            }
            Some(t) => self.unchecked_by_reference(|v| v.tolerance(t, &join(path, "tolerance"))),
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

    /// Keep a `python` activity for the signature check, however the rest of it reads.
    fn note_python_call(&mut self, map: &serde_json::Map<String, Value>, path: &str) {
        let Some(Value::Object(p)) = map.get("provider") else {
            return;
        };
        let (Some("python"), Some(Value::String(module)), Some(Value::String(func))) = (
            p.get("type").and_then(Value::as_str),
            p.get("module"),
            p.get("func"),
        ) else {
            return;
        };
        if module.is_empty() || func.is_empty() {
            return;
        }
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
        self.python_calls.push(super::PythonCall {
            field: join(path, "provider"),
            module: module.clone(),
            func: func.clone(),
            arguments: match p.get("arguments") {
                Some(Value::Object(a)) => a.clone(),
                _ => serde_json::Map::new(),
            },
            tolerance: path.ends_with(".tolerance"),
            lenient: self.lenient,
            activity_name: text(map.get("name")),
            activity_type: text(map.get("type")),
        });
    }

    pub(super) fn pauses(
        &mut self,
        value: Option<&Value>,
        path: &str,
    ) -> (Option<Value>, Option<Value>) {
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
}

#[cfg(test)]
mod tests {
    use super::super::table::{check, doc, one_activity};
    use serde_json::json;

    fn process() -> serde_json::Value {
        json!({"type": "process", "path": "true"})
    }

    #[test]
    fn the_hypothesis_needs_a_title_and_tolerances() {
        let probe = json!({"type": "probe", "name": "p", "provider": process(), "tolerance": 0});
        check(vec![
            (
                doc(json!({"steady-state-hypothesis": {"title": "h", "probes": [probe.clone()]}})),
                vec![],
            ),
            (
                doc(json!({"steady-state-hypothesis": {"title": "h"}})),
                vec![],
            ),
            (
                doc(json!({"steady-state-hypothesis": []})),
                vec![("steady-state-hypothesis", "is a list")],
            ),
            (
                doc(json!({"steady-state-hypothesis": {"probes": [probe.clone()]}})),
                vec![("steady-state-hypothesis.title", "missing")],
            ),
            (
                doc(
                    json!({"steady-state-hypothesis": {"title": "h", "probes": [{"type": "probe", "name": "p", "provider": process()}]}}),
                ),
                vec![("steady-state-hypothesis.probes[0].tolerance", "missing")],
            ),
            (
                doc(json!({"steady-state-hypothesis": {"title": "h", "probes": {}}})),
                vec![("steady-state-hypothesis.probes", "is a mapping")],
            ),
        ]);
    }

    #[test]
    fn activities_have_a_type_a_name_and_a_provider() {
        check(vec![
            (
                one_activity(json!({"type": "action", "name": "a", "provider": process()})),
                vec![],
            ),
            (one_activity(json!("a")), vec![("method[0]", "is a string")]),
            (
                one_activity(json!({})),
                vec![("method[0]", "is an empty mapping")],
            ),
            (
                one_activity(json!({"name": "a", "provider": process()})),
                vec![("method[0].type", "missing")],
            ),
            (
                one_activity(json!({"type": "step", "name": "a", "provider": process()})),
                vec![("method[0].type", "'step' is not a supported activity type")],
            ),
            (
                one_activity(json!({"type": "action", "name": "", "provider": process()})),
                vec![("method[0].name", "is empty")],
            ),
            (
                one_activity(json!({"type": "action", "name": "a"})),
                vec![("method[0].provider", "missing")],
            ),
            (
                one_activity(
                    json!({"type": "action", "name": "a", "provider": process(), "timeout": "5"}),
                ),
                vec![("method[0].timeout", "is a string")],
            ),
            (
                one_activity(
                    json!({"type": "action", "name": "a", "provider": process(), "background": "yes"}),
                ),
                vec![("method[0].background", "is a string")],
            ),
            (
                one_activity(
                    json!({"type": "action", "name": "a", "provider": process(), "dry": "all"}),
                ),
                vec![("method[0].dry", "warning: unknown dry mode 'all' (ignored)")],
            ),
            (
                one_activity(
                    json!({"type": "action", "name": "a", "provider": process(), "dry": "actions", "background": true, "timeout": 2.5}),
                ),
                vec![],
            ),
        ]);
    }

    #[test]
    fn pauses_are_seconds_or_references() {
        let with_pauses = |pauses| {
            one_activity(
                json!({"type": "action", "name": "a", "provider": process(), "pauses": pauses}),
            )
        };
        check(vec![
            (
                with_pauses(json!({"before": 1, "after": "${wait}"})),
                vec![],
            ),
            (with_pauses(json!(null)), vec![]),
            (
                with_pauses(json!(5)),
                vec![("method[0].pauses", "is an integer")],
            ),
            (
                with_pauses(json!({"before": "5"})),
                vec![("method[0].pauses.before", "is a string")],
            ),
            (
                with_pauses(json!({"after": [1]})),
                vec![("method[0].pauses.after", "is a list")],
            ),
        ]);
    }
}
