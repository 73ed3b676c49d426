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

/// The documents whose fault outlives a reboot: their state is on persistent storage.
const PERSISTENT: &[&str] = &["DiskFill", "StressIO"];

/// StressIO removes every work directory in /var/tmp no active run of its host owns; the
/// tests' hosts share /var/tmp, so their StressIO runs take turns.
static STRESS_IO: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn stress_io_turn() -> std::sync::MutexGuard<'static, ()> {
    STRESS_IO.lock().unwrap_or_else(|e| e.into_inner())
}

/// One test's state directories and scripts, and the host the documents see: a root of the
/// test's own (`EXPERIMENT_BROKER_HOST_ROOT`) with the boot id and the directories systemd and
/// cron read, so that the boot-time revert is installed there and a reboot can be simulated.
struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    /// A host running systemd.
    fn new() -> Case {
        let case = Case::bare();
        std::fs::create_dir_all(case.host().join("run/systemd/system")).unwrap();
        case
    }

    /// A host with neither systemd nor cron (only the boot id).
    fn bare() -> Case {
        require_root();
        let case = Case {
            dir: tempfile::tempdir().unwrap(),
        };
        let random = case.host().join("proc/sys/kernel/random");
        std::fs::create_dir_all(&random).unwrap();
        std::fs::copy("/proc/sys/kernel/random/boot_id", random.join("boot_id")).unwrap();
        case
    }

    /// The volatile state directory (`/run/experiment-broker` on a host).
    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The persistent state directory (`/var/lib/experiment-broker` on a host).
    fn persistent(&self) -> PathBuf {
        self.dir.path().join("persistent")
    }

    fn host(&self) -> PathBuf {
        self.dir.path().join("host")
    }

    /// Where the document `name` keeps its marker, runs and log.
    fn state_of(&self, name: &str) -> PathBuf {
        if PERSISTENT.contains(&name) {
            self.persistent()
        } else {
            self.state()
        }
    }

    /// A reboot, as far as the documents can tell: every process of the fault is killed by
    /// the caller; here the volatile state is wiped and the boot id changes.
    fn reboot(&self) {
        let _ = std::fs::remove_dir_all(self.state());
        std::fs::write(
            self.host().join("proc/sys/kernel/random/boot_id"),
            format!("{:032x}\n", u128::from(unique()) + 1),
        )
        .unwrap();
    }

    /// The document, ready to run in its own process group (in `ns` when given).
    fn command(&self, name: &str, values: &[(&str, &str)], ns: Option<&Netns>) -> Command {
        match ns {
            Some(ns) => self.command_in(name, values, &["ip", "netns", "exec", &ns.name]),
            None => self.command_in(name, values, &[]),
        }
    }

    /// The document run by `sh`, behind `prefix` (a program that runs its arguments elsewhere).
    fn command_in(&self, name: &str, values: &[(&str, &str)], prefix: &[&str]) -> Command {
        let path = self.dir.path().join(format!("{name}-{}.sh", unique()));
        std::fs::write(&path, script(name, values)).unwrap();
        let mut command = match prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg("sh");
                c
            }
            None => Command::new("sh"),
        };
        command
            .arg(&path)
            .env("EXPERIMENT_BROKER_STATE_DIR", self.state())
            .env("EXPERIMENT_BROKER_PERSISTENT_DIR", self.persistent())
            .env("EXPERIMENT_BROKER_HOST_ROOT", self.host())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        command
    }

    fn spawn(&self, name: &str, values: &[(&str, &str)], ns: Option<&Netns>) -> Child {
        self.command(name, values, ns).spawn().expect("sh")
    }

    fn run(&self, name: &str, values: &[(&str, &str)], ns: Option<&Netns>) -> Out {
        finish(self.spawn(name, values, ns))
    }

    /// The run token of the active fault of `name`, if any.
    fn active(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.state_of(name).join(format!("{name}.active")))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    }

    /// The run directories, markers and boot-time revert left in the state directories.
    fn leftovers(&self) -> Vec<String> {
        self.leftover_paths()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn leftover_paths(&self) -> Vec<PathBuf> {
        [self.state(), self.persistent()]
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                !n.ends_with(".log") && !n.ends_with(".lock")
            })
            .collect()
    }

    /// The state directory's log and files, to explain a failure.
    fn report(&self, name: &str) -> String {
        let mut text = format!("log:\n{}", self.log(name));
        for path in self.leftover_paths() {
            text += &format!("\n{}", path.display());
            if path.is_dir() {
                for file in std::fs::read_dir(&path).unwrap() {
                    let file = file.unwrap().path();
                    let content = std::fs::read_to_string(&file).unwrap_or_default();
                    text += &format!("\n  {}:\n{content}", file.display());
                }
            }
        }
        text
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.state_of(name).join(format!("{name}.log"))).unwrap_or_default()
    }
}

fn finish(child: Child) -> Out {
    let out = child.wait_with_output().expect("wait");
    Out {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Wait until `condition` holds while the document runs; if the document ends first or the
/// time runs out, fail with what it said.
fn until(child: &mut Child, what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stdout = String::new();
            let mut stderr = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the document ended ({status}) before {what}:\n{stdout}{stderr}");
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        sleep(Duration::from_millis(50));
    }
}

/// SIGKILL a whole process group (the document and whatever it runs in the foreground).
fn kill_group(child: &mut Child) {
    run("kill", &["-KILL", "--", &format!("-{}", child.id())]);
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the document was killed");
}

/// Whether a process of the run `token` (its sleeper) still runs.
fn running(token: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", token])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn pgrep_session(sid: &str) -> bool {
    Command::new("pgrep")
        .args(["-s", sid])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

const NET_TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("iptables", "iptables"),
    ("python3", "python3"),
    ("setsid", "util-linux"),
    ("flock", "util-linux"),
    ("kill", "procps"),
    ("pgrep", "procps"),
];
const STRESS_TOOLS: &[(&str, &str)] = &[
    ("stress-ng", "stress-ng"),
    ("pgrep", "procps"),
    ("pkill", "procps"),
    ("setsid", "util-linux"),
    ("flock", "util-linux"),
    ("kill", "procps"),
];

fn rules_of(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("experiment-broker:"))
        .collect()
}

/// The document ends on its own, successfully, and none of its firewall rules is left.
fn finish_reverted(child: Child, ns: &Netns) {
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(
        rules_of(&ns.iptables()).is_empty(),
        "reverted:\n{}",
        ns.iptables()
    );
}

// ---------------------------------------------------------------- the list

#[test]
fn the_documents_are_exactly_the_shared_list_with_its_parameters() {
    let mut files: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(documents_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".yaml") {
            files.insert(stem.to_string());
        }
    }
    let listed: BTreeSet<String> = DOCUMENTS.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(
        files, listed,
        "ssm-documents/*.yaml against documents::DOCUMENTS"
    );

    for document in DOCUMENTS {
        let name = document.name;
        let doc = load(name);
        assert_eq!(doc["schemaVersion"], "2.2", "{name}");
        assert!(
            doc["description"].as_str().is_some_and(|d| d.len() > 80),
            "{name} says what it injects, how it reverts and what it needs"
        );
        let parameters = doc["parameters"].as_object().expect("parameters");
        let keys: BTreeSet<&str> = parameters.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = document.parameters.iter().copied().collect();
        assert_eq!(keys, expected, "{name}'s parameters");
        let referenced: BTreeSet<String> = references(name);
        let expected_refs: BTreeSet<String> =
            document.parameters.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            referenced, expected_refs,
            "{name}'s script uses every parameter, and only those"
        );

        for (key, p) in parameters {
            assert_eq!(p["type"], "String", "{name}.{key}");
            assert!(
                p["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}.{key}"
            );
            let pattern = p["allowedPattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}.{key} has an allowedPattern"));
            assert!(
                pattern.starts_with('^') && pattern.ends_with('$'),
                "{name}.{key}: anchored"
            );
            // the script checks the value again, with the same pattern
            let script = script_text(name);
            let again = script
                .lines()
                .find(|l| l.starts_with(&format!("check {key} ")))
                .and_then(|l| l.split('\'').nth(1))
                .unwrap_or_else(|| panic!("{name}'s script does not check {key}"));
            assert_eq!(again, pattern, "{name}.{key}: the script's pattern");
            let regex = shared::pyregex::compile(pattern).unwrap();
            if let Some(default) = p.get("default") {
                let default = default
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}.{key}: a string default"));
                assert!(
                    regex.is_match(default).unwrap(),
                    "{name}.{key}: default {default:?} ∉ {pattern}"
                );
            }
            for bad in [
                "1; reboot",
                "$(reboot)",
                "`reboot`",
                "1'",
                "a b",
                "1\n2",
                "-1",
            ] {
                assert!(
                    !regex.is_match(bad).unwrap(),
                    "{name}.{key} lets {bad:?} through"
                );
            }
        }

        let steps = doc["mainSteps"].as_array().expect("mainSteps");
        assert_eq!(steps.len(), 1, "{name}: one step");
        assert_eq!(steps[0]["action"], "aws:runShellScript", "{name}");
        assert_eq!(
            steps[0]["precondition"],
            serde_json::json!({"StringEquals": ["platformType", "Linux"]}),
            "{name}"
        );
    }

    // a few boundaries of the shared patterns
    let pattern = |doc: &str, key: &str| {
        shared::pyregex::compile(
            load(doc)["parameters"][key]["allowedPattern"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    let duration = pattern("StressCPU", "duration");
    for ok in ["1", "60", "86400"] {
        assert!(duration.is_match(ok).unwrap(), "{ok}");
    }
    for bad in ["0", "86401", "99999", "01"] {
        assert!(!duration.is_match(bad).unwrap(), "{bad}");
    }
    assert!(pattern("KillProcess", "duration").is_match("0").unwrap());
    let port = pattern("BlackholePort", "port");
    assert!(
        port.is_match("65535").unwrap()
            && !port.is_match("65536").unwrap()
            && !port.is_match("0").unwrap()
    );
    let ip = pattern("BlackholeIP", "ip");
    for ok in ["10.0.0.1", "10.0.0.0/16", "fd00::1", "fd00::/8"] {
        assert!(ip.is_match(ok).unwrap(), "{ok}");
    }
    let signal = pattern("KillProcessByName", "signal");
    for ok in ["SIGKILL", "KILL", "TERM", "SIGTERM"] {
        assert!(signal.is_match(ok).unwrap(), "{ok}");
    }
    assert!(!signal.is_match("STOP").unwrap() && !signal.is_match("9").unwrap());
}

/// A document, the values given to it, and what its refusal says.
type BadValue<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn the_shell_refuses_bad_values_before_it_changes_anything() {
    require(NET_TOOLS);
    require(&[("unshare", "util-linux")]);
    let case = Case::new();
    let canary = case.dir.path().join("pwned");
    let attack = format!("1'; touch {} #", canary.display());
    let attack2 = format!("$(touch {})", canary.display());
    let cases: &[BadValue] = &[
        ("StressCPU", &[("duration", "0")], "invalid duration"),
        ("StressCPU", &[("duration", &attack)], "invalid duration"),
        (
            "StressMemory",
            &[("duration", "5"), ("percent", "101")],
            "invalid percent",
        ),
        (
            "DiskFill",
            &[("duration", "5"), ("path", "relative/dir")],
            "invalid path",
        ),
        (
            "PacketLoss",
            &[("duration", "5"), ("loss", "0")],
            "invalid loss",
        ),
        (
            "BandwidthLimit",
            &[("duration", "5"), ("rate", "fast")],
            "invalid rate",
        ),
        (
            "BlackholePort",
            &[("duration", "5"), ("port", "70000")],
            "invalid port",
        ),
        (
            "BlackholePort",
            &[("duration", "5"), ("port", &attack2)],
            "invalid port",
        ),
        (
            "BlackholeIP",
            &[("duration", "5"), ("ip", "10.0.0.300")],
            "invalid ip",
        ),
        (
            "BlackholeIP",
            &[("duration", "5"), ("ip", "10.0.0.0/33")],
            "invalid ip",
        ),
        (
            "KillProcess",
            &[("duration", "5"), ("pid", "1")],
            "refusing to signal process 1",
        ),
        (
            "KillProcess",
            &[("duration", "5"), ("pid", "2"), ("signal", "STOP")],
            "invalid signal",
        ),
        (
            "KillProcessByName",
            &[("duration", "5"), ("name", "a/b")],
            "invalid name",
        ),
        (
            "NetworkLatency",
            &[("duration", "5"), ("interface", "no-such-if0")],
            "no network interface",
        ),
    ];
    for (name, values, message) in cases {
        let out = case.run(name, values, None);
        assert!(!out.succeeded(), "{name} {values:?} ran:\n{out}");
        assert!(
            out.stderr.contains(message),
            "{name} {values:?} should say {message:?}:\n{out}"
        );
        assert!(
            case.leftovers().is_empty(),
            "{name} left {:?}",
            case.leftovers()
        );
    }
    assert!(!canary.exists(), "a parameter value was run as code");
}

// ---------------------------------------------------------------- network

#[test]
fn blackhole_port_drops_egress_to_the_port_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7001, 7002]);
    assert_eq!(connect(&ns, "127.0.0.1", 7001), "connected");
    let mut child = case.spawn(
        "BlackholePort",
        &[("duration", "3"), ("port", "7001")],
        Some(&ns),
    );
    until(&mut child, "the DROP rule", Duration::from_secs(10), || {
        !rules_of(&ns.iptables()).is_empty()
    });
    let rules = ns.iptables();
    let token = case.active("BlackholePort").expect("the marker");
    let ours = rules_of(&rules);
    assert!(
        ours.iter().all(|r| r.starts_with("-A OUTPUT")
            && r.contains("--dport 7001")
            && r.contains(&format!("experiment-broker:{token}"))),
        "egress (the default) is OUTPUT only, tagged with the run:\n{rules}"
    );
    assert_ne!(
        connect(&ns, "127.0.0.1", 7001),
        "connected",
        "port 7001 is blackholed"
    );
    assert_eq!(
        connect(&ns, "127.0.0.1", 7002),
        "connected",
        "other ports work"
    );
    finish_reverted(child, &ns);
    assert_eq!(connect(&ns, "127.0.0.1", 7001), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    assert!(case.log("BlackholePort").contains("reverted by foreground"));
    assert!(
        !running(&token),
        "the foreground stopped the sleeper once it had reverted"
    );
}

#[test]
fn a_cancelled_fault_is_reverted_at_once() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let mut child = case.spawn(
        "BlackholeIP",
        &[("duration", "60"), ("ip", "10.1.2.0/24")],
        Some(&ns),
    );
    until(&mut child, "the DROP rule", Duration::from_secs(10), || {
        !rules_of(&ns.iptables()).is_empty()
    });
    let token = case.active("BlackholeIP").expect("the marker");
    // what the SSM agent does first when a command is cancelled or times out
    run("kill", &["-TERM", &child.id().to_string()]);
    let started = Instant::now();
    let out = finish(child);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "reverted at once"
    );
    assert_eq!(out.status.code(), Some(143), "{out}");
    assert!(out.stderr.contains("stopped by a signal"), "{out}");
    assert!(rules_of(&ns.iptables()).is_empty(), "{}", ns.iptables());
    assert!(case.log("BlackholeIP").contains("reverted by signal"));
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("BlackholeIP")
    );
    assert!(
        poll(Duration::from_secs(2), || !running(&token)),
        "the sleeper is stopped"
    );
}

#[test]
fn blackhole_ip_drops_both_directions_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7003]);
    let mut child = case.spawn(
        "BlackholeIP",
        &[
            ("duration", "3"),
            ("ip", "127.0.0.2"),
            ("direction", "both"),
        ],
        Some(&ns),
    );
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || rules_of(&ns.iptables()).len() == 2,
    );
    let rules = ns.iptables();
    assert!(rules.contains("-A OUTPUT -d 127.0.0.2/32"), "{rules}");
    assert!(rules.contains("-A INPUT -s 127.0.0.2/32"), "{rules}");
    assert_ne!(
        connect(&ns, "127.0.0.2", 7003),
        "connected",
        "127.0.0.2 is blackholed"
    );
    assert_eq!(
        connect(&ns, "127.0.0.1", 7003),
        "connected",
        "127.0.0.1 is not"
    );
    finish_reverted(child, &ns);
    assert_eq!(connect(&ns, "127.0.0.2", 7003), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn packet_loss_drops_packets_with_tagged_statistic_rules_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7004]);
    let mut child = case.spawn(
        "PacketLoss",
        &[("duration", "3"), ("interface", "lo"), ("loss", "100")],
        Some(&ns),
    );
    until(&mut child, "the DROP rule", Duration::from_secs(10), || {
        !rules_of(&ns.iptables()).is_empty()
    });
    let rules = ns.iptables();
    for rule in rules_of(&rules) {
        assert!(
            rule.starts_with("-A OUTPUT -o lo") && rule.contains("--mode random --probability 1"),
            "{rules}"
        );
    }
    assert_eq!(
        ns.qdiscs("lo").matches("qdisc").count(),
        1,
        "qdiscs untouched"
    );
    assert_ne!(connect(&ns, "127.0.0.1", 7004), "connected", "100 % loss");
    finish_reverted(child, &ns);
    assert_eq!(connect(&ns, "127.0.0.1", 7004), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn bandwidth_limit_adds_a_tbf_qdisc_that_slows_traffic_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7005]);
    let bytes = 2_000_000;
    let before = transfer(&ns, 7005, bytes);
    let mut child = case.spawn(
        "BandwidthLimit",
        &[("duration", "5"), ("interface", "lo"), ("rate", "8mbit")],
        Some(&ns),
    );
    until(&mut child, "the tbf qdisc", Duration::from_secs(10), || {
        ns.qdiscs("lo").contains("qdisc tbf")
    });
    // 2 MB at 1 MB/s, less the bucket
    let during = transfer(&ns, 7005, bytes);
    assert!(
        during > 0.8 && during > 4.0 * before,
        "2 MB took {during:.3}s under the limit, {before:.3}s without"
    );
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    let qdiscs = ns.qdiscs("lo");
    assert!(
        !qdiscs.contains("tbf") && qdiscs.contains(" 0: root"),
        "reverted to the default:\n{qdiscs}"
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn interface_defaults_to_the_interface_of_the_default_route() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    ns.sh(
        "ip link add ebdef0 type veth peer name ebdef1 && ip addr add 10.77.0.1/24 dev ebdef0 \
         && ip link set ebdef0 up && ip link set ebdef1 up && ip route add default via 10.77.0.2",
    );
    let mut loss = case.spawn("PacketLoss", &[("duration", "2")], Some(&ns));
    let mut limit = case.spawn("BandwidthLimit", &[("duration", "2")], Some(&ns));
    until(
        &mut loss,
        "the DROP rule on ebdef0",
        Duration::from_secs(10),
        || {
            rules_of(&ns.iptables())
                .iter()
                .any(|r| r.contains("-o ebdef0"))
        },
    );
    until(
        &mut limit,
        "the tbf qdisc on ebdef0",
        Duration::from_secs(10),
        || ns.qdiscs("ebdef0").contains("qdisc tbf"),
    );
    assert!(!ns.qdiscs("lo").contains("tbf"));
    let (loss, limit) = (finish(loss), finish(limit));
    assert!(loss.succeeded(), "{loss}");
    assert!(limit.succeeded(), "{limit}");
    assert!(rules_of(&ns.iptables()).is_empty());
    assert!(!ns.qdiscs("ebdef0").contains("tbf"));
}

#[test]
fn network_latency_adds_netem_or_refuses_cleanly_without_it() {
    require(NET_TOOLS);
    require(&[("unshare", "util-linux")]);
    let case = Case::new();
    let ns = Netns::new();
    let netem = Command::new("unshare")
        .args([
            "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output()
        .expect("unshare")
        .status
        .success();
    let qdiscs_before = ns.qdiscs("lo");
    if netem {
        let mut child = case.spawn(
            "NetworkLatency",
            &[("duration", "2"), ("interface", "lo"), ("delay", "50")],
            Some(&ns),
        );
        until(
            &mut child,
            "the netem qdisc",
            Duration::from_secs(10),
            || ns.qdiscs("lo").contains("qdisc netem"),
        );
        assert!(ns.qdiscs("lo").contains("delay 50"), "{}", ns.qdiscs("lo"));
        let out = finish(child);
        assert!(out.succeeded(), "{out}");
        assert_eq!(ns.qdiscs("lo"), qdiscs_before, "reverted");
    } else {
        eprintln!("this kernel has no sch_netem: NetworkLatency is only checked to refuse cleanly");
        let out = case.run(
            "NetworkLatency",
            &[("duration", "2"), ("interface", "lo")],
            Some(&ns),
        );
        assert!(!out.succeeded(), "{out}");
        assert!(
            out.stderr.contains("netem"),
            "the message names netem:\n{out}"
        );
        assert!(out.stderr.contains("Nothing was changed"), "{out}");
        assert_eq!(ns.qdiscs("lo"), qdiscs_before, "nothing changed");
        assert!(case.active("NetworkLatency").is_none(), "no marker");
        assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    }
}

#[test]
fn a_second_fault_of_the_same_kind_is_refused_and_the_first_goes_on() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let values = [
        ("duration", "3"),
        ("port", "7006"),
        ("direction", "ingress"),
    ];
    let mut first = case.spawn("BlackholePort", &values, Some(&ns));
    until(
        &mut first,
        "the first fault",
        Duration::from_secs(10),
        || !rules_of(&ns.iptables()).is_empty(),
    );
    let token = case.active("BlackholePort").expect("the marker");
    let rules = ns.iptables();
    let second = case.run(
        "BlackholePort",
        &[("duration", "3"), ("port", "7007")],
        Some(&ns),
    );
    assert!(!second.succeeded(), "{second}");
    assert!(second.stderr.contains("refusing to stack"), "{second}");
    assert!(
        second.stderr.contains(&token),
        "names the active run:\n{second}"
    );
    assert_eq!(ns.iptables(), rules, "the second changed nothing");
    assert_eq!(
        case.active("BlackholePort").as_deref(),
        Some(token.as_str())
    );
    assert!(
        rules_of(&rules)
            .iter()
            .all(|r| r.starts_with("-A INPUT") && r.contains(&token))
    );
    let out = finish(first);
    assert!(out.succeeded(), "the first is unaffected: {out}");
    assert!(rules_of(&ns.iptables()).is_empty());
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn a_killed_blackhole_is_still_reverted_by_its_sleeper() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let mut child = case.spawn(
        "BlackholePort",
        &[("duration", "2"), ("port", "7008"), ("direction", "both")],
        Some(&ns),
    );
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || rules_of(&ns.iptables()).len() >= 2,
    );
    kill_group(&mut child);
    assert!(
        !rules_of(&ns.iptables()).is_empty(),
        "killing the command does not revert by itself"
    );
    assert!(case.active("BlackholePort").is_some());
    // duration 2 + margin 3, measured from the injection
    assert!(
        poll(Duration::from_secs(12), || rules_of(&ns.iptables())
            .is_empty()),
        "the sleeper did not revert:\n{}",
        ns.iptables()
    );
    assert!(
        poll(Duration::from_secs(2), || case
            .active("BlackholePort")
            .is_none()),
        "the marker is gone with the rules: {}",
        case.report("BlackholePort")
    );
    assert!(
        case.log("BlackholePort").contains("reverted by sleeper"),
        "{}",
        case.log("BlackholePort")
    );
}

// ---------------------------------------------------------------- stress

/// Run a stress document: stress-ng runs in the session it records, and is gone after.
fn stress(name: &str, values: &[(&str, &str)]) -> (Case, String) {
    require(STRESS_TOOLS);
    let case = Case::new();
    let mut child = case.spawn(name, values, None);
    let mut session = String::new();
    until(&mut child, "stress-ng", Duration::from_secs(10), || {
        let Some(token) = case.active(name) else {
            return false;
        };
        let file = case.state_of(name).join(format!("{name}.{token}/session"));
        session = std::fs::read_to_string(file)
            .unwrap_or_default()
            .trim()
            .to_string();
        !session.is_empty() && pgrep_session(&session)
    });
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(
        !pgrep_session(&session),
        "stress-ng (session {session}) is gone"
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    (case, out.stdout)
}

#[test]
fn stress_cpu_runs_stress_ng_for_the_duration() {
    stress(
        "StressCPU",
        &[("duration", "2"), ("workers", "1"), ("load", "50")],
    );
}

#[test]
fn stress_memory_runs_stress_ng_for_the_duration() {
    stress(
        "StressMemory",
        &[("duration", "2"), ("workers", "1"), ("percent", "1")],
    );
}

#[test]
fn stress_io_runs_stress_ng_in_a_directory_it_deletes() {
    let _turn = stress_io_turn();
    let (_case, stdout) = stress(
        "StressIO",
        &[("duration", "2"), ("workers", "1"), ("percent", "1")],
    );
    let token = stdout
        .split("run ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the run token")
        .to_string();
    assert!(!Path::new(&format!("/var/tmp/experiment-broker-stressio-{token}")).exists());
}

#[test]
fn a_killed_cpu_stress_is_still_reverted_by_its_sleeper() {
    require(STRESS_TOOLS);
    let case = Case::new();
    let mut child = case.spawn(
        "StressCPU",
        &[("duration", "2"), ("workers", "1"), ("load", "30")],
        None,
    );
    let mut session = String::new();
    until(&mut child, "stress-ng", Duration::from_secs(10), || {
        let Some(token) = case.active("StressCPU") else {
            return false;
        };
        session = std::fs::read_to_string(case.state().join(format!("StressCPU.{token}/session")))
            .unwrap_or_default()
            .trim()
            .to_string();
        !session.is_empty() && pgrep_session(&session)
    });
    kill_group(&mut child);
    assert!(
        pgrep_session(&session),
        "stress-ng runs in its own session: the kill did not reach it"
    );
    assert!(
        poll(Duration::from_secs(12), || case
            .active("StressCPU")
            .is_none()),
        "the sleeper did not revert"
    );
    assert!(!pgrep_session(&session), "stress-ng is gone");
    assert!(
        case.log("StressCPU").contains("reverted by sleeper"),
        "{}",
        case.log("StressCPU")
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

// ---------------------------------------------------------------- disk

#[test]
fn disk_fill_fills_the_filesystem_to_the_percent_and_deletes_its_file() {
    require(&[
        ("mount", "mount"),
        ("umount", "mount"),
        ("df", "coreutils"),
        ("fallocate", "util-linux"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    let fs = Tmpfs::new("16m");
    let path = fs.path().to_str().unwrap().to_string();
    assert!(fs.used_percent() < 5);
    let mut child = case.spawn(
        "DiskFill",
        &[("duration", "2"), ("percent", "60"), ("path", &path)],
        None,
    );
    until(&mut child, "the fill file", Duration::from_secs(10), || {
        std::fs::read_dir(fs.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("experiment-broker-diskfill-")
        })
    });
    // the file exists before fallocate has allocated it all
    until(&mut child, "60 % used", Duration::from_secs(10), || {
        fs.used_percent() >= 60
    });
    let used = fs.used_percent();
    assert!(used <= 62, "filled to {used}%, not much past 60 %");
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert_eq!(
        std::fs::read_dir(fs.path()).unwrap().count(),
        0,
        "the file is deleted"
    );
    assert!(fs.used_percent() < 5);

    // already above the target: refused, nothing written
    run(
        "fallocate",
        &["-l", "10M", fs.path().join("ballast").to_str().unwrap()],
    );
    let out = case.run(
        "DiskFill",
        &[("duration", "2"), ("percent", "50"), ("path", &path)],
        None,
    );
    assert!(!out.succeeded(), "{out}");
    assert!(out.stderr.contains("already"), "{out}");
    assert_eq!(std::fs::read_dir(fs.path()).unwrap().count(), 1);
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

// ---------------------------------------------------------------- processes

/// Start `program args`, retrying while another test thread still holds a freshly written
/// binary open (ETXTBSY).
fn start(program: &Path, args: &[&str]) -> Child {
    for _ in 0..50 {
        match Command::new(program).args(args).spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(26) => sleep(Duration::from_millis(20)),
            Err(e) => panic!("{}: {e}", program.display()),
        }
    }
    panic!("{}: text file busy", program.display());
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let mut status = None;
    poll(timeout, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status
}

#[test]
fn kill_process_kills_the_pid_and_waits_for_its_exit() {
    require(&[
        ("ps", "procps"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = victim.id().to_string();
    let out = case.run("KillProcess", &[("duration", "5"), ("pid", &pid)], None);
    assert!(out.succeeded(), "{out}");
    assert!(
        out.stdout.contains("SIGKILL"),
        "KILL is the default:\n{out}"
    );
    let status = wait_exit(&mut victim, Duration::from_secs(2)).expect("the victim is dead");
    assert_eq!(status.signal(), Some(9));
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());

    let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
    let pid = victim.id().to_string();
    let out = case.run(
        "KillProcess",
        &[("duration", "5"), ("pid", &pid), ("signal", "TERM")],
        None,
    );
    assert!(out.succeeded(), "{out}");
    assert_eq!(
        wait_exit(&mut victim, Duration::from_secs(2))
            .unwrap()
            .signal(),
        Some(15)
    );

    let out = case.run(
        "KillProcess",
        &[("duration", "1"), ("pid", "999999999")],
        None,
    );
    assert!(
        !out.succeeded() && out.stderr.contains("no process 999999999"),
        "{out}"
    );
}

#[test]
fn kill_process_by_name_keeps_killing_restarts_for_the_duration() {
    require(&[
        ("pgrep", "procps"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    // a copy of sleep under a name no other process has
    let name = format!("ebv{}x{}", std::process::id() % 100_000, unique());
    let sleep_path = run("sh", &["-c", "command -v sleep"]);
    let victim_path = case.dir.path().join(&name);
    std::fs::copy(sleep_path.trim(), &victim_path).unwrap();
    let mut first = start(&victim_path, &["300"]);
    let started = Instant::now();
    let child = case.spawn(
        "KillProcessByName",
        &[("duration", "4"), ("name", &name)],
        None,
    );
    let status = wait_exit(&mut first, Duration::from_secs(3)).expect("the first is killed");
    assert_eq!(status.signal(), Some(9));
    // the "supervisor" restarts it within the window: it is killed again
    let mut second = start(&victim_path, &["300"]);
    let status = wait_exit(&mut second, Duration::from_secs(2)).expect("the restart is killed");
    assert_eq!(status.signal(), Some(9));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "both within the window"
    );
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(out.stdout.matches("sent SIGKILL").count() >= 2, "{out}");
    // after the window, nothing kills it any more
    let mut third = start(&victim_path, &["300"]);
    assert!(
        wait_exit(&mut third, Duration::from_millis(700)).is_none(),
        "the window is over"
    );
    third.kill().unwrap();
    third.wait().unwrap();
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());

    // nothing to kill: fails, saying so
    let out = case.run(
        "KillProcessByName",
        &[("duration", "0"), ("name", &name)],
        None,
    );
    assert!(
        !out.succeeded() && out.stderr.contains("no process named"),
        "{out}"
    );
}

// ---------------------------------------------------------------- reboots

const UNIT: &str = "etc/systemd/system/experiment-broker-boot-revert.service";
const WANTS: &str =
    "etc/systemd/system/multi-user.target.wants/experiment-broker-boot-revert.service";
const CRON: &str = "etc/cron.d/experiment-broker-boot-revert";

/// The command a boot entry (the unit's `ExecStart=`, or the `@reboot` cron line) runs.
fn boot_command(case: &Case) -> Vec<String> {
    let unit = std::fs::read_to_string(case.host().join(UNIT));
    let cron = std::fs::read_to_string(case.host().join(CRON));
    let line = match (unit, cron) {
        (Ok(unit), _) => unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("the unit has an ExecStart")
            .to_string(),
        (_, Ok(cron)) => cron
            .lines()
            .find_map(|l| l.strip_prefix("@reboot root "))
            .expect("the cron entry runs at reboot as root")
            .to_string(),
        _ => panic!("no boot entry is installed: {}", case.report("DiskFill")),
    };
    line.split_whitespace().map(str::to_string).collect()
}

/// Run the boot-time revert the way init runs it: the command of its boot entry, with an
/// environment of nothing but PATH and the test's host root.
fn run_boot_revert(case: &Case) -> Out {
    let command = boot_command(case);
    let child = Command::new(&command[0])
        .args(&command[1..])
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the boot-time revert");
    finish(child)
}

/// SIGKILL the command (its whole group) and the run's sleeper: what a reboot does to them.
fn kill_run(case: &Case, name: &str, child: &mut Child) -> String {
    let token = case.active(name).expect("the marker");
    let pid = std::fs::read_to_string(
        case.state_of(name)
            .join(format!("{name}.{token}/sleeper.pid")),
    )
    .expect("the sleeper's pid");
    kill_group(child);
    run("kill", &["-KILL", pid.trim()]);
    let cmdline = format!("/proc/{}/cmdline", pid.trim());
    assert!(
        poll(Duration::from_secs(2), || std::fs::read(&cmdline)
            .map_or(true, |c| c.is_empty())),
        "the sleeper is dead"
    );
    token
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

const DISK_TOOLS: &[(&str, &str)] = &[
    ("mount", "mount"),
    ("umount", "mount"),
    ("df", "coreutils"),
    ("fallocate", "util-linux"),
    ("setsid", "util-linux"),
    ("flock", "util-linux"),
];

#[test]
fn a_disk_fill_interrupted_by_a_reboot_is_reverted_at_boot_and_the_boot_hook_then_removes_itself() {
    let _turn = stress_io_turn();
    require(DISK_TOOLS);
    require(STRESS_TOOLS);
    let case = Case::new();
    let fs = Tmpfs::new("16m");
    let path = fs.path().to_str().unwrap().to_string();
    let mut child = case.spawn(
        "DiskFill",
        &[("duration", "120"), ("percent", "60"), ("path", &path)],
        None,
    );
    until(&mut child, "60 % used", Duration::from_secs(10), || {
        fs.used_percent() >= 60
    });
    // installed and enabled before the injection
    let unit = std::fs::read_to_string(case.host().join(UNIT)).expect("the systemd unit");
    assert!(unit.contains("WantedBy=multi-user.target"), "{unit}");
    assert_eq!(
        std::fs::canonicalize(case.host().join(WANTS)).unwrap(),
        std::fs::canonicalize(case.host().join(UNIT)).unwrap(),
        "the unit is enabled"
    );
    assert!(case.persistent().join("boot-revert.sh").is_file());

    let token = kill_run(&case, "DiskFill", &mut child);
    case.reboot();
    assert!(fs.used_percent() >= 60, "nothing has reverted the fill yet");

    // after the reboot, before the boot hook runs, a fault of this boot starts
    let mut stress = case.spawn(
        "StressIO",
        &[("duration", "4"), ("workers", "1"), ("percent", "1")],
        None,
    );
    until(
        &mut stress,
        "StressIO's marker",
        Duration::from_secs(10),
        || case.active("StressIO").is_some(),
    );
    let stress_token = case.active("StressIO").unwrap();

    let out = run_boot_revert(&case);
    assert!(out.succeeded(), "{out}");
    assert_eq!(
        files_in(fs.path()),
        Vec::<String>::new(),
        "the ballast is gone"
    );
    assert!(fs.used_percent() < 5);
    assert!(
        case.active("DiskFill").is_none(),
        "{}",
        case.report("DiskFill")
    );
    assert!(
        case.log("DiskFill")
            .contains(&format!("{token} reverted by boot")),
        "{}",
        case.log("DiskFill")
    );
    // the fault of this boot is not the boot hook's: it goes on, and the hook stays for it
    assert_eq!(case.active("StressIO"), Some(stress_token));
    assert!(case.host().join(UNIT).exists() && case.host().join(WANTS).exists());

    let out = finish(stress);
    assert!(out.succeeded(), "{out}");
    assert!(
        !case.host().join(UNIT).exists() && !case.host().join(WANTS).exists(),
        "nothing is left to revert: the unit is removed"
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn a_stress_io_interrupted_by_a_reboot_is_reverted_at_boot_by_cron_without_systemd() {
    let _turn = stress_io_turn();
    require(STRESS_TOOLS);
    let case = Case::bare();
    std::fs::create_dir_all(case.host().join("etc/cron.d")).unwrap();
    std::fs::create_dir_all(case.host().join("usr/sbin")).unwrap();
    let cron = case.host().join("usr/sbin/cron");
    std::fs::write(&cron, "").unwrap();
    std::fs::set_permissions(&cron, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut child = case.spawn(
        "StressIO",
        &[("duration", "120"), ("workers", "1"), ("percent", "1")],
        None,
    );
    let mut session = String::new();
    until(&mut child, "stress-ng", Duration::from_secs(10), || {
        let Some(token) = case.active("StressIO") else {
            return false;
        };
        let file = case
            .state_of("StressIO")
            .join(format!("StressIO.{token}/session"));
        session = std::fs::read_to_string(file)
            .unwrap_or_default()
            .trim()
            .to_string();
        !session.is_empty() && pgrep_session(&session)
    });
    assert!(!case.host().join(UNIT).exists(), "no systemd: no unit");
    let entry = std::fs::read_to_string(case.host().join(CRON)).expect("the cron entry");
    assert!(entry.contains("@reboot root "), "{entry}");
    let token = kill_run(&case, "StressIO", &mut child);
    run("pkill", &["-KILL", "-s", &session]);
    assert!(poll(Duration::from_secs(5), || !pgrep_session(&session)));
    case.reboot();
    let dir = format!("/var/tmp/experiment-broker-stressio-{token}");
    assert!(
        Path::new(&dir).exists(),
        "the work directory outlived the reboot"
    );

    let out = run_boot_revert(&case);
    assert!(out.succeeded(), "{out}");
    assert!(!Path::new(&dir).exists(), "the work directory is gone");
    assert!(case.log("StressIO").contains("reverted by boot"));
    assert!(
        !case.host().join(CRON).exists(),
        "the cron entry is removed"
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn a_fault_that_outlives_a_reboot_is_refused_where_no_boot_time_revert_can_be_installed() {
    require(DISK_TOOLS);
    let case = Case::bare();
    let fs = Tmpfs::new("16m");
    let out = case.run(
        "DiskFill",
        &[
            ("duration", "5"),
            ("percent", "60"),
            ("path", fs.path().to_str().unwrap()),
        ],
        None,
    );
    assert!(!out.succeeded(), "{out}");
    assert!(
        out.stderr.contains("neither systemd nor a cron daemon"),
        "{out}"
    );
    assert!(out.stderr.contains("nothing was injected"), "{out}");
    assert_eq!(files_in(fs.path()), Vec::<String>::new());
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn a_run_first_reverts_an_interrupted_run_of_its_kind_and_removes_stale_ballast() {
    let _turn = stress_io_turn();
    require(DISK_TOOLS);
    require(STRESS_TOOLS);
    let case = Case::new();
    let fs = Tmpfs::new("16m");
    let path = fs.path().to_str().unwrap().to_string();
    let mut child = case.spawn(
        "DiskFill",
        &[("duration", "120"), ("percent", "40"), ("path", &path)],
        None,
    );
    until(&mut child, "40 % used", Duration::from_secs(10), || {
        fs.used_percent() >= 40
    });
    // its command and sleeper die (no reboot: the marker stays, on this boot)
    let token = kill_run(&case, "DiskFill", &mut child);
    // ballast an earlier version left with its record in /run, and files that are not ballast
    for (name, size) in [
        ("experiment-broker-diskfill-0123456789ab", "2M"),
        ("experiment-broker-diskfill-keep", "1M"),
        ("keep", "1M"),
    ] {
        run(
            "fallocate",
            &["-l", size, fs.path().join(name).to_str().unwrap()],
        );
    }
    let out = case.run(
        "DiskFill",
        &[("duration", "1"), ("percent", "60"), ("path", &path)],
        None,
    );
    assert!(out.succeeded(), "{out}");
    assert!(
        out.stdout.contains(&format!("run {token} was interrupted")),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("experiment-broker-diskfill-0123456789ab, left by an earlier run"),
        "{out}"
    );
    assert!(
        case.log("DiskFill")
            .contains(&format!("{token} reverted by stale"))
    );
    assert_eq!(
        files_in(fs.path()),
        ["experiment-broker-diskfill-keep", "keep"],
        "only what is not this document's ballast is left"
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());

    // a live run is not stale: the next one is refused and changes nothing
    let mut live = case.spawn(
        "DiskFill",
        &[("duration", "3"), ("percent", "40"), ("path", &path)],
        None,
    );
    until(&mut live, "40 % used", Duration::from_secs(10), || {
        fs.used_percent() >= 40
    });
    let second = case.run(
        "DiskFill",
        &[("duration", "1"), ("percent", "90"), ("path", &path)],
        None,
    );
    assert!(
        !second.succeeded() && second.stderr.contains("refusing to stack"),
        "{second}"
    );
    assert_eq!(files_in(fs.path()).len(), 3, "the live run's file stays");
    let out = finish(live);
    assert!(out.succeeded(), "{out}");

    // StressIO: a work directory no run owns
    let stale = Path::new("/var/tmp").join(format!(
        "experiment-broker-stressio-{:012x}",
        0xeb00 + unique()
    ));
    std::fs::create_dir_all(stale.join("sub")).unwrap();
    let (_case, stdout) = stress(
        "StressIO",
        &[("duration", "1"), ("workers", "1"), ("percent", "1")],
    );
    assert!(!stale.exists(), "{stdout}");
}

#[test]
fn the_boot_time_revert_is_the_same_in_every_document_that_outlives_a_reboot() {
    let part = |name: &str| {
        let text = script_text(name);
        let start = text
            .find("# The boot-time revert, the same")
            .expect("the boot-time revert");
        let end = text
            .find("if ! install_boot_revert")
            .expect("its installation");
        text[start..end].to_string()
    };
    assert_eq!(part("DiskFill"), part("StressIO"));
}

// ---------------------------------------------------------------- kills spare the broker

/// A PID namespace with its own /proc, so that a kill by name reaches only the processes the
/// test starts in it (never the machine's other `bash` or `sleep`). Its init reaps orphans;
/// dropping it kills every process in it.
struct Pidns {
    holder: Child,
    init: String,
}

const REAPER: &str = "import os, time
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.1)
";

impl Pidns {
    fn new() -> Pidns {
        let holder = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "python3", "-c", REAPER])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let children = format!("/proc/{0}/task/{0}/children", holder.id());
        let mut init = String::new();
        assert!(
            poll(Duration::from_secs(5), || {
                init = std::fs::read_to_string(&children)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                !init.is_empty()
            }),
            "the namespace's init did not start"
        );
        Pidns { holder, init }
    }

    /// `nsenter` into the namespace (and its /proc).
    fn prefix(&self) -> [&str; 5] {
        ["nsenter", "-t", &self.init, "-p", "-m"]
    }

    fn spawn(&self, args: &[&str]) -> Child {
        Command::new("nsenter")
            .args(["-t", &self.init, "-p", "-m"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("nsenter")
    }
}

impl Drop for Pidns {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", &self.init]).status();
        let _ = self.holder.wait();
    }
}

#[test]
fn the_kill_documents_spare_every_process_of_another_fault_and_its_revert() {
    require(STRESS_TOOLS);
    require(&[
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("python3", "python3"),
    ]);
    let case = Case::new();
    let ns = Pidns::new();
    // another fault: its command and sleeper are `bash`, and both run `sleep`
    let mut fault = case
        .command_in(
            "StressCPU",
            &[("duration", "8"), ("workers", "1"), ("load", "10")],
            &ns.prefix(),
        )
        .spawn()
        .expect("nsenter");
    until(
        &mut fault,
        "StressCPU's sleeper",
        Duration::from_secs(10),
        || {
            case.active("StressCPU").is_some_and(|token| {
                case.state()
                    .join(format!("StressCPU.{token}/sleeper.pid"))
                    .exists()
            })
        },
    );
    let token = case.active("StressCPU").unwrap();
    // processes of the same names that are no fault's
    let mut bash = ns.spawn(&["bash", "-c", "sleep 300; exit 0"]);
    let mut sleep_ = ns.spawn(&["sleep", "300"]);
    sleep(Duration::from_millis(300));

    for (name, victim) in [("bash", &mut bash), ("sleep", &mut sleep_)] {
        let out = finish(
            case.command_in(
                "KillProcessByName",
                &[("duration", "1"), ("name", name)],
                &ns.prefix(),
            )
            .spawn()
            .unwrap(),
        );
        assert!(out.succeeded(), "{out}");
        assert!(out.stdout.contains("spared process"), "{out}");
        assert!(
            wait_exit(victim, Duration::from_secs(2)).is_some(),
            "the {name} that is no fault's is killed:\n{out}"
        );
        assert!(
            running(&token),
            "the other fault's sleeper survives {name}:\n{out}"
        );
        assert!(
            fault.try_wait().unwrap().is_none(),
            "the other fault's command survives {name}:\n{out}"
        );
    }

    // KillProcess refuses the sleeper's pid (as the namespace numbers it)
    let sleeper =
        std::fs::read_to_string(case.state().join(format!("StressCPU.{token}/sleeper.pid")))
            .unwrap();
    let out = finish(
        case.command_in(
            "KillProcess",
            &[("duration", "1"), ("pid", sleeper.trim())],
            &ns.prefix(),
        )
        .spawn()
        .unwrap(),
    );
    assert!(
        !out.succeeded() && out.stderr.contains("belongs to an Experiment Broker fault"),
        "{out}"
    );
    assert!(running(&token));

    let out = finish(fault);
    assert!(out.succeeded(), "{out}");
    assert!(
        case.log("StressCPU").contains("reverted by foreground"),
        "{}",
        case.log("StressCPU")
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}
