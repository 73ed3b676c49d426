//! Loading an experiment to revert it: the worker that ran it died mid-way and another one
//! plays its rollbacks. The text is the very copy the dead owner ran (it validated then), so
//! what can differ now is only the environment of the worker that reverts. Validation here is
//! limited to what the rollbacks need, so the environment never keeps them from running:
//! - process paths are not looked up on `PATH` and Python signatures are not checked (a
//!   rollback whose program or module is missing fails on its own, in the journal, and the
//!   other rollbacks still run);
//! - a configuration or secret entry whose environment variable is missing (or no longer
//!   parses) is dropped and reported: `${name}` is then left as written in the activities that
//!   use it, which fail on their own, and the others run.
//!
//! Structural problems (a document that no longer parses, a bad activity) are still errors:
//! the same text validated when the run started, so they cannot appear here.

use super::document::Format;
use super::validate::{Checks, validate};
use super::{Problem, Problems, Vars, locate_all, parse_located};
use crate::model::Experiment;
use serde_json::Value;
use std::path::Path;

/// An experiment loaded for its rollbacks, and what was left out to load it.
#[derive(Debug)]
pub struct ForRevert {
    pub experiment: Experiment,
    /// Configuration and secret entries dropped because the environment cannot give them.
    pub dropped: Vec<Problem>,
}

/// Parse and validate `text` as `ForRevert`'s rules say.
pub fn load_for_revert(
    text: &str,
    format: Format,
    origin: Option<&Path>,
    vars: &Vars,
) -> Result<ForRevert, Problems> {
    let mut doc = parse_located(text, format, origin)?;
    let checks = Checks {
        vars,
        check_executables: false,
    };
    let mut dropped = Vec::new();
    loop {
        let problems = match validate(&doc.value, &checks) {
            Ok(experiment) => {
                return Ok(ForRevert {
                    experiment,
                    dropped,
                });
            }
            Err(problems) => problems,
        };
        let (from_env, other): (Vec<Problem>, Vec<Problem>) =
            problems.into_iter().partition(from_environment);
        if !other.is_empty() || from_env.is_empty() {
            let all = [other, from_env].concat();
            return Err(locate_all(all, &mut doc, origin));
        }
        let located = locate_all(from_env, &mut doc, origin).0;
        for p in &located {
            if !remove(&mut doc.value, &p.field) {
                return Err(Problems(located));
            }
        }
        // each pass removes at least one entry: this ends
        dropped.extend(located);
    }
}

/// A problem the worker's environment causes (a variable not set or not parsing), not the text.
pub fn from_environment(problem: &Problem) -> bool {
    let under = |top: &str| {
        problem
            .field
            .strip_prefix(top)
            .is_some_and(|rest| rest.starts_with('.'))
    };
    (under("configuration") || under("secrets")) && problem.message.contains("environment variable")
}

/// Remove the entry at a dotted `field` path of mappings; `false` if there is none.
fn remove(value: &mut Value, field: &str) -> bool {
    let mut parts: Vec<&str> = field.split('.').collect();
    let Some(last) = parts.pop() else {
        return false;
    };
    let mut at = value;
    for part in parts {
        match at.get_mut(part) {
            Some(next) => at = next,
            None => return false,
        }
    }
    at.as_object_mut().is_some_and(|m| m.remove(last).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(doc: &Value, vars: &Vars) -> Result<ForRevert, Problems> {
        load_for_revert(
            &doc.to_string(),
            Format::Json,
            Some(Path::new("e.json")),
            vars,
        )
    }

    fn experiment() -> Value {
        json!({"title": "t", "description": "d",
        "configuration": {
            "region": "eu-west-1",
            "token": {"type": "env", "key": "BROKER_TEST_SURELY_UNSET_TOKEN"},
            "count": {"type": "env", "key": "BROKER_TEST_SURELY_UNSET_COUNT", "default": "3", "env_var_type": "int"}
        },
        "secrets": {"api": {"key": {"type": "env", "key": "BROKER_TEST_SURELY_UNSET_SECRET"}, "plain": "p"}},
        "method": [{"type": "action", "name": "inject", "provider": {"type": "python", "module": "surely_not_installed_mod", "func": "f"}}],
        "rollbacks": [
            {"type": "action", "name": "needs-token", "provider": {"type": "process", "path": "no-such-program-here", "arguments": ["${token}"]}},
            {"type": "action", "name": "plain", "provider": {"type": "process", "path": "true"}}
        ]})
    }

    #[test]
    fn what_the_environment_cannot_give_is_dropped_and_said_and_the_rollbacks_stay() {
        let loaded = load(&experiment(), &Vars::default()).expect("loads for a revert");
        assert_eq!(loaded.experiment.rollbacks.len(), 2);
        let fields: Vec<&str> = loaded.dropped.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["configuration.token", "secrets.api.key"]);
        assert!(
            loaded.dropped[0].to_string().starts_with("e.json:"),
            "{}",
            loaded.dropped[0]
        );
        assert!(!loaded.experiment.configuration.contains_key("token"));
        assert_eq!(
            loaded.experiment.configuration["count"]["default"], "3",
            "kept"
        );
        assert_eq!(loaded.experiment.secrets["api"]["plain"], "p", "kept");
    }

    #[test]
    fn a_structural_problem_is_still_an_error_naming_the_field() {
        let mut e = experiment();
        e["rollbacks"][1]["provider"] = json!({"type": "process"});
        let problems = load(&e, &Vars::default()).unwrap_err();
        let text = problems.to_string();
        assert!(text.contains("rollbacks[1].provider.path"), "{text}");
        let broken = load_for_revert(
            "{\"title\": ",
            Format::Json,
            Some(Path::new("e.json")),
            &Vars::default(),
        );
        assert!(broken.is_err());
    }

    #[test]
    fn which_problems_the_environment_causes() {
        let cases = [
            (
                "configuration.token",
                "refers to environment variable `X`, which is not set",
                true,
            ),
            (
                "secrets.api.key",
                "secret refers to environment variable `X`, which is not set",
                true,
            ),
            (
                "configuration.n",
                "environment variable `N`: not an int",
                true,
            ),
            (
                "secrets.api",
                "vault secrets are not supported by this broker yet",
                false,
            ),
            ("configuration.token.key", "missing", false),
            ("rollbacks[0].provider.path", "environment variable", false),
            ("configurationx.a", "environment variable", false),
        ];
        for (field, message, expected) in cases {
            assert_eq!(
                from_environment(&Problem::new(field, message)),
                expected,
                "{field}: {message}"
            );
        }
    }
}
