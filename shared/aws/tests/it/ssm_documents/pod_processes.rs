//! The pod documents that act on a container's processes and file system (PodStressCPU,
//! PodStressMemory, PodDiskFill, PodTerminationCrash, PodKillProcess) against a stand-in pod:
//! stress-ng runs in the container's cgroup, the disk fills through the container's root, and
//! the kills reach the pod's processes only.

use super::pod_harness::*;
use super::*;

/// Run a pod stress document to its end: stress-ng runs in the container's cgroup while it
/// lasts, and is gone after.
fn pod_stress(name: &str, layout: Layout, extra: &[(&str, &str)]) {
    require(STRESS_TOOLS);
    let case = Case::new();
    let pod = Pod::new(layout, None);
    let mut values = vec![
        ("duration", "2"),
        ("podUid", pod.uid.as_str()),
        ("containerId", pod.container.as_str()),
    ];
    values.extend_from_slice(extra);
    let mut child = case.spawn(name, &values, None);
    let mut session = String::new();
    until(&mut child, "stress-ng", Duration::from_secs(10), || {
        let Some(token) = pod_active(&case, name, &pod) else {
            return false;
        };
        session = std::fs::read_to_string(case.state().join(format!("{name}.{token}/session")))
            .unwrap_or_default()
            .trim()
            .to_string();
        !session.is_empty() && pgrep_session(&session)
    });
    let in_cgroup = run("pgrep", &["-s", &session, "stress-ng"]);
    let procs = std::fs::read_to_string(pod.leaf.join("cgroup.procs")).unwrap();
    let placed: Vec<&str> = in_cgroup
        .split_whitespace()
        .filter(|pid| procs.split_whitespace().any(|p| p == *pid))
        .collect();
    assert!(
        !placed.is_empty(),
        "stress-ng ({in_cgroup}) runs in the container's cgroup {} ({procs})",
        pod.leaf.display()
    );
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(out.stdout.contains(&pod.container), "{out}");
    assert!(
        !pgrep_session(&session),
        "stress-ng (session {session}) is gone"
    );
    assert!(case.leftovers().is_empty(), "{}", case.report(name));
}

#[test]
fn pod_stress_cpu_runs_in_the_container_cgroup_systemd_layout() {
    pod_stress(
        "PodStressCPU",
        Layout::Systemd,
        &[("workers", "1"), ("load", "30")],
    );
}

#[test]
fn pod_stress_memory_runs_in_the_container_cgroup() {
    pod_stress(
        "PodStressMemory",
        Layout::Cgroupfs,
        &[("workers", "1"), ("percent", "1")],
    );
}

#[test]
fn pod_stress_memory_takes_its_percent_of_the_container_memory_limit() {
    require(STRESS_TOOLS);
    let case = Case::new();
    let mut pod = Pod::new(Layout::Cgroupfs, None);
    pod.limit_memory(256 << 20);
    let out = case.run(
        "PodStressMemory",
        &[
            ("duration", "1"),
            ("podUid", &pod.uid),
            ("containerId", &pod.container),
            ("workers", "1"),
            ("percent", "25"),
        ],
        None,
    );
    assert!(out.succeeded(), "{out}");
    assert!(
        out.stdout
            .contains("25% of the container's memory limit (268435456 bytes): 67108864 bytes"),
        "{out}"
    );
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodStressMemory")
    );
}

#[test]
fn pod_disk_fill_fills_through_the_container_root_and_deletes_its_file() {
    require(&[
        ("mount", "mount"),
        ("df", "coreutils"),
        ("fallocate", "util-linux"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    let fs = Tmpfs::new("16m");
    // the stand-in container's root is the host's: PATH in the container is the tmpfs
    let pod = Pod::new(Layout::Cgroupfs, None);
    let path = fs.path().to_str().unwrap().to_string();
    let mut child = case.spawn(
        "PodDiskFill",
        &[
            ("duration", "2"),
            ("podUid", &pod.uid),
            ("containerId", &pod.container),
            ("percent", "60"),
            ("path", &path),
        ],
        None,
    );
    until(&mut child, "60 % used", Duration::from_secs(10), || {
        fs.used_percent() >= 60
    });
    assert!(fs.used_percent() <= 62, "{}", fs.used_percent());
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(fs.used_percent() < 5, "the file is deleted");
    assert_eq!(std::fs::read_dir(fs.path()).unwrap().count(), 0);
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodDiskFill")
    );

    // a second fill of the same pod while one runs is refused
    let mut child = case.spawn(
        "PodDiskFill",
        &[
            ("duration", "3"),
            ("podUid", &pod.uid),
            ("percent", "30"),
            ("path", &path),
        ],
        None,
    );
    until(&mut child, "30 % used", Duration::from_secs(10), || {
        fs.used_percent() >= 30
    });
    let second = case.run(
        "PodDiskFill",
        &[("duration", "3"), ("podUid", &pod.uid), ("path", &path)],
        None,
    );
    let first = finish(child);
    assert!(
        second.stderr.contains("refusing to stack"),
        "{second}\nthe first:\n{first}"
    );
    assert!(first.succeeded(), "{first}");
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodDiskFill")
    );
}

#[test]
fn a_pod_disk_fill_path_crossing_a_symbolic_link_is_refused_before_anything_is_written() {
    require(&[("mount", "mount"), ("df", "coreutils")]);
    let case = Case::new();
    let fs = Tmpfs::new("16m");
    let pod = Pod::new(Layout::Cgroupfs, None);
    // <fs>/link -> <fs>/real (absolute): walked through /proc/PID/root, such a link resolves
    // from the host's root, so it must not be crossed
    let real = fs.path().join("real");
    std::fs::create_dir_all(real.join("inner")).unwrap();
    std::os::unix::fs::symlink(&real, fs.path().join("link")).unwrap();
    let path = fs.path().join("link/inner");
    let out = case.run(
        "PodDiskFill",
        &[
            ("duration", "2"),
            ("podUid", &pod.uid),
            ("percent", "60"),
            ("path", path.to_str().unwrap()),
        ],
        None,
    );
    assert!(!out.succeeded(), "{out}");
    assert!(
        out.stderr.contains("crosses a symbolic link (link)"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(real.join("inner")).unwrap().count(),
        0,
        "nothing written"
    );
    assert!(fs.used_percent() < 5);
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodDiskFill")
    );
}

#[test]
fn a_killed_pod_disk_fill_is_deleted_by_its_sleeper() {
    require(&[
        ("mount", "mount"),
        ("df", "coreutils"),
        ("fallocate", "util-linux"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    let fs = Tmpfs::new("16m");
    let pod = Pod::new(Layout::Systemd, None);
    let path = fs.path().to_str().unwrap().to_string();
    let mut child = case.spawn(
        "PodDiskFill",
        &[
            ("duration", "2"),
            ("podUid", &pod.uid),
            ("containerId", &pod.container),
            ("percent", "50"),
            ("path", &path),
        ],
        None,
    );
    until(&mut child, "50 % used", Duration::from_secs(10), || {
        fs.used_percent() >= 50
    });
    let token = pod_active(&case, "PodDiskFill", &pod).expect("the marker");
    kill_group(&mut child);
    assert!(
        fs.used_percent() >= 50,
        "killed: nothing deleted the file yet"
    );
    assert!(
        poll(Duration::from_secs(10), || fs.used_percent() < 5),
        "the sleeper deleted the file:\n{}",
        case.report("PodDiskFill")
    );
    assert!(poll(Duration::from_secs(2), || case.leftovers().is_empty()));
    assert!(
        case.log("PodDiskFill")
            .contains(&format!("{token} reverted by sleeper"))
    );
}

#[test]
fn pod_termination_crash_kills_the_container_main_process_only() {
    require(&[
        ("ps", "procps"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    // main process `sh`, with a child of its own in the same container
    let mut pod = Pod::with(
        Layout::Cgroupfs,
        None,
        &["sh", "-c", "sleep 1; sleep 601 & wait"],
    );
    let main = pod.pid();
    let procs = pod.leaf.join("cgroup.procs");
    let runs_sleep = || {
        std::fs::read_to_string(&procs)
            .unwrap()
            .split_whitespace()
            .any(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()
                    == b"sleep\x00601\x00"
            })
    };
    assert!(
        poll(Duration::from_secs(5), runs_sleep),
        "the container runs sh and its sleep 601"
    );
    let out = case.run(
        "PodTerminationCrash",
        &[
            ("duration", "5"),
            ("podUid", &pod.uid),
            ("containerId", &pod.container),
        ],
        None,
    );
    assert!(out.succeeded(), "{out}");
    assert!(out.stdout.contains(&format!("process {main}")), "{out}");
    let status = wait_exit(pod.main(), Duration::from_secs(2)).expect("the main process died");
    assert_eq!(status.signal(), Some(9), "KILL is the default");
    assert!(runs_sleep(), "the main process's child lives on");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn pod_kill_process_kills_by_name_inside_the_pod_only() {
    require(&[
        ("pgrep", "procps"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    let mut pod = Pod::new(Layout::Systemd, None);
    let mut decoy = Command::new("sleep").arg("600").spawn().unwrap();
    let out = case.run(
        "PodKillProcess",
        &[
            ("duration", "1"),
            ("podUid", &pod.uid),
            ("name", "sleep"),
            ("signal", "TERM"),
        ],
        None,
    );
    assert!(out.succeeded(), "{out}");
    let status = wait_exit(pod.main(), Duration::from_secs(2)).expect("the pod's sleep died");
    assert_eq!(status.signal(), Some(15));
    assert!(
        wait_exit(&mut decoy, Duration::from_millis(300)).is_none(),
        "a sleep outside the pod is never signalled"
    );
    decoy.kill().unwrap();
    decoy.wait().unwrap();
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());

    // nothing of that name in the pod: fails, saying so
    let other = Pod::new(Layout::Cgroupfs, None);
    let out = case.run(
        "PodKillProcess",
        &[
            ("duration", "0"),
            ("podUid", &other.uid),
            ("name", "nosuchname"),
        ],
        None,
    );
    assert!(
        !out.succeeded() && out.stderr.contains("no process named"),
        "{out}"
    );
}
