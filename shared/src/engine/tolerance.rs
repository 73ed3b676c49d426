//! Is a probe's output within its tolerance? Pure, except probe tolerances (see hypothesis.rs).
//!
//! The reference's rules, all of them surprising somewhere:
//! - `true`/`false`: Python equality with the output (`1 == True`);
//! - an integer: compared with the output's `status` when the output has one (process exit
//!   code, HTTP status), else with the output itself;
//! - a string: equality with the output (so never true for process or HTTP outputs);
//! - a list: membership of the output's `status` when it has one; otherwise a two-element list
//!   is an inclusive range and any other list a membership test;
//! - `regex`: `re.search` on the output, or on `output[target]`;
//! - `jsonpath`: matches exist (or exactly `count` of them), and with `expect` the matched values
//!   equal `[expect]` (or `expect` when it is a list);
//! - `range`: the output (or `output[target]`) as a number within `[low, high]`, inclusive; a
//!   numeric string counts as a number.
//!
//! Where Python would raise (comparing a string with a number), the tolerance is not met and
//! the reason is returned so the journal can say why.

use crate::model::Tolerance;
use crate::pyregex;
use crate::pyvalue::{py_cmp, py_eq, py_in, py_str};
use crate::scope::Scope;
use serde_json::Value;
use std::cmp::Ordering;

/// The verdict, with the reason when the check could not be made.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Met,
    NotMet,
    /// The check itself failed (the reference raises here); counts as not met.
    Error(String),
}

impl Verdict {
    pub fn is_met(&self) -> bool {
        matches!(self, Verdict::Met)
    }

    fn of(b: bool) -> Verdict {
        if b { Verdict::Met } else { Verdict::NotMet }
    }
}

/// `value.get(target, value)` when the output is a mapping.
fn targeted<'a>(value: &'a Value, target: Option<&str>) -> &'a Value {
    match (target, value) {
        (Some(t), Value::Object(map)) => map.get(t).unwrap_or(value),
        _ => value,
    }
}

fn status_of(value: &Value) -> Option<&Value> {
    value.as_object().and_then(|m| m.get("status"))
}

/// Check every tolerance kind except `Probe` (which needs to run an activity).
pub fn within(tolerance: &Tolerance, value: &Value, scope: &Scope) -> Verdict {
    match tolerance {
        Tolerance::Bool(b) => Verdict::of(py_eq(value, &Value::Bool(*b))),
        Tolerance::Str(s) => Verdict::of(py_eq(value, &scope.substitute_str(s))),
        Tolerance::Int(i) => {
            let expected = Value::from(*i);
            Verdict::of(py_eq(status_of(value).unwrap_or(value), &expected))
        }
        Tolerance::List(items) => {
            if let Some(status) = status_of(value) {
                return Verdict::of(py_in(status, items));
            }
            if items.len() == 2 {
                return match (py_cmp(&items[0], value), py_cmp(value, &items[1])) {
                    (Some(lo), Some(hi)) => {
                        Verdict::of(lo != Ordering::Greater && hi != Ordering::Greater)
                    }
                    _ => Verdict::Error(format!(
                        "cannot compare {} with the range {}",
                        py_str(value),
                        py_str(&Value::Array(items.clone()))
                    )),
                };
            }
            Verdict::of(py_in(value, items))
        }
        Tolerance::Regex { pattern, target } => {
            let pattern = scope.interpolate(pattern);
            let rx = match pyregex::compile(&pattern) {
                Ok(rx) => rx,
                Err(e) => return Verdict::Error(format!("invalid pattern {pattern}: {e}")),
            };
            let subject = match targeted(value, target.as_deref()) {
                Value::String(s) => s.clone(),
                // the reference raises on non-strings; searching their JSON text is more useful
                other => other.to_string(),
            };
            match rx.is_match(&subject) {
                Ok(b) => Verdict::of(b),
                Err(e) => Verdict::Error(format!("regex search failed: {e}")),
            }
        }
        Tolerance::JsonPath {
            path,
            expect,
            count,
            target,
        } => {
            let path = scope.interpolate(path);
            let jp = match serde_json_path::JsonPath::parse(path.trim()) {
                Ok(jp) => jp,
                Err(e) => return Verdict::Error(format!("invalid JSONPath {path}: {e}")),
            };
            let subject = match targeted(value, target.as_deref()) {
                Value::String(s) => {
                    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone()))
                }
                other => other.clone(),
            };
            let found: Vec<Value> = jp.query(&subject).all().into_iter().cloned().collect();
            let mut result = match count {
                Some(n) => found.len() as u64 == *n,
                None => !found.is_empty(),
            };
            if let Some(expect) = expect {
                let expect = scope.substitute(expect);
                result = match expect {
                    Value::Array(items) => py_eq(&Value::Array(found), &Value::Array(items)),
                    single => py_eq(&Value::Array(found), &Value::Array(vec![single])),
                };
            }
            Verdict::of(result)
        }
        Tolerance::Range { low, high, target } => {
            let subject = targeted(value, target.as_deref());
            let number = match subject {
                Value::Number(n) => n.as_f64(),
                Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            };
            match number {
                Some(n) => Verdict::of(*low <= n && n <= *high),
                None => Verdict::NotMet,
            }
        }
        Tolerance::Probe(_) => {
            Verdict::Error("probe tolerances are evaluated by running the probe".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(t: Tolerance, v: Value) -> Verdict {
        within(&t, &v, &Scope::default())
    }
    fn met(t: Tolerance, v: Value) -> bool {
        check(t, v).is_met()
    }
    fn process(status: i64, stdout: &str) -> Value {
        json!({"status": status, "stdout": stdout, "stderr": ""})
    }
    fn http(status: i64, body: Value) -> Value {
        json!({"status": status, "headers": {}, "body": body})
    }

    #[test]
    fn bool_tolerance_is_python_equality() {
        assert!(met(Tolerance::Bool(true), json!(true)));
        assert!(met(Tolerance::Bool(true), json!(1)), "True == 1 in Python");
        assert!(!met(Tolerance::Bool(true), json!(false)));
        assert!(met(Tolerance::Bool(false), json!(0)));
        assert!(!met(Tolerance::Bool(true), process(0, "")));
    }

    #[test]
    fn int_tolerance_uses_status_when_present() {
        assert!(met(Tolerance::Int(0), process(0, "")));
        assert!(!met(Tolerance::Int(0), process(1, "")));
        assert!(met(Tolerance::Int(200), http(200, json!("OK"))));
        assert!(met(Tolerance::Int(3), json!(3)));
        assert!(met(Tolerance::Int(3), json!(3.0)));
        assert!(!met(Tolerance::Int(3), json!("3")));
    }

    #[test]
    fn string_tolerance_is_equality_and_substituted() {
        assert!(met(
            Tolerance::Str("report.txt".into()),
            json!("report.txt")
        ));
        assert!(
            !met(Tolerance::Str("0".into()), process(0, "0")),
            "never true for process outputs"
        );
        let scope = Scope::new(
            json!({"want": "x"}).as_object().unwrap().clone(),
            Default::default(),
        );
        assert!(within(&Tolerance::Str("${want}".into()), &json!("x"), &scope).is_met());
    }

    #[test]
    fn list_tolerance_status_membership_range_or_membership() {
        assert!(met(
            Tolerance::List(vec![json!(200), json!(201), json!(204)]),
            http(204, json!(""))
        ));
        assert!(met(
            Tolerance::List(vec![json!(200), json!(299)]),
            http(200, json!(""))
        ));
        assert!(
            !met(
                Tolerance::List(vec![json!(200), json!(299)]),
                http(250, json!(""))
            ),
            "status lists are membership, even pairs"
        );
        assert!(
            met(Tolerance::List(vec![json!(5), json!(10)]), json!(7)),
            "a pair is an inclusive range for plain values"
        );
        assert!(met(Tolerance::List(vec![json!(1), json!(3)]), json!(3)));
        assert!(!met(Tolerance::List(vec![json!(1), json!(3)]), json!(3.5)));
        assert!(met(
            Tolerance::List(vec![json!(1), json!(2), json!(3)]),
            json!(2)
        ));
        assert!(!met(
            Tolerance::List(vec![json!(1), json!(2), json!(3)]),
            json!(4)
        ));
        assert!(
            met(Tolerance::List(vec![json!("a"), json!("c")]), json!("b")),
            "strings order too"
        );
        assert!(matches!(
            check(Tolerance::List(vec![json!(1), json!(3)]), json!("x")),
            Verdict::Error(_)
        ));
    }

    #[test]
    fn regex_tolerance() {
        let rx = |p: &str, t: Option<&str>| Tolerance::Regex {
            pattern: p.into(),
            target: t.map(String::from),
        };
        assert!(met(
            rx(r"healthy v\d+\.\d+\.\d+$", Some("stdout")),
            process(0, "service is healthy v1.2.3\n")
        ));
        assert!(met(rx("^OK$", Some("body")), http(200, json!("OK"))));
        assert!(!met(rx("^KO$", Some("body")), http(200, json!("OK"))));
        assert!(met(rx("^abc", None), json!("abcdef")));
        assert!(
            met(
                rx("\"up\"", Some("body")),
                http(200, json!({"status": "up"}))
            ),
            "non-strings are searched as JSON"
        );
        assert!(
            met(rx("x", Some("missing")), json!({"a": "x"})),
            "an absent target searches the whole output"
        );
    }

    #[test]
    fn jsonpath_tolerance() {
        let doc = json!({"status": "up", "version": 3, "items": [1, 2, 3], "service": {"name": "conformance", "replicas": 2}});
        let jp = |p: &str, expect: Option<Value>, count: Option<u64>| Tolerance::JsonPath {
            path: p.into(),
            expect,
            count,
            target: Some("body".into()),
        };
        assert!(met(
            jp("$.service.name", Some(json!("conformance")), None),
            http(200, doc.clone())
        ));
        assert!(!met(
            jp("$.version", Some(json!(4)), None),
            http(200, doc.clone())
        ));
        assert!(met(jp("$.items[*]", None, Some(3)), http(200, doc.clone())));
        assert!(!met(
            jp("$.items[*]", None, Some(2)),
            http(200, doc.clone())
        ));
        assert!(met(
            jp("$.service.replicas", None, None),
            http(200, doc.clone())
        ));
        assert!(!met(jp("$.nothing", None, None), http(200, doc.clone())));
        assert!(
            met(
                jp("$.items[*]", Some(json!([1, 2, 3])), None),
                http(200, doc.clone())
            ),
            "a list expect is the whole match list"
        );
        assert!(met(
            jp("$.version", Some(json!(3.0)), None),
            http(200, doc.clone())
        ));
        assert!(
            met(
                jp("$.a", Some(json!(1)), None),
                http(200, json!("{\"a\": 1}"))
            ),
            "string bodies are parsed as JSON"
        );
    }

    #[test]
    fn range_tolerance() {
        let range = |lo: f64, hi: f64, t: Option<&str>| Tolerance::Range {
            low: lo,
            high: hi,
            target: t.map(String::from),
        };
        assert!(met(
            range(200.0, 299.0, Some("status")),
            http(204, json!(""))
        ));
        assert!(!met(
            range(200.0, 299.0, Some("status")),
            http(404, json!(""))
        ));
        assert!(met(range(0.0, 1.0, None), json!(0.5)));
        assert!(met(range(0.0, 1.0, None), json!(1)), "inclusive");
        assert!(
            met(range(0.0, 10.0, None), json!("7")),
            "a numeric string is a number"
        );
        assert!(!met(range(0.0, 10.0, None), json!("seven")));
        assert!(!met(range(0.0, 10.0, None), json!(null)));
    }
}
