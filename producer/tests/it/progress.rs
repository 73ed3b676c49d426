//! What `producer run` says as it goes and at its end, as a user sees it: without a terminal
//! (CI, a pipe) a plain line per wave and per finished job; on a terminal the same lines above
//! the progress bar; the closing table with its header, titles, durations and totals; and
//! Ctrl-C, which interrupts the running job (its rollback runs), marks the suite run
//! `interrupted` and exits 130.

use crate::util;

use serde_json::Value;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use util::PRODUCER;
use util::scenarios::experiment;

fn producer(dir: &Path) -> Command {
    let mut c = Command::new(PRODUCER);
    c.current_dir(dir)
        .env("BROKER_STATE_DIR", dir.join("state"))
        .env_remove("BROKER_LOG_FORMAT")
        .env_remove("RUST_LOG");
    c
}

#[test]
fn without_a_terminal_each_wave_and_job_gets_a_line_and_the_run_ends_with_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let held = experiment(d, "holds.json", "true", "no-flag", "true");
    let deviates = experiment(d, "deviates.json", "touch dev-flag", "dev-flag", "true");
    let after = experiment(d, "after.json", "true", "no-flag", "true");
    std::fs::write(
        d.join("s.yaml"),
        format!(
            "name: lines\nwaves:\n  - experiments: [{held}, {deviates}]\n    on_failure: continue\n  - experiments: [{after}]\n"
        ),
    )
    .unwrap();
    let out = producer(d).args(["run", "s.yaml"]).output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stderr.contains('\r'), "no bar is drawn: {stderr:?}");
    assert!(
        stderr.contains("wave 1/2 released: 2 experiments"),
        "{stderr}"
    );
    assert!(
        stderr.contains("wave 2/2 released: 1 experiment\n"),
        "{stderr}"
    );
    let job_lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(job_lines.len(), 3, "a line per finished job:\n{stderr}");
    for (title, outcome) in [
        ("holds.json", "held"),
        ("deviates.json", "deviated"),
        ("after.json", "held"),
    ] {
        let line = job_lines
            .iter()
            .find(|l| l.contains(title))
            .unwrap_or_else(|| panic!("no line for {title}:\n{stderr}"));
        assert!(line.contains(outcome), "{line}");
        assert!(
            line.split_whitespace()
                .any(|w| w.ends_with('s') && w[..w.len() - 1].parse::<f64>().is_ok()),
            "a duration: {line}"
        );
    }
    // the last job said is the third
    assert!(job_lines[2].starts_with("[3/3]"), "{job_lines:?}");

    // the table: a header, a row per job with its title and outcome, the totals
    for column in [
        "wave",
        "run",
        "experiment",
        "outcome",
        "duration",
        "journal",
    ] {
        assert!(stdout.contains(column), "header {column}:\n{stdout}");
    }
    let row = |title: &str| {
        stdout
            .lines()
            .find(|l| l.contains(title))
            .unwrap_or_else(|| panic!("no row for {title}:\n{stdout}"))
            .to_string()
    };
    assert!(row("deviates.json").contains("deviated"), "{stdout}");
    assert!(row("holds.json").contains("held"), "{stdout}");
    assert!(row("after.json").contains("journal.json"), "{stdout}");
    let totals = row("total");
    assert!(totals.contains("3 experiments"), "{totals}");
    assert!(totals.contains("2 held, 1 deviated, 0 failed"), "{totals}");
    assert!(stdout.contains("completed — deviated"), "{stdout}");
}

/// Run `command` with its stderr on a terminal (a pty); its exit code and what it wrote there.
fn on_a_terminal(mut command: Command) -> (Option<i32>, String) {
    let (mut leader, mut follower) = (0, 0);
    // SAFETY: openpty writes two descriptors it opened into the two ints, and reads nothing
    // from the null name, termios and window size
    let rc = unsafe {
        libc::openpty(
            &mut leader,
            &mut follower,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are open and owned by nothing else
    let (leader, follower) =
        unsafe { (OwnedFd::from_raw_fd(leader), OwnedFd::from_raw_fd(follower)) };
    command.stdout(Stdio::null()).stderr(Stdio::from(follower));
    let mut child = command.spawn().unwrap();
    drop(command);
    let mut text = Vec::new();
    let mut reader = std::fs::File::from(leader);
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = reader.read(&mut buf) {
        text.extend_from_slice(&buf[..n]);
    }
    let code = child.wait().unwrap().code();
    (code, String::from_utf8_lossy(&text).into_owned())
}

#[test]
fn on_a_terminal_the_job_lines_are_printed_above_the_bar() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // long enough for the bar to be drawn before the job ends
    let slow = experiment(d, "slowish.json", "sleep 1", "no-flag", "true");
    std::fs::write(
        d.join("s.yaml"),
        format!("name: bar\nwaves:\n  - experiments: [{slow}]\n"),
    )
    .unwrap();
    let mut command = producer(d);
    command.args(["run", "s.yaml"]);
    let (code, terminal) = on_a_terminal(command);
    assert_eq!(code, Some(0), "{terminal}");
    assert!(terminal.contains("experiments"), "the bar: {terminal:?}");
    assert!(
        terminal.contains("[1/1] held") && terminal.contains("slowish.json"),
        "the job's line: {terminal:?}"
    );
}

#[test]
fn ctrl_c_interrupts_the_running_job_marks_the_suite_interrupted_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let slow = experiment(
        d,
        "slow.json",
        "touch started; sleep 60",
        "no-flag",
        "echo reverted >> reverted",
    );
    let never = experiment(d, "never.json", "touch never-ran", "no-flag", "true");
    // queued behind the slow one (one worker): still in the jobs queue at the interrupt
    let queued = experiment(d, "queued.json", "touch queued-ran", "no-flag", "true");
    std::fs::write(
        d.join("s.yaml"),
        format!("name: stopped\nwaves:\n  - experiments: [{slow}, {queued}]\n  - experiments: [{never}]\n"),
    )
    .unwrap();
    let run = producer(d)
        .args(["run", "s.yaml", "--workers", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    while !d.join("started").exists() {
        assert!(Instant::now() < until, "the experiment never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = run.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    // interrupted, not waited for: the action sleeps a minute
    assert!(
        sent.elapsed() < Duration::from_secs(30),
        "the running job was waited for ({:?})",
        sent.elapsed()
    );
    assert_eq!(
        std::fs::read_to_string(d.join("reverted")).unwrap(),
        "reverted\n",
        "the running experiment was rolled back"
    );
    assert!(!d.join("never-ran").exists());
    assert!(stdout.contains("interrupted — failed"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("never.json") && l.contains("not run")),
        "{stdout}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("slow.json") && l.contains("failed")),
        "the interrupted job's line: {stderr}"
    );
    let id = stderr
        .split_whitespace()
        .find(|w| w.starts_with("sr-"))
        .map(|w| w.trim_end_matches(':'))
        .unwrap_or_else(|| panic!("no suite run id: {stderr}"));
    let status = producer(d).args(["status", "--json", id]).output().unwrap();
    let doc: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["status"], "interrupted", "{doc}");
    assert_eq!(doc["outcome"], "failed", "{doc}");
    // the job queued behind the interrupted one was withdrawn: a worker started later on the
    // same state directory finds nothing of the stopped suite to run
    let left = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            use shared::ports::JobQueue;
            let e = shared::config::Embedded::open(&d.join(".broker"))
                .await
                .unwrap();
            e.jobs
                .receive(10, Duration::from_secs(1), Duration::from_millis(300))
                .await
                .unwrap()
        });
    assert!(left.is_empty(), "jobs left in the queue: {left:?}");
    assert!(!d.join("queued-ran").exists());
}

/// Every file named `name` under `dir`, however deep.
fn files_named(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_named(&path, name));
        } else if path.file_name().is_some_and(|n| n == name) {
            found.push(path);
        }
    }
    found
}

#[test]
fn status_shows_titles_and_durations_from_the_completion_records_without_reading_journals() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // titles unlike the file names: the table shows a source when it knows no title
    let titled = |file: &str, title: &str| {
        let name = experiment(d, file, "true", "no-flag", "true");
        let text = std::fs::read_to_string(d.join(&name)).unwrap();
        let text = text.replace(
            &format!("\"title\":\"{file}\""),
            &format!("\"title\":\"{title}\""),
        );
        assert!(text.contains(title), "{text}");
        std::fs::write(d.join(&name), text).unwrap();
        name
    };
    let first = titled("first.json", "Alpha check");
    let second = titled("second.json", "Beta check");
    std::fs::write(
        d.join("s.yaml"),
        format!("name: titles\nwaves:\n  - experiments: [{first}, {second}]\n"),
    )
    .unwrap();
    let out = producer(d).args(["run", "s.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // the journals go (archived elsewhere, say): the records still say what status shows
    let journals = files_named(&d.join("state"), "journal.json");
    assert_eq!(journals.len(), 2, "{journals:?}");
    let suite_run_id = journals[0]
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap()
        .to_string();
    for journal in &journals {
        std::fs::remove_file(journal).unwrap();
    }
    let out = producer(d)
        .args(["status", &suite_run_id])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for title in ["Alpha check", "Beta check"] {
        let row = stdout
            .lines()
            .find(|l| l.contains(title))
            .unwrap_or_else(|| panic!("no row titled {title} with the journals gone:\n{stdout}"));
        assert!(row.contains("held"), "{row}");
        assert!(
            row.split_whitespace()
                .any(|w| w.ends_with('s') && w[..w.len() - 1].parse::<f64>().is_ok()),
            "a duration from the record: {row}"
        );
    }
}
