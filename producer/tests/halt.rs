//! The kill switch on the embedded backend: `producer halt` stops a running job (its rollbacks
//! run, its journal says why), jobs not yet started never start and are reported, and
//! `producer resume` clears the flag.

mod util;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use util::PRODUCER;

fn producer(dir: &Path) -> Command {
    let mut c = Command::new(PRODUCER);
    c.current_dir(dir)
        .env("BROKER_STATE_DIR", dir.join("state"));
    for (k, _) in std::env::vars() {
        if k.starts_with("BROKER_") && k != "BROKER_WORKER_BIN" {
            c.env_remove(k);
        }
    }
    c.env("BROKER_STATE_DIR", dir.join("state"));
    c
}

fn process(name: &str, script: &str) -> Value {
    json!({"type": "action", "name": name,
        "provider": {"type": "process", "path": "sh", "arguments": ["-c", script]}})
}

fn journals(dir: &Path) -> Vec<(PathBuf, Value)> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.file_name().is_some_and(|n| n == "journal.json") {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&dir.join("state"), &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p, v)
        })
        .collect()
}

#[test]
fn halt_stops_the_running_job_with_its_rollbacks_and_starts_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = json!({"title": "long", "description": "d",
        "method": [process("start", "touch started"), process("wait", "sleep 30")],
        "rollbacks": [process("revert", "echo reverted >> reverted")]});
    let next = json!({"title": "next", "description": "d",
        "method": [process("b", "echo b >> ran-b")]});
    std::fs::write(d.join("long.json"), long.to_string()).unwrap();
    std::fs::write(d.join("next.json"), next.to_string()).unwrap();
    std::fs::write(
        d.join("s.yaml"),
        "name: halted\nwaves:\n  - experiments: [long.json]\n  - experiments: [next.json]\n",
    )
    .unwrap();
    let run = producer(d)
        .args(["run", "s.yaml", "--workers", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while !d.join("started").exists() {
        assert!(Instant::now() < until, "the long experiment never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let halted_at = Instant::now();
    let out = producer(d)
        .args(["halt", "--reason", "incident 42"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("halted (incident 42)"));

    let out = run.wait_with_output().unwrap();
    let stopped_after = halted_at.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not held: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stopped_after < Duration::from_secs(20),
        "stopped by the halt, not by the end of sleep 30 ({stopped_after:?})"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("reverted")).unwrap(),
        "reverted\n",
        "rollbacks ran once"
    );
    assert!(!d.join("ran-b").exists(), "the next wave's job never ran");

    let journals = journals(d);
    let long = journals
        .iter()
        .find(|(_, j)| j["experiment"]["title"] == "long")
        .map(|(_, j)| j)
        .expect("the long experiment's journal");
    assert_eq!(long["status"], "interrupted");
    assert!(
        long["broker"]["stopped_by"]
            .as_str()
            .unwrap()
            .contains("kill switch is on (producer halt: incident 42)"),
        "{}",
        long["broker"]
    );
    assert_eq!(long["rollbacks"][0]["status"], "succeeded");
    // the next job is reported not started, if the suite went on to release it
    for (path, j) in &journals {
        if j["experiment"]["title"] != "long" {
            assert_eq!(j["broker"]["not_started"], true, "{}: {j}", path.display());
            assert_eq!(j["status"], "interrupted");
            assert!(j["run"].as_array().unwrap().is_empty());
        }
    }

    // resume clears the flag: the same suite runs to the end
    let out = producer(d).args(["resume"]).output().unwrap();
    assert!(out.status.success());
    let flag: Value = serde_json::from_slice(
        &std::fs::read(d.join("state/store/control/halt")).unwrap_or_else(|_| {
            // the store's layout is the embedded adapter's; find the flag wherever it is
            let found = std::process::Command::new("find")
                .arg(d.join("state"))
                .args(["-path", "*control/halt"])
                .output()
                .unwrap();
            std::fs::read(String::from_utf8_lossy(&found.stdout).trim()).unwrap()
        }),
    )
    .unwrap();
    assert_eq!(flag["halted"], false);
    std::fs::write(d.join("quick.json"), next.to_string()).unwrap();
    std::fs::write(
        d.join("q.yaml"),
        "name: resumed\nwaves:\n  - experiments: [quick.json]\n",
    )
    .unwrap();
    let out = producer(d)
        .args(["run", "q.yaml", "--workers", "1"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(d.join("ran-b")).unwrap(), "b\n");
}
