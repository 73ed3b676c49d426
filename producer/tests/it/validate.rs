//! `producer validate`: the suite and every experiment it names, all problems at once.

use std::path::Path;
use std::process::Command;

fn producer(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_producer"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = r#"{"title": "t", "description": "d", "method": [{"type": "action", "name": "a", "provider": {"type": "process", "path": "/bin/true"}}]}"#;

#[test]
fn a_valid_suite_names_its_waves_and_jobs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("exp")).unwrap();
    for name in ["a.json", "b.json", "c.json", "d.json"] {
        std::fs::write(dir.path().join("exp").join(name), GOOD).unwrap();
    }
    std::fs::write(
        dir.path().join("nightly.yaml"),
        "name: nightly\nwaves:\n  - experiments: [exp/a.json, exp/b.json, exp/c.json]\n    on_failure: continue\n  - experiments: [exp/d.json, s3://bucket/more.yaml]\n",
    )
    .unwrap();
    let (code, out, err) = producer(&["validate", "nightly.yaml"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("valid suite 'nightly': 2 waves, 5 jobs"),
        "{out}"
    );
    assert!(
        out.contains(
            "not checked here (fetched by the worker when it runs): s3://bucket/more.yaml"
        ),
        "{out}"
    );
}

#[test]
fn problems_in_the_suite_and_its_experiments_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.json"),
        r#"{"description": "no title", "method": []}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        "waves:\n  - experiments: [bad.json, missing.json]\n",
    )
    .unwrap();
    let (code, _, err) = producer(&["validate", "s.yaml"], dir.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("bad.json") && err.contains("title: missing"),
        "{err}"
    );
    assert!(
        err.contains("missing.json: cannot read the experiment"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("s2.yaml"),
        "waves:\n  - experiments: []\n    on_failure: later\n",
    )
    .unwrap();
    let (code, _, err) = producer(&["validate", "s2.yaml"], dir.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("s2.yaml:2:5: waves[0].experiments: is empty"),
        "{err}"
    );
    assert!(err.contains("waves[0].on_failure: unknown policy"), "{err}");
}

#[test]
fn the_seed_payload_validates_as_a_suite() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), GOOD).unwrap();
    std::fs::write(
        dir.path().join("payload.json"),
        r#"{"state": "in-progress", "list": [{"experiment_source": "a.json", "bucket_name": "", "state": "pending"},
            {"experiment_source": "exp/b.yaml", "bucket_name": "bkt", "state": "pending"}]}"#,
    )
    .unwrap();
    let (code, out, err) = producer(&["validate", "payload.json"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 waves, 2 jobs"), "{out}");
    assert!(out.contains("s3://bkt/exp/b.yaml"), "{out}");
}

#[test]
fn a_python_import_past_the_signature_timeout_is_a_located_problem_of_its_experiment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slowimport.py"),
        "import time\ntime.sleep(600)\ndef probe():\n    return 1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("slow.json"),
        r#"{"title": "t", "description": "d", "method": [
  {"type": "probe", "name": "p", "provider": {"type": "python", "module": "slowimport", "func": "probe"}}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        "name: s\nwaves:\n  - experiments: [slow.json]\n",
    )
    .unwrap();
    // the import sleeps 600 s: the message names the flag's 2 s, not the 30 s default
    let out = Command::new(env!("CARGO_BIN_EXE_producer"))
        .args(["validate", "s.yaml", "--signature-timeout", "2"])
        .env("PYTHONPATH", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("slow.json:2:")
            && err.contains("method[0].provider")
            && err.contains("signature timeout of 2 s"),
        "{err}"
    );
}

/// Accepted by the reference; a misspelled key and a repeated one for us.
const WARNED: &str = r#"{"title": "t", "description": "d", "rollback": [],
  "method": [{"type": "action", "name": "a", "name": "b", "provider": {"type": "process", "path": "/bin/true"}}]}"#;

#[test]
fn warnings_are_shown_located_and_strictness_makes_them_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("w.json"), WARNED).unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        "waves:\n  - experiments: [w.json]\n",
    )
    .unwrap();
    let (code, out, err) = producer(&["validate", "s.yaml"], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("valid suite"), "{out}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning: ")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(
        warnings[0].contains("w.json:1:36: rollback: unknown key `rollback` in the experiment: did you mean `rollbacks`?"),
        "{err}"
    );
    assert!(
        warnings[1].contains("w.json:2:46: method[0].name: key `name` is written twice in this mapping (line 2, column 33 and line 2, column 46)"),
        "{err}"
    );
    // --strict, and `strict: true` in the suite, refuse it with the same located lines
    std::fs::write(
        dir.path().join("strict.yaml"),
        "strict: true\nwaves:\n  - experiments: [w.json]\n",
    )
    .unwrap();
    for args in [
        &["validate", "--strict", "s.yaml"][..],
        &["validate", "strict.yaml"],
    ] {
        let (code, _, err) = producer(args, dir.path());
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("error: ") && err.contains("w.json:1:36: rollback: unknown key"),
            "{err}"
        );
        assert!(err.contains("2 problems found"), "{err}");
    }
    // submit and run check the same way before anything is sent
    for command in ["submit", "run"] {
        let (code, _, err) = producer(
            &[command, "--strict", "--state-dir", "state", "s.yaml"],
            dir.path(),
        );
        assert_eq!(code, 1, "{command}: {err}");
        assert!(err.contains("rollback: unknown key"), "{command}: {err}");
        assert!(
            !dir.path().join("state").exists(),
            "{command}: nothing was submitted"
        );
    }
}
