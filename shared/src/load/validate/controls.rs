//! The reference's rules for declared controls (chaoslib's `validate_controls`): every control,
//! at any level, has a `name` and a `provider` (a `ref` entry too), a `scope` is `before` or
//! `after`, a `ref` names a declared control, and a python control names its module. Which
//! controls then run is the engine's business (`engine::controls`); this only keeps the verdict.

use super::Validator;
use crate::model::control::declared;
use serde_json::Value;

impl Validator<'_> {
    /// Check every declared control of the raw document, reporting all problems (the reference
    /// stops at the first).
    pub(super) fn controls(&mut self, doc: &Value) {
        let controls = declared(doc);
        let names: Vec<&Value> = controls
            .iter()
            .filter(|(_, c)| c.get("ref").is_none())
            .filter_map(|(_, c)| c.get("name"))
            .collect();
        for (field, c) in &controls {
            if !c.is_object() {
                continue; // reported where the list is read
            }
            if let Some(target) = c.get("ref")
                && !names.contains(&target)
            {
                self.problem(
                    format!("{field}.ref"),
                    format!("names no declared control ({target})"),
                    "the name of a control declared in the experiment",
                );
            }
            if c.get("name").is_none() {
                self.problem(
                    format!("{field}.name"),
                    "missing",
                    "a name (the reference asks it of every control, a `ref` one too)",
                );
            }
            match c.get("provider") {
                None => self.problem(
                    format!("{field}.provider"),
                    "missing",
                    "a provider (the reference asks it of every control, a `ref` one too)",
                ),
                Some(p) if p.get("type").and_then(Value::as_str) == Some("python") => {
                    let module = p.get("module");
                    if module.is_none_or(|m| m.is_null() || m.as_str() == Some("")) {
                        self.problem(
                            format!("{field}.provider.module"),
                            "missing",
                            "the python module of the control",
                        );
                    }
                }
                Some(_) => {}
            }
            if let Some(scope) = c.get("scope")
                && !matches!(scope.as_str(), Some("before" | "after"))
            {
                self.problem(
                    format!("{field}.scope"),
                    format!("is {scope}"),
                    "before or after",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::table::problems;
    use serde_json::{Value, json};

    /// A problem, not a warning or a refusal at run (`table::problems` tags those).
    fn is_error(message: &str) -> bool {
        !message.starts_with("warning: ") && !message.starts_with("at run: ")
    }

    fn doc(controls: Value) -> Value {
        json!({"title": "t", "description": "d", "method": [], "controls": controls})
    }

    #[test]
    fn controls_are_held_to_the_reference_rules() {
        let python = json!({"type": "python", "module": "m"});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (json!([{"name": "a", "provider": python}]), vec![]),
            (
                json!([{"name": "a", "provider": python, "scope": "before"}]),
                vec![],
            ),
            (json!([{"provider": python}]), vec!["controls[0].name"]),
            (json!([{"name": "a"}]), vec!["controls[0].provider"]),
            (
                json!([{"name": "a", "provider": {"type": "python"}}]),
                vec!["controls[0].provider.module"],
            ),
            (
                json!([{"name": "a", "provider": python, "scope": "during"}]),
                vec!["controls[0].scope"],
            ),
            (
                json!([{"name": "a", "provider": python},
                       {"name": "b", "provider": python, "ref": "a"}]),
                vec![],
            ),
            (
                json!([{"name": "a", "provider": python},
                       {"name": "b", "provider": python, "ref": "nope"}]),
                vec!["controls[1].ref"],
            ),
            (
                json!([{"ref": "a"}]),
                vec![
                    "controls[0].ref",
                    "controls[0].name",
                    "controls[0].provider",
                ],
            ),
        ];
        for (controls, expected) in cases {
            let found: Vec<String> = problems(&doc(controls.clone()))
                .into_iter()
                .filter(|(field, message)| field.starts_with("controls") && is_error(message))
                .map(|(field, _)| field)
                .collect();
            assert_eq!(found, expected, "{controls}");
        }
    }

    #[test]
    fn a_control_of_an_activity_may_be_referred_to_and_is_checked_too() {
        let python = json!({"type": "python", "module": "m"});
        let d = json!({"title": "t", "description": "d",
            "controls": [{"name": "x", "provider": python, "ref": "inner"}],
            "method": [{"type": "action", "name": "a",
                "provider": {"type": "process", "path": "true"},
                "controls": [{"name": "inner", "provider": python, "scope": "sometimes"}]}]});
        let found: Vec<String> = problems(&d)
            .into_iter()
            .filter(|(_, message)| is_error(message))
            .map(|(f, _)| f)
            .collect();
        assert!(
            found.contains(&"method[0].controls[0].scope".to_string()),
            "{found:?}"
        );
        assert!(!found.iter().any(|f| f == "controls[0].ref"), "{found:?}");
    }
}
