//! The `experiment-broker` extension's settings, checked when an experiment loads: its entry in
//! `extensions` has a name, and its tripwire settings (`unreadable_grace_intervals`,
//! `stop_condition_interval`) are in bounds, because a bad one must not leave a run unwatched.
//! The fleet's tripwires read the same settings through these functions.

use super::Validator;
use crate::model::BROKER_EXTENSION;
use serde_json::Value;

/// Unreadable checks in a row a running experiment's tripwire may have before it trips,
/// unless the experiment's `unreadable_grace_intervals` says otherwise.
pub const DEFAULT_GRACE_INTERVALS: u32 = 3;
/// The largest `unreadable_grace_intervals` accepted: a run is never left unwatched for long.
pub const MAX_GRACE_INTERVALS: u32 = 10;
/// The shortest `stop_condition_interval` accepted (seconds): a shorter one would make every
/// worker of a fleet hammer CloudWatch.
pub const MIN_STOP_CONDITION_INTERVAL: f64 = 1.0;
/// The longest `stop_condition_interval` accepted (seconds).
pub const MAX_STOP_CONDITION_INTERVAL: f64 = 3600.0;

/// A tripwire setting of the `experiment-broker` extension that is out of bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("extensions[experiment-broker].{field}: expected {expected}, got {got}")]
pub struct SettingError {
    /// The key in the extension.
    pub field: &'static str,
    pub expected: &'static str,
    /// The value found, as JSON.
    pub got: String,
}

/// The extension's `unreadable_grace_intervals`, or the default. Pure.
pub fn grace_intervals(extension: &Value) -> Result<u32, SettingError> {
    match extension.get("unreadable_grace_intervals") {
        None | Some(Value::Null) => Ok(DEFAULT_GRACE_INTERVALS),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=MAX_GRACE_INTERVALS).contains(n))
            .ok_or_else(|| SettingError {
                field: "unreadable_grace_intervals",
                expected: "a whole number of intervals from 1 to 10",
                got: v.to_string(),
            }),
    }
}

/// The extension's `stop_condition_interval` in seconds, if it sets one. Pure.
pub fn stop_condition_interval(extension: &Value) -> Result<Option<f64>, SettingError> {
    match extension.get("stop_condition_interval") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|s| (MIN_STOP_CONDITION_INTERVAL..=MAX_STOP_CONDITION_INTERVAL).contains(s))
            .map(Some)
            .ok_or_else(|| SettingError {
                field: "stop_condition_interval",
                expected: "seconds from 1 to 3600",
                got: v.to_string(),
            }),
    }
}

/// Every tripwire setting of an `experiment-broker` extension that is out of bounds; the
/// loader reports them as problems of the experiment file. Pure.
pub fn setting_errors(extension: &Value) -> Vec<SettingError> {
    [
        grace_intervals(extension).err(),
        stop_condition_interval(extension).err(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl Validator<'_> {
    pub(super) fn extensions(&mut self, extensions: Option<&Value>) -> Vec<Value> {
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
            // (the reference ignores the extension: a bad setting is refused when the run starts)
            if ext["name"] == BROKER_EXTENSION {
                for e in setting_errors(ext) {
                    self.defer(
                        format!("extensions[{i}].{}", e.field),
                        format!("is {}", e.got),
                        e.expected,
                    );
                }
            }
        }
        list
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::{check, doc};
    use super::*;
    use serde_json::json;

    #[test]
    fn tripwire_settings_are_bounded_and_name_their_field() {
        let ext = |v: Value| v;
        for (extension, grace, interval) in [
            (json!({}), Ok(3), Ok(None)),
            (json!({"unreadable_grace_intervals": null}), Ok(3), Ok(None)),
            (json!({"unreadable_grace_intervals": 1}), Ok(1), Ok(None)),
            (json!({"unreadable_grace_intervals": 10}), Ok(10), Ok(None)),
            (json!({"unreadable_grace_intervals": 0}), Err(()), Ok(None)),
            (json!({"unreadable_grace_intervals": 11}), Err(()), Ok(None)),
            (
                json!({"unreadable_grace_intervals": 2.5}),
                Err(()),
                Ok(None),
            ),
            (json!({"unreadable_grace_intervals": -1}), Err(()), Ok(None)),
            (
                json!({"unreadable_grace_intervals": "3"}),
                Err(()),
                Ok(None),
            ),
            (json!({"stop_condition_interval": 1}), Ok(3), Ok(Some(1.0))),
            (
                json!({"stop_condition_interval": 2.5}),
                Ok(3),
                Ok(Some(2.5)),
            ),
            (
                json!({"stop_condition_interval": 3600}),
                Ok(3),
                Ok(Some(3600.0)),
            ),
            (json!({"stop_condition_interval": 0.999}), Ok(3), Err(())),
            (json!({"stop_condition_interval": 0.5}), Ok(3), Err(())),
            (json!({"stop_condition_interval": 0}), Ok(3), Err(())),
            (json!({"stop_condition_interval": 3601}), Ok(3), Err(())),
            (json!({"stop_condition_interval": "10"}), Ok(3), Err(())),
        ] {
            let e = ext(extension.clone());
            assert_eq!(grace_intervals(&e).map_err(|_| ()), grace, "{e}");
            assert_eq!(stop_condition_interval(&e).map_err(|_| ()), interval, "{e}");
            let errors = setting_errors(&e);
            assert_eq!(
                errors.len(),
                usize::from(grace.is_err()) + usize::from(interval.is_err())
            );
            for error in errors {
                let text = error.to_string();
                assert!(
                    text.starts_with(&format!(
                        "extensions[experiment-broker].{}: expected ",
                        error.field
                    )) && text.ends_with(&format!("got {}", extension[error.field])),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn extensions_are_named_and_the_broker_settings_bounded() {
        check(vec![
            (
                doc(json!({"extensions": [{"name": "x", "anything": 1}]})),
                vec![],
            ),
            (
                doc(json!({"extensions": [{"name": "experiment-broker",
                    "unreadable_grace_intervals": 10, "stop_condition_interval": 3600}]})),
                vec![],
            ),
            (
                doc(json!({"extensions": {"name": "x"}})),
                vec![("extensions", "is a mapping")],
            ),
            (
                doc(json!({"extensions": ["x"]})),
                vec![
                    ("extensions[0]", "is a string"),
                    ("extensions[0].name", "missing"),
                ],
            ),
            (
                doc(json!({"extensions": [{}]})),
                vec![("extensions[0].name", "missing")],
            ),
            (
                doc(json!({"extensions": [{"name": ""}]})),
                vec![("extensions[0].name", "missing")],
            ),
            (
                doc(json!({"extensions": [{"name": "other"},
                    {"name": "experiment-broker", "unreadable_grace_intervals": 0,
                     "stop_condition_interval": 0.5}]})),
                vec![
                    ("extensions[1].unreadable_grace_intervals", "at run: is 0"),
                    ("extensions[1].stop_condition_interval", "at run: is 0.5"),
                ],
            ),
            (
                doc(json!({"extensions": [{"name": "other", "stop_condition_interval": 0}]})),
                vec![],
            ),
        ]);
    }
}
