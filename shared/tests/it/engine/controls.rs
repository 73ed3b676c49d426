//! Controls through the engine: a control from a guarded module never runs unless the
//! experiment allows unguarded Python, and validation says so with the control's location;
//! hooks share one interpreter (state kept) and a failing hook leaves the run as it was.

use super::run;
use serde_json::{Value, json};
use shared::engine::RunOptions;
use shared::model::Status;
use shared::providers::Providers;
use shared::providers::registry::Registry;
use std::path::Path;
use std::sync::Arc;

/// Providers whose Python finds the modules under `dir`.
fn providers_with(dir: &Path) -> Arc<Providers> {
    let mut p = Providers::new(Registry::new());
    p.env_overlay
        .insert("PYTHONPATH".into(), dir.display().to_string());
    Arc::new(p)
}

/// A package `family` with a module `spy` whose hooks append their names to `dir/hooks`, and
/// whose `before_activity_control` raises.
fn spy(dir: &Path, family: &str) {
    let package = dir.join(family);
    std::fs::create_dir_all(&package).unwrap();
    std::fs::write(package.join("__init__.py"), "").unwrap();
    let log = dir.join("hooks").display().to_string();
    std::fs::write(
        package.join("spy.py"),
        format!(
            "seen = []\n\
             def _log(name):\n    seen.append(name)\n    open({log:?}, 'a').write(f'{{len(seen)}} {{name}}\\n')\n\
             def configure_control(**kw):\n    _log('configure')\n\
             def before_experiment_control(context, **kw):\n    _log('before_experiment')\n\
             def before_activity_control(context, **kw):\n    _log('before_activity ' + context['name'])\n    raise RuntimeError('boom')\n\
             def after_activity_control(context, state, **kw):\n    _log('after_activity ' + state['status'])\n\
             def after_experiment_control(context, state, **kw):\n    _log('after_experiment ' + state['status'])\n"
        ),
    )
    .unwrap();
}

fn experiment(module: &str, allow: bool) -> Value {
    json!({"title": "t", "description": "d",
        "extensions": [{"name": "experiment-broker", "allow_unguarded_python": allow}],
        "controls": [{"name": "spy", "provider": {"type": "python", "module": module}}],
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "true"}}]})
}

fn hooks(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("hooks"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn a_control_keeps_its_state_across_hooks_and_a_failing_hook_leaves_the_run_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    spy(dir.path(), "teamcontrols");
    let doc = experiment("teamcontrols.spy", false);
    let journal = run(doc, providers_with(dir.path()), RunOptions::default()).await;
    assert_eq!(journal.status, Some(Status::Completed));
    assert_eq!(journal.run[0].status, shared::model::RunStatus::Succeeded);
    assert_eq!(
        hooks(dir.path()),
        [
            "1 configure",
            "2 before_experiment",
            "3 before_activity act",
            "4 after_activity succeeded",
            "5 after_experiment completed"
        ],
        "one interpreter for the run's hooks, in the reference's order"
    );
}

#[tokio::test]
async fn a_control_from_a_guarded_module_runs_only_when_unguarded_python_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    spy(dir.path(), "chaosaws");
    let providers = providers_with(dir.path());
    let doc = experiment("chaosaws.spy", false);
    let loaded = super::load(doc.clone(), &providers);
    let warnings = shared::load::validate::warnings(&loaded);
    assert!(
        warnings
            .iter()
            .any(|w| w.field == "controls[0].provider.module"
                && w.to_string().contains("this control is not run")),
        "{warnings:?}"
    );
    let journal = run(doc, providers.clone(), RunOptions::default()).await;
    assert_eq!(journal.status, Some(Status::Completed));
    assert!(hooks(dir.path()).is_empty(), "{:?}", hooks(dir.path()));

    let allowed = experiment("chaosaws.spy", true);
    let loaded = super::load(allowed.clone(), &providers);
    assert!(shared::load::validate::warnings(&loaded).is_empty());
    run(allowed, providers, RunOptions::default()).await;
    assert_eq!(hooks(dir.path()).len(), 5, "{:?}", hooks(dir.path()));
}
