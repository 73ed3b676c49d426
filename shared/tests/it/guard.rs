//! Tripwires around a run (`shared::broker::guard::run_guarded`): each is read at its own
//! interval, and the first that trips stops the run with its reason on record. They fail safe:
//! a tripwire that cannot be read stops the run after the grace, a halt flag that is not
//! understood means halted, and tripwire settings out of bounds are refused by the loader.

use serde_json::json;
use shared::adapters::embedded::DirStore;
use shared::broker::guard::{CheckFuture, HALT_KEY, StoreHalt, Tripwire, run_guarded};
use shared::engine::RunOptions;
use shared::load::document::Format;
use shared::load::{Vars, load_experiment_text};
use shared::model::{Experiment, Journal, Status};
use shared::ports::ObjectStore;
use shared::providers::Providers;
use shared::providers::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Counts its checks; trips on check number `trip_at` (never if 0).
struct Counting {
    every: Duration,
    checks: AtomicUsize,
    trip_at: usize,
}

impl Counting {
    fn new(every_ms: u64, trip_at: usize) -> Arc<Counting> {
        Arc::new(Counting {
            every: Duration::from_millis(every_ms),
            checks: AtomicUsize::new(0),
            trip_at,
        })
    }
    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

impl Tripwire for Counting {
    fn check<'a>(&'a self, _: &'a Experiment) -> CheckFuture<'a> {
        let n = self.checks.fetch_add(1, Ordering::SeqCst) + 1;
        let trip = self.trip_at != 0 && n >= self.trip_at;
        Box::pin(async move { Ok(trip.then(|| format!("tripped on check {n}"))) })
    }
    fn interval(&self, _: &Experiment) -> Option<Duration> {
        Some(self.every)
    }
}

/// Answers its checks in turn from `script` (`true`: read, not tripped; `false`: cannot be
/// read), then from its last entry.
struct Scripted {
    every: Duration,
    checks: AtomicUsize,
    script: Vec<bool>,
}

impl Scripted {
    fn new(every_ms: u64, script: &[bool]) -> Arc<Scripted> {
        Arc::new(Scripted {
            every: Duration::from_millis(every_ms),
            checks: AtomicUsize::new(0),
            script: script.to_vec(),
        })
    }
    fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

impl Tripwire for Scripted {
    fn check<'a>(&'a self, _: &'a Experiment) -> CheckFuture<'a> {
        let n = self.checks.fetch_add(1, Ordering::SeqCst);
        let readable = self.script[n.min(self.script.len() - 1)];
        Box::pin(async move {
            if readable {
                Ok(None)
            } else {
                Err(format!("read {} failed: AccessDenied", n + 1))
            }
        })
    }
    fn interval(&self, _: &Experiment) -> Option<Duration> {
        Some(self.every)
    }
}

/// Never answers.
struct Silent;

impl Tripwire for Silent {
    fn check<'a>(&'a self, _: &'a Experiment) -> CheckFuture<'a> {
        Box::pin(std::future::pending())
    }
    fn interval(&self, _: &Experiment) -> Option<Duration> {
        Some(Duration::from_millis(100))
    }
}

fn sleeper(seconds: &str) -> Arc<Experiment> {
    sleeper_with(seconds, json!({"name": "experiment-broker"}))
}

/// `sleep seconds`, with `extension` as its `experiment-broker` extension.
fn sleeper_with(seconds: &str, extension: serde_json::Value) -> Arc<Experiment> {
    let doc = json!({"title": "t", "description": "d", "extensions": [extension],
        "method": [{"type": "action", "name": "wait", "provider": {"type": "process", "path": "sleep", "arguments": [seconds]}}]});
    Arc::new(
        load_experiment_text(
            &doc.to_string(),
            Format::Json,
            None,
            &Vars::default(),
            &Providers::new(Registry::new()),
        )
        .unwrap(),
    )
}

/// Run a `sleep seconds` experiment watched by `wires`.
async fn guarded(seconds: &str, wires: &[Arc<dyn Tripwire>]) -> Journal {
    guarded_experiment(sleeper(seconds), wires).await
}

async fn guarded_experiment(experiment: Arc<Experiment>, wires: &[Arc<dyn Tripwire>]) -> Journal {
    run_guarded(
        experiment,
        &Vars::default(),
        &RunOptions::default(),
        Arc::new(Providers::new(Registry::new())),
        CancellationToken::new(),
        None,
        wires,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn each_tripwire_is_read_at_its_own_interval_not_the_shortest() {
    let fast = Counting::new(50, 0);
    let slow = Counting::new(700, 0);
    let wires: Vec<Arc<dyn Tripwire>> = vec![fast.clone(), slow.clone()];
    let journal = guarded("1.5", &wires).await;
    assert_eq!(journal.status, Some(Status::Completed));
    // one check before the start, then one per interval over the 1.5 s run
    assert!(
        fast.checks() >= 10,
        "the 50 ms tripwire was read {} times",
        fast.checks()
    );
    assert!(
        (2..=4).contains(&slow.checks()),
        "the 700 ms tripwire was read {} times (it was read at the fast one's pace before)",
        slow.checks()
    );
}

#[tokio::test]
async fn the_first_tripwire_to_trip_stops_the_run_and_names_itself() {
    let quiet = Counting::new(30, 0);
    let tripping = Counting::new(100, 3);
    let wires: Vec<Arc<dyn Tripwire>> = vec![quiet.clone(), tripping.clone()];
    let started = std::time::Instant::now();
    let journal = guarded("30", &wires).await;
    assert_eq!(journal.status, Some(Status::Interrupted));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the sleep was cut short"
    );
    let broker = journal.broker.unwrap();
    assert_eq!(broker["stopped_by"], "tripped on check 3", "{broker}");
    let after = quiet.checks();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(quiet.checks(), after, "no tripwire is read after the run");
}

#[tokio::test]
async fn a_tripped_wire_before_the_start_keeps_the_run_from_starting() {
    let tripping = Counting::new(1000, 1);
    let wires: Vec<Arc<dyn Tripwire>> = vec![tripping];
    let journal = guarded("30", &wires).await;
    assert_eq!(journal.status, Some(Status::Interrupted));
    assert!(journal.run.is_empty());
    assert_eq!(journal.broker.unwrap()["not_started"], true);
}

#[tokio::test]
async fn a_tripwire_whose_reads_fail_mid_run_trips_after_the_grace() {
    // read before the start and once more, then never again
    let failing = Scripted::new(50, &[true, true, false]);
    let started = std::time::Instant::now();
    let journal = guarded("30", &[failing.clone() as Arc<dyn Tripwire>]).await;
    assert_eq!(journal.status, Some(Status::Interrupted));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the sleep was cut short"
    );
    let why = journal.broker.unwrap()["stopped_by"].to_string();
    assert!(
        why.contains("could not be read for 3 intervals in a row") && why.contains("read 5 failed"),
        "{why}"
    );
    assert_eq!(
        failing.checks(),
        5,
        "the default grace is three failed reads"
    );
}

#[tokio::test]
async fn a_tripwire_that_recovers_within_the_grace_does_not_stop_the_run() {
    let flaky = Scripted::new(
        50,
        &[
            true, false, false, true, false, false, true, false, false, true,
        ],
    );
    let journal = guarded("1", &[flaky.clone() as Arc<dyn Tripwire>]).await;
    assert_eq!(
        journal.status,
        Some(Status::Completed),
        "{:?}",
        journal.broker
    );
    assert!(flaky.checks() >= 10, "read {} times", flaky.checks());
}

#[tokio::test]
async fn the_experiment_sets_how_many_unreadable_reads_in_a_row_stop_the_run() {
    for (grace, trips_on) in [(1, 3), (5, 7)] {
        let failing = Scripted::new(50, &[true, true, false]);
        let experiment = sleeper_with(
            "30",
            json!({"name": "experiment-broker", "unreadable_grace_intervals": grace}),
        );
        let journal = guarded_experiment(experiment, &[failing.clone() as Arc<dyn Tripwire>]).await;
        assert_eq!(journal.status, Some(Status::Interrupted));
        let why = journal.broker.unwrap()["stopped_by"].to_string();
        assert!(
            why.contains(&format!("could not be read for {grace} intervals")),
            "{why}"
        );
        assert_eq!(failing.checks(), trips_on, "grace {grace}");
    }
}

#[tokio::test]
async fn a_tripwire_that_never_answers_keeps_the_run_from_starting() {
    let journal = guarded("30", &[Arc::new(Silent) as Arc<dyn Tripwire>]).await;
    assert_eq!(journal.status, Some(Status::Interrupted));
    assert!(journal.run.is_empty());
    let broker = journal.broker.unwrap();
    assert_eq!(broker["not_started"], true);
    assert!(
        broker["stopped_by"]
            .to_string()
            .contains("no answer within"),
        "{broker}"
    );
}

#[tokio::test]
async fn a_halt_flag_that_is_not_understood_means_halted() {
    let dir = tempfile::tempdir().unwrap();
    let store = DirStore::new(dir.path().join("store"));
    let wires: Vec<Arc<dyn Tripwire>> = vec![Arc::new(StoreHalt(store.clone()))];
    // before the start: the run never starts
    for content in [
        "",
        "{}",
        "[]",
        r#"{"halted": "no"}"#,
        r#"{"state": "running"}"#,
        "garbage",
    ] {
        store.put(HALT_KEY, content.as_bytes()).await.unwrap();
        let journal = guarded("30", &wires).await;
        let broker = journal.broker.unwrap();
        assert_eq!(broker["not_started"], true, "{content:?}: {broker}");
        assert!(
            broker["stopped_by"].to_string().contains("not understood"),
            "{content:?}: {broker}"
        );
    }
    // cleared, the run goes on until garbage lands in the flag mid-run
    store.put(HALT_KEY, br#"{"halted": false}"#).await.unwrap();
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            store.put(HALT_KEY, b"\x00 not a flag").await.unwrap();
        })
    };
    let started = std::time::Instant::now();
    let journal = guarded("30", &wires).await;
    writer.await.unwrap();
    assert_eq!(journal.status, Some(Status::Interrupted));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stopped by the flag"
    );
    let broker = journal.broker.unwrap();
    assert!(broker.get("not_started").is_none(), "{broker}");
    assert!(
        broker["stopped_by"].to_string().contains("not understood"),
        "{broker}"
    );
}

#[test]
fn tripwire_settings_out_of_bounds_are_refused_where_they_are_written() {
    let text = "title: t\ndescription: d\nextensions:\n  - name: someone-else\n    stop_condition_interval: 0\n  - name: experiment-broker\n    stop_condition_interval: 0.5\n    unreadable_grace_intervals: 0\nmethod: []\n";
    let problems = load_experiment_text(
        text,
        Format::Yaml,
        Some(std::path::Path::new("exp.yaml")),
        &Vars::default(),
        &Providers::new(Registry::new()),
    )
    .unwrap_err();
    let problems: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems.len(),
        2,
        "only the broker's entry is checked: {problems:?}"
    );
    assert!(
        problems[0].starts_with("exp.yaml:7:")
            && problems[0].contains("extensions[1].stop_condition_interval")
            && problems[0].contains("seconds from 1 to 3600"),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with("exp.yaml:8:")
            && problems[1].contains("extensions[1].unreadable_grace_intervals")
            && problems[1].contains("from 1 to 10"),
        "{problems:?}"
    );
}
