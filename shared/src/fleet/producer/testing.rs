//! Test ports on a state directory, and helpers the producer's unit tests share.

use super::*;
pub use crate::adapters::embedded::{Db, DirStore, SqliteBus, SqliteQueue};
pub use crate::fleet::outcome::SuiteOutcome;
use crate::model::suite::{ExperimentRef, Job, JobSettings, OnFailure, Suite, Wave};
use crate::ports::Event;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

pub async fn ports(dir: &Path) -> ProducerPorts<SqliteQueue, SqliteQueue, DirStore, SqliteBus> {
    ports_on(dir, DirStore::new(dir.join("store"))).await
}

pub async fn ports_on<S: ObjectStore>(
    dir: &Path,
    store: S,
) -> ProducerPorts<SqliteQueue, SqliteQueue, S, SqliteBus> {
    let db = Db::open(&dir.join("broker.db")).unwrap();
    let bus = SqliteBus::new(db.clone(), "b");
    bus.subscribe("Suite Completed", "suites").await.unwrap();
    ProducerPorts {
        jobs: SqliteQueue::new(db.clone(), "jobs", 3),
        events: SqliteQueue::new(db.clone(), "events", 3),
        triggers: Some(SqliteQueue::new(db.clone(), "triggers", 3)),
        bucket: Some("broker".into()),
        store,
        bus,
        views: Views::default(),
    }
}

/// The next "Suite Completed" event's detail (the test ports route them to `suites`).
pub async fn suite_completed(dir: &Path) -> Value {
    let db = Db::open(&dir.join("broker.db")).unwrap();
    let q = SqliteQueue::new(db, "suites", 3);
    let m = crate::contract::next_message(&q, Duration::from_secs(30), "Suite Completed").await;
    serde_json::from_str::<Event>(&m.body).unwrap().detail
}

pub fn suite(waves: Vec<(usize, OnFailure, Option<u32>)>) -> Suite {
    Suite {
        name: "s".into(),
        defaults: JobSettings::default(),
        strict: false,
        waves: waves
            .into_iter()
            .map(|(n, on_failure, max_parallel)| Wave {
                experiments: (0..n)
                    .map(|i| ExperimentRef::Store {
                        key: format!("e{i}"),
                    })
                    .collect(),
                on_failure,
                max_parallel,
                skipped: false,
            })
            .collect(),
    }
}

pub fn done(status: &str, deviated: bool) -> Completion {
    Completion::new(
        crate::model::Status::parse(status).unwrap(),
        deviated,
        "k".into(),
    )
}

pub async fn queued(p: &ProducerPorts<SqliteQueue, SqliteQueue, DirStore, SqliteBus>) -> Vec<Job> {
    let ms = p
        .jobs
        .receive(100, Duration::from_secs(60), Duration::ZERO)
        .await
        .unwrap();
    ms.iter()
        .map(|m| Job::from_message(&m.body).unwrap())
        .collect()
}

/// Receive the suite's one job until the queue dead-letters it (3 receives, never acked).
pub async fn receive_until_dead_lettered<S: ObjectStore>(
    p: &ProducerPorts<SqliteQueue, SqliteQueue, S, SqliteBus>,
) {
    for _ in 0..3 {
        let m = p
            .jobs
            .receive(1, Duration::from_millis(1), Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(m.len(), 1);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        p.jobs
            .receive(1, Duration::from_secs(1), Duration::from_millis(50))
            .await
            .unwrap()
            .is_empty()
    );
}
