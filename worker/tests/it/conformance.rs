//! Conformance with the reference Chaos Toolkit.
//!
//! The required part is the in-repo corpus (`tests/conformance/`): every case under `cases/`
//! is validated and run by our binary, in a fresh working directory, with the corpus's HTTP
//! fixture up, and the summary of our journal is compared with what the reference recorded in
//! `expected.json` (`scripts/record-conformance.sh` re-records it; `summary.rs` says what is
//! compared). It needs nothing beside the repository but `python3`.
//!
//! The external suite (`../shared/conformance` beside the repository, or
//! `$BROKER_CONFORMANCE_DIR`) still runs when present; when absent its test says so and passes:
//! the in-repo corpus covers the same ground.

use crate::util;

#[path = "conformance/summary.rs"]
mod summary;

use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// At least this many cases of the corpus must be compared (known divergences not counted).
const MIN_CASES: usize = 50;
/// Cases run side by side: the corpus is mostly sleeps and interpreter starts.
const PARALLEL: usize = 4;
/// One command longer than this is killed and reported (the slowest case needs ~2 s).
const COMMAND_LIMIT: Duration = Duration::from_secs(60);

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The corpus's HTTP fixture, on a port the kernel chose; stopped when dropped.
struct Fixture {
    child: Child,
    base_url: String,
}

impl Fixture {
    fn start() -> Self {
        let mut child = Command::new("python3")
            .arg(corpus().join("server.py"))
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is needed by the conformance corpus's HTTP fixture");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .strip_prefix("port ")
            .map(str::trim)
            .unwrap_or_else(|| panic!("the HTTP fixture did not say its port: {line:?}"));
        Fixture {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `command` in `cwd` with the corpus's environment; its exit code, or a description of
/// why there is none.
fn exit_code(mut command: Command, cwd: &Path, base_url: &str) -> Result<i32, String> {
    command
        .current_dir(cwd)
        .env("CORPUS_BASE_URL", base_url)
        .env("CORPUS_GREETING", "hello-corpus")
        .env("CORPUS_TOKEN", "tok-corpus")
        .env("CORPUS_NUMBER", "42")
        .env("PYTHONPATH", corpus().join("modules"))
        .env_remove("CORPUS_UNSET")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    let deadline = Instant::now() + COMMAND_LIMIT;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return status.code().ok_or_else(|| format!("ended by {status}"));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {COMMAND_LIMIT:?}, killed"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Our outcome for one case, in the shape `summary::differences` compares.
fn our_outcome(experiment: &Path, args: &[String], base_url: &str) -> Map<String, Value> {
    let work = tempfile::tempdir().unwrap();
    let (validate_dir, run_dir) = (work.path().join("validate"), work.path().join("run"));
    std::fs::create_dir(&validate_dir).unwrap();
    std::fs::create_dir(&run_dir).unwrap();
    let journal_path = work.path().join("journal.json");
    let code = |r: Result<i32, String>| r.map(Value::from).unwrap_or_else(Value::from);

    let mut validate = Command::new(util::worker_bin());
    validate.arg("validate").arg(experiment);
    let mut run = Command::new(util::worker_bin());
    run.arg("run")
        .args(args)
        .arg("--journal-path")
        .arg(&journal_path)
        .arg(experiment);
    let mut actual = Map::new();
    actual.insert(
        "validate_exit".into(),
        code(exit_code(validate, &validate_dir, base_url)),
    );
    actual.insert("run_exit".into(), code(exit_code(run, &run_dir, base_url)));
    // what the run left in its working directory: the corpus's controls log their hooks
    if let Ok(effects) = std::fs::read_to_string(run_dir.join("effects.log")) {
        actual.insert("effects".into(), json!(effects.lines().collect::<Vec<_>>()));
    }
    let journal = std::fs::read_to_string(&journal_path).ok();
    actual.insert("journal".into(), json!(journal.is_some()));
    if let Some(text) = journal {
        match serde_json::from_str::<Value>(&text) {
            Ok(j) => {
                actual.extend(summary::summarise(&j));
                actual.insert("duration".into(), j["duration"].clone());
                let during = j["steady_states"]["during"].as_array().map_or(0, Vec::len);
                actual.insert("during".into(), json!(during));
            }
            Err(e) => {
                actual.insert("journal".into(), json!(format!("unparseable: {e}")));
            }
        }
    }
    actual
}

/// How one case ended.
enum Verdict {
    Matches,
    Differs(Vec<String>),
    /// Marked in `checks.json` as a divergence the lead knows of (not a deliberate difference).
    KnownDivergence(String, Vec<String>),
}

fn judge(name: &str, expected: &Map<String, Value>, base_url: &str) -> Verdict {
    let checks = expected.get("checks").cloned().unwrap_or_else(|| json!({}));
    let args: Vec<String> = checks["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut expected = expected.clone();
    // a deliberate difference (README "Deliberate differences from the reference"): we
    // expect our documented behaviour instead of the reference's for the fields it names
    if let Some(ours) = checks["deliberate"]["expected"].as_object() {
        expected.extend(ours.clone());
    }
    let mut problems = Vec::new();
    if name.contains("invalid") == (expected.get("valid") == Some(&json!(true))) {
        problems.push(format!(
            "the reference's validity ({}) disagrees with the case's name: rename the case",
            expected.get("valid").unwrap_or(&Value::Null)
        ));
    }
    let actual = our_outcome(&corpus().join("cases").join(name), &args, base_url);
    problems.extend(summary::differences(&expected, &actual));
    match checks["divergence"].as_str() {
        Some(reason) if !problems.is_empty() => Verdict::KnownDivergence(reason.into(), problems),
        Some(_) => Verdict::Differs(vec![
            "marked as a known divergence in checks.json but now matches: remove the mark".into(),
        ]),
        None if problems.is_empty() => Verdict::Matches,
        None => Verdict::Differs(problems),
    }
}

#[test]
fn in_repo_corpus_matches_the_recorded_chaos_toolkit_reference() {
    let started = Instant::now();
    let recorded = read_json(&corpus().join("expected.json"));
    let expected = recorded["cases"].as_object().expect("expected.json: cases");
    let mut names: Vec<String> = std::fs::read_dir(corpus().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let unrecorded: Vec<&String> = names
        .iter()
        .filter(|n| !expected.contains_key(*n))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "cases without a recorded outcome (run scripts/record-conformance.sh --only NAME): {unrecorded:?}"
    );
    let stale: Vec<&String> = expected.keys().filter(|k| !names.contains(k)).collect();
    assert!(
        stale.is_empty(),
        "expected.json records cases that are gone: {stale:?}"
    );

    let fixture = Fixture::start();
    let next = AtomicUsize::new(0);
    let verdicts = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                while let Some(name) = names.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let entry = expected[name].as_object().unwrap();
                    let verdict = judge(name, entry, &fixture.base_url);
                    verdicts.lock().unwrap().push((name.clone(), verdict));
                }
            });
        }
    });
    let mut verdicts = verdicts.into_inner().unwrap();
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));

    let mut report = String::new();
    let (mut matched, mut failed) = (0, 0);
    for (name, verdict) in &verdicts {
        match verdict {
            Verdict::Matches => matched += 1,
            Verdict::Differs(diffs) => {
                failed += 1;
                report.push_str(&format!("FAIL {name}\n    {}\n", diffs.join("\n    ")));
            }
            Verdict::KnownDivergence(reason, diffs) => {
                eprintln!(
                    "known divergence {name} ({reason}):\n    {}",
                    diffs.join("\n    ")
                );
            }
        }
    }
    eprintln!(
        "in-repo conformance corpus ({}): {matched} matched, {failed} failed, {} known divergences, {:.1}s",
        recorded["reference"].as_str().unwrap_or("?"),
        verdicts.len() - matched - failed,
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed == 0,
        "{failed} of {} cases differ from the reference:\n{report}",
        verdicts.len()
    );
    assert!(
        matched >= MIN_CASES,
        "only {matched} cases matched the reference (at least {MIN_CASES} must be compared)"
    );
}

/// `$BROKER_CONFORMANCE_DIR`, else `../shared/conformance` beside the repository.
fn external_suite_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BROKER_CONFORMANCE_DIR") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance")
}

#[test]
fn external_suite_matches_the_chaos_toolkit_reference_when_present() {
    let dir = external_suite_dir();
    let check = dir.join("check.sh");
    if !check.is_file() {
        eprintln!(
            "the external conformance suite is absent ({} not found; set BROKER_CONFORMANCE_DIR \
             to run it): not run. The required conformance check is the in-repo corpus \
             (in_repo_corpus_matches_the_recorded_chaos_toolkit_reference), which covers the \
             same ground.",
            check.display()
        );
        return;
    }
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
