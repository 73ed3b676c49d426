//! The shell `worker` shares with `producer` (`cli`), as a user sees it: `--version` names the
//! commit, `--help` has headings, examples and the exit codes, logs are coloured on a terminal
//! unless `NO_COLOR`, a tool error exits 2, and a second signal abandons the clean-up wait.
//! (The exit codes of runs, held, failed and interrupted, are asserted where runs are: `run`.)

use crate::util;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use util::{Sandbox, worker_bin};

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = Command::new(worker_bin())
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let commit = text
        .trim()
        .strip_prefix(concat!("worker ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("not `worker VERSION (commit HASH)`: {text}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{text}"
    );
    // the binary cargo built for this test: built from this checkout's HEAD
    if std::env::var_os("BROKER_WORKER_BIN").is_none() {
        let head = Command::new("git")
            .args(["rev-parse", "--short", "HEAD"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output();
        let expected = match (std::env::var("BROKER_GIT_COMMIT"), head) {
            (Ok(set), _) if !set.trim().is_empty() => set,
            (_, Ok(head)) if head.status.success() => {
                String::from_utf8_lossy(&head.stdout).trim().to_string()
            }
            _ => "unknown".to_string(),
        };
        assert_eq!(commit, expected, "{text}");
    }
}

#[test]
fn help_has_headings_examples_and_the_exit_codes() {
    let help = |args: &[&str]| {
        let out = Command::new(worker_bin()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&["--help"]);
    assert!(
        top.contains("Exit codes:") && top.contains("130  interrupted"),
        "{top}"
    );
    let run = help(&["run", "--help"]);
    for heading in ["Examples:", "Configuration:", "Checks:", "  worker run "] {
        assert!(run.contains(heading), "{heading} missing:\n{run}");
    }
    let serve = help(&["serve", "--help"]);
    for heading in ["Examples:", "Serving:", "  worker serve "] {
        assert!(serve.contains(heading), "{heading} missing:\n{serve}");
    }
}

#[test]
fn a_backend_that_cannot_be_opened_is_a_tool_error_exit_2() {
    let sb = Sandbox::new();
    let out = sb
        .command(&["serve", "--backend", "aws"])
        .env_remove("BROKER_JOBS_QUEUE_URL")
        .env_remove("BROKER_BUCKET")
        .env_remove("BROKER_EVENT_BUS")
        .env_remove("BROKER_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the AWS backend needs"), "{stderr}");
}

/// Run `command` with its stderr on a new pseudo-terminal: its exit code and what it wrote.
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
    // the child (and what it spawns) holds the terminal's other end now: when it is gone,
    // reading ends
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
fn logs_are_coloured_on_a_terminal_unless_no_color_is_set() {
    let sb = Sandbox::new();
    let e = json!({"title": "t", "description": "d", "method": [
        {"type": "action", "name": "a", "provider": {"type": "process", "path": "true"}}]});
    let path = sb.write_json("e.json", &e);
    let run = |no_color: Option<&str>| {
        let mut command = sb.command(&["run", "--journal-path", "j.json", path.to_str().unwrap()]);
        command.env_remove("NO_COLOR");
        if let Some(v) = no_color {
            command.env("NO_COLOR", v);
        }
        let (code, stderr) = on_a_terminal(command);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains("journal written to"), "{stderr}");
        stderr.contains('\u{1b}')
    };
    assert!(run(None), "coloured on a terminal");
    assert!(run(Some("")), "an empty NO_COLOR is unset");
    assert!(!run(Some("1")), "NO_COLOR=1: no colour");
}

/// `DescribeInstances` as EC2 answers it: one running instance, opted in.
const DESCRIBE_INSTANCES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>r-1</requestId>
  <reservationSet><item>
    <reservationId>r-0123456789abcdef0</reservationId>
    <ownerId>123456789012</ownerId>
    <instancesSet><item>
      <instanceId>i-0123456789abcdef0</instanceId>
      <instanceState><code>16</code><name>running</name></instanceState>
      <tagSet>
        <item><key>experiment-broker:opt-in</key><value>true</value></item>
        <item><key>team</key><value>shell</value></item>
      </tagSet>
    </item></instancesSet>
  </item></reservationSet>
</DescribeInstancesResponse>"#;

/// An AWS endpoint on 127.0.0.1 that answers EC2's `DescribeInstances` and never answers SSM
/// (it holds each SSM connection open, saying which operation on `ssm`): a command sent there
/// is never known to be sent, and cancelling it hangs.
fn hanging_ssm() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (ssm, calls) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let ssm = ssm.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut stream = stream;
                loop {
                    let (mut target, mut length) = (None, 0usize);
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        let mut header = String::new();
                        if reader.read_line(&mut header).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = header.split_once(':') {
                            match k.trim().to_ascii_lowercase().as_str() {
                                "content-length" => length = v.trim().parse().unwrap_or(0),
                                "x-amz-target" => target = Some(v.trim().to_string()),
                                _ => {}
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    if let Some(operation) = target {
                        let _ = ssm.send(operation);
                        std::thread::sleep(Duration::from_secs(600));
                        return;
                    }
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{DESCRIBE_INSTANCES}",
                        DESCRIBE_INSTANCES.len()
                    );
                }
            });
        }
    });
    (endpoint, calls)
}

#[test]
fn a_second_signal_abandons_the_clean_up_wait() {
    use nix::sys::signal::{Signal, kill};
    let (endpoint, ssm) = hanging_ssm();
    let sb = Sandbox::new();
    let e = json!({"title": "t", "description": "d", "method": [
        {"type": "action", "name": "stress", "provider": {"type": "python",
         "module": "experimentvr.ec2.actions", "func": "ec2_stress_cpu",
         "arguments": {"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": "shell",
                       "ec2_stress_cpu_duration": 60}}}]});
    let path = sb.write_json("e.json", &e);
    let mut child = sb
        .command(&["run", "--journal-path", "j.json", path.to_str().unwrap()])
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("BROKER_PYTHON", "/nonexistent/python3")
        .env("BROKER_STATE_DIR", sb.path("state"))
        .env_remove("BROKER_OPT_IN_TAG")
        .env_remove("BROKER_HALT_PARAMETER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let sent = ssm.recv_timeout(Duration::from_secs(30));
    assert_eq!(
        sent.as_deref(),
        Ok("AmazonSSM.SendCommand"),
        "the command is on its way"
    );
    // the first: the run stops, its journal is written, then the clean-up (finding the
    // command to cancel it) hangs, and the process waits for it
    kill(pid, Signal::SIGINT).unwrap();
    let listed = ssm.recv_timeout(Duration::from_secs(15));
    assert_eq!(
        listed.as_deref(),
        Ok("AmazonSSM.ListCommands"),
        "clean-up started"
    );
    let journal = sb.path("j.json");
    let until = Instant::now() + Duration::from_secs(15);
    while !journal.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "waiting for the clean-up"
    );
    // the second: the wait is abandoned at once
    let again = Instant::now();
    kill(pid, Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        again.elapsed() < Duration::from_secs(5),
        "exited {:?} after the second signal:\n{stderr}",
        again.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("SIGTERM received again")
            && stderr.contains("abandoned on a repeated signal"),
        "{stderr}"
    );
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    assert_eq!(j["status"], "interrupted", "{j:#}");
}
