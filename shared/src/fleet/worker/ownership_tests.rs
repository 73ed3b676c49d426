//! A worker serving on the embedded backend while its conditional creates are interfered with
//! (`contract::store::Interfering`): a create whose answer is lost (the retry is answered
//! "exists") is recognised as this delivery's own and the job completes with one event; a
//! journal another delivery wrote first stands, and this delivery publishes nothing.

use super::*;
use crate::adapters::embedded::{Db, DirStore, SqliteBus, SqliteQueue};
use crate::contract::store::{Interference, Interfering};
use crate::model::suite::Job;
use crate::ports::ObjectStore;
use crate::ports::queue::JobQueue;
use crate::providers::Providers;
use crate::providers::registry::Registry;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Ports on a state directory, the store interfered with as `store` says; completion events
/// are routed to the queue `events`.
async fn ports(
    dir: &Path,
    store: Interfering<DirStore>,
) -> (
    WorkerPorts<SqliteQueue, Interfering<DirStore>, SqliteBus>,
    SqliteQueue,
) {
    let db = Db::open(&dir.join("broker.db")).unwrap();
    let bus = SqliteBus::new(db.clone(), "broker");
    bus.subscribe("Experiment Completed", "events")
        .await
        .unwrap();
    let ports = WorkerPorts {
        jobs: SqliteQueue::new(db.clone(), "jobs", 3),
        store,
        bus,
    };
    (ports, SqliteQueue::new(db, "events", 3))
}

/// An experiment in the store whose one action appends a line to `actions` (so a second run
/// would show).
async fn job(store: &DirStore, actions: &Path) -> String {
    let experiment = json!({"title": "t", "description": "d",
        "method": [{"type": "action", "name": "act", "provider": {"type": "process",
            "path": "sh", "arguments": ["-c", format!("echo acted >> {}", actions.display())]}}]});
    store
        .put("experiments/e.json", experiment.to_string().as_bytes())
        .await
        .unwrap();
    serde_json::to_string(&Job {
        version: Job::VERSION,
        suite_run_id: "sr-1".into(),
        wave: 0,
        run_id: "w0-j0".into(),
        experiment_source: "store:experiments/e.json".into(),
        bucket_name: None,
        experiment_version: None,
        traceparent: None,
        settings: Default::default(),
    })
    .unwrap()
}

/// Serve until the job has been acked (the jobs queue is empty), then stop; the completion
/// events published meanwhile, after a further quiet moment for a late one.
async fn serve_one(
    dir: &Path,
    ports: WorkerPorts<SqliteQueue, Interfering<DirStore>, SqliteBus>,
    events: &SqliteQueue,
    body: String,
) -> Vec<Value> {
    ports.jobs.send_batch(&[body]).await.unwrap();
    let cfg = ServeConfig {
        concurrency: 1,
        visibility: Duration::from_secs(30),
        wait: Duration::from_millis(100),
        grace: Duration::from_secs(5),
        worker_id: "w-test".into(),
    };
    let stop = CancellationToken::new();
    let providers = Arc::new(Providers::new(Registry::new()));
    let db = Db::open(&dir.join("broker.db")).unwrap();
    let serving = tokio::spawn(serve(cfg, ports, providers, Vec::new(), {
        let stop = stop.clone();
        async move { stop.cancelled().await }
    }));
    let acked = crate::contract::eventually(Duration::from_secs(30), "the job's ack", || {
        let db = db.clone();
        async move {
            // acked: the message is gone (neither waiting nor in flight)
            let left: i64 = db
                .call(|c| {
                    c.query_row(
                        "SELECT COUNT(*) FROM messages WHERE queue = 'jobs'",
                        [],
                        |r| r.get(0),
                    )
                })
                .await
                .unwrap();
            (left == 0).then_some(())
        }
    });
    acked.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    serving.await.unwrap();
    let mut got = Vec::new();
    loop {
        let batch = events
            .receive(10, Duration::from_secs(60), Duration::from_millis(200))
            .await
            .unwrap();
        if batch.is_empty() {
            return got;
        }
        got.extend(
            batch
                .iter()
                .map(|m| serde_json::from_str::<Value>(&m.body).unwrap()),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_marker_and_journal_creates_lose_their_answers_runs_once_and_publishes_once() {
    let dir = tempfile::tempdir().unwrap();
    let plain = DirStore::new(dir.path().join("store"));
    let actions = dir.path().join("actions");
    let body = job(&plain, &actions).await;
    // both the started marker's and the journal's create land, and each answer is lost
    let store = Interfering::new(plain.clone(), "", Interference::LoseAnswer);
    let (ports, events) = ports(dir.path(), store.clone()).await;
    let events = serve_one(dir.path(), ports, &events, body).await;
    assert_eq!(
        store.interfered(),
        ["runs/sr-1/w0-j0/journal.json", "runs/sr-1/w0-j0/started"],
        "both answers were lost"
    );
    assert_eq!(
        std::fs::read_to_string(&actions).unwrap(),
        "acted\n",
        "the method ran once"
    );
    assert_eq!(events.len(), 1, "one completion event: {events:#?}");
    assert_eq!(events[0]["detail"]["run_id"], "w0-j0");
    assert_eq!(events[0]["detail"]["status"], "completed");
    let journal: Value = serde_json::from_slice(
        &plain
            .get("runs/sr-1/w0-j0/journal.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(journal["status"], "completed");
    assert_eq!(journal["broker"]["delivery"]["worker"], "w-test");
    assert!(
        plain
            .get("runs/sr-1/w0-j0/completed")
            .await
            .unwrap()
            .is_some(),
        "marked published"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_another_delivery_wrote_first_stands_and_this_delivery_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let plain = DirStore::new(dir.path().join("store"));
    let body = job(&plain, &dir.path().join("actions")).await;
    let theirs = serde_json::to_vec_pretty(&json!({"status": "completed",
        "broker": {"delivery": {"worker": "w-other", "token": "someone-else"}}}))
    .unwrap();
    let store = Interfering::new(
        plain.clone(),
        "journal.json",
        Interference::Competitor(theirs.clone()),
    );
    let (ports, events) = ports(dir.path(), store).await;
    let events = serve_one(dir.path(), ports, &events, body).await;
    assert!(
        events.is_empty(),
        "the other delivery publishes its own journal: {events:#?}"
    );
    let stands = plain.get("runs/sr-1/w0-j0/journal.json").await.unwrap();
    assert_eq!(
        String::from_utf8_lossy(&stands.unwrap()),
        String::from_utf8_lossy(&theirs),
        "its journal stands"
    );
}
