//! The SSM command documents in `ssm-documents/`, checked against the shared list and run for
//! real: each test takes a document's `runCommand`, substitutes its `{{ parameters }}` the way
//! SSM does (values given, else the document's defaults), and runs it with `sh` (the agent may
//! start scripts with `sh`, dash on Debian; the documents re-exec themselves with bash), as
//! root, with `EXPERIMENT_BROKER_STATE_DIR` pointing at a directory of the test's own.
//!
//! Network documents run inside a network namespace each test creates (and deletes, even when
//! it fails); disk documents on a tmpfs the test mounts; process documents against processes
//! the test starts, the kill documents inside a PID namespace of the test's own (so that a kill
//! by name reaches only its processes). Each test also gives the documents a persistent state
//! directory and a host root (boot id, systemd and cron directories) of its own, so that a reboot
//! can be simulated: the fault's processes are killed, the `/run` state wiped, the boot id changed,
//! and the command of the installed boot entry run. Nothing is mocked and nothing is skipped: a
//! missing tool fails the test with the package to install (`scripts/test.sh` installs them on
//! Debian).
//!
//! Known gap: the kernel of the machine these tests were written on has no `sch_netem`, so
//! `NetworkLatency` can only be checked to refuse cleanly there; where netem exists the test
//! checks the qdisc appears and is reverted.

use aws::faults::ssm::documents::DOCUMENTS;
use serde_json::Value;
use shared::load::document::{Format, parse};
use std::collections::BTreeSet;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- documents

fn documents_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ssm-documents")
}

fn load(name: &str) -> Value {
    let path = documents_dir().join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&text, Format::Yaml)
        .unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
        .value
}

/// The document's shell script, with every `{{ name }}` (spaces or not) replaced by the value
/// given, else the parameter's default; a parameter with neither fails the test, as SSM would
/// refuse the command.
fn script(name: &str, values: &[(&str, &str)]) -> String {
    let doc = load(name);
    let parameters = doc["parameters"].as_object().expect("parameters");
    for (key, _) in values {
        assert!(
            parameters.contains_key(*key),
            "{name} has no parameter {key}"
        );
    }
    let text = script_text(name);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let close = rest[open..].find("}}").expect("an unclosed {{") + open;
        let key = rest[open + 2..close].trim();
        let value = values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
            .or_else(|| parameters.get(key)?["default"].as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("{name}: no value for {{{{ {key} }}}}"));
        out.push_str(&value);
        rest = &rest[close + 2..];
    }
    out.push_str(rest);
    out
}

/// A document's script as written (parameters not substituted).
fn script_text(name: &str) -> String {
    let doc = load(name);
    let lines: Vec<&str> = doc["mainSteps"][0]["inputs"]["runCommand"]
        .as_array()
        .expect("runCommand")
        .iter()
        .map(|l| l.as_str().expect("runCommand lines are strings"))
        .collect();
    lines.join("\n")
}

/// The `{{ name }}` references of a document's script.
fn references(name: &str) -> BTreeSet<String> {
    script_text(name)
        .split("{{")
        .skip(1)
        .map(|s| s.split("}}").next().unwrap().trim().to_string())
        .collect()
}

// ---------------------------------------------------------------- tools and processes

/// Fail (never skip) when a tool the documents or the tests need is missing (an executable
/// in PATH or the sbin directories, so that shell builtins such as `kill` do not count).
fn require(tools: &[(&str, &str)]) {
    let path = std::env::var("PATH").unwrap_or_default();
    for (tool, package) in tools {
        let found = path
            .split(':')
            .chain(["/usr/sbin", "/sbin"])
            .any(|dir| Path::new(dir).join(tool).is_file());
        assert!(
            found,
            "`{tool}` is missing: install the {package} package (scripts/test.sh does: apt-get install -y {package})"
        );
    }
}

fn require_root() {
    let out = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "0",
        "these tests run the documents for real and need root (iptables, tc, namespaces, mount)"
    );
}

/// Run a command to completion; panic with its output when it fails.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn unique() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// Poll `condition` every 50 ms until it holds or `timeout` passes.
fn poll(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

/// A network namespace, deleted on drop (test failures included).
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let name = format!("eb-{}-{}", std::process::id(), unique());
        run("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.sh("ip link set lo up");
        ns
    }

    /// Run a shell command inside the namespace; its stdout.
    fn sh(&self, command: &str) -> String {
        run("ip", &["netns", "exec", &self.name, "sh", "-c", command])
    }

    /// Run a program inside the namespace; its stdout.
    fn exec(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    fn iptables(&self) -> String {
        self.sh("iptables -w -S; ip6tables -w -S 2>/dev/null || true")
    }

    fn qdiscs(&self, interface: &str) -> String {
        self.sh(&format!("tc qdisc show dev {interface}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A TCP listener (python3) inside a namespace, on 0.0.0.0 at the given ports: it reads each
/// connection to its end and answers with the byte count. Stopped on drop.
struct Listener {
    child: Child,
    _stdin: ChildStdin,
}

const PROBE: &str = r#"
import socket, sys, threading, time

def handle(c):
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    c.sendall(b"%d\n" % n)
    c.close()

def accept(s):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

mode = sys.argv[1]
if mode == "serve":
    for port in sys.argv[2:]:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(port)))
        s.listen(16)
        threading.Thread(target=accept, args=(s,), daemon=True).start()
    print("ready", flush=True)
    sys.stdin.read()
elif mode == "connect":
    try:
        socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=float(sys.argv[4])).close()
        print("connected")
    except socket.timeout:
        print("timeout")
    except OSError as e:
        print("error %s" % e.errno)
elif mode == "send":
    start = time.monotonic()
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=30)
    s.sendall(b"x" * int(sys.argv[4]))
    s.shutdown(socket.SHUT_WR)
    reply = s.recv(100).decode().strip()
    print("%.3f %s" % (time.monotonic() - start, reply))
"#;

impl Listener {
    fn start(ns: &Netns, ports: &[u16]) -> Listener {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &ns.name, "python3", "-c", PROBE, "serve"]);
        command.args(ports.iter().map(u16::to_string));
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let stdin = child.stdin.take().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the listener did not start");
        Listener {
            child,
            _stdin: stdin,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `connected`, `timeout` or `error <errno>`: a TCP connect from inside the namespace.
fn connect(ns: &Netns, host: &str, port: u16) -> String {
    ns.exec(&[
        "python3",
        "-c",
        PROBE,
        "connect",
        host,
        &port.to_string(),
        "1",
    ])
    .trim()
    .to_string()
}

/// Seconds it takes to send `bytes` to the listener and hear back.
fn transfer(ns: &Netns, port: u16, bytes: usize) -> f64 {
    let out = ns.exec(&[
        "python3",
        "-c",
        PROBE,
        "send",
        "127.0.0.1",
        &port.to_string(),
        &bytes.to_string(),
    ]);
    let (seconds, count) = out.trim().split_once(' ').expect("seconds and count");
    assert_eq!(count, bytes.to_string(), "the listener got every byte");
    seconds.parse().unwrap()
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn new(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                dir.path().to_str().unwrap(),
            ],
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `df`'s Use%.
    fn used_percent(&self) -> u32 {
        let out = run("df", &["-Pk", self.path().to_str().unwrap()]);
        let line = out.lines().nth(1).expect("df output");
        line.split_whitespace()
            .nth(4)
            .unwrap()
            .trim_end_matches('%')
            .parse()
            .unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .args(["-l", self.dir.path().to_str().unwrap()])
            .status();
    }
}

/// What a finished document run said.
struct Out {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Out {
    fn succeeded(&self) -> bool {
        self.status.success()
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

mod blackholes;
mod disk;
mod harness;
mod host_network;
mod list;
mod network;
mod pod_harness;
mod pod_network;
mod pod_processes;
mod processes;
mod reboots;
mod seed_names;
mod stress;
mod volumes;

use harness::*;
