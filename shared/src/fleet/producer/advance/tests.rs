//! Wave gating as the producer applies it: waves released in turn, duplicates counted once,
//! `stop` halting, `max_parallel` limiting, a restarted producer resuming.

use super::super::testing::*;
use crate::model::suite::OnFailure;

#[tokio::test]
async fn waves_are_released_one_after_the_other_and_duplicates_count_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = ports(dir.path()).await;
    let id = p
        .submit(
            &suite(vec![
                (2, OnFailure::Continue, None),
                (1, OnFailure::Stop, None),
            ]),
            dir.path(),
        )
        .await
        .unwrap();
    assert_eq!(queued(&p).await.len(), 2, "wave 0 only");
    assert_eq!(
        p.complete(&id, "w0-j0", done("completed", false))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        p.complete(&id, "w0-j0", done("completed", false))
            .await
            .unwrap(),
        None,
        "duplicate"
    );
    assert!(
        queued(&p).await.is_empty(),
        "a duplicate does not release the wave"
    );
    assert_eq!(
        p.complete(&id, "w0-j1", done("failed", false))
            .await
            .unwrap(),
        None
    );
    let next = queued(&p).await;
    assert_eq!(
        next.len(),
        1,
        "continue: wave 1 released despite the failure"
    );
    assert_eq!(next[0].wave, 1);
    assert_eq!(
        p.complete(&id, "w1-j0", done("completed", false))
            .await
            .unwrap(),
        Some(id.clone())
    );
    let (_, state) = p.load(&id).await.unwrap();
    assert_eq!(
        (
            state.status.as_str(),
            state.outcome.map(SuiteOutcome::as_str)
        ),
        ("completed", Some("failed"))
    );
}

#[tokio::test]
async fn stop_halts_and_max_parallel_limits_what_is_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let p = ports(dir.path()).await;
    let id = p
        .submit(
            &suite(vec![
                (3, OnFailure::Stop, Some(1)),
                (1, OnFailure::Stop, None),
            ]),
            dir.path(),
        )
        .await
        .unwrap();
    assert_eq!(queued(&p).await.len(), 1, "max_parallel 1");
    p.complete(&id, "w0-j0", done("completed", true))
        .await
        .unwrap();
    assert_eq!(queued(&p).await.len(), 1, "the next job of the wave");
    p.complete(&id, "w0-j1", done("completed", false))
        .await
        .unwrap();
    assert_eq!(queued(&p).await.len(), 1);
    assert_eq!(
        p.complete(&id, "w0-j2", done("completed", false))
            .await
            .unwrap(),
        Some(id.clone())
    );
    assert!(queued(&p).await.is_empty(), "halted: wave 1 never released");
    let (_, state) = p.load(&id).await.unwrap();
    assert_eq!(
        (
            state.status.as_str(),
            state.outcome.map(SuiteOutcome::as_str)
        ),
        ("halted", Some("deviated"))
    );
}

#[tokio::test]
async fn a_restarted_producer_resumes_from_the_stored_state() {
    let dir = tempfile::tempdir().unwrap();
    let first = ports(dir.path()).await;
    let id = first
        .submit(
            &suite(vec![(2, OnFailure::Stop, None), (1, OnFailure::Stop, None)]),
            dir.path(),
        )
        .await
        .unwrap();
    first
        .complete(&id, "w0-j0", done("completed", false))
        .await
        .unwrap();
    drop(first);
    let second = ports(dir.path()).await; // a new process: new connections, same state dir
    assert_eq!(
        queued(&second).await.len(),
        2,
        "wave 0's jobs are still queued"
    );
    second
        .complete(&id, "w0-j0", done("completed", false))
        .await
        .unwrap();
    let (_, state) = second.load(&id).await.unwrap();
    assert_eq!(
        state.current_wave, 0,
        "the replayed completion changed nothing"
    );
    second
        .complete(&id, "w0-j1", done("completed", false))
        .await
        .unwrap();
    let (_, state) = second.load(&id).await.unwrap();
    assert_eq!(state.current_wave, 1, "wave 1 released after the restart");
}

#[tokio::test]
async fn skipped_waves_are_never_enqueued_and_a_plan_of_skipped_waves_ends_at_submit() {
    let dir = tempfile::tempdir().unwrap();
    let p = ports(dir.path()).await;
    // a half-done seed payload: done, to run, done
    let mut s = suite(vec![
        (1, OnFailure::Stop, None),
        (1, OnFailure::Stop, None),
        (1, OnFailure::Stop, None),
    ]);
    s.waves[0].skipped = true;
    s.waves[2].skipped = true;
    let id = p.submit(&s, dir.path()).await.unwrap();
    let sent = queued(&p).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].run_id, "w1-j0", "the first wave to run is released");
    assert_eq!(
        p.complete(&id, "w1-j0", done("completed", true))
            .await
            .unwrap(),
        Some(id.clone()),
        "the skipped last wave ends the suite"
    );
    let ended = suite_completed(dir.path()).await;
    assert_eq!(ended["outcome"], "deviated", "{ended}");
    assert_eq!(ended["skipped"], serde_json::json!(["w0-j0", "w2-j0"]));
    let (plan, state) = p.load(&id).await.unwrap();
    let doc =
        crate::fleet::producer::status_document(&plan, &state, &p.completions(&id).await.unwrap());
    assert_eq!(doc["waves"][0]["jobs"][0]["state"], "skipped");
    assert_eq!(doc["waves"][1]["jobs"][0]["state"], "completed");

    let all_done = {
        let mut s = suite(vec![(1, OnFailure::Stop, None)]);
        s.waves[0].skipped = true;
        s
    };
    let id = p.submit(&all_done, dir.path()).await.unwrap();
    assert!(queued(&p).await.is_empty(), "nothing runs again");
    let ended = suite_completed(dir.path()).await;
    assert_eq!(ended["suite_run_id"], id.as_str());
    assert_eq!(ended["outcome"], "held", "{ended}");
    let (_, state) = p.load(&id).await.unwrap();
    assert_eq!(state.status, crate::fleet::outcome::SuiteStatus::Completed);
}

#[tokio::test]
async fn the_score_counts_every_wave_across_a_restart_and_unrun_jobs_as_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let first = ports(dir.path()).await;
    let waves = vec![
        (2, OnFailure::Continue, None),
        (1, OnFailure::Stop, None),
        (2, OnFailure::Stop, None),
    ];
    let id = first.submit(&suite(waves), dir.path()).await.unwrap();
    for (run, deviated) in [("w0-j0", false), ("w0-j1", true)] {
        first
            .complete(&id, run, done("completed", deviated))
            .await
            .unwrap();
    }
    drop(first);
    // a new producer: wave 0's outcomes are known only from the saved state's counts
    let second = ports(dir.path()).await;
    assert_eq!(
        second
            .complete(&id, "w1-j0", done("completed", true))
            .await
            .unwrap(),
        Some(id.clone()),
        "wave 1 deviated: halted"
    );
    let ended = suite_completed(dir.path()).await;
    assert_eq!(ended["status"], "halted", "{ended}");
    // 1 held, 2 deviated, 2 not run: floor(100 × 1 / 5)
    assert_eq!(ended["score"], 20, "{ended}");
    let (plan, state) = second.load(&id).await.unwrap();
    let tally = crate::fleet::producer::history::tally(&plan, &state);
    assert_eq!(
        (tally.held, tally.deviated, tally.failed, tally.not_run),
        (1, 2, 0, 2)
    );
}
