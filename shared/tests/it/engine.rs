//! The engine driven as a library: native activities, strategies and interruption, with no
//! binary in between.

use serde_json::{Value, json};
use shared::engine::{Observer, RunOptions, run_experiment};
use shared::load::document::Format;
use shared::load::{Vars, load_experiment_text};
use shared::model::{Journal, RollbackStrategy, Status};
use shared::providers::registry::{NativeActivity, Param, Registry};
use shared::providers::{ActivityError, Providers};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[path = "engine/controls.rs"]
mod controls;
#[path = "engine/faults.rs"]
mod faults;

fn providers(registry: Registry) -> Arc<Providers> {
    Arc::new(Providers::new(registry))
}

fn load(doc: Value, providers: &Providers) -> Arc<shared::Experiment> {
    Arc::new(
        load_experiment_text(
            &doc.to_string(),
            Format::Json,
            None,
            &Vars::default(),
            providers,
        )
        .unwrap(),
    )
}

async fn run(doc: Value, providers: Arc<Providers>, options: RunOptions) -> Journal {
    let e = load(doc, &providers);
    run_experiment(
        e,
        &Vars::default(),
        &options,
        providers,
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn native_registry_is_consulted_before_python() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let mut registry = Registry::new();
    // Shadow a real Python function: if Python were called, the result would be a bool.
    registry.register(
        "os.path",
        "exists",
        NativeActivity::new(vec![Param::required("path")], move |call| {
            seen.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(json!(format!(
                    "native saw {}",
                    call.arguments["path"].as_str().unwrap_or("")
                )))
            }
        }),
    );
    let doc = json!({"title": "t", "description": "d", "configuration": {"p": "/etc"}, "method": [
        {"type": "probe", "name": "n", "provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": "${p}"}}}
    ]});
    let j = run(doc, providers(registry), RunOptions::default()).await;
    assert_eq!(
        j.run[0].output,
        json!("native saw /etc"),
        "arguments are substituted before the call"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn native_arguments_are_validated_against_declared_parameters() {
    let mut registry = Registry::new();
    registry.register(
        "m",
        "f",
        NativeActivity::new(vec![Param::required("region")], |_| async {
            Ok(Value::Null)
        }),
    );
    let p = providers(registry);
    let doc = json!({"title": "t", "description": "d", "method": [
        {"type": "action", "name": "a", "provider": {"type": "python", "module": "m", "func": "f", "arguments": {"regoin": "x"}}}
    ]});
    let err = load_experiment_text(&doc.to_string(), Format::Json, None, &Vars::default(), &p)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("argument `regoin` is not a parameter"),
        "{err}"
    );
    assert!(
        err.contains("required argument `region` is missing"),
        "{err}"
    );
}

#[tokio::test]
async fn a_failing_native_action_fails_only_its_run() {
    let mut registry = Registry::new();
    registry.register(
        "m",
        "boom",
        NativeActivity::new(vec![], |_| async {
            Err(ActivityError::Failed("boom".into()))
        }),
    );
    let doc = json!({"title": "t", "description": "d", "method": [
        {"type": "action", "name": "a", "provider": {"type": "python", "module": "m", "func": "boom"}}
    ], "rollbacks": [{"type": "action", "name": "r", "provider": {"type": "process", "path": "true"}}]});
    let j = run(doc, providers(registry), RunOptions::default()).await;
    assert_eq!(j.status, Some(Status::Completed));
    assert_eq!(
        j.run[0].exception.as_ref().unwrap()[0],
        "chaoslib.exceptions.ActivityFailed: boom\n"
    );
    assert_eq!(j.rollbacks.len(), 1);
}

#[tokio::test]
async fn probe_tolerance_receives_the_value() {
    let mut registry = Registry::new();
    registry.register(
        "checks",
        "is_even",
        NativeActivity::new(vec![Param::required("value")], |c| async move {
            Ok(json!(
                c.arguments["value"]["status"].as_i64().unwrap() % 2 == 0
            ))
        }),
    );
    let doc = |code: i32| {
        json!({"title": "t", "description": "d", "method": [], "steady-state-hypothesis": {"title": "h", "probes": [
            {"type": "probe", "name": "exit", "provider": {"type": "process", "path": "sh", "arguments": ["-c", format!("exit {code}")]},
             "tolerance": {"type": "probe", "name": "even", "provider": {"type": "python", "module": "checks", "func": "is_even", "arguments": {}}}}
        ]}})
    };
    let p = providers(registry);
    let j = run(doc(2), p.clone(), RunOptions::default()).await;
    assert_eq!(j.steady_states.before.unwrap().steady_state_met, Some(true));
    let j = run(doc(3), p, RunOptions::default()).await;
    assert_eq!(
        j.steady_states.before.unwrap().steady_state_met,
        Some(false)
    );
}

struct Recorder(Mutex<Vec<(usize, Option<Status>)>>);

impl Observer for Recorder {
    fn checkpoint(&self, journal: &Journal) {
        self.0
            .lock()
            .unwrap()
            .push((journal.run.len(), journal.status));
    }
}

#[tokio::test]
async fn stop_token_interrupts_and_rollbacks_still_run() {
    let p = providers(Registry::new());
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("rolled-back");
    let doc = json!({"title": "t", "description": "d",
        "method": [{"type": "action", "name": "long", "provider": {"type": "process", "path": "sleep", "arguments": ["30"]}}],
        "rollbacks": [{"type": "action", "name": "undo", "provider": {"type": "process", "path": "touch", "arguments": [marker.to_str().unwrap()]}}]});
    let e = load(doc, &p);
    let stop = CancellationToken::new();
    let recorder = Arc::new(Recorder(Mutex::new(Vec::new())));
    let canceller = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        canceller.cancel();
    });
    let options = RunOptions {
        rollback_strategy: Some(RollbackStrategy::Default),
        ..RunOptions::default()
    };
    let j = run_experiment(
        e,
        &Vars::default(),
        &options,
        p,
        stop,
        Some(recorder.clone()),
    )
    .await
    .unwrap();
    assert_eq!(j.status, Some(Status::Interrupted));
    assert!(
        marker.exists(),
        "rollbacks run after an interruption under the default strategy"
    );
    let checkpoints = recorder.0.lock().unwrap();
    assert!(
        checkpoints.len() >= 3,
        "checkpoints as the run progresses: {checkpoints:?}"
    );
    assert_eq!(checkpoints.last().unwrap().1, Some(Status::Interrupted));
}

/// Checkpoints held back until the test lets them through, like a slow store; `fail` makes
/// every flush report a failed write.
struct Gate {
    open: Arc<tokio::sync::Semaphore>,
    fail: bool,
    records: Mutex<usize>,
}

impl Observer for Gate {
    fn checkpoint(&self, journal: &Journal) {
        let n = journal
            .broker
            .as_ref()
            .and_then(|b| b["records"].as_array())
            .map_or(0, Vec::len);
        *self.records.lock().unwrap() = n;
    }
    fn flush(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        let (open, fail) = (self.open.clone(), self.fail);
        Box::pin(async move {
            let _permit = open.acquire().await.map_err(|e| e.to_string())?;
            if fail {
                Err("the store is down".to_string())
            } else {
                Ok(())
            }
        })
    }
}

impl Gate {
    fn new(permits: usize, fail: bool) -> Arc<Gate> {
        Arc::new(Gate {
            open: Arc::new(tokio::sync::Semaphore::new(permits)),
            fail,
            records: Mutex::new(0),
        })
    }
}

/// An experiment whose one action records, then "acts" (counts), as the fault actions do.
fn fault_experiment() -> (Arc<AtomicUsize>, Arc<Providers>, Arc<shared::Experiment>) {
    let acted = Arc::new(AtomicUsize::new(0));
    let p = record_then_act(acted.clone());
    let doc = json!({"title": "t", "description": "d", "method": [
        {"type": "action", "name": "fault", "provider": {"type": "python", "module": "faults", "func": "inject"}}]});
    let e = load(doc, &p);
    (acted, p, e)
}

fn record_then_act(acted: Arc<AtomicUsize>) -> Arc<Providers> {
    let mut registry = Registry::new();
    registry.register(
        "faults",
        "inject",
        NativeActivity::new(vec![], move |call| {
            let acted = acted.clone();
            async move {
                call.recorder
                    .record(json!({"kind": "targets", "chosen": ["i-1"]}))
                    .await
                    .map_err(|e| ActivityError::Failed(format!("not on record: {e}")))?;
                acted.fetch_add(1, Ordering::SeqCst);
                Ok(json!("acted"))
            }
        }),
    );
    providers(registry)
}

#[tokio::test]
async fn a_native_action_acts_only_once_its_record_is_checkpointed() {
    let (acted, p, e) = fault_experiment();
    let gate = Gate::new(0, false);
    let observer = gate.clone();
    let run = tokio::spawn(async move {
        run_experiment(
            e,
            &Vars::default(),
            &RunOptions::default(),
            p,
            CancellationToken::new(),
            Some(observer),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        *gate.records.lock().unwrap(),
        1,
        "the record is checkpointed"
    );
    assert_eq!(
        acted.load(Ordering::SeqCst),
        0,
        "the action waits while the checkpoint is not written"
    );
    gate.open.add_permits(1000);
    let j = run.await.unwrap().unwrap();
    assert_eq!(acted.load(Ordering::SeqCst), 1);
    assert_eq!(j.status, Some(Status::Completed));
    assert_eq!(j.broker.unwrap()["records"][0]["chosen"], json!(["i-1"]));
}

#[tokio::test]
async fn a_native_action_whose_record_cannot_be_written_does_not_act() {
    let (acted, p, e) = fault_experiment();
    let gate = Gate::new(1000, true);
    let j = run_experiment(
        e,
        &Vars::default(),
        &RunOptions::default(),
        p,
        CancellationToken::new(),
        Some(gate),
    )
    .await
    .unwrap();
    assert_eq!(acted.load(Ordering::SeqCst), 0);
    assert_eq!(j.run[0].status, shared::model::RunStatus::Failed);
    let err = j.run[0]
        .exception
        .as_ref()
        .map(|e| e.join(""))
        .unwrap_or_default();
    assert!(err.contains("not on record: the store is down"), "{err}");
}
