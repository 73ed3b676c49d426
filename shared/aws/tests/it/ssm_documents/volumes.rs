//! The UnmountVolume document (`detach_volume`'s unmount), on tmpfs mounts of the test's own
//! whose source is a name no other mount has: it unmounts exactly the mounts of that source,
//! returns, and its detached sleeper mounts them again after the duration, the command long gone.

use super::*;

/// The mount points whose source is `source`, from /proc/mounts.
fn mounted_from(source: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            (f.next() == Some(source)).then(|| f.next().unwrap().to_string())
        })
        .collect()
}

/// Mounts made by a test, unmounted whatever happens.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for p in &self.0 {
            while Command::new("umount")
                .arg(p)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {}
        }
    }
}

#[test]
fn unmount_volume_unmounts_the_devices_filesystems_and_its_sleeper_remounts_them() {
    require(&[
        ("mount", "mount"),
        ("umount", "mount"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    let source = format!("ebvol-{}-{}", std::process::id(), unique());
    let other = format!("{source}-other");
    let dirs: Vec<PathBuf> = ["a", "b", "c"]
        .iter()
        .map(|d| case.dir.path().join(d))
        .collect();
    let _mounts = Mounts(dirs.clone());
    for (dir, src) in dirs.iter().zip([&source, &source, &other]) {
        std::fs::create_dir_all(dir).unwrap();
        run(
            "mount",
            &["-t", "tmpfs", "-o", "size=1m", src, dir.to_str().unwrap()],
        );
    }
    let mut want: Vec<String> = dirs[..2].iter().map(|d| d.display().to_string()).collect();
    want.sort();

    let out = finish(
        case.command(
            "UnmountVolume",
            &[("duration", "2"), ("device", &source)],
            None,
        )
        .env("EXPERIMENT_BROKER_REMOUNT_MARGIN", "1")
        .spawn()
        .unwrap(),
    );
    assert!(out.succeeded(), "{out}");
    assert!(mounted_from(&source).is_empty(), "both unmounted: {out}");
    assert_eq!(
        mounted_from(&other),
        [dirs[2].display().to_string()],
        "another source's mount is untouched"
    );
    assert!(
        case.active("UnmountVolume").is_some(),
        "its revert is pending"
    );

    // the command has ended: the sleeper remounts at duration + margin
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let mut now = mounted_from(&source);
        now.sort();
        if now == want {
            break;
        }
        assert!(
            Instant::now() < end,
            "not remounted ({now:?}): {}",
            case.report("UnmountVolume")
        );
        sleep(Duration::from_millis(100));
    }
    let end = Instant::now() + Duration::from_secs(5);
    while !case.leftovers().is_empty() && Instant::now() < end {
        sleep(Duration::from_millis(50));
    }
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("UnmountVolume")
    );
    assert!(case.log("UnmountVolume").contains("reverted by sleeper"));

    // a device nothing is mounted from: nothing to do, nothing left
    let out = case.run(
        "UnmountVolume",
        &[("duration", "2"), ("device", &format!("{source}-none"))],
        None,
    );
    assert!(out.succeeded(), "{out}");
    assert!(out.stdout.contains("nothing to unmount"), "{out}");
    assert!(case.leftovers().is_empty());
}
