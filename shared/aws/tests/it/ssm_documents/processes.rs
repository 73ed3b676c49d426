//! The kill documents (KillProcess, KillProcessByName): they kill what they name, and spare
//! every process of another fault and its revert.

use super::*;

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
