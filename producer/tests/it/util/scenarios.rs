//! Fleet scenarios that must hold on every backend.

use super::{Deployment, PRODUCER, worker_bin};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// An experiment whose hypothesis holds unless `flag` exists (so an action touching it deviates).
pub fn experiment(dir: &Path, name: &str, action: &str, flag: &str, rollback: &str) -> String {
    let doc = json!({"title": name, "description": "d",
        "steady-state-hypothesis": {"title": "h", "probes": [{"type": "probe", "name": "p", "tolerance": 0,
            "provider": {"type": "process", "path": "sh", "arguments": ["-c", format!("test ! -e {flag}")]}}]},
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "sh", "arguments": ["-c", action]}}],
        "rollbacks": [{"type": "action", "name": "revert", "provider": {"type": "process", "path": "sh", "arguments": ["-c", rollback]}}]});
    std::fs::write(dir.join(name), doc.to_string()).unwrap();
    name.to_string()
}

fn spawn(cmd: &mut std::process::Command) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `worker serve` with short leases, so a killed worker's job comes back quickly, running one
/// job at a time, so a killed worker takes down exactly the job the test aims at (a kill in
/// the instant between another job's event and its ack would duplicate that event: events
/// are at least once, see the README).
pub fn worker(dep: &Deployment, dir: &Path) -> Child {
    spawn(dep.command(worker_bin(), dir).args([
        "serve",
        "--concurrency",
        "1",
        "--visibility-timeout",
        "2",
        "--grace",
        "2",
    ]))
}

pub fn producer_serve(dep: &Deployment, dir: &Path) -> Child {
    spawn(dep.command(PRODUCER, dir).arg("serve"))
}

/// SIGTERM every process and expect a clean exit.
pub fn stop(children: Vec<Child>) {
    for mut child in children {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(0), "stopped cleanly");
    }
}

/// The run ids of the "Experiment Completed" events of suite run `id`, sorted.
pub fn completed_runs(events: &[Value], id: &str) -> Vec<String> {
    let mut runs: Vec<String> = events
        .iter()
        .filter(|e| e["detail-type"] == "Experiment Completed" && e["detail"]["suite_run_id"] == id)
        .map(|e| e["detail"]["run_id"].as_str().unwrap().to_string())
        .collect();
    runs.sort();
    runs
}

/// `producer serve` and two `worker serve` processes; the worker running the slow experiment
/// is SIGKILLed during its action. The suite still completes; the killed job is
/// `interrupted`; its action ran once and its rollback once; every job has one journal and
/// one completion event.
pub fn a_worker_killed_mid_run(dep: &Deployment, d: &Path) {
    let slow = experiment(
        d,
        "slow.json",
        &format!("echo acted >> {}; sleep 4", d.join("actions").display()),
        "no-flag",
        &format!("echo reverted >> {}", d.join("rollbacks").display()),
    );
    let quick = experiment(d, "quick.json", "true", "no-flag", "true");
    std::fs::write(d.join("s.yaml"), format!("name: crash\nwaves:\n  - experiments: [{slow}, {quick}]\n    on_failure: continue\n  - experiments: [{quick}]\n")).unwrap();
    let serving = producer_serve(dep, d);
    let mut workers = vec![worker(dep, d), worker(dep, d)];
    let out = dep.producer(&["submit", "s.yaml"], d);
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
    let started_key = format!("runs/{id}/w0-j0/started");
    let until = Instant::now() + Duration::from_secs(30);
    let marker = loop {
        if let Some(bytes) = dep.get(&started_key)
            && d.join("actions").exists()
        {
            break bytes;
        }
        assert!(Instant::now() < until, "the slow job never started");
        std::thread::sleep(Duration::from_millis(50));
    };
    let marker: Value = serde_json::from_slice(&marker).unwrap();
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

    let doc = dep.wait_for_end(d, &id);
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
            dep.get(&format!("runs/{id}/{job}/journal.json")).is_some(),
            "{job} has its journal"
        );
    }
    let events = dep.audit_until("the suite's completion", |events| {
        events.iter().any(|e| {
            e["detail-type"] == "Suite Completed" && e["detail"]["suite_run_id"] == id.as_str()
        })
    });
    // a late duplicate would arrive within a lease: look a little longer
    let mut events = events;
    events.extend(dep.audit_until("a quiet moment", |_| true));
    assert_eq!(
        completed_runs(&events, &id),
        ["w0-j0", "w0-j1", "w1-j0"],
        "exactly one completion event per job"
    );
    let text = String::from_utf8_lossy(&dep.producer(&["status", &id], d).stdout).into_owned();
    assert!(
        text.contains(&format!("suite run {id} (crash): completed, failed")),
        "{text}"
    );
    workers.push(serving);
    stop(workers);
}
