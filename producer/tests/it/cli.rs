//! The shell `producer` shares with `worker` (`cli`), as a user sees it: `--version` names the
//! commit, `--help` has headings, examples and the exit codes. (The exit codes of suite runs
//! are asserted where suites run: `fleet`, `halt`, `aws_fleet`.)

use crate::util;

use std::process::Command;
use util::PRODUCER;

#[test]
fn version_names_the_same_commit_as_the_worker() {
    let version = |bin: &std::path::Path| {
        let out = Command::new(bin).arg("--version").output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let producer = version(PRODUCER.as_ref());
    let rest = producer
        .strip_prefix(concat!("producer ", env!("CARGO_PKG_VERSION"), " (commit "))
        .unwrap_or_else(|| panic!("not `producer VERSION (commit HASH)`: {producer}"));
    assert!(rest.ends_with(')') && rest.len() > 1, "{producer}");
    let worker = version(&util::worker_bin());
    assert_eq!(
        worker.strip_prefix("worker "),
        producer.strip_prefix("producer "),
        "one shell, one version line"
    );
}

#[test]
fn help_has_headings_examples_and_the_exit_codes() {
    let help = |args: &[&str]| {
        let out = Command::new(PRODUCER).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&["--help"]);
    assert!(
        top.contains("Exit codes:") && top.contains("3    timed out waiting"),
        "{top}"
    );
    let submit = help(&["submit", "--help"]);
    for heading in [
        "Examples:",
        "Waiting:",
        "Checks:",
        "  producer submit --wait ",
    ] {
        assert!(submit.contains(heading), "{heading} missing:\n{submit}");
    }
    for command in ["validate", "serve", "status", "halt", "resume", "run"] {
        let text = help(&[command, "--help"]);
        assert!(
            text.contains("Examples:") && text.contains(&format!("  producer {command}")),
            "{command}:\n{text}"
        );
    }
}
