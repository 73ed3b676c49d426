//! The fleet on the embedded backend: `producer run` in one process (to its end, or
//! interrupted), and `producer serve` with two `worker serve` processes, one of them SIGKILLed
//! mid-run.

use crate::util;

use std::path::Path;
use std::process::{Command, Output};
use util::PRODUCER;
use util::scenarios::experiment;

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

#[test]
fn an_interrupted_producer_run_rolls_back_and_exits_130() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let slow = experiment(
        dir.path(),
        "slow.json",
        "touch started; sleep 30",
        "no-flag",
        "echo reverted >> reverted",
    );
    std::fs::write(
        dir.path().join("s.yaml"),
        format!("name: slow\nwaves:\n  - experiments: [{slow}]\n"),
    )
    .unwrap();
    let run = Command::new(PRODUCER)
        .args(["run", "s.yaml"])
        .current_dir(dir.path())
        .env("BROKER_STATE_DIR", dir.path().join("state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while !dir.path().join("started").exists() {
        assert!(Instant::now() < until, "the experiment never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("interrupted — failed"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("reverted")).unwrap(),
        "reverted\n",
        "the running experiment was rolled back"
    );
}

#[test]
fn the_suite_completes_when_a_worker_is_killed_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let dep = util::Deployment::embedded(&dir.path().join("state"));
    util::scenarios::a_worker_killed_mid_run(&dep, dir.path());
}
