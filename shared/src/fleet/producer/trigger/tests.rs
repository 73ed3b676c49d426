//! The producer on the triggers queue: uploaded suites, lone experiments, rejected suites and
//! triggers delivered again, against embedded ports.

use super::super::testing::*;
use super::*;
use std::time::Duration;

#[tokio::test]
async fn an_uploaded_suite_runs_its_experiments_from_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    ports
        .store
        .put(
            "suites/team/nightly.yaml",
            b"name: nightly\nwaves:\n  - experiments: [../../experiments/a.yaml, b.json]\n",
        )
        .await
        .unwrap();
    let body = r#"{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "broker"}, "object": {"key": "suites%2Fteam%2Fnightly.yaml"}}}]}"#;
    let ids = ports.on_trigger("m1", body, Some("broker")).await.unwrap();
    let (plan, state) = ports.load(&ids[0]).await.unwrap();
    assert_eq!(
        plan.source.as_deref(),
        Some("store:suites/team/nightly.yaml")
    );
    let sources: Vec<&str> = plan.waves[0]
        .jobs
        .iter()
        .map(|j| j.experiment_source.as_str())
        .collect();
    assert_eq!(
        sources,
        ["store:experiments/a.yaml", "store:suites/team/b.json"]
    );
    assert_eq!(state.released, 2, "the first wave is enqueued");
}

#[tokio::test]
async fn an_experiment_uploaded_alone_is_a_suite_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    ports
        .store
        .put(
            "suites/disk.json",
            br#"{"title": "Disk fills", "description": "d", "method": []}"#,
        )
        .await
        .unwrap();
    let ids = ports
        .on_trigger(
            "m1",
            r#"{"version": 1, "suite": "suites/disk.json"}"#,
            Some("broker"),
        )
        .await
        .unwrap();
    let (plan, _) = ports.load(&ids[0]).await.unwrap();
    assert_eq!(plan.name, "Disk fills");
    assert_eq!(plan.waves.len(), 1);
    assert_eq!(
        plan.waves[0].jobs[0].experiment_source,
        "store:suites/disk.json"
    );
}

#[tokio::test]
async fn a_missing_or_invalid_suite_is_rejected_and_announced() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    ports
        .store
        .put("suites/bad.yaml", b"name: bad\nwaves: []\n")
        .await
        .unwrap();
    ports
        .store
        .put(
            "suites/up.yaml",
            b"waves:\n  - experiments: [../../etc/x.yaml]\n",
        )
        .await
        .unwrap();
    for (body, needle) in [
        (r#"{"suite": "suites/team/"}"#, "invalid object key"),
        (r#"{"suite": "suites/up.yaml"}"#, "climbs out of the bucket"),
        (r#"{"Records": []}"#, "Records is empty"),
        (
            r#"{"suite": "suites/none.yaml"}"#,
            "store:suites/none.yaml does not exist",
        ),
        (r#"{"suite": "suites/bad.yaml"}"#, "waves: is empty"),
        ("not json", "invalid trigger message"),
    ] {
        let ids = ports.on_trigger(body, body, Some("broker")).await.unwrap();
        let (_, state) = ports.load(&ids[0]).await.unwrap();
        assert_eq!(
            (
                state.status.as_str(),
                state.outcome.map(SuiteOutcome::as_str)
            ),
            ("rejected", Some("invalid"))
        );
        assert!(
            state.problems.iter().any(|p| p.contains(needle)),
            "{body}: {:?}",
            state.problems
        );
        let detail = suite_completed(dir.path()).await;
        assert_eq!(detail["suite_run_id"], ids[0].as_str());
        assert_eq!(detail["outcome"], "invalid");
    }
}

#[tokio::test]
async fn a_trigger_delivered_again_resumes_its_suite_run_instead_of_starting_another() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    ports
        .store
        .put(
            "suites/n.yaml",
            b"waves:\n  - experiments: [a.json, b.json]\n",
        )
        .await
        .unwrap();
    let body = r#"{"suite": "suites/n.yaml"}"#;
    let first = ports.on_trigger("msg-1", body, None).await.unwrap();
    let again = ports.on_trigger("msg-1", body, None).await.unwrap();
    assert_eq!(first, again, "the same suite run");
    let jobs = ports
        .jobs
        .receive(10, Duration::from_secs(30), Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 2, "its jobs were sent once");
    // the suite is gone by the third delivery: the run that was submitted stands
    ports
        .store
        .put("suites/n.yaml", b"not: a suite\n")
        .await
        .unwrap();
    ports.on_trigger("msg-1", body, None).await.unwrap();
    let (_, state) = ports.load(&first[0]).await.unwrap();
    assert_eq!(state.status, "running");
    // a plan stored without its state (a crash between the two) is started on redelivery
    let id = triggered_run_id("msg-2", 0);
    ports
        .store
        .put("suites/n.yaml", b"waves:\n  - experiments: [a.json]\n")
        .await
        .unwrap();
    ports.on_trigger("msg-2", body, None).await.unwrap();
    std::fs::remove_file(
        dir.path()
            .join("store")
            .join(SuiteRunKeys::new(&id).state()),
    )
    .unwrap();
    ports.on_trigger("msg-2", body, None).await.unwrap();
    let (_, state) = ports.load(&id).await.unwrap();
    assert_eq!((state.current_wave, state.released), (0, 1));
}

#[tokio::test]
async fn a_suite_whose_plan_create_lost_its_answer_is_still_started_once() {
    use crate::contract::store::{Interference, Interfering};
    let dir = tempfile::tempdir().unwrap();
    let store = Interfering::new(
        DirStore::new(dir.path().join("store")),
        "plan.json",
        Interference::LoseAnswer,
    );
    let p = ports_on(dir.path(), store).await;
    p.store
        .put("suites/n.yaml", b"waves:\n  - experiments: [a.json]\n")
        .await
        .unwrap();
    let ids = p
        .on_trigger("m1", r#"{"suite": "suites/n.yaml"}"#, None)
        .await
        .unwrap();
    assert_eq!(
        p.store.interfered(),
        [SuiteRunKeys::new(&ids[0]).plan()],
        "the answer was lost"
    );
    let (_, state) = p.load(&ids[0]).await.unwrap();
    assert_eq!((state.current_wave, state.released), (0, 1), "started");
    let jobs = p
        .jobs
        .receive(10, Duration::from_secs(30), Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1, "its job was sent once");
}

#[tokio::test]
async fn the_s3_test_event_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ports = ports(dir.path()).await;
    let ids = ports
        .on_trigger(
            "m1",
            r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"broker"}"#,
            Some("broker"),
        )
        .await
        .unwrap();
    assert!(ids.is_empty());
    assert!(ports.store.list("suite-runs").await.unwrap().is_empty());
}
