//! Where a fault may run, and which Python may run unguarded: the validation rules that keep
//! the fault library's guard rails from being walked around.
//!
//! A fault (a native activity declared `fault`: it stops, stresses or cuts off something) is
//! accepted only as an action of the method or of the rollbacks. Anywhere else (a steady-state
//! probe, a tolerance probe, a dynamic-configuration probe, a `type: probe` in the method, a
//! hypothesis `ref` naming a method fault) it would act outside the journal's records, outside
//! the dry modes and outside the experiment's limits, so it is a located problem. And a
//! `python` activity in a guarded module family (`experimentvr.*`, `chaosaws.*`) with no native
//! implementation would run the real package with no opt-in tag, caps or locks: refused unless
//! the experiment says `allow_unguarded_python: true` in its `experiment-broker` extension.
//!
//! Pure: the caller says which activities are faults and which have a native implementation.

use super::problem::Problem;
use crate::model::{Activity, ActivityKind, Experiment, Provider, Step, Tolerance};
use crate::providers::{ALLOW_UNGUARDED_PYTHON, is_guarded_module, is_internal_module};
use serde_json::Value;

/// Where an activity sits, as far as faults are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A step of the method or the rollbacks.
    Step,
    /// The steady-state hypothesis.
    Hypothesis,
    /// A tolerance probe (of any step).
    Tolerance,
    /// A `{type: probe}` configuration entry.
    Configuration,
}

/// Whether a fault may run here. Pure; every case is tested below.
pub fn fault_allowed(place: Place, kind: ActivityKind) -> bool {
    place == Place::Step && kind == ActivityKind::Action
}

/// Every activity with its field path and place, refs of the hypothesis resolved (a `ref` runs
/// the named activity where the ref stands).
pub fn placed_activities(e: &Experiment) -> Vec<(String, Place, &Activity)> {
    let mut out = Vec::new();
    if let Some(h) = &e.hypothesis {
        push_steps(
            e,
            &mut out,
            "steady-state-hypothesis.probes",
            Place::Hypothesis,
            &h.probes,
        );
    }
    push_steps(e, &mut out, "method", Place::Step, &e.method);
    push_steps(e, &mut out, "rollbacks", Place::Step, &e.rollbacks);
    for (key, a) in &e.config_probes {
        out.push((format!("configuration.{key}"), Place::Configuration, a));
    }
    out
}

fn push_steps<'e>(
    e: &'e Experiment,
    out: &mut Vec<(String, Place, &'e Activity)>,
    prefix: &str,
    place: Place,
    steps: &'e [Step],
) {
    for (i, step) in steps.iter().enumerate() {
        let field = format!("{prefix}[{i}]");
        let tolerance = match step {
            Step::Activity(a) => {
                out.push((field.clone(), place, a.as_ref()));
                a.tolerance.as_ref()
            }
            Step::Ref { name, tolerance } => {
                if place == Place::Hypothesis
                    && let Some(a) = e.find_referenced(name)
                {
                    out.push((format!("{field}.ref"), place, a));
                }
                tolerance.as_ref()
            }
        };
        if let Some(Tolerance::Probe(p)) = tolerance {
            out.push((format!("{field}.tolerance"), Place::Tolerance, p.as_ref()));
        }
    }
}

/// Faults outside the method's and rollbacks' actions, and unguarded Python in guarded
/// modules, as located problems.
pub fn problems(
    e: &Experiment,
    is_fault: impl Fn(&Activity) -> bool,
    is_native: impl Fn(&Activity) -> bool,
) -> Vec<Problem> {
    let (mut now, at_run) = findings(e, is_fault, is_native);
    now.extend(at_run);
    now
}

/// `problems`, split by when they refuse the experiment: `(now, at_run)`. A call into the
/// broker's own module is refused at validation, as the reference refuses a module it cannot
/// import. The guard rails (a fault outside the method, unguarded Python, a bad opt-in) are
/// refused when a run starts, before anything runs; `validate` warns about them, since the
/// reference, with the fault library installed, accepts the file.
pub fn findings(
    e: &Experiment,
    is_fault: impl Fn(&Activity) -> bool,
    is_native: impl Fn(&Activity) -> bool,
) -> (Vec<Problem>, Vec<Problem>) {
    let mut now = Vec::new();
    let mut problems = Vec::new();
    let allow_unguarded = match unguarded_python_allowed(&e.extensions) {
        Ok(allowed) => allowed,
        Err(problem) => {
            problems.push(problem);
            false
        }
    };
    for (field, place, activity) in placed_activities(e) {
        let Provider::Python(p) = &activity.provider else {
            continue;
        };
        if is_fault(activity) && !fault_allowed(place, activity.kind) {
            let (where_, at) = match place {
                Place::Step => ("a probe", format!("{field}.type")),
                Place::Hypothesis => ("a steady-state probe", field.clone()),
                Place::Tolerance => ("a tolerance probe", field.clone()),
                Place::Configuration => ("a dynamic-configuration probe", field.clone()),
            };
            problems.push(
                Problem::new(
                    at,
                    format!(
                        "`{}` is a fault and cannot run as {where_}: it would act outside the journal, the dry modes and the experiment's limits",
                        p.key()
                    ),
                )
                .expected("a fault only as an action of the method or the rollbacks"),
            );
        }
        if is_internal_module(&p.module) {
            now.push(
                Problem::new(
                    format!("{field}.provider.module"),
                    format!(
                        "`{}` is the broker's own module: an experiment cannot call it",
                        p.module
                    ),
                )
                .expected("a module of a fault library or an extension"),
            );
            continue;
        }
        if is_guarded_module(&p.module) && !is_native(activity) && !allow_unguarded {
            problems.push(
                Problem::new(
                    format!("{field}.provider.func"),
                    format!(
                        "`{}` has no native implementation; running the Python package would act without the broker's guard rails (opt-in tag, caps, locks, records)",
                        p.key()
                    ),
                )
                .expected(format!(
                    "a native activity of this module, or `{ALLOW_UNGUARDED_PYTHON}: true` in the experiment-broker extension"
                )),
            );
        }
    }
    (now, problems)
}

/// The extension's `allow_unguarded_python` (default false); anything but a boolean is a problem.
pub(crate) fn unguarded_python_allowed(extensions: &[Value]) -> Result<bool, Problem> {
    let Some((i, ext)) = extensions
        .iter()
        .enumerate()
        .find(|(_, x)| x["name"] == crate::model::BROKER_EXTENSION)
    else {
        return Ok(false);
    };
    match ext.get(ALLOW_UNGUARDED_PYTHON) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Problem::new(
            format!("extensions[{i}].{ALLOW_UNGUARDED_PYTHON}"),
            format!("is {other}"),
        )
        .expected("true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::validate::{Checks, validate};
    use crate::load::vars::Vars;
    use serde_json::json;

    #[test]
    fn a_fault_runs_only_as_a_method_or_rollback_action() {
        use ActivityKind::*;
        let cases = [
            (Place::Step, Action, true),
            (Place::Step, Probe, false),
            (Place::Hypothesis, Action, false),
            (Place::Hypothesis, Probe, false),
            (Place::Tolerance, Probe, false),
            (Place::Tolerance, Action, false),
            (Place::Configuration, Probe, false),
            (Place::Configuration, Action, false),
        ];
        for (place, kind, allowed) in cases {
            assert_eq!(fault_allowed(place, kind), allowed, "{place:?} {kind:?}");
        }
    }

    fn fault(kind: &str, name: &str) -> Value {
        json!({"type": kind, "name": name,
               "provider": {"type": "python", "module": "experimentvr.ec2.actions", "func": "stress_memory"}})
    }

    fn experiment(doc: Value) -> Experiment {
        let vars = Vars::default();
        let checks = Checks {
            vars: &vars,
            check_executables: false,
        };
        validate(&doc, &checks).expect("a valid document")
    }

    fn fields(doc: Value) -> Vec<String> {
        let e = experiment(doc);
        let is_fault =
            |a: &Activity| matches!(&a.provider, Provider::Python(p) if p.func == "stress_memory");
        problems(&e, is_fault, |_| true)
            .into_iter()
            .map(|p| p.field)
            .collect()
    }

    #[test]
    fn a_fault_anywhere_but_a_step_action_is_located() {
        let tolerance_probe = json!({"type": "probe", "name": "t",
            "provider": {"type": "python", "module": "experimentvr.ec2.actions", "func": "stress_memory"}});
        let doc = json!({
            "title": "t", "description": "d",
            "configuration": {"c": fault("probe", "c")},
            "steady-state-hypothesis": {"title": "h", "probes": [
                {"type": "probe", "name": "ok", "tolerance": true,
                 "provider": {"type": "process", "path": "true"}},
                {"type": "probe", "name": "h1", "tolerance": true,
                 "provider": {"type": "python", "module": "experimentvr.ec2.actions", "func": "stress_memory"}},
                {"ref": "inject", "tolerance": true}
            ]},
            "method": [
                fault("action", "inject"),
                fault("probe", "as-probe"),
                {"type": "probe", "name": "p", "tolerance": tolerance_probe,
                 "provider": {"type": "process", "path": "true"}}
            ],
            "rollbacks": [fault("action", "again")]
        });
        assert_eq!(
            fields(doc),
            vec![
                "steady-state-hypothesis.probes[1]",
                "steady-state-hypothesis.probes[2].ref",
                "method[1].type",
                "method[2].tolerance",
                "configuration.c",
            ]
        );
    }

    #[test]
    fn guarded_modules_without_a_native_implementation_need_the_opt_in() {
        let doc = |ext: Value| {
            json!({"title": "t", "description": "d", "extensions": [ext], "method": [
                {"type": "action", "name": "a", "provider": {"type": "python", "module": "chaosaws.rds.actions", "func": "reboot_db_instance"}},
                {"type": "action", "name": "b", "provider": {"type": "python", "module": "chaosawsx", "func": "f"}},
                {"type": "action", "name": "c", "provider": {"type": "python", "module": "experimentvr", "func": "f"}}
            ]})
        };
        let native =
            |a: &Activity| matches!(&a.provider, Provider::Python(p) if p.module == "chaosawsx");
        let run = |ext: Value| {
            problems(&experiment(doc(ext)), |_| false, |a| native(a))
                .into_iter()
                .map(|p| p.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(json!({"name": "other"})),
            vec!["method[0].provider.func", "method[2].provider.func"]
        );
        assert_eq!(
            run(json!({"name": "experiment-broker", "allow_unguarded_python": true})),
            Vec::<String>::new()
        );
        assert_eq!(
            run(json!({"name": "experiment-broker", "allow_unguarded_python": "yes"})),
            vec![
                "extensions[0].allow_unguarded_python",
                "method[0].provider.func",
                "method[2].provider.func"
            ]
        );
    }

    #[test]
    fn the_brokers_own_activities_cannot_be_called_by_an_experiment() {
        let doc = json!({"title": "t", "description": "d", "method": [
            {"type": "action", "name": "a", "provider": {"type": "python",
             "module": "experiment_broker.redelivery", "func": "stop_recorded"}}]});
        let e = experiment(doc);
        let found: Vec<String> = problems(&e, |_| false, |_| true)
            .into_iter()
            .map(|p| p.field)
            .collect();
        assert_eq!(found, vec!["method[0].provider.module"]);
        assert!(is_internal_module("experiment_broker"));
        assert!(!is_internal_module("experiment_brokers.x"));
    }

    #[test]
    fn guarded_families_are_whole_module_names() {
        assert!(is_guarded_module("chaosaws"));
        assert!(is_guarded_module("chaosaws.ec2.actions"));
        assert!(is_guarded_module("experimentvr.ec2.actions"));
        assert!(!is_guarded_module("chaosawsx.ec2"));
        assert!(!is_guarded_module("chaoslib.x"));
        assert!(!is_guarded_module("mychaosaws"));
    }
}
