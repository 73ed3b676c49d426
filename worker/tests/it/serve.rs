//! `worker serve` on the embedded backend: real processes sharing one state directory.

use serde_json::{Value, json};
use shared::config::Embedded;
use shared::model::suite::Job;
use shared::ports::{Event, JobQueue, ObjectStore};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub(crate) fn worker(state: &Path, cwd: &Path, visibility: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .args([
            "serve",
            "--state-dir",
            state.to_str().unwrap(),
            "--visibility-timeout",
            visibility,
            "--grace",
            "5",
        ])
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn job(run_id: &str, experiment: &Path) -> String {
    serde_json::to_string(&Job {
        version: Job::VERSION,
        suite_run_id: "sr-test".into(),
        wave: 0,
        run_id: run_id.into(),
        experiment_source: experiment.to_str().unwrap().into(),
        bucket_name: None,
        experiment_version: None,
        traceparent: None,
        settings: Default::default(),
    })
    .unwrap()
}

fn experiment(dir: &Path, name: &str, action: &str, rollback: &str) -> PathBuf {
    let path = dir.join(name);
    let doc = json!({"title": name, "description": "d",
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "sh", "arguments": ["-c", action]}}],
        "rollbacks": [{"type": "action", "name": "revert", "provider": {"type": "process", "path": "sh", "arguments": ["-c", rollback]}}]});
    std::fs::write(&path, doc.to_string()).unwrap();
    path
}

/// Completion events for the given run ids, waiting until all arrived; then checks none more.
pub(crate) async fn completions(e: &Embedded, expected: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let until = Instant::now() + Duration::from_secs(40);
    while got.len() < expected {
        assert!(
            Instant::now() < until,
            "only {} of {expected} completion events: {got:?}",
            got.len()
        );
        for m in e
            .events
            .receive(10, Duration::from_secs(300), Duration::from_millis(300))
            .await
            .unwrap()
        {
            let event: Event = serde_json::from_str(&m.body).unwrap();
            assert_eq!(event.detail_type, "Experiment Completed");
            got.push(event.detail);
        }
    }
    let extra = e
        .events
        .receive(10, Duration::from_secs(300), Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        extra.is_empty(),
        "more completion events than jobs: {extra:?}"
    );
    got
}

pub(crate) fn terminate(mut child: Child) -> Option<i32> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap().code()
}

#[tokio::test]
async fn every_job_ends_in_one_journal_and_one_event_even_a_malformed_one() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let e = Embedded::open(&state).await.unwrap();
    let ok = experiment(dir.path(), "ok.json", "true", "true");
    let mut bodies: Vec<String> = (0..3).map(|i| job(&format!("r{i}"), &ok)).collect();
    bodies.push("{not a job".into());
    bodies.push(job("missing", &dir.path().join("no-such-experiment.json")));
    e.jobs.send_batch(&bodies).await.unwrap();
    let w = worker(&state, dir.path(), "10");
    let events = completions(&e, 5).await;
    assert_eq!(
        terminate(w),
        Some(0),
        "a worker asked to stop exits cleanly"
    );
    let status_of = |run: &str| {
        events
            .iter()
            .find(|d| d["run_id"] == run)
            .map(|d| d["status"].clone())
    };
    for run in ["r0", "r1", "r2"] {
        assert_eq!(status_of(run), Some(json!("completed")), "{run}");
        let journal = e
            .store
            .get(&format!("runs/sr-test/{run}/journal.json"))
            .await
            .unwrap()
            .expect("journal");
        let journal: Value = serde_json::from_slice(&journal).unwrap();
        assert_eq!(journal["status"], "completed");
    }
    assert_eq!(status_of("missing"), Some(json!("failed")));
    let missing: Value = serde_json::from_slice(
        &e.store
            .get("runs/sr-test/missing/journal.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(
        missing["broker"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot read"),
        "{missing}"
    );
    let malformed = events
        .iter()
        .find(|d| d["journal_key"].as_str().unwrap().starts_with("malformed/"))
        .expect("malformed event");
    assert_eq!(malformed["status"], "failed");
    // every message was acked: nothing comes back, nothing is dead
    assert!(
        e.jobs
            .receive(10, Duration::from_secs(1), Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(e.jobs.dead_letters().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_killed_workers_job_is_reverted_by_another_not_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let e = Embedded::open(&state).await.unwrap();
    let (actions, rollbacks) = (dir.path().join("actions"), dir.path().join("rollbacks"));
    let exp = experiment(
        dir.path(),
        "long.json",
        &format!("echo acted >> {}; sleep 6", actions.display()),
        &format!("echo reverted >> {}", rollbacks.display()),
    );
    let mut workers = vec![
        worker(&state, dir.path(), "2"),
        worker(&state, dir.path(), "2"),
    ];
    e.jobs.send_batch(&[job("victim", &exp)]).await.unwrap();
    // wait until one worker has started the run, and find which
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
    let owner_pid: u32 = marker["worker"]
        .as_str()
        .unwrap()
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let idx = workers
        .iter()
        .position(|w| w.id() == owner_pid)
        .expect("the owner is one of ours");
    let mut victim = workers.remove(idx);
    victim.kill().unwrap(); // SIGKILL: no rollbacks, no journal, no ack from this one
    victim.wait().unwrap();

    let events = completions(&e, 1).await;
    assert_eq!(events[0]["run_id"], "victim");
    assert_eq!(events[0]["status"], "interrupted");
    let journal: Value = serde_json::from_slice(
        &e.store
            .get("runs/sr-test/victim/journal.json")
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(journal["status"], "interrupted");
    assert_eq!(journal["broker"]["revert_only"], true);
    assert_eq!(journal["run"], json!([]), "the method did not run again");
    assert_eq!(
        std::fs::read_to_string(&actions).unwrap(),
        "acted\n",
        "the action ran once"
    );
    assert_eq!(
        std::fs::read_to_string(&rollbacks).unwrap(),
        "reverted\n",
        "the rollback ran once"
    );
    for w in workers {
        assert_eq!(terminate(w), Some(0));
    }
}

#[tokio::test]
async fn sigterm_gives_running_jobs_their_grace_then_interrupts_and_reverts_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let e = Embedded::open(&state).await.unwrap();
    let rollbacks = dir.path().join("rollbacks");
    let exp = experiment(
        dir.path(),
        "long.json",
        "sleep 30",
        &format!("echo reverted >> {}", rollbacks.display()),
    );
    e.jobs.send_batch(&[job("long", &exp)]).await.unwrap();
    let w = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args([
            "serve",
            "--state-dir",
            state.to_str().unwrap(),
            "--grace",
            "1",
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while e
        .store
        .get("runs/sr-test/long/started")
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < until, "the job never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    assert_eq!(terminate(w), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 30 s action was cut after the grace"
    );
    let events = completions(&e, 1).await;
    assert_eq!(events[0]["status"], "interrupted");
    assert_eq!(std::fs::read_to_string(&rollbacks).unwrap(), "reverted\n");
    assert!(
        e.jobs
            .receive(1, Duration::from_secs(1), Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty(),
        "acked"
    );
}

#[tokio::test]
async fn a_copy_of_a_running_job_neither_runs_nor_reverts_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let e = Embedded::open(&state).await.unwrap();
    let (actions, rollbacks) = (dir.path().join("actions"), dir.path().join("rollbacks"));
    let exp = experiment(
        dir.path(),
        "long.json",
        &format!("echo acted >> {}; sleep 2", actions.display()),
        &format!("echo reverted >> {}", rollbacks.display()),
    );
    let workers = vec![
        worker(&state, dir.path(), "10"),
        worker(&state, dir.path(), "10"),
    ];
    // the same job sent twice (a producer retry, SQS at-least-once): two messages, one run
    e.jobs.send_batch(&[job("twice", &exp)]).await.unwrap();
    let until = Instant::now() + Duration::from_secs(20);
    while !actions.exists() {
        assert!(Instant::now() < until, "the action never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    e.jobs.send_batch(&[job("twice", &exp)]).await.unwrap();
    let events = completions(&e, 1).await;
    assert_eq!(events[0]["status"], "completed", "{events:?}");
    // the copy was acked without a run: nothing is left on the queue once the owner is done
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let left = e
            .jobs
            .receive(1, Duration::from_secs(30), Duration::ZERO)
            .await
            .unwrap();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < until, "a message stayed on the queue");
    }
    assert_eq!(
        std::fs::read_to_string(&actions).unwrap(),
        "acted\n",
        "the action ran once"
    );
    assert_eq!(
        std::fs::read_to_string(&rollbacks).unwrap(),
        "reverted\n",
        "the rollback ran once, at the end"
    );
    for w in workers {
        assert_eq!(terminate(w), Some(0));
    }
}

#[test]
fn a_visibility_timeout_above_12_hours_is_refused_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for (how, value) in [("flag", Some("86400")), ("environment", None)] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_worker"));
        cmd.args(["serve", "--state-dir", state.to_str().unwrap()])
            .current_dir(dir.path())
            .env("BROKER_VISIBILITY_TIMEOUT", "43201");
        if let Some(v) = value {
            cmd.args(["--visibility-timeout", v]);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{how}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "`{}` is more than 43200 seconds (12 hours), the longest lease SQS grants",
                value.unwrap_or("43201")
            )),
            "{how}: {stderr}"
        );
        assert!(!state.exists(), "{how}: nothing was served");
    }
}

/// A worker on `state` with extra environment variables.
fn worker_with_env(state: &Path, cwd: &Path, visibility: &str, env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_worker"));
    command
        .args([
            "serve",
            "--state-dir",
            state.to_str().unwrap(),
            "--visibility-timeout",
            visibility,
            "--grace",
            "5",
        ])
        .current_dir(cwd)
        .env_remove("BROKER_TEST_REVERT_NEEDS")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
}

/// An experiment acting in two steps (the first quick, the second long) whose configuration
/// needs an environment variable, and whose rollback appends `revert_line` to `rollbacks`.
fn two_step_experiment(path: &Path, actions: &Path, rollbacks: &Path, revert_line: &str) {
    let sh = |name: &str, script: String| json!({"type": "action", "name": name, "provider": {"type": "process", "path": "sh", "arguments": ["-c", script]}});
    let doc = json!({"title": "two steps", "description": "d",
        "configuration": {"needed": {"type": "env", "key": "BROKER_TEST_REVERT_NEEDS"}},
        "method": [
            sh("inject", format!("echo acted >> {}", actions.display())),
            sh("hold", "sleep 60".into()),
        ],
        "rollbacks": [sh("revert", format!("echo {revert_line} >> {}", rollbacks.display()))]});
    std::fs::write(path, doc.to_string()).unwrap();
}

#[tokio::test]
async fn a_revert_carries_the_dead_owners_runs_and_plays_the_rollbacks_it_claimed_whatever_became_of_the_source()
 {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let e = Embedded::open(&state).await.unwrap();
    // two jobs: the source of one is edited after the claim, the other's deleted
    let (edited, deleted) = (
        dir.path().join("edited.json"),
        dir.path().join("deleted.json"),
    );
    let files = |name: &str| {
        (
            dir.path().join(format!("{name}-actions")),
            dir.path().join(format!("{name}-rollbacks")),
        )
    };
    for (path, name) in [(&edited, "edited"), (&deleted, "deleted")] {
        let (actions, rollbacks) = files(name);
        two_step_experiment(path, &actions, &rollbacks, "reverted");
    }
    let mut owner = worker_with_env(
        &state,
        dir.path(),
        "2",
        &[("BROKER_TEST_REVERT_NEEDS", "x")],
    );
    e.jobs
        .send_batch(&[job("edited", &edited), job("deleted", &deleted)])
        .await
        .unwrap();
    // wait until both runs have their first step on record, then kill the owner mid-method
    let until = Instant::now() + Duration::from_secs(30);
    for run in ["edited", "deleted"] {
        loop {
            let checkpoint = e
                .store
                .get(&format!("runs/sr-test/{run}/checkpoint.json"))
                .await
                .unwrap()
                .map(|b| serde_json::from_slice::<Value>(&b).unwrap());
            if checkpoint.is_some_and(|c| c["run"].as_array().is_some_and(|r| r.len() == 1)) {
                break;
            }
            assert!(
                Instant::now() < until,
                "{run}: the first step never got on record"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    owner.kill().unwrap(); // SIGKILL: no rollbacks, no journal, no ack
    owner.wait().unwrap();
    // after the claim: one source now says something else, the other is gone
    let (edited_actions, _) = files("edited");
    let (_, elsewhere) = files("elsewhere");
    two_step_experiment(&edited, &edited_actions, &elsewhere, "edited-rollback");
    std::fs::remove_file(&deleted).unwrap();

    // the new owner lacks the environment variable the configuration names
    let reverter = worker_with_env(&state, dir.path(), "2", &[]);
    let events = completions(&e, 2).await;
    for run in ["edited", "deleted"] {
        let event = events.iter().find(|d| d["run_id"] == run).unwrap();
        assert_eq!(event["status"], "interrupted", "{run}: {event}");
        let journal: Value = serde_json::from_slice(
            &e.store
                .get(&format!("runs/sr-test/{run}/journal.json"))
                .await
                .unwrap()
                .unwrap(),
        )
        .unwrap();
        let names = |list: &str| -> Vec<String> {
            journal[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["activity"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names("run"),
            ["inject"],
            "{run}: the dead owner's run is kept: {journal:#}"
        );
        assert_eq!(names("rollbacks"), ["revert"], "{run}: {journal:#}");
        assert_eq!(journal["rollbacks"][0]["status"], "succeeded", "{run}");
        assert_eq!(journal["broker"]["revert_only"], true);
        assert!(
            journal["broker"]["revert_without"][0]
                .as_str()
                .is_some_and(|p| p.contains("configuration.needed")),
            "{run}: the journal says what the revert went without: {journal:#}"
        );
        let (actions, rollbacks) = files(run);
        assert_eq!(
            std::fs::read_to_string(&actions).unwrap(),
            "acted\n",
            "{run}: acted once"
        );
        assert_eq!(
            std::fs::read_to_string(&rollbacks).unwrap(),
            "reverted\n",
            "{run}: the rollback of the text it ran, once"
        );
    }
    assert!(
        !elsewhere.exists(),
        "the edited source's rollback did not run"
    );
    assert_eq!(terminate(reverter), Some(0));
}

#[tokio::test]
async fn a_strict_suites_job_fails_on_the_experiments_warnings_and_the_same_job_not_strict_runs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let e = Embedded::open(&state).await.unwrap();
    // valid for the reference, but `descripton` is an unknown key: a warning
    let path = dir.path().join("warned.json");
    let doc = json!({"title": "warned", "description": "d", "descripton": "typo",
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "true"}}]});
    std::fs::write(&path, doc.to_string()).unwrap();
    let strict: Value = {
        let mut j: Value = serde_json::from_str(&job("strict", &path)).unwrap();
        j["strict"] = json!(true); // the job's settings sit at the message's top level
        j
    };
    e.jobs
        .send_batch(&[strict.to_string(), job("lenient", &path)])
        .await
        .unwrap();
    let w = worker(&state, dir.path(), "10");
    let events = completions(&e, 2).await;
    assert_eq!(terminate(w), Some(0));
    let strict = journal_of(&e, "strict").await;
    assert_eq!(strict["status"], "failed", "{strict}");
    let error = strict["broker"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("invalid experiment") && error.contains("descripton"),
        "{strict}"
    );
    let lenient = journal_of(&e, "lenient").await;
    assert_eq!(lenient["status"], "completed", "{lenient}");
    assert!(
        lenient["broker"]["warnings"]
            .to_string()
            .contains("descripton"),
        "the warning is kept in the journal: {lenient}"
    );
    assert_eq!(events.len(), 2);
}

/// The journal of run `run` of suite run `sr-test`.
async fn journal_of(e: &Embedded, run: &str) -> Value {
    let bytes = e
        .store
        .get(&format!("runs/sr-test/{run}/journal.json"))
        .await
        .unwrap()
        .expect("journal");
    serde_json::from_slice(&bytes).unwrap()
}
