//! Tolerances: a boolean, an integer, a string or a list compared with the output, or a
//! mapping of type `probe`, `regex` (the pattern compiles), `jsonpath` (the path parses) or
//! `range` (two numbers).

use super::{Validator, join, kind_of};
use crate::model::*;
use crate::pyregex;
use serde_json::{Map, Value};

impl Validator<'_> {
    pub(super) fn tolerance(&mut self, value: &Value, path: &str) -> Option<Tolerance> {
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

    pub(super) fn tolerance_mapping(
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
}

#[cfg(test)]
mod tests {
    use super::super::table::{check, doc, one_activity};
    use serde_json::json;

    /// A hypothesis probe with `tolerance` (where the reference checks tolerances).
    fn with_tolerance(tolerance: serde_json::Value) -> serde_json::Value {
        doc(
            json!({"steady-state-hypothesis": {"title": "h", "probes": [{"type": "probe",
            "name": "p", "provider": {"type": "process", "path": "true"}, "tolerance": tolerance}]}}),
        )
    }

    #[test]
    fn a_method_steps_tolerance_is_only_warned_about() {
        // the reference never checks nor uses it
        check(vec![(
            one_activity(json!({"type": "probe", "name": "p",
                "provider": {"type": "process", "path": "true"}, "tolerance": 1.5})),
            vec![(
                "method[0].tolerance",
                "warning: is a float (the Chaos Toolkit does not check this before the run; it fails when it runs)",
            )],
        )]);
    }

    #[test]
    fn tolerance_kinds() {
        let t = "steady-state-hypothesis.probes[0].tolerance";
        check(vec![
            (with_tolerance(json!(true)), vec![]),
            (with_tolerance(json!(0)), vec![]),
            (with_tolerance(json!("ok")), vec![]),
            (with_tolerance(json!([0, 1])), vec![]),
            (with_tolerance(json!(null)), vec![(t, "is null")]),
            (with_tolerance(json!(1.5)), vec![(t, "is a float")]),
            (
                with_tolerance(json!(18446744073709551615u64)),
                vec![(t, "18446744073709551615 is too large")],
            ),
            (
                with_tolerance(json!({})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.type",
                    "missing",
                )],
            ),
            (
                with_tolerance(json!({"type": "exact"})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.type",
                    "tolerance type 'exact' is unsupported",
                )],
            ),
        ]);
    }

    #[test]
    fn tolerance_mappings() {
        check(vec![
            (
                with_tolerance(json!({"type": "regex", "pattern": "^o+k$", "target": "stdout"})),
                vec![],
            ),
            (
                with_tolerance(json!({"type": "regex"})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.pattern",
                    "missing",
                )],
            ),
            (
                with_tolerance(json!({"type": "regex", "pattern": "("})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.pattern",
                    "invalid regular expression: Parsing error at position 1: Opening parenthesis without closing parenthesis",
                )],
            ),
            (
                with_tolerance(
                    json!({"type": "jsonpath", "path": "$.a[*]", "count": 2, "expect": 1}),
                ),
                vec![],
            ),
            (
                with_tolerance(json!({"type": "jsonpath", "path": "${p}"})),
                vec![],
            ),
            (
                with_tolerance(json!({"type": "jsonpath"})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.path",
                    "missing",
                )],
            ),
            (
                with_tolerance(json!({"type": "jsonpath", "path": "$.a", "count": -1})),
                vec![("steady-state-hypothesis.probes[0].tolerance.count", "is -1")],
            ),
            (
                with_tolerance(json!({"type": "range", "range": [0, 1.5]})),
                vec![],
            ),
            (
                with_tolerance(json!({"type": "range"})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.range",
                    "missing",
                )],
            ),
            (
                with_tolerance(json!({"type": "range", "range": [0, 1, 2]})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.range",
                    "must be made of two values, not 3",
                )],
            ),
            (
                with_tolerance(json!({"type": "range", "range": [0, true]})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.range",
                    "boundaries must be numbers",
                )],
            ),
            (
                with_tolerance(json!({"type": "range", "range": "0-1"})),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.range",
                    "is a string",
                )],
            ),
            (
                with_tolerance(json!({"type": "probe", "name": "q",
                    "provider": {"type": "process", "path": "true"}})),
                vec![],
            ),
            (
                with_tolerance(
                    json!({"type": "probe", "provider": {"type": "process", "path": "true"}}),
                ),
                vec![(
                    "steady-state-hypothesis.probes[0].tolerance.name",
                    "missing",
                )],
            ),
        ]);
    }
}
