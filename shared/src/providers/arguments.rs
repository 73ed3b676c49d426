//! What a native activity's argument values must be, as data: each declared parameter carries
//! an `ArgKind`, and the loader checks every given value against it, so a fault argument that
//! cannot work (`test_target_type: SOME`, `duration: -5`, a list where a string goes) is a
//! located problem at validation instead of a failure once the run has started. A value that
//! holds a `${name}` substitution is only known at run time and is checked there.

use serde_json::Value;

/// The kind of value a parameter takes.
#[derive(Debug, Clone, Copy)]
pub enum ArgKind {
    /// Anything: the activity checks it itself.
    Any,
    /// One value written out as text (an SSM document parameter): a string, a number or a
    /// boolean.
    Scalar,
    /// A whole number of seconds from 0 to `max`: a number, or a string of digits.
    Seconds { max: u64 },
    /// A string, or a list of strings.
    StringOrList,
    /// A string the activity's own parser accepts (a selection mode); `expected` says what.
    Parsed {
        expected: &'static str,
        parse: fn(&str) -> Result<(), String>,
    },
    /// Any value the activity's own check accepts (a number or a string of one, within
    /// bounds); `expected` says what.
    Checked {
        expected: &'static str,
        check: fn(&Value) -> Result<(), String>,
    },
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

impl ArgKind {
    /// Whether `value` is of this kind: `Err((what is wrong, what was expected))`. Null (the
    /// default is used) and a value with a `${...}` substitution pass.
    pub fn check(&self, value: &Value) -> Result<(), (String, String)> {
        if value.is_null() || value.as_str().is_some_and(|s| s.contains("${")) {
            return Ok(());
        }
        match self {
            ArgKind::Any => Ok(()),
            ArgKind::Scalar => match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(()),
                other => Err((
                    format!("is {}", kind_of(other)),
                    "a string or a number".into(),
                )),
            },
            ArgKind::Seconds { max } => {
                let expected = format!("a whole number of seconds from 0 to {max}");
                let text = match value {
                    Value::Number(n) => n.to_string(),
                    Value::String(s) => s.trim().to_string(),
                    other => return Err((format!("is {}", kind_of(other)), expected)),
                };
                match text.parse::<i128>() {
                    Ok(n) if n < 0 => Err((
                        format!("is {value}: a duration cannot be negative"),
                        expected,
                    )),
                    Ok(n) if n > i128::from(*max) => Err((format!("is {value}"), expected)),
                    Ok(_) => Ok(()),
                    Err(_) => Err((format!("is {value}, not a whole number"), expected)),
                }
            }
            ArgKind::StringOrList => match value {
                Value::String(_) => Ok(()),
                Value::Array(items) => match items.iter().find(|i| !i.is_string()) {
                    None => Ok(()),
                    Some(item) => Err((
                        format!("holds {}", kind_of(item)),
                        "a string or a list of strings".into(),
                    )),
                },
                other => Err((
                    format!("is {}", kind_of(other)),
                    "a string or a list of strings".into(),
                )),
            },
            ArgKind::Parsed { expected, parse } => match value {
                Value::String(s) => parse(s).map_err(|e| (e, expected.to_string())),
                other => Err((format!("is {}", kind_of(other)), expected.to_string())),
            },
            ArgKind::Checked { expected, check } => {
                check(value).map_err(|e| (e, expected.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn upper_only(s: &str) -> Result<(), String> {
        if s.chars().all(|c| c.is_ascii_uppercase()) {
            Ok(())
        } else {
            Err(format!("{s:?} is not upper case"))
        }
    }

    #[test]
    fn each_kind_refuses_what_cannot_work_and_says_why() {
        let seconds = ArgKind::Seconds { max: 100 };
        let parsed = ArgKind::Parsed {
            expected: "UPPER",
            parse: upper_only,
        };
        let checked = ArgKind::Checked {
            expected: "a number from 0",
            check: |v| match v.as_f64() {
                Some(n) if n >= 0.0 => Ok(()),
                Some(_) => Err(format!("is {v}, below 0")),
                None => Err(format!("is {v}, not a number")),
            },
        };
        let cases: Vec<(ArgKind, Value, Option<&str>)> = vec![
            (seconds, json!(60), None),
            (seconds, json!("60"), None),
            (seconds, json!(" 7 "), None),
            (seconds, json!(null), None),
            (seconds, json!("${d}"), None),
            (
                seconds,
                json!(-5),
                Some("is -5: a duration cannot be negative"),
            ),
            (
                seconds,
                json!("-5"),
                Some("is \"-5\": a duration cannot be negative"),
            ),
            (
                seconds,
                json!("soon"),
                Some("is \"soon\", not a whole number"),
            ),
            (seconds, json!(1.5), Some("is 1.5, not a whole number")),
            (seconds, json!(101), Some("is 101")),
            (seconds, json!([60]), Some("is a list")),
            (ArgKind::Scalar, json!("x"), None),
            (ArgKind::Scalar, json!(3), None),
            (ArgKind::Scalar, json!(["x"]), Some("is a list")),
            (ArgKind::Scalar, json!({"a": 1}), Some("is a mapping")),
            (ArgKind::StringOrList, json!("i-1, i-2"), None),
            (ArgKind::StringOrList, json!(["i-1"]), None),
            (ArgKind::StringOrList, json!([1]), Some("holds a number")),
            (ArgKind::StringOrList, json!(3), Some("is a number")),
            (parsed, json!("ALL"), None),
            (parsed, json!("some"), Some("\"some\" is not upper case")),
            (parsed, json!(["ALL"]), Some("is a list")),
            (ArgKind::Any, json!([{}]), None),
            (checked, json!(3), None),
            (checked, json!("${n}"), None),
            (checked, json!(-3), Some("is -3, below 0")),
            (checked, json!("3"), Some("is \"3\", not a number")),
        ];
        for (kind, value, refused) in cases {
            let got = kind.check(&value).err().map(|(m, _)| m);
            assert_eq!(got.as_deref(), refused, "{kind:?} {value}");
        }
    }
}
