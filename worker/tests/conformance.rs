//! The Chaos Toolkit conformance suite (`../shared/conformance`): every experiment run and
//! validated by our binary, compared with the outcomes the reference implementation recorded.

mod util;

use std::path::PathBuf;
use std::process::Command;

fn conformance_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BROKER_CONFORMANCE_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

#[test]
fn matches_the_chaos_toolkit_reference_on_every_case() {
    let dir = conformance_dir();
    let check = dir.join("check.sh");
    assert!(
        check.is_file(),
        "the conformance suite is missing: expected {} (set BROKER_CONFORMANCE_DIR to its directory)",
        check.display()
    );
    let bin = util::worker_bin();
    let bin = bin.to_str().unwrap();
    let output = Command::new("bash")
        .arg(&check)
        .arg("--validate")
        .arg(format!("{bin} validate {{experiment}}"))
        .args([
            "--",
            bin,
            "run",
            "--journal-path",
            "{journal}",
            "{experiment}",
        ])
        .env("RUST_LOG", "warn")
        .output()
        .expect("running check.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        output.status.success() && last.ends_with(" passed, 0 failed"),
        "conformance failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let passed: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(passed >= 51, "only {passed} cases ran: {last}");
}
