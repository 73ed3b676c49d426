//! Faults act only where declared and allowed: as method or rollback actions, never under a dry
//! mode, never from a probe; a guard rail's refusal aborts the run; guarded modules never fall
//! back to Python unguarded. A fault here is a native activity of our own registry that counts
//! what it was asked to do (the registry is our port, not AWS).

use super::{load, providers, run};
use serde_json::{Value, json};
use shared::engine::RunOptions;
use shared::load::document::Format;
use shared::load::validate::{Checks, validate};
use shared::load::{Vars, load_experiment_text};
use shared::model::{Dry, RollbackStrategy, RunStatus, Status};
use shared::providers::registry::{NativeActivity, Param, Registry};
use shared::providers::{ActivityError, Providers, Refusal};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What a counting fault was asked to do.
#[derive(Default)]
struct Counts {
    acted: AtomicUsize,
    planned: AtomicUsize,
}

/// `test.faults.inject` (a fault that counts) and `test.faults.refuse` (a fault a guard rail
/// refuses: not opted in).
fn fault_registry(counts: Arc<Counts>) -> Registry {
    let mut registry = Registry::new();
    let c = counts.clone();
    registry.register(
        "test.faults",
        "inject",
        NativeActivity::new(vec![Param::optional("value")], move |call| {
            let c = c.clone();
            async move {
                if call.plan_only {
                    c.planned.fetch_add(1, Ordering::SeqCst);
                    Ok(json!({"dry_run": true}))
                } else {
                    c.acted.fetch_add(1, Ordering::SeqCst);
                    Ok(json!(true))
                }
            }
        })
        .fault(),
    );
    registry.register(
        "test.faults",
        "refuse",
        NativeActivity::new(vec![], |_| async {
            Err(ActivityError::Refused(
                Refusal::new(
                    "opt_in",
                    "target i-0abc does not carry the opt-in tag experiment-broker:opt-in=true",
                )
                .on("i-0abc"),
            ))
        })
        .fault(),
    );
    registry
}

fn fault(kind: &str, name: &str) -> Value {
    json!({"type": kind, "name": name,
           "provider": {"type": "python", "module": "test.faults", "func": "inject"}})
}

fn process(name: &str, kind: &str) -> Value {
    json!({"type": kind, "name": name, "provider": {"type": "process", "path": "true"}})
}

#[tokio::test]
async fn a_refused_fault_aborts_the_run_and_its_rollbacks_run() {
    let counts = Arc::new(Counts::default());
    let p = providers(fault_registry(counts.clone()));
    let doc = json!({"title": "t", "description": "d",
        "steady-state-hypothesis": {"title": "h", "probes": [
            {"type": "probe", "name": "ok", "tolerance": 0,
             "provider": {"type": "process", "path": "true"}}]},
        "method": [
            {"type": "action", "name": "refused", "provider": {"type": "python", "module": "test.faults", "func": "refuse"}},
            fault("action", "after-the-refusal")
        ],
        "rollbacks": [process("revert", "action")]});
    let j = run(doc, p, RunOptions::default()).await;
    assert_eq!(
        j.status,
        Some(Status::Aborted),
        "a refusal is not a held run"
    );
    assert_eq!(j.run.len(), 1, "the method stops at the refusal");
    assert_eq!(j.run[0].status, RunStatus::Failed);
    assert!(
        j.run[0].exception.as_ref().unwrap()[0].contains("opt_in"),
        "{:?}",
        j.run[0].exception
    );
    assert_eq!(counts.acted.load(Ordering::SeqCst), 0);
    assert!(
        j.steady_states.after.is_none(),
        "an aborted run is not judged"
    );
    assert_eq!(
        j.rollbacks.len(),
        1,
        "rollbacks run under the default strategy"
    );
    let refused = &j.broker.as_ref().unwrap()["refused"][0];
    assert_eq!(refused["activity"], "refused");
    assert_eq!(refused["rule"], "opt_in");
    assert_eq!(refused["target"], "i-0abc");
}

#[tokio::test]
async fn a_refused_rollback_marks_the_run_aborted_and_the_other_rollbacks_still_run() {
    let counts = Arc::new(Counts::default());
    let p = providers(fault_registry(counts));
    let doc = json!({"title": "t", "description": "d",
        "method": [process("m", "action")],
        "rollbacks": [
            {"type": "action", "name": "refused", "provider": {"type": "python", "module": "test.faults", "func": "refuse"}},
            process("revert", "action")]});
    let j = run(doc, p, RunOptions::default()).await;
    assert_eq!(j.status, Some(Status::Aborted));
    assert_eq!(j.rollbacks.len(), 2);
    assert_eq!(j.rollbacks[1].status, RunStatus::Succeeded);
}

#[tokio::test]
async fn a_fault_plans_under_every_dry_mode_and_never_acts() {
    let dry = |mode: Option<&str>| {
        let mut a = fault("action", "inject");
        if let Some(mode) = mode {
            a["dry"] = json!(mode);
        }
        json!({"title": "t", "description": "d", "method": [a], "rollbacks": [fault("action", "again")]})
    };
    let cases: [(Option<Dry>, Option<&str>); 4] = [
        (Some(Dry::Actions), None),
        (Some(Dry::Activities), None),
        (None, Some("actions")),
        (None, Some("activities")),
    ];
    for (cli, activity) in cases {
        let counts = Arc::new(Counts::default());
        let p = providers(fault_registry(counts.clone()));
        let options = RunOptions {
            dry: cli,
            rollback_strategy: Some(RollbackStrategy::Never),
            ..RunOptions::default()
        };
        let j = run(dry(activity), p, options).await;
        assert_eq!(
            counts.acted.load(Ordering::SeqCst),
            0,
            "{cli:?} {activity:?}: a dry fault acted"
        );
        assert_eq!(
            counts.planned.load(Ordering::SeqCst),
            1,
            "{cli:?} {activity:?}"
        );
        assert_eq!(j.run[0].output["dry_run"], true, "{cli:?} {activity:?}");
    }
}

#[test]
fn validate_rejects_a_fault_wherever_it_would_act_as_a_probe() {
    let p = providers(fault_registry(Arc::new(Counts::default())));
    let with = |doc: Value| {
        load_experiment_text(&doc.to_string(), Format::Json, None, &Vars::default(), &p)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    let tolerance_probe = json!({"type": "probe", "name": "t",
        "provider": {"type": "python", "module": "test.faults", "func": "inject"}});
    let cases = [
        (
            json!({"title": "t", "description": "d",
                "steady-state-hypothesis": {"title": "h", "probes": [
                    {"type": "probe", "name": "p", "tolerance": true,
                     "provider": {"type": "python", "module": "test.faults", "func": "inject"}}]},
                "method": [process("m", "action")]}),
            "steady-state-hypothesis.probes[0]",
        ),
        (
            json!({"title": "t", "description": "d", "method": [
                {"type": "probe", "name": "p", "tolerance": tolerance_probe,
                 "provider": {"type": "process", "path": "true"}}]}),
            "method[0].tolerance",
        ),
        (
            json!({"title": "t", "description": "d",
                "configuration": {"c": fault("probe", "c")},
                "method": [process("m", "action")]}),
            "configuration.c",
        ),
        (
            json!({"title": "t", "description": "d", "method": [fault("probe", "p")]}),
            "method[0].type",
        ),
    ];
    for (doc, field) in cases {
        let err = with(doc).expect_err(field);
        assert!(
            err.contains(&format!("{field}: `test.faults.inject` is a fault")),
            "{field}: {err}"
        );
    }
    assert_eq!(
        with(
            json!({"title": "t", "description": "d", "method": [fault("action", "a")],
                    "rollbacks": [fault("action", "r")]})
        ),
        Ok(())
    );
}

#[tokio::test]
async fn a_fault_named_by_a_dynamic_tolerance_is_refused_at_run_time() {
    // `${tol}` resolves to a probe definition only at run time, where validation cannot see it
    let counts = Arc::new(Counts::default());
    let p = providers(fault_registry(counts.clone()));
    let doc = json!({"title": "t", "description": "d",
        "configuration": {"tol": {"type": "probe", "name": "sneaky",
            "provider": {"type": "python", "module": "test.faults", "func": "inject"}}},
        "steady-state-hypothesis": {"title": "h", "probes": [
            {"type": "probe", "name": "p", "tolerance": "${tol}",
             "provider": {"type": "process", "path": "true"}}]},
        "method": [process("m", "action")]});
    // a configuration mapping with type probe is dynamic configuration, refused at load; so
    // pass the definition as a var instead, which is what an operator could do
    let doc_text = doc.to_string();
    assert!(
        load_experiment_text(&doc_text, Format::Json, None, &Vars::default(), &p).is_err(),
        "as dynamic configuration it is refused at load"
    );
    let mut doc = doc;
    doc["configuration"] = json!({});
    let e = load(doc, &p);
    let vars = Vars {
        configuration: json!({"tol": {"type": "probe", "name": "sneaky",
            "provider": {"type": "python", "module": "test.faults", "func": "inject"}}})
        .as_object()
        .unwrap()
        .clone(),
        ..Vars::default()
    };
    let j = shared::engine::run_experiment(
        e,
        &vars,
        &RunOptions::default(),
        p,
        tokio_util::sync::CancellationToken::new(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        counts.acted.load(Ordering::SeqCst),
        0,
        "the fault acted from a tolerance"
    );
    let before = j.steady_states.before.as_ref().unwrap();
    assert_eq!(before.probes[0].tolerance_met, Some(false));
    assert_eq!(j.run.len(), 0, "the hypothesis was not met: no method");
}

#[tokio::test]
async fn dynamic_configuration_gets_the_extension_the_dry_flag_and_the_recorder() {
    let mut registry = Registry::new();
    registry.register(
        "test.probes",
        "context",
        NativeActivity::new(vec![], |call| async move {
            call.recorder
                .record(json!({"kind": "seen", "activity": call.activity}))
                .await
                .map_err(ActivityError::Failed)?;
            Ok(json!({"marker": call.extension.get("marker"), "plan_only": call.plan_only}))
        }),
    );
    let p = providers(registry);
    let doc = json!({"title": "t", "description": "d",
        "extensions": [{"name": "experiment-broker", "marker": "from-the-extension"}],
        "configuration": {"ctx": {"type": "probe", "name": "ctx-probe",
            "provider": {"type": "python", "module": "test.probes", "func": "context"}}},
        "method": [{"type": "action", "name": "echo",
            "provider": {"type": "process", "path": "echo", "arguments": "seen ${ctx}"}}]});
    let options = RunOptions {
        dry: Some(Dry::Probes),
        ..RunOptions::default()
    };
    let j = run(doc, p, options).await;
    let echoed = j.run[0].output["stdout"].as_str().unwrap_or_default();
    assert!(echoed.contains("from-the-extension"), "{echoed}");
    assert!(echoed.contains("True"), "the dry flag reached it: {echoed}");
    let records = &j.broker.as_ref().unwrap()["records"];
    assert_eq!(records[0]["kind"], "seen", "{records}");
    assert_eq!(records[0]["activity"], "ctx-probe");
}

/// An experiment validated without the Python signature check (which would need the package).
fn unchecked(doc: Value) -> Arc<shared::Experiment> {
    let vars = Vars::default();
    let checks = Checks {
        vars: &vars,
        check_executables: false,
    };
    Arc::new(validate(&doc, &checks).unwrap())
}

#[tokio::test]
async fn a_guarded_module_never_falls_back_to_python_unless_the_experiment_allows_it() {
    let action = json!({"type": "action", "name": "reboot",
        "provider": {"type": "python", "module": "chaosaws.rds.actions", "func": "reboot_db_instance",
                     "arguments": {"db_instance_identifier": "db-1"}}});
    let doc = json!({"title": "t", "description": "d", "method": [action]});
    let p = Arc::new(Providers::new(Registry::new()));
    let err = load_experiment_text(&doc.to_string(), Format::Json, None, &Vars::default(), &p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("method[0].provider.func: `chaosaws.rds.actions.reboot_db_instance` has no native implementation"),
        "{err}"
    );

    // past validation (an old plan, a hand-built experiment), the provider refuses it too
    let run = |doc: Value| {
        let p = p.clone();
        async move {
            shared::engine::run_experiment(
                unchecked(doc),
                &Vars::default(),
                &RunOptions::default(),
                p,
                tokio_util::sync::CancellationToken::new(),
                None,
            )
            .await
            .unwrap()
        }
    };
    let j = run(doc.clone()).await;
    assert_eq!(j.status, Some(Status::Aborted));
    assert_eq!(
        j.broker.as_ref().unwrap()["refused"][0]["rule"],
        "unguarded_python"
    );

    let mut allowed = doc;
    allowed["extensions"] = json!([{"name": "experiment-broker", "allow_unguarded_python": true}]);
    let j = run(allowed).await;
    assert_eq!(
        j.broker.as_ref().unwrap()["allow_unguarded_python"],
        true,
        "the journal records that the guard rails were waived"
    );
    assert!(
        j.broker.as_ref().unwrap().get("refused").is_none(),
        "allowed: it went to Python ({:?})",
        j.run[0].exception
    );
}
