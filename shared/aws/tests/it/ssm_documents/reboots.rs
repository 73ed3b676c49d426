//! Faults interrupted by a reboot: reverted at boot (systemd or cron), refused where no
//! boot-time revert can be installed.

use super::*;

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
