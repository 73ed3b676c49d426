//! Tripwires around a run (`broker::broker::guard::run_guarded`): each is read at its own
//! interval, and the first that trips stops the run with its reason on record.

use broker::broker::guard::{CheckFuture, Tripwire, run_guarded};
use broker::engine::RunOptions;
use broker::load::document::Format;
use broker::load::{Vars, load_experiment_text};
use broker::model::{Experiment, Journal, Status};
use broker::providers::Providers;
use broker::providers::registry::Registry;
use serde_json::json;
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

fn sleeper(seconds: &str) -> Arc<Experiment> {
    let doc = json!({"title": "t", "description": "d",
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
    run_guarded(
        sleeper(seconds),
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
