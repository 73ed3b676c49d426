//! The deployment's guard rails for fault actions, and how an experiment may tighten them.
//!
//! The deployment sets the opt-in tag every target must carry (default
//! `experiment-broker:opt-in=true`; `off` for accounts that opt in wholesale), and optional
//! ceilings on targets per action. An experiment's `experiment-broker` extension may lower the
//! ceilings, for every action or for one action by name, and may allow an empty selection; it
//! can never raise a ceiling nor lift the opt-in tag. `limits` is the pure function that
//! combines them.

use serde_json::{Map, Value};
use shared::fleet::safety::targets::Limits;

/// The default opt-in tag.
pub const DEFAULT_OPT_IN: &str = "experiment-broker:opt-in=true";

/// The settings in force for a binary run (held by its `FaultContext`; the default requires
/// the opt-in tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSettings {
    pub opt_in: Option<(String, String)>,
    pub max_targets: Option<u32>,
    pub max_percent: Option<u32>,
    pub document_prefix: String,
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings {
            opt_in: parse_opt_in(DEFAULT_OPT_IN).ok().flatten(),
            max_targets: None,
            max_percent: None,
            document_prefix: String::new(),
        }
    }
}

/// `KEY=VALUE` → the tag; `off` → none.
pub fn parse_opt_in(text: &str) -> Result<Option<(String, String)>, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok(Some((k.trim().into(), v.trim().into()))),
        _ => Err(format!(
            "opt-in tag {text:?}: expected KEY=VALUE (e.g. {DEFAULT_OPT_IN}) or off"
        )),
    }
}

/// What an action may select: the deployment's limits, tightened by the experiment's
/// `experiment-broker` extension (top level, then `actions.<activity name>`), and whether an
/// empty selection is allowed. A malformed extension is an error naming the field.
pub fn limits(
    deployment: &FaultSettings,
    extension: &Map<String, Value>,
    activity: &str,
) -> Result<(Limits, bool), String> {
    let mut limits = Limits {
        max_targets: deployment.max_targets,
        max_percent: deployment.max_percent,
        opt_in: deployment.opt_in.clone(),
    };
    let mut allow_empty = false;
    let mut apply = |scope: &Map<String, Value>, path: &str| -> Result<(), String> {
        if let Some(n) = number(scope, "max_targets", path, u32::MAX)? {
            limits.max_targets = Some(limits.max_targets.map_or(n, |d| d.min(n)));
        }
        if let Some(n) = number(scope, "max_percent", path, 100)? {
            limits.max_percent = Some(limits.max_percent.map_or(n, |d| d.min(n)));
        }
        match scope.get("allow_empty") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => allow_empty = *b,
            Some(_) => return Err(format!("{path}allow_empty: expected true or false")),
        }
        Ok(())
    };
    apply(extension, "extensions[experiment-broker].")?;
    match extension.get("actions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(actions)) => match actions.get(activity) {
            None => {}
            Some(Value::Object(one)) => apply(
                one,
                &format!("extensions[experiment-broker].actions.{activity}."),
            )?,
            Some(_) => {
                return Err(format!(
                    "extensions[experiment-broker].actions.{activity}: expected a mapping"
                ));
            }
        },
        Some(_) => {
            return Err(
                "extensions[experiment-broker].actions: expected a mapping of action name to limits"
                    .into(),
            );
        }
    }
    Ok((limits, allow_empty))
}

fn number(
    scope: &Map<String, Value>,
    key: &str,
    path: &str,
    max: u32,
) -> Result<Option<u32>, String> {
    match scope.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|n| *n <= max as u64)
            .map(|n| Some(n as u32))
            .ok_or_else(|| {
                format!("{path}{key}: expected a whole number from 0 to {max}, got {v}")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ext(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_opt_in_tag_is_read_or_turned_off() {
        assert_eq!(
            parse_opt_in(DEFAULT_OPT_IN).unwrap(),
            Some(("experiment-broker:opt-in".into(), "true".into()))
        );
        assert_eq!(parse_opt_in("OFF").unwrap(), None);
        assert_eq!(
            parse_opt_in("team=sre").unwrap(),
            Some(("team".into(), "sre".into()))
        );
        assert!(parse_opt_in("nothing").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_opt_in("=x").is_err());
    }

    #[test]
    fn an_experiment_tightens_the_deployment_limits_but_never_loosens_them() {
        let deployment = FaultSettings {
            max_targets: Some(5),
            max_percent: None,
            ..FaultSettings::default()
        };
        let (l, empty) = limits(&deployment, &Map::new(), "a").unwrap();
        assert_eq!(
            (l.max_targets, l.max_percent, empty),
            (Some(5), None, false)
        );
        assert_eq!(
            l.opt_in,
            Some(("experiment-broker:opt-in".into(), "true".into()))
        );

        let e = ext(
            json!({"max_targets": 10, "max_percent": 50, "allow_empty": true,
                           "actions": {"a": {"max_targets": 1}, "b": {"max_percent": 80}}}),
        );
        let (l, empty) = limits(&deployment, &e, "a").unwrap();
        assert_eq!(
            (l.max_targets, l.max_percent, empty),
            (Some(1), Some(50), true)
        );
        let (l, _) = limits(&deployment, &e, "b").unwrap();
        assert_eq!(
            (l.max_targets, l.max_percent),
            (Some(5), Some(50)),
            "80% does not loosen 50%"
        );
        let (l, _) = limits(&deployment, &e, "c").unwrap();
        assert_eq!(
            l.max_targets,
            Some(5),
            "10 does not loosen the deployment's 5"
        );
        let off = FaultSettings {
            opt_in: None,
            ..FaultSettings::default()
        };
        assert_eq!(limits(&off, &e, "a").unwrap().0.opt_in, None);
    }

    #[test]
    fn a_malformed_extension_names_the_field() {
        let d = FaultSettings::default();
        for (bad, field) in [
            (
                json!({"max_targets": -1}),
                "extensions[experiment-broker].max_targets",
            ),
            (
                json!({"max_percent": 101}),
                "extensions[experiment-broker].max_percent",
            ),
            (json!({"allow_empty": "yes"}), "allow_empty"),
            (
                json!({"actions": []}),
                "extensions[experiment-broker].actions",
            ),
            (json!({"actions": {"a": 3}}), "actions.a"),
            (
                json!({"actions": {"a": {"max_targets": "2"}}}),
                "actions.a.max_targets",
            ),
        ] {
            let e = limits(&d, &ext(bad.clone()), "a").unwrap_err();
            assert!(e.contains(field), "{bad}: {e}");
        }
    }
}
