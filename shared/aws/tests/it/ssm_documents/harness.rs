//! What the document tests share: one test's `Case` (its state directories, host root and
//! the document's command), and waiting for, killing and checking the processes it starts.

use super::*;

/// The documents whose fault outlives a reboot: their state is on persistent storage.
pub(super) const PERSISTENT: &[&str] = &["DiskFill", "StressIO"];

/// StressIO removes every work directory in /var/tmp no active run of its host owns; the
/// tests' hosts share /var/tmp, so their StressIO runs take turns.
pub(super) static STRESS_IO: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(super) fn stress_io_turn() -> std::sync::MutexGuard<'static, ()> {
    STRESS_IO.lock().unwrap_or_else(|e| e.into_inner())
}

/// One test's state directories and scripts, and the host the documents see: a root of the
/// test's own (`EXPERIMENT_BROKER_HOST_ROOT`) with the boot id and the directories systemd and
/// cron read, so that the boot-time revert is installed there and a reboot can be simulated.
pub(super) struct Case {
    pub(super) dir: tempfile::TempDir,
}

impl Case {
    /// A host running systemd.
    pub(super) fn new() -> Case {
        let case = Case::bare();
        std::fs::create_dir_all(case.host().join("run/systemd/system")).unwrap();
        case
    }

    /// A host with neither systemd nor cron (only the boot id).
    pub(super) fn bare() -> Case {
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
    pub(super) fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The persistent state directory (`/var/lib/experiment-broker` on a host).
    pub(super) fn persistent(&self) -> PathBuf {
        self.dir.path().join("persistent")
    }

    pub(super) fn host(&self) -> PathBuf {
        self.dir.path().join("host")
    }

    /// Where the document `name` keeps its marker, runs and log.
    pub(super) fn state_of(&self, name: &str) -> PathBuf {
        if PERSISTENT.contains(&name) {
            self.persistent()
        } else {
            self.state()
        }
    }

    /// A reboot, as far as the documents can tell: every process of the fault is killed by
    /// the caller; here the volatile state is wiped and the boot id changes.
    pub(super) fn reboot(&self) {
        let _ = std::fs::remove_dir_all(self.state());
        std::fs::write(
            self.host().join("proc/sys/kernel/random/boot_id"),
            format!("{:032x}\n", u128::from(unique()) + 1),
        )
        .unwrap();
    }

    /// The document, ready to run in its own process group (in `ns` when given).
    pub(super) fn command(
        &self,
        name: &str,
        values: &[(&str, &str)],
        ns: Option<&Netns>,
    ) -> Command {
        match ns {
            Some(ns) => self.command_in(name, values, &["ip", "netns", "exec", &ns.name]),
            None => self.command_in(name, values, &[]),
        }
    }

    /// The document run by `sh`, behind `prefix` (a program that runs its arguments elsewhere).
    pub(super) fn command_in(
        &self,
        name: &str,
        values: &[(&str, &str)],
        prefix: &[&str],
    ) -> Command {
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

    /// Start document `name`, wait until `injected` holds, SIGKILL its whole process group,
    /// then prove the fault outlived its command and that its sleeper put it back
    /// (`reverted`, within 12 s: the callers' 2 s duration plus the sleeper's 3 s margin,
    /// counted from the injection), removed the run's marker and logged "reverted by sleeper".
    pub(super) fn killed_then_reverted(
        &self,
        name: &str,
        values: &[(&str, &str)],
        ns: Option<&Netns>,
        injected: impl Fn() -> bool,
        reverted: impl Fn() -> bool,
    ) {
        let mut child = self.spawn(name, values, ns);
        until(&mut child, "the fault", Duration::from_secs(10), &injected);
        kill_group(&mut child);
        assert!(injected(), "killing {name} does not revert by itself");
        assert!(self.active(name).is_some());
        assert!(
            poll(Duration::from_secs(12), &reverted),
            "the sleeper did not revert {name}: {}",
            self.report(name)
        );
        assert!(
            poll(Duration::from_secs(2), || self.active(name).is_none()),
            "{}",
            self.report(name)
        );
        assert!(
            self.log(name).contains("reverted by sleeper"),
            "{}",
            self.log(name)
        );
    }

    pub(super) fn spawn(&self, name: &str, values: &[(&str, &str)], ns: Option<&Netns>) -> Child {
        self.command(name, values, ns).spawn().expect("sh")
    }

    pub(super) fn run(&self, name: &str, values: &[(&str, &str)], ns: Option<&Netns>) -> Out {
        finish(self.spawn(name, values, ns))
    }

    /// The run token of the active fault of `name`, if any.
    pub(super) fn active(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.state_of(name).join(format!("{name}.active")))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    }

    /// The run directories, markers and boot-time revert left in the state directories.
    pub(super) fn leftovers(&self) -> Vec<String> {
        self.leftover_paths()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    pub(super) fn leftover_paths(&self) -> Vec<PathBuf> {
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
    pub(super) fn report(&self, name: &str) -> String {
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

    pub(super) fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.state_of(name).join(format!("{name}.log"))).unwrap_or_default()
    }
}

pub(super) fn finish(child: Child) -> Out {
    let out = child.wait_with_output().expect("wait");
    Out {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Wait until `condition` holds while the document runs; if the document ends first or the
/// time runs out, fail with what it said.
pub(super) fn until(
    child: &mut Child,
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) {
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
pub(super) fn kill_group(child: &mut Child) {
    run("kill", &["-KILL", "--", &format!("-{}", child.id())]);
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "the document was killed");
}

/// Whether a process of the run `token` (its sleeper) still runs.
pub(super) fn running(token: &str) -> bool {
    Command::new("pgrep")
        .args(["-f", token])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

pub(super) fn pgrep_session(sid: &str) -> bool {
    Command::new("pgrep")
        .args(["-s", sid])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

pub(super) const NET_TOOLS: &[(&str, &str)] = &[
    ("ip", "iproute2"),
    ("tc", "iproute2"),
    ("iptables", "iptables"),
    ("python3", "python3"),
    ("setsid", "util-linux"),
    ("flock", "util-linux"),
    ("kill", "procps"),
    ("pgrep", "procps"),
];
pub(super) const STRESS_TOOLS: &[(&str, &str)] = &[
    ("stress-ng", "stress-ng"),
    ("pgrep", "procps"),
    ("pkill", "procps"),
    ("setsid", "util-linux"),
    ("flock", "util-linux"),
    ("kill", "procps"),
];

pub(super) fn rules_of(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("experiment-broker:"))
        .collect()
}

/// The document ends on its own, successfully, and none of its firewall rules is left.
pub(super) fn finish_reverted(child: Child, ns: &Netns) {
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(
        rules_of(&ns.iptables()).is_empty(),
        "reverted:\n{}",
        ns.iptables()
    );
}

/// Run a stress document: stress-ng runs in the session it records, and is gone after.
pub(super) fn stress(name: &str, values: &[(&str, &str)]) -> (Case, String) {
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

/// Start `program args`, retrying while another test thread still holds a freshly written
/// binary open (ETXTBSY).
pub(super) fn start(program: &Path, args: &[&str]) -> Child {
    for _ in 0..50 {
        match Command::new(program).args(args).spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(26) => sleep(Duration::from_millis(20)),
            Err(e) => panic!("{}: {e}", program.display()),
        }
    }
    panic!("{}: text file busy", program.display());
}

pub(super) fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let mut status = None;
    poll(timeout, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status
}
