//! `worker serve` never blocks on a job: a Python module that is slow to import (or never
//! finishes importing) while its experiment is validated costs that job alone. The other jobs of
//! the same worker keep their leases (their heartbeats beat on), run once and complete; a hung
//! import is stopped at the signature timeout and becomes that job's located validation error.
//! Real `worker serve` processes on one embedded fleet (SQLite queue, directory store).

use serde_json::{Value, json};
use shared::config::Embedded;
use shared::model::suite::Job;
use shared::ports::{Event, JobQueue, ObjectStore};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `worker serve` on `state` with a 2 s lease (renewed every ~0.7 s): a runtime frozen for
/// longer loses its leases. Python finds its modules in `pylib`; its log goes to `log`.
fn worker(state: &Path, pylib: &Path, log: &Path, env: &[(&str, &str)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_worker"));
    command
        .args(["serve", "--state-dir", state.to_str().unwrap()])
        .args([
            "--visibility-timeout",
            "2",
            "--grace",
            "5",
            "--concurrency",
            "4",
        ])
        .current_dir(state.parent().unwrap())
        .env("RUST_LOG", "info")
        .env("PYTHONPATH", pylib)
        .env_remove("BROKER_SIGNATURE_TIMEOUT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().unwrap()
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

fn sh(name: &str, script: String) -> Value {
    json!({"type": "action", "name": name, "provider": {"type": "process", "path": "sh", "arguments": ["-c", script]}})
}

/// An experiment of process actions; its rollback appends `reverted` to `rollbacks`.
fn shell_experiment(path: &Path, method: Vec<Value>, rollbacks: &Path) {
    let doc = json!({"title": "beside", "description": "d", "method": method,
        "rollbacks": [sh("revert", format!("echo reverted >> {}", rollbacks.display()))]});
    std::fs::write(path, doc.to_string()).unwrap();
}

/// The next `n` completion events, in the order they were published.
async fn completions(e: &Embedded, n: usize, within: Duration, logs: &[&Path]) -> Vec<Value> {
    let mut got = Vec::new();
    let until = Instant::now() + within;
    while got.len() < n {
        assert!(
            Instant::now() < until,
            "only {} of {n} completion events: {got:?}\nlogs:\n{}",
            got.len(),
            logs.iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        );
        for m in e
            .events
            .receive(1, Duration::from_secs(300), Duration::from_millis(200))
            .await
            .unwrap()
        {
            let event: Event = serde_json::from_str(&m.body).unwrap();
            got.push(event.detail);
        }
    }
    got
}

async fn stored_json(e: &Embedded, key: &str) -> Option<Value> {
    e.store
        .get(key)
        .await
        .unwrap()
        .map(|b| serde_json::from_slice(&b).unwrap())
}

/// The worker that claimed `run` (its `started` marker).
async fn owner(e: &Embedded, run: &str) -> String {
    let marker = stored_json(e, &format!("runs/sr-test/{run}/started"))
        .await
        .unwrap();
    marker["worker"].as_str().unwrap().to_string()
}

async fn wait_for(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let until = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < until, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn terminate(mut child: Child) -> Option<i32> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap().code()
}

#[tokio::test]
async fn a_slow_import_in_one_job_leaves_the_other_job_of_its_worker_its_lease_and_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let (state, pylib) = (dir.path().join("state"), dir.path().join("pylib"));
    std::fs::create_dir(&pylib).unwrap();
    let e = Embedded::open(&state).await.unwrap();
    // the first import (the signature check's) takes 20 s; the run's import is quick
    let importing = pylib.join("importing");
    std::fs::write(
        pylib.join("slowmod.py"),
        format!(
            "import os, time\n\
             if not os.path.exists({flag:?}):\n    open({flag:?}, 'w').close()\n    time.sleep(20)\n\
             def probe():\n    return 'imported'\n",
            flag = importing.display().to_string()
        ),
    )
    .unwrap();
    let slow = dir.path().join("slow.json");
    let doc = json!({"title": "slow", "description": "d", "method": [
        {"type": "probe", "name": "slow", "provider": {"type": "python", "module": "slowmod", "func": "probe"}}]});
    std::fs::write(&slow, doc.to_string()).unwrap();
    let (acted, reverted) = (dir.path().join("acted"), dir.path().join("reverted"));
    let beside = dir.path().join("beside.json");
    shell_experiment(
        &beside,
        vec![
            sh("act", format!("echo acted >> {}", acted.display())),
            sh("hold", "sleep 6".into()),
        ],
        &reverted,
    );
    let logs = [dir.path().join("w1.log"), dir.path().join("w2.log")];
    let log_refs: Vec<&Path> = logs.iter().map(|l| l.as_path()).collect();

    // one worker takes the job beside, then the slow one; a second worker stands by to take
    // over whatever lease the first one loses
    let first = worker(&state, &pylib, &logs[0], &[]);
    e.jobs.send_batch(&[job("beside", &beside)]).await.unwrap();
    wait_for(
        "the job beside acting",
        Duration::from_secs(20),
        async || acted.exists(),
    )
    .await;
    e.jobs.send_batch(&[job("slow", &slow)]).await.unwrap();
    wait_for(
        "the slow import starting",
        Duration::from_secs(20),
        async || importing.exists(),
    )
    .await;
    let second = worker(&state, &pylib, &logs[1], &[]);

    let events = completions(&e, 2, Duration::from_secs(60), &log_refs).await;
    let first_id = owner(&e, "beside").await;
    assert_eq!(
        owner(&e, "slow").await,
        first_id,
        "one worker took both jobs"
    );
    assert_eq!(
        events
            .iter()
            .map(|d| d["run_id"].clone())
            .collect::<Vec<_>>(),
        ["beside", "slow"],
        "the job beside completed while the slow import went on: {events:#?}"
    );
    for event in &events {
        assert_eq!(event["status"], "completed", "{event}");
        assert_eq!(
            event["worker"],
            first_id.as_str(),
            "kept its lease: {event}"
        );
        let run = event["run_id"].as_str().unwrap();
        let journal = stored_json(&e, &format!("runs/sr-test/{run}/journal.json"))
            .await
            .unwrap();
        assert_ne!(journal["broker"]["revert_only"], true, "{run}: {journal:#}");
    }
    assert_eq!(
        std::fs::read_to_string(&acted).unwrap(),
        "acted\n",
        "the job beside ran its method once"
    );
    assert_eq!(std::fs::read_to_string(&reverted).unwrap(), "reverted\n");
    let slow_journal = stored_json(&e, "runs/sr-test/slow/journal.json")
        .await
        .unwrap();
    assert_eq!(slow_journal["run"][0]["output"], "imported");
    // nothing was left to come back or to die
    assert!(
        e.jobs
            .receive(1, Duration::from_secs(1), Duration::from_millis(500))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(e.jobs.dead_letters().await.unwrap().is_empty());
    assert_eq!(terminate(first), Some(0));
    assert_eq!(terminate(second), Some(0));
}

#[tokio::test]
async fn an_import_that_hangs_past_the_signature_timeout_fails_its_job_alone_and_the_worker_serves_on()
 {
    let dir = tempfile::tempdir().unwrap();
    let (state, pylib) = (dir.path().join("state"), dir.path().join("pylib"));
    std::fs::create_dir(&pylib).unwrap();
    let e = Embedded::open(&state).await.unwrap();
    let pid_file = pylib.join("pid");
    std::fs::write(
        pylib.join("hangmod.py"),
        format!(
            "import os, time\nopen({pid:?}, 'w').write(str(os.getpid()))\ntime.sleep(3600)\n\
             def inject():\n    pass\n",
            pid = pid_file.display().to_string()
        ),
    )
    .unwrap();
    let hangs = dir.path().join("hangs.yaml");
    std::fs::write(
        &hangs,
        "title: hangs\ndescription: d\nmethod:\n  - type: action\n    name: inject\n    provider:\n      type: python\n      module: hangmod\n      func: inject\n",
    )
    .unwrap();
    let (acted, reverted) = (dir.path().join("acted"), dir.path().join("reverted"));
    let beside = dir.path().join("beside.json");
    shell_experiment(
        &beside,
        vec![sh("act", format!("echo acted >> {}", acted.display()))],
        &reverted,
    );
    let log = dir.path().join("w.log");
    let w = worker(&state, &pylib, &log, &[("BROKER_SIGNATURE_TIMEOUT", "3")]);
    e.jobs
        .send_batch(&[job("hangs", &hangs), job("beside", &beside)])
        .await
        .unwrap();
    let events = completions(&e, 2, Duration::from_secs(40), &[&log]).await;
    let status = |run: &str| {
        events
            .iter()
            .find(|d| d["run_id"] == run)
            .map(|d| d["status"].clone())
    };
    assert_eq!(status("beside"), Some(json!("completed")), "{events:#?}");
    assert_eq!(status("hangs"), Some(json!("failed")), "{events:#?}");
    let journal = stored_json(&e, "runs/sr-test/hangs/journal.json")
        .await
        .unwrap();
    let error = journal["broker"]["error"].as_str().unwrap();
    let at = format!("{}:", hangs.display());
    for part in [
        at.as_str(),
        "method[0].provider: checking `hangmod.inject` against its signature did not finish within the signature timeout of 3 s",
        "importing `hangmod`",
    ] {
        assert!(error.contains(part), "{part}: {error}");
    }
    assert!(journal["run"].as_array().unwrap().is_empty(), "nothing ran");
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "the hung import was killed"
    );
    // the worker serves on
    let after = dir.path().join("after.json");
    shell_experiment(
        &after,
        vec![sh("act", format!("echo after >> {}", acted.display()))],
        &reverted,
    );
    e.jobs.send_batch(&[job("after", &after)]).await.unwrap();
    let events = completions(&e, 1, Duration::from_secs(20), &[&log]).await;
    assert_eq!(events[0]["run_id"], "after");
    assert_eq!(events[0]["status"], "completed");
    assert_eq!(std::fs::read_to_string(&acted).unwrap(), "acted\nafter\n");
    assert_eq!(terminate(w), Some(0));
}
