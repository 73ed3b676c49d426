//! Controls (`controls:`): where they are declared, which apply at each level of a run, and
//! which Python hook a level calls: chaoslib 1.45.1's `chaoslib.control` rules, pure.
//!
//! Declared at the top of the experiment, on the steady-state hypothesis, and on activities.
//! At the experiment level, every top-level control applies; at the method and rollback
//! levels, the top-level ones not marked `automatic: false`; at the hypothesis and activity
//! levels, the context's own controls merged with the top-level automatic ones as the
//! reference's `get_context_controls` merges them (quirks included: a `ref` entry brings the
//! top-level control it names, and the automatic ones are added once per own control). A
//! control with `scope: before` or `after` runs at that moment only.

use serde_json::{Map, Value};

/// A level of the run that controls wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Experiment,
    Hypothesis,
    Method,
    Rollback,
    Activity,
}

/// Before or after the wrapped level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Before,
    After,
}

impl Moment {
    pub fn as_str(self) -> &'static str {
        match self {
            Moment::Before => "before",
            Moment::After => "after",
        }
    }
}

/// The Python function a control module exposes for `level` at `moment`.
pub fn hook_name(level: Level, moment: Moment) -> &'static str {
    use {Level::*, Moment::*};
    match (level, moment) {
        (Experiment, Before) => "before_experiment_control",
        (Experiment, After) => "after_experiment_control",
        (Hypothesis, Before) => "before_hypothesis_control",
        (Hypothesis, After) => "after_hypothesis_control",
        (Method, Before) => "before_method_control",
        (Method, After) => "after_method_control",
        (Rollback, Before) => "before_rollback_control",
        (Rollback, After) => "after_rollback_control",
        (Activity, Before) => "before_activity_control",
        (Activity, After) => "after_activity_control",
    }
}

fn name(c: &Value) -> Option<&str> {
    c.get("name").and_then(Value::as_str)
}

fn automatic(c: &Value) -> bool {
    c.get("automatic") != Some(&Value::Bool(false))
}

/// The controls that apply at `level`, given the experiment's top-level controls and the
/// context's own (the hypothesis's, the activity's; at the experiment level, the top-level
/// ones again), in the order they run: the reference's `get_context_controls`.
pub fn context_controls(level: Level, top: &[Value], own: &[Value]) -> Vec<Value> {
    let mut controls: Vec<Value> = own.to_vec();
    if top.is_empty() {
        return controls;
    }
    if controls.is_empty() || matches!(level, Level::Method | Level::Rollback) {
        return top.iter().filter(|c| automatic(c)).cloned().collect();
    }
    for c in own {
        if let Some(reference) = c.get("ref") {
            if let Some(t) = top.iter().find(|t| t.get("name") == Some(reference)) {
                controls.push(t.clone());
            }
        } else {
            for t in top.iter().rev() {
                if name(c) == name(t) {
                    continue;
                }
                if level != Level::Experiment && automatic(t) {
                    controls.insert(0, t.clone());
                }
            }
        }
    }
    controls
}

/// Whether `control` runs at `moment` (no `scope`: at both).
pub fn runs_at(control: &Value, moment: Moment) -> bool {
    match control.get("scope").and_then(Value::as_str) {
        Some(scope) => scope == moment.as_str(),
        None => true,
    }
}

/// A control whose provider is `python`: its module and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct PythonControl {
    pub name: String,
    pub module: String,
    pub arguments: Map<String, Value>,
}

impl PythonControl {
    /// `None` when the control has no `python` provider with a module (nothing to run).
    pub fn of(control: &Value) -> Option<PythonControl> {
        let provider = control.get("provider")?;
        if provider.get("type").and_then(Value::as_str) != Some("python") {
            return None;
        }
        Some(PythonControl {
            name: name(control).unwrap_or("").to_string(),
            module: provider.get("module")?.as_str()?.to_string(),
            arguments: provider
                .get("arguments")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// The `controls` list of a JSON node (an activity, the hypothesis); empty when absent.
pub fn own_controls(node: &Value) -> &[Value] {
    node.get("controls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Every control the experiment declares, with its field path, in reading order.
pub fn declared(raw: &Value) -> Vec<(String, &Value)> {
    fn push<'a>(out: &mut Vec<(String, &'a Value)>, prefix: &str, node: &'a Value) {
        for (i, c) in own_controls(node).iter().enumerate() {
            out.push((format!("{prefix}controls[{i}]"), c));
        }
    }
    let mut out = Vec::new();
    push(&mut out, "", raw);
    let hypothesis = &raw["steady-state-hypothesis"];
    push(&mut out, "steady-state-hypothesis.", hypothesis);
    for (list, at) in [
        (&hypothesis["probes"], "steady-state-hypothesis.probes"),
        (&raw["method"], "method"),
        (&raw["rollbacks"], "rollbacks"),
    ] {
        for (i, a) in list.as_array().into_iter().flatten().enumerate() {
            push(&mut out, &format!("{at}[{i}]."), a);
        }
    }
    out
}

/// The declared controls that will not run, each with its field, why and what would run:
/// those without a `python` provider (the reference runs no other kind either) and those whose
/// module `refused` gives a reason for (the guard rails'). A `ref` entry runs the control it
/// names and is not reported itself.
pub fn not_run(
    raw: &Value,
    refused: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String, &'static str)> {
    let mut out = Vec::new();
    for (field, c) in declared(raw) {
        if c.get("ref").is_some() {
            continue;
        }
        match PythonControl::of(c) {
            None => out.push((
                format!("{field}.provider"),
                "this control is not run: only controls with a python provider and a module run"
                    .to_string(),
                "provider: {type: python, module: ...}",
            )),
            Some(p) => {
                if let Some(why) = refused(&p.module) {
                    out.push((
                        format!("{field}.provider.module"),
                        format!("this control is not run: {why}"),
                        "a control module outside the guarded families",
                    ));
                }
            }
        }
    }
    out
}

/// The distinct python controls of the experiment, first declaration of each name: the ones
/// `configure_control` and `cleanup_control` are called on, once each, as in the reference.
pub fn distinct_python_controls(raw: &Value) -> Vec<PythonControl> {
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (_, c) in declared(raw) {
        let Some(n) = name(c) else { continue };
        if seen.contains(&n) {
            continue;
        }
        seen.push(n);
        if let Some(p) = PythonControl::of(c) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names(controls: &[Value]) -> Vec<String> {
        controls
            .iter()
            .map(|c| {
                name(c)
                    .map(String::from)
                    .or_else(|| c["ref"].as_str().map(|r| format!("ref:{r}")))
                    .unwrap_or_default()
            })
            .collect()
    }

    #[test]
    fn each_level_merges_as_the_reference_does() {
        let top = [
            json!({"name": "a"}),
            json!({"name": "manual", "automatic": false}),
            json!({"name": "b"}),
        ];
        let all = |level, own: &[Value]| names(&context_controls(level, &top, own));
        assert_eq!(all(Level::Experiment, &top), ["a", "manual", "b"]);
        assert_eq!(all(Level::Method, &top), ["a", "b"]);
        assert_eq!(all(Level::Rollback, &top), ["a", "b"]);
        assert_eq!(all(Level::Activity, &[]), ["a", "b"]);
        assert_eq!(all(Level::Hypothesis, &[]), ["a", "b"]);
        assert_eq!(
            all(Level::Activity, &[json!({"name": "mine"})]),
            ["a", "b", "mine"]
        );
        assert_eq!(
            all(Level::Activity, &[json!({"name": "a"})]),
            ["b", "a"],
            "an own control named like a top-level one replaces it"
        );
        assert_eq!(
            all(Level::Activity, &[json!({"ref": "manual"})]),
            ["ref:manual", "manual"],
            "a ref brings the control it names, and nothing automatic"
        );
        assert_eq!(
            all(
                Level::Activity,
                &[json!({"name": "x"}), json!({"name": "y"})]
            ),
            ["a", "b", "a", "b", "x", "y"],
            "the reference adds the automatic ones once per own control"
        );
        assert!(context_controls(Level::Activity, &[], &[]).is_empty());
        assert_eq!(
            names(&context_controls(
                Level::Activity,
                &[],
                &[json!({"name": "x"})]
            )),
            ["x"]
        );
    }

    #[test]
    fn scope_hooks_and_python_providers() {
        assert!(runs_at(&json!({}), Moment::Before) && runs_at(&json!({}), Moment::After));
        assert!(!runs_at(&json!({"scope": "after"}), Moment::Before));
        assert_eq!(
            hook_name(Level::Activity, Moment::After),
            "after_activity_control"
        );
        assert_eq!(
            PythonControl::of(
                &json!({"name": "n", "provider": {"type": "python", "module": "m", "arguments": {"k": 1}}})
            ),
            Some(PythonControl {
                name: "n".into(),
                module: "m".into(),
                arguments: json!({"k": 1}).as_object().unwrap().clone()
            })
        );
        assert_eq!(
            PythonControl::of(&json!({"name": "n", "provider": {"type": "process", "path": "x"}})),
            None
        );
    }

    #[test]
    fn every_declaration_is_found_with_its_path_and_configured_once_per_name() {
        let raw = json!({"controls": [{"name": "a", "provider": {"type": "python", "module": "m"}}],
            "steady-state-hypothesis": {"controls": [{"name": "h", "provider": {"type": "python", "module": "mh"}}],
                "probes": [{"controls": [{"name": "a", "provider": {"type": "python", "module": "other"}}]}]},
            "method": [{}, {"controls": [{"ref": "a"}]}],
            "rollbacks": [{"controls": [{"name": "p", "provider": {"type": "process", "path": "x"}}]}]});
        let fields: Vec<String> = declared(&raw).into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "controls[0]",
                "steady-state-hypothesis.controls[0]",
                "steady-state-hypothesis.probes[0].controls[0]",
                "method[1].controls[0]",
                "rollbacks[0].controls[0]"
            ]
        );
        let modules: Vec<String> = distinct_python_controls(&raw)
            .into_iter()
            .map(|c| c.module)
            .collect();
        assert_eq!(modules, ["m", "mh"]);
    }
}
