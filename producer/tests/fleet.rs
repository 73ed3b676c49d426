//! The fleet on the embedded backend: `producer run` in one process, and `producer serve` with
//! two `worker serve` processes, one of them SIGKILLed mid-run.

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const PRODUCER: &str = env!("CARGO_BIN_EXE_producer");

fn worker_bin() -> PathBuf {
    // the worker binary is built beside this one (same workspace target directory)
    let p = Path::new(PRODUCER).with_file_name("worker");
    assert!(
        p.exists(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        p.display()
    );
    p
}

/// An experiment whose hypothesis holds unless `flag` exists (so an action touching it deviates).
fn experiment(dir: &Path, name: &str, action: &str, flag: &str, rollback: &str) -> String {
    let doc = json!({"title": name, "description": "d",
        "steady-state-hypothesis": {"title": "h", "probes": [{"type": "probe", "name": "p", "tolerance": 0,
            "provider": {"type": "process", "path": "sh", "arguments": ["-c", format!("test ! -e {flag}")]}}]},
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "sh", "arguments": ["-c", action]}}],
        "rollbacks": [{"type": "action", "name": "revert", "provider": {"type": "process", "path": "sh", "arguments": ["-c", rollback]}}]});
    std::fs::write(dir.join(name), doc.to_string()).unwrap();
    name.to_string()
}

fn producer(args: &[&str], dir: &Path) -> Output {
    Command::new(PRODUCER)
        .args(args)
        .current_dir(dir)
        .env("BROKER_STATE_DIR", dir.join("state"))
        .output()
        .unwrap()
}

#[test]
fn producer_run_runs_every_wave_and_exits_0_when_all_held() {
    let dir = tempfile::tempdir().unwrap();
    let a = experiment(dir.path(), "a.json", "echo a >> ran", "no-flag", "true");
    std::fs::write(
        dir.path().join("s.yaml"),
        format!("name: held\nwaves:\n  - experiments: [{a}, {a}]\n  - experiments: [{a}]\n"),
    )
    .unwrap();
    let out = producer(&["run", "s.yaml", "--workers", "2"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("completed — held"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ran"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert_eq!(
        stdout.matches("journal.json").count(),
        3,
        "a journal path per job:\n{stdout}"
    );
}

#[test]
fn a_failed_wave_with_on_failure_stop_halts_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let bad = experiment(dir.path(), "bad.json", "touch bad-flag", "bad-flag", "true");
    let next = experiment(
        dir.path(),
        "next.json",
        "touch must-not-run",
        "no-flag",
        "true",
    );
    std::fs::write(
        dir.path().join("s.yaml"),
        format!(
            "waves:\n  - experiments: [{bad}]\n    on_failure: stop\n  - experiments: [{next}]\n"
        ),
    )
    .unwrap();
    let out = producer(&["run", "s.yaml"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("halted — deviated"), "{stdout}");
    assert!(!dir.path().join("must-not-run").exists());
}

fn spawn(cmd: &mut Command) -> Child {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn status(dir: &Path, id: &str) -> Value {
    let out = producer(&["status", id, "--json"], dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_suite_completes_when_a_worker_is_killed_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = experiment(
        d,
        "slow.json",
        &format!("echo acted >> {}; sleep 4", d.join("actions").display()),
        "no-flag",
        &format!("echo reverted >> {}", d.join("rollbacks").display()),
    );
    let quick = experiment(d, "quick.json", "true", "no-flag", "true");
    std::fs::write(d.join("s.yaml"), format!("name: crash\nwaves:\n  - experiments: [{slow}, {quick}]\n    on_failure: continue\n  - experiments: [{quick}]\n")).unwrap();
    let state = d.join("state");
    // an audit queue subscribed to completion events, beside the producer's own
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let audit = rt.block_on(async {
        let e = broker::config::Embedded::open(&state).await.unwrap();
        e.bus
            .subscribe("Experiment Completed", "audit")
            .await
            .unwrap();
        broker::adapters::embedded::SqliteQueue::new(
            broker::adapters::embedded::Db::open(&state.join("broker.db")).unwrap(),
            "audit",
            3,
        )
    });
    let worker = |d: &Path| {
        spawn(
            Command::new(worker_bin())
                .args([
                    "serve",
                    "--state-dir",
                    state.to_str().unwrap(),
                    "--visibility-timeout",
                    "2",
                    "--grace",
                    "2",
                ])
                .current_dir(d),
        )
    };
    let producer_serve = spawn(
        Command::new(PRODUCER)
            .args(["serve", "--state-dir", state.to_str().unwrap()])
            .current_dir(d),
    );
    let mut workers = vec![worker(d), worker(d)];
    let out = producer(&["submit", "s.yaml"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        id.starts_with("sr-") && !id.contains('\n'),
        "the run id is the only line: {id:?}"
    );

    // kill the worker running the slow experiment, once its action has started
    let started = state.join("store/runs").join(&id).join("w0-j0/started");
    let until = Instant::now() + Duration::from_secs(20);
    while !(started.exists() && d.join("actions").exists()) {
        assert!(Instant::now() < until, "the slow job never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let marker: Value = serde_json::from_str(&std::fs::read_to_string(&started).unwrap()).unwrap();
    let pid: u32 = marker["worker"]
        .as_str()
        .unwrap()
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let idx = workers
        .iter()
        .position(|w| w.id() == pid)
        .expect("one of our workers owns it");
    let mut victim = workers.remove(idx);
    victim.kill().unwrap();
    victim.wait().unwrap();

    let until = Instant::now() + Duration::from_secs(40);
    let doc = loop {
        let doc = status(d, &id);
        if doc["status"] != "running" {
            break doc;
        }
        assert!(Instant::now() < until, "the suite did not finish: {doc}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(doc["status"], "completed", "{doc}");
    assert_eq!(
        doc["outcome"], "failed",
        "the interrupted job is a failure: {doc}"
    );
    let jobs: Vec<&Value> = doc["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["jobs"].as_array().unwrap())
        .collect();
    assert_eq!(jobs.len(), 3);
    assert!(jobs.iter().all(|j| j["state"] == "completed"), "{doc}");
    assert_eq!(jobs[0]["status"], "interrupted");
    assert_eq!(
        std::fs::read_to_string(d.join("actions")).unwrap(),
        "acted\n",
        "the action ran once"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("rollbacks")).unwrap(),
        "reverted\n",
        "the rollback ran once"
    );
    for job in ["w0-j0", "w0-j1", "w1-j0"] {
        assert!(
            state
                .join("store/runs")
                .join(&id)
                .join(job)
                .join("journal.json")
                .exists(),
            "{job} has its journal"
        );
    }
    let events = rt.block_on(async {
        use broker::ports::JobQueue;
        audit
            .receive(100, Duration::from_secs(300), Duration::from_secs(1))
            .await
            .unwrap()
    });
    let mut runs: Vec<String> = events
        .iter()
        .map(|m| {
            serde_json::from_str::<Value>(&m.body).unwrap()["detail"]["run_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    runs.sort();
    assert_eq!(
        runs,
        ["w0-j0", "w0-j1", "w1-j0"],
        "exactly one completion event per job"
    );
    let text = String::from_utf8_lossy(&producer(&["status", &id], d).stdout).into_owned();
    assert!(
        text.contains(&format!("suite run {id} (crash): completed, failed")),
        "{text}"
    );

    for mut child in workers.into_iter().chain(std::iter::once(producer_serve)) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(0), "stopped cleanly");
    }
}
