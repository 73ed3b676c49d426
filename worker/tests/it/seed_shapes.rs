//! The seed's experiments validate with no Python package installed (issue 16's proof).
//!
//! - Our own experiments in the seed's shape (`seed_shapes/`, one per experiment of the seed's
//!   `cdk/lambda_infra/experiments/` and `tests/example_experiments/`, calling the same modules
//!   and functions with the same argument names) validate, except the one in the shape of the
//!   one the reference rejects, rejected with the field named: `description`, empty.
//! - The seed itself, when `BROKER_SEED_DIR` points at a checkout of it: every experiment
//!   there gets the same verdicts. Without it the test says so in its output and passes (an
//!   optional external corpus, as `../shared/conformance`); the seed has no licence, so its
//!   files are not in this repository.
//!
//! `worker validate` runs with Python out of reach (`PATH` without it, `BROKER_PYTHON`
//! pointing nowhere): every function named must be native (a function that is not is a
//! warning to `validate`, an error to `--strict` and a refusal to `run`).

use crate::util::Sandbox;
use std::path::{Path, PathBuf};

/// The seed experiment the reference rejects, and the field it names.
const REJECTED: (&str, &str) = ("tc-183-1.yml", "description");

struct Verdict {
    code: i32,
    stderr: String,
}

fn validate(sandbox: &Sandbox, experiment: &Path) -> Verdict {
    let out = sandbox
        .command(&["validate", experiment.to_str().unwrap()])
        .env("PATH", "/usr/bin:/bin")
        .env("BROKER_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    Verdict {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// What is wrong with this verdict for `file`, if anything. Valid means exit 0 with every
/// function native: a function with no native implementation is only a warning to `validate`
/// (a run refuses it), so the warning is looked for too.
fn judge(file: &str, verdict: &Verdict) -> Option<String> {
    let problem = if file == REJECTED.0 {
        let named = format!("{}: missing", REJECTED.1);
        (verdict.code != 1 || !verdict.stderr.contains(&named))
            .then(|| format!("expected a rejection naming `{}` (exit 1)", REJECTED.1))
    } else if verdict.code != 0 {
        Some("expected valid (exit 0)".to_string())
    } else {
        verdict
            .stderr
            .contains("has no native implementation")
            .then(|| "expected every function to be native".to_string())
    };
    problem.map(|p| {
        format!(
            "{file}: {p}, got exit {}:\n{}",
            verdict.code, verdict.stderr
        )
    })
}

fn shapes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/seed_shapes")
}

fn check(dir: &Path, file: &str) {
    let sandbox = Sandbox::new();
    let verdict = validate(&sandbox, &dir.join(file));
    if let Some(problem) = judge(file, &verdict) {
        panic!("{problem}");
    }
}

macro_rules! shape_tests {
    ($($name:ident => $file:literal,)*) => {
        $(#[test]
        fn $name() {
            check(&shapes(), $file);
        })*

        #[test]
        fn every_shape_has_its_test() {
            let mut files: Vec<String> = std::fs::read_dir(shapes())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            let mut tested = vec![$($file),*];
            tested.sort();
            assert_eq!(files, tested);
        }
    };
}

shape_tests! {
    shape_ec2_stress_mem => "ec2-stress-mem.yml",
    shape_terminate_instance => "terminate-instance.yml",
    shape_tc_010_1_load_and_memory_stress => "tc-010-1.yml",
    shape_tc_028_2_root_volume => "tc-028-2.yml",
    shape_tc_042_delete_pod => "tc-042.yml",
    shape_tc_183_1_rejected_for_its_empty_description => "tc-183-1.yml",
    shape_demo_node_latency => "demo-node-latency.yml",
    shape_demo_node_packet_loss => "demo-node-packet-loss.yml",
    shape_demo_pod_termination => "demo-pod-termination.yml",
}

/// Needs a checkout of the seed (`VerticalRelevance/eb-public`), so it is ignored unless asked
/// for (it shows as ignored, never as a silent pass): `BROKER_SEED_DIR=<checkout> cargo test
/// --workspace --test it -- --ignored the_seeds_own_experiments`.
#[test]
#[ignore = "needs BROKER_SEED_DIR, a checkout of the seed"]
fn the_seeds_own_experiments_validate_when_a_checkout_is_given() {
    let root = std::env::var_os("BROKER_SEED_DIR")
        .map(PathBuf::from)
        .expect("BROKER_SEED_DIR: point it at a checkout of VerticalRelevance/eb-public");
    let dirs = [
        root.join("cdk/lambda_infra/experiments"),
        root.join("Experiment-Broker-Module/experiment_code/tests/example_experiments"),
    ];
    let mut problems = Vec::new();
    let mut seen = 0;
    for dir in &dirs {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| {
            panic!(
                "BROKER_SEED_DIR={} has no {}: {e}",
                root.display(),
                dir.display()
            )
        });
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "yml" || x == "yaml" || x == "json")
            })
            .collect();
        files.sort();
        for path in files {
            seen += 1;
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let sandbox = Sandbox::new();
            let verdict = validate(&sandbox, &path);
            println!("{file}: exit {}", verdict.code);
            problems.extend(judge(&file, &verdict));
        }
    }
    assert!(
        seen >= 9,
        "only {seen} experiments under {}",
        root.display()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
