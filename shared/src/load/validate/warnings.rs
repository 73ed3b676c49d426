//! The risky-substitution warning: a `process` activity whose one-string arguments substitute
//! a value into a shell command line. Located like problems, it never makes an experiment
//! invalid (the loader gathers it with the others into `Experiment::warnings`).

use super::Problem;
use crate::model::*;
use serde_json::Value;

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
    let mut warnings = controls_not_run(e);
    for (field, activity) in crate::load::activities_with_paths(e) {
        let Provider::Process(p) = &activity.provider else {
            continue;
        };
        let Value::String(arguments) = &p.arguments else {
            continue;
        };
        let mut names: Vec<&str> = crate::scope::references(arguments)
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

/// Controls that will not run (`model::control::not_run`): not python, or a module the guard
/// rails keep out (the engine's `Controls::allowed`).
fn controls_not_run(e: &Experiment) -> Vec<Problem> {
    use crate::providers::{ALLOW_UNGUARDED_PYTHON, is_guarded_module, is_internal_module};
    let allowed = broker_extension(e).get(ALLOW_UNGUARDED_PYTHON) == Some(&Value::Bool(true));
    let refused = |module: &str| {
        if is_internal_module(module) {
            Some(format!("`{module}` is the broker's own"))
        } else if is_guarded_module(module) && !allowed {
            Some(format!(
                "`{module}` would act without the broker's guard rails (`{ALLOW_UNGUARDED_PYTHON}: true` in the experiment-broker extension allows it)"
            ))
        } else {
            None
        }
    };
    crate::model::control::not_run(&e.raw, refused)
        .into_iter()
        .map(|(field, why, expected)| Problem::new(field, why).expected(expected))
        .collect()
}

#[cfg(test)]
mod warning_tests {
    use super::super::{Checks, Vars, validate};
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
