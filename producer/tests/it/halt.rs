//! The kill switch on the embedded backend: `producer halt` stops a running job (its rollbacks
//! run, its journal says why), jobs not yet started never start and are reported, and
//! `producer resume` clears the flag. The store's flag and the SSM parameter are written
//! independently: one failing does not keep the other from being written, and exits 2.

use crate::util;

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

/// The AWS SDK's environment pointed at `endpoint`, as a deployment's would be.
fn aws_env(c: &mut Command, endpoint: &str) {
    c.env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
}

/// The store's halt flag under `dir/state`.
fn store_flag(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("state/store/control/halt")).unwrap()).unwrap()
}

#[test]
fn halt_with_the_ssm_write_failing_still_writes_the_store_flag_and_reports_each() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // a port nothing listens on: every SSM call is refused
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    for (command, halted, state) in [("halt", true, "on"), ("resume", false, "off")] {
        let mut c = producer(d);
        c.arg(command)
            .env("BROKER_HALT_PARAMETER", "/broker-test/halt");
        aws_env(&mut c, &closed);
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("kill switch {state}: the store's flag"))
                && stderr.contains(&format!(
                    "error: kill switch NOT {state} in the SSM parameter"
                ))
                && stderr.contains("/broker-test/halt"),
            "{command}: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{command}: no success line on a partial write: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            store_flag(d)["halted"],
            halted,
            "{command}: the store's flag is written"
        );
    }
}

#[test]
fn halt_with_the_store_unwritable_still_sets_the_ssm_parameter_that_keeps_workers_from_starting() {
    let endpoint = std::env::var("BROKER_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("BROKER_TEST_AWS_ENDPOINT is not set: run the tests through scripts/test.sh (moto)")
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parameter = format!(
        "/broker-test/halt-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    // the state directory is under a plain file: the embedded store cannot be opened
    std::fs::write(d.join("file"), "").unwrap();
    let mut c = producer(d);
    c.args(["halt", "--reason", "store down"])
        .env("BROKER_STATE_DIR", d.join("file/state"))
        .env("BROKER_HALT_PARAMETER", &parameter);
    aws_env(&mut c, &endpoint);
    let out = c.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: kill switch NOT on in the store")
            && stderr.contains(&format!(
                "kill switch on: the SSM parameter {parameter} is written"
            )),
        "{stderr}"
    );

    // a lone worker run watching that parameter does not start
    let experiment = json!({"title": "watched", "description": "d",
        "method": [process("mark", "touch ran")]});
    std::fs::write(d.join("watched.json"), experiment.to_string()).unwrap();
    let mut w = Command::new(util::worker_bin());
    w.current_dir(d)
        .args(["run", "--journal-path", "journal.json", "watched.json"])
        .env("BROKER_STATE_DIR", d.join("worker-state"))
        .env("BROKER_HALT_PARAMETER", &parameter);
    aws_env(&mut w, &endpoint);
    let out = w.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal: Value =
        serde_json::from_slice(&std::fs::read(d.join("journal.json")).unwrap()).unwrap();
    assert_eq!(journal["broker"]["not_started"], true, "{journal}");
    assert!(
        journal["broker"]["stopped_by"]
            .as_str()
            .unwrap()
            .contains(&format!("SSM parameter {parameter} is true")),
        "{journal}"
    );
    assert!(!d.join("ran").exists(), "nothing ran under the halt");
}
