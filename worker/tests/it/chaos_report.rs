//! Our journals read by the Chaos Toolkit's own tools: `chaos report` (chaostoolkit-reporting,
//! which `scripts/test.sh` installs into the test venv with pandoc, which it needs) renders a
//! held and a deviated journal written by the real `worker run`.

use crate::util::Sandbox;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `chaos` in the venv `scripts/test.sh` installs chaostoolkit-reporting into
/// (`BROKER_TEST_VENV`, else `target/test-venv`).
fn chaos() -> PathBuf {
    let venv = std::env::var_os("BROKER_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv"));
    let chaos = venv.join("bin/chaos");
    assert!(
        chaos.exists(),
        "no `chaos` at {}: run the tests through scripts/test.sh, which installs \
         chaostoolkit-reporting (scripts/test-requirements.txt) into the test venv (or set \
         BROKER_TEST_VENV to a venv that has it)",
        chaos.display()
    );
    chaos
}

/// An experiment whose hypothesis (no file `flag`) the method breaks when `deviates`.
fn experiment(sb: &Sandbox, title: &str, deviates: bool) -> PathBuf {
    let flag = sb.path(&format!("{title}.flag"));
    let act = if deviates {
        format!("touch {}", flag.display())
    } else {
        "true".to_string()
    };
    sb.write_json(
        &format!("{title}.json"),
        &json!({"version": "1.0.0", "title": title, "description": "rendered by chaos report",
            "tags": ["report"],
            "steady-state-hypothesis": {"title": "no flag", "probes": [{"type": "probe",
                "name": "no-flag", "tolerance": 0,
                "provider": {"type": "process", "path": "sh",
                    "arguments": ["-c", format!("test ! -e {}", flag.display())]}}]},
            "method": [{"type": "action", "name": "act",
                "provider": {"type": "process", "path": "sh", "arguments": ["-c", act]}}]}),
    )
}

/// `chaos report --export-format=markdown` on `journal`; the report's text.
fn report(sb: &Sandbox, journal: &Value, name: &str) -> String {
    let path = sb.write_json(&format!("{name}-journal.json"), journal);
    let out = sb.path(&format!("{name}-report.md"));
    let done = Command::new(chaos())
        .current_dir(sb.dir.path())
        .args(["--no-version-check", "report", "--export-format=markdown"])
        .arg(&path)
        .arg(&out)
        .output()
        .expect("chaos report starts");
    assert!(
        done.status.success(),
        "chaos report failed on our {name} journal ({}):\n{}\n{}",
        done.status,
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    std::fs::read_to_string(&out).expect("chaos report wrote the report")
}

#[test]
fn chaos_report_renders_a_held_and_a_deviated_journal() {
    let sb = Sandbox::new();
    let held = sb.run(&experiment(&sb, "steady-payments", false), &[]);
    assert_eq!(held.code, 0, "{}", held.stderr);
    let deviated = sb.run(&experiment(&sb, "wobbly-payments", true), &[]);
    assert_eq!(deviated.code, 1, "{}", deviated.stderr);
    for journal in [held.journal(), deviated.journal()] {
        assert_eq!(
            journal["chaoslib-version"], "1.45.1",
            "the reference's version"
        );
        assert_eq!(
            journal["broker"]["version"],
            env!("CARGO_PKG_VERSION"),
            "ours under broker"
        );
    }
    assert_eq!(deviated.journal()["deviated"], true);

    let text = report(&sb, held.journal(), "held");
    assert!(text.contains("steady-payments"), "title missing:\n{text}");
    assert!(
        text.contains("completed"),
        "status `completed` missing:\n{text}"
    );
    assert!(
        !text.contains("not verified"),
        "a held run reads as verified:\n{text}"
    );

    let text = report(&sb, deviated.journal(), "deviated");
    assert!(text.contains("wobbly-payments"), "title missing:\n{text}");
    assert!(
        text.contains("not verified"),
        "the deviation (steady state not verified after the method) missing:\n{text}"
    );
}
