//! The DiskFill document, on a tmpfs of the test's own.

use super::*;

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
