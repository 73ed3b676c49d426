//! A job whose experiment the producer uploaded with its suite run (`store:suite-runs/<id>/
//! experiments/…`, written once, never replaced) keeps no copy of it: its revert reads the
//! source again. One S3 PUT a job fewer (docs/scale.md); the revert still plays the rollbacks.

use super::serve::{completions, terminate, worker};
use serde_json::{Value, json};
use shared::config::Embedded;
use shared::model::suite::Job;
use shared::ports::{JobQueue, ObjectStore};
use std::time::{Duration, Instant};

#[tokio::test]
async fn an_uploaded_experiment_is_not_copied_and_a_killed_owners_job_is_reverted_from_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let e = Embedded::open(&state).await.unwrap();
    let (actions, rollbacks) = (dir.path().join("actions"), dir.path().join("rollbacks"));
    let sh = |name: &str, script: String| json!({"type": "action", "name": name, "provider": {"type": "process", "path": "sh", "arguments": ["-c", script]}});
    let doc = json!({"title": "uploaded", "description": "d",
        "method": [sh("act", format!("echo acted >> {}; sleep 6", actions.display()))],
        "rollbacks": [sh("revert", format!("echo reverted >> {}", rollbacks.display()))]});
    let key = "suite-runs/sr-test/experiments/w0-j0-long.json";
    e.store.put(key, doc.to_string().as_bytes()).await.unwrap();
    let job = serde_json::to_string(&Job {
        version: Job::VERSION,
        suite_run_id: "sr-test".into(),
        wave: 0,
        run_id: "victim".into(),
        experiment_source: format!("store:{key}"),
        bucket_name: None,
        experiment_version: None,
        traceparent: None,
        settings: Default::default(),
    })
    .unwrap();
    let mut workers = vec![
        worker(&state, dir.path(), "2"),
        worker(&state, dir.path(), "2"),
    ];
    e.jobs.send_batch(&[job]).await.unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    let marker: Value = loop {
        if let Some(bytes) = e.store.get("runs/sr-test/victim/started").await.unwrap() {
            break serde_json::from_slice(&bytes).unwrap();
        }
        assert!(Instant::now() < until, "no worker started the job");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    while !actions.exists() {
        assert!(Instant::now() < until, "the action never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        e.store.get("runs/sr-test/victim/experiment").await.unwrap(),
        None,
        "an experiment uploaded with the suite run is its own copy"
    );
    let owner_pid: u32 = marker["worker"]
        .as_str()
        .and_then(|w| w.rsplit('-').next())
        .and_then(|p| p.parse().ok())
        .expect("the marker names its worker's pid");
    let idx = workers
        .iter()
        .position(|w| w.id() == owner_pid)
        .expect("the owner is one of ours");
    let mut victim = workers.remove(idx);
    victim.kill().unwrap(); // SIGKILL: no rollbacks, no journal, no ack from this one
    victim.wait().unwrap();

    let events = completions(&e, 1).await;
    assert_eq!(events[0]["status"], "interrupted", "{}", events[0]);
    let journal: Value = serde_json::from_slice(
        &e.store
            .get("runs/sr-test/victim/journal.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(journal["broker"]["revert_only"], true);
    assert_eq!(
        journal["rollbacks"][0]["status"], "succeeded",
        "{journal:#}"
    );
    assert_eq!(std::fs::read_to_string(&actions).unwrap(), "acted\n");
    assert_eq!(
        std::fs::read_to_string(&rollbacks).unwrap(),
        "reverted\n",
        "the revert read the uploaded source and played its rollback once"
    );
    for w in workers {
        assert_eq!(terminate(w), Some(0));
    }
}
