//! `worker run` end to end: the real binary on experiment files, HTTP against a local server.

use crate::util;

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use util::{Sandbox, TestServer};

mod hypothesis;
mod journal_path;
mod secrets;
mod shell;

fn exp(method: Value) -> Value {
    json!({"version": "1.0.0", "title": "t", "description": "d", "method": method})
}

fn process(name: &str, kind: &str, script: &str) -> Value {
    json!({"type": kind, "name": name, "provider": {"type": "process", "path": "sh", "arguments": ["-c", script]}})
}

#[test]
fn completed_run_writes_a_chaos_toolkit_journal() {
    let sb = Sandbox::new();
    let mut e = exp(json!([process("act", "action", "echo acted")]));
    e["steady-state-hypothesis"] = json!({"title": "ok", "probes": [
        {"type": "probe", "name": "p", "tolerance": 0, "provider": {"type": "process", "path": "/bin/true"}}]});
    e["rollbacks"] = json!([process("undo", "action", "echo undone")]);
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.journal();
    for key in [
        "chaoslib-version",
        "platform",
        "node",
        "experiment",
        "start",
        "end",
        "duration",
        "status",
        "deviated",
        "steady_states",
        "run",
        "rollbacks",
    ] {
        assert!(j.get(key).is_some(), "journal lacks {key}");
    }
    assert_eq!(j["status"], "completed");
    assert_eq!(j["deviated"], false);
    assert_eq!(j["steady_states"]["before"]["steady_state_met"], true);
    assert_eq!(
        j["steady_states"]["after"]["probes"][0]["tolerance_met"],
        true
    );
    assert_eq!(
        j["run"][0]["output"],
        json!({"status": 0, "stdout": "acted\n", "stderr": ""})
    );
    assert_eq!(j["rollbacks"][0]["output"]["stdout"], "undone\n");
    assert!(j["run"][0]["duration"].as_f64().unwrap() >= 0.0);
}

#[test]
fn deviation_exits_1_and_plays_rollbacks() {
    let sb = Sandbox::new();
    let mut e = exp(json!([process("break", "action", "touch broken")]));
    e["steady-state-hypothesis"] =
        json!({"title": "not broken", "probes": [process("intact", "probe", "test ! -e broken")]});
    e["steady-state-hypothesis"]["probes"][0]["tolerance"] = json!(0);
    e["rollbacks"] = json!([process("repair", "action", "rm broken")]);
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 1);
    let j = out.journal();
    assert_eq!(
        (j["status"].as_str(), j["deviated"].as_bool()),
        (Some("completed"), Some(true))
    );
    assert_eq!(
        out.names("rollbacks"),
        vec![("repair".into(), "succeeded".into())]
    );
    assert!(
        !sb.path("broken").exists(),
        "the rollback repaired the damage"
    );
}

#[test]
fn hypothesis_missed_before_skips_the_method_and_exits_0() {
    let sb = Sandbox::new();
    let mut e = exp(json!([process("must-not-run", "action", "touch ran")]));
    e["steady-state-hypothesis"] = json!({"title": "t", "probes": [
        {"type": "probe", "name": "false", "tolerance": 0, "provider": {"type": "process", "path": "/bin/false"}}]});
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "the reference exits 0 here");
    assert_eq!(
        out.journal()["steady_states"]["before"]["steady_state_met"],
        false
    );
    assert_eq!(out.journal()["run"], json!([]));
    assert!(!sb.path("ran").exists());
}

#[test]
fn http_probes_statuses_bodies_and_failures() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let base = &server.base;
    let mut e = exp(json!([
        {"type": "probe", "name": "json", "provider": {"type": "http", "url": format!("{base}/json")}},
        {"type": "action", "name": "500", "provider": {"type": "http", "url": format!("{base}/status/500")}},
        {"type": "action", "name": "post", "provider": {"type": "http", "url": format!("{base}/echo"), "method": "post",
            "headers": {"Content-Type": "application/json"}, "arguments": {"k": [1, 2]}}},
        {"type": "action", "name": "form", "provider": {"type": "http", "url": format!("{base}/echo"), "method": "PUT", "arguments": {"a": "b c"}}},
        {"type": "probe", "name": "query", "provider": {"type": "http", "url": format!("{base}/echo"), "arguments": {"q": "x y"}}},
        {"type": "probe", "name": "slow", "provider": {"type": "http", "url": format!("{base}/slow/3000"), "timeout": 0.3}},
        {"type": "probe", "name": "refused", "provider": {"type": "http", "url": "http://127.0.0.1:9/"}},
        {"type": "probe", "name": "wrong-status", "provider": {"type": "http", "url": format!("{base}/status/404"), "expected_status": 200}}
    ]));
    e["steady-state-hypothesis"] = json!({"title": "up", "probes": [
        {"type": "probe", "name": "health", "tolerance": 200, "provider": {"type": "http", "url": format!("{base}/health")}},
        {"type": "probe", "name": "items", "tolerance": {"type": "jsonpath", "path": "$.items[*]", "count": 3, "target": "body"},
         "provider": {"type": "http", "url": format!("{base}/json")}},
        {"type": "probe", "name": "ok-body", "tolerance": {"type": "regex", "pattern": "^OK$", "target": "body"},
         "provider": {"type": "http", "url": format!("{base}/health")}},
        {"type": "probe", "name": "2xx", "tolerance": {"type": "range", "range": [200, 299], "target": "status"},
         "provider": {"type": "http", "url": format!("{base}/health")}}
    ]});
    let started = Instant::now();
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the 0.3 s timeout cut the 3 s request"
    );
    let j = out.journal();
    assert_eq!(j["steady_states"]["after"]["steady_state_met"], true);
    let run = j["run"].as_array().unwrap();
    assert_eq!(
        run[0]["output"]["body"]["items"],
        json!([1, 2, 3]),
        "JSON bodies are parsed"
    );
    assert_eq!(
        (run[1]["status"].as_str(), &run[1]["output"]["status"]),
        (Some("succeeded"), &json!(500)),
        "5xx is an output"
    );
    assert_eq!(run[2]["output"]["body"]["body"], json!({"k": [1, 2]}));
    assert_eq!(run[2]["output"]["body"]["method"], "POST");
    assert_eq!(run[3]["output"]["body"]["body"], "a=b+c");
    assert_eq!(
        run[3]["output"]["body"]["headers"]["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(run[4]["output"]["body"]["query"], "q=x+y");
    assert_eq!(
        out.names("run")[5..],
        [
            ("slow".into(), "failed".into()),
            ("refused".into(), "failed".into()),
            ("wrong-status".into(), "failed".into())
        ]
    );
    assert!(
        run[7]["exception"][0]
            .as_str()
            .unwrap()
            .contains("expected 200")
    );
}

#[test]
fn strategies_from_the_command_line_override_the_experiment() {
    let sb = Sandbox::new();
    let mut e = exp(json!([process("act", "action", "true")]));
    e["runtime"] = json!({"rollbacks": {"strategy": "always"}});
    e["rollbacks"] = json!([process("undo", "action", "echo undo")]);
    let path = sb.write_json("e.json", &e);
    assert_eq!(sb.run(&path, &[]).names("rollbacks").len(), 1);
    assert_eq!(
        sb.run(&path, &["--rollback-strategy", "never"])
            .names("rollbacks")
            .len(),
        0
    );
    assert_eq!(
        sb.run(&path, &["--rollback-strategy", "deviated"])
            .names("rollbacks")
            .len(),
        0
    );
}

#[test]
fn continuous_hypothesis_runs_beside_the_method_and_fails_fast() {
    let sb = Sandbox::new();
    let mut e = exp(json!([
        process("flip", "action", "sleep 0.3; touch bad; sleep 1.5"),
        process("after-flip", "action", "true")
    ]));
    e["steady-state-hypothesis"] =
        json!({"title": "t", "probes": [process("good", "probe", "test ! -e bad")]});
    e["steady-state-hypothesis"]["probes"][0]["tolerance"] = json!(0);
    let path = sb.write_json("e.json", &e);
    let out = sb.run(
        &path,
        &[
            "--hypothesis-strategy",
            "during-method-only",
            "--hypothesis-frequency",
            "0.2",
        ],
    );
    let j = out.journal();
    let during = j["steady_states"]["during"].as_array().unwrap();
    assert!(
        during.len() >= 3,
        "evaluated about every 0.2 s: {}",
        during.len()
    );
    assert_eq!(during[0]["steady_state_met"], true);
    assert_eq!(during.last().unwrap()["steady_state_met"], false);
    assert_eq!(
        j["status"], "completed",
        "without --fail-fast a deviation during the method does not fail the run"
    );
    assert_eq!(out.names("run").len(), 2);

    std::fs::remove_file(sb.path("bad")).unwrap();
    let out = sb.run(
        &path,
        &[
            "--hypothesis-strategy",
            "during-method-only",
            "--hypothesis-frequency",
            "0.2",
            "--fail-fast",
        ],
    );
    assert_eq!(out.journal()["status"], "failed");
    assert_eq!(out.code, 1);
    assert_eq!(
        out.names("run"),
        vec![("flip".into(), "succeeded".into())],
        "the method stops after the current activity"
    );
}

#[test]
fn dry_actions_skips_actions_but_runs_probes() {
    let sb = Sandbox::new();
    let e = exp(json!([
        process("act", "action", "touch acted"),
        process("look", "probe", "echo looked")
    ]));
    let out = sb.run(&sb.write_json("e.json", &e), &["--dry", "actions"]);
    assert_eq!(out.code, 0);
    assert!(!sb.path("acted").exists());
    let j = out.journal();
    assert_eq!(j["run"][0]["output"], Value::Null);
    assert_eq!(j["run"][1]["output"]["stdout"], "looked\n");
    assert_eq!(j["experiment"]["dry"], "actions");
}

#[test]
fn vars_and_var_files_feed_substitution() {
    let sb = Sandbox::new();
    let mut e = exp(
        json!([{"type": "action", "name": "say", "provider": {"type": "process", "path": "echo",
        "arguments": ["${greeting}", "${count}", "${from_yaml}", "${from_json}", "${from_env}"]}}]),
    );
    e["configuration"] = json!({
        "greeting": "declared",
        "count": 1,
        "from_env": {"type": "env", "key": "EB_TEST_FROM_DOTENV"}
    });
    let path = sb.write_json("e.json", &e);
    sb.write("v.yaml", "configuration:\n  from_yaml: yaml-value\n");
    sb.write(
        "v.json",
        r#"{"configuration": {"from_json": "json-value"}}"#,
    );
    sb.write("v.env", "EB_TEST_FROM_DOTENV=dotenv-value\n");
    let out = sb.run(
        &path,
        &[
            "--var",
            "greeting=overridden",
            "--var",
            "count:int=7",
            "--var-file",
            "v.yaml",
            "--var-file",
            "v.json",
            "--var-file",
            "v.env",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.journal()["run"][0]["output"]["stdout"],
        "overridden 7 yaml-value json-value dotenv-value\n"
    );
}

#[test]
fn secrets_never_reach_the_journal_or_the_logs() {
    let server = TestServer::start();
    let sb = Sandbox::new();
    let mut e = exp(json!([
        {"type": "action", "name": "leak", "provider": {"type": "process", "path": "echo", "arguments": ["token=${token}", "${pw}"]}},
        {"type": "probe", "name": "header", "provider": {"type": "http", "url": format!("{}/echo", server.base),
            "headers": {"Authorization": "Bearer ${token}"}}},
        {"type": "action", "name": "fails-loudly", "provider": {"type": "http", "url": "http://127.0.0.1:9/${token}"}}
    ]));
    e["secrets"] = json!({"api": {"token": {"type": "env", "key": "EB_TEST_SECRET_TOKEN"}, "pw": "inline-pass-123"}});
    let path = sb.write_json("e.json", &e);
    let mut cmd = sb.command(&["run", "--journal-path", "j.json", path.to_str().unwrap()]);
    cmd.env("EB_TEST_SECRET_TOKEN", "tok-very-secret")
        .env("RUST_LOG", "debug");
    let output = cmd.output().unwrap();
    let journal = std::fs::read_to_string(sb.path("j.json")).unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    for secret in ["tok-very-secret", "inline-pass-123"] {
        assert!(
            !journal.contains(secret),
            "{secret} leaked into the journal"
        );
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
    }
    let j: Value = serde_json::from_str(&journal).unwrap();
    assert_eq!(j["run"][0]["output"]["stdout"], "token=*** ***\n");
    assert_eq!(
        j["run"][1]["output"]["body"]["headers"]["authorization"], "Bearer ***",
        "the real token was sent"
    );
}

#[test]
fn sigterm_and_sigint_interrupt_run_rollbacks_and_write_the_journal() {
    use nix::sys::signal::Signal;
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let sb = Sandbox::new();
        let mut e = exp(json!([
            process("long", "action", "sleep 30; touch finished"),
            process("next", "action", "touch next")
        ]));
        e["rollbacks"] = json!([process("revert", "action", "echo reverted >> reverts")]);
        let path = sb.write_json("e.json", &e);
        let mut child = sb
            .command(&["run", "--journal-path", "j.json", path.to_str().unwrap()])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let started = Instant::now();
        let status = child.wait().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{signal}: the long action was cut"
        );
        assert_eq!(status.code(), Some(130), "{signal}");
        let j: Value =
            serde_json::from_str(&std::fs::read_to_string(sb.path("j.json")).unwrap()).unwrap();
        assert_eq!(j["status"], "interrupted", "{signal}");
        assert_eq!(
            j["run"].as_array().unwrap().len(),
            1,
            "{signal}: nothing ran after it"
        );
        assert_eq!(j["run"][0]["status"], "failed");
        assert_eq!(
            std::fs::read_to_string(sb.path("reverts")).unwrap(),
            "reverted\n",
            "{signal}: rollbacks ran once"
        );
        assert!(!sb.path("finished").exists() && !sb.path("next").exists());
    }
}

#[test]
fn background_activities_overlap_and_are_awaited() {
    let sb = Sandbox::new();
    let mut bg1 = process("bg1", "action", "sleep 1; echo one");
    let mut bg2 = process("bg2", "action", "sleep 1; echo two");
    bg1["background"] = json!(true);
    bg2["background"] = json!(true);
    let e = exp(json!([bg1, bg2, process("fg", "action", "echo fg")]));
    let started = Instant::now();
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(1900),
        "ran concurrently: {elapsed:?}"
    );
    assert!(
        out.journal()["duration"].as_f64().unwrap() >= 0.95,
        "awaited before the run ended"
    );
    assert_eq!(
        out.names("run")
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["bg1", "bg2", "fg"],
        "start order"
    );
    assert_eq!(out.journal()["run"][1]["output"]["stdout"], "two\n");
}

#[test]
fn process_timeout_fails_the_activity_not_the_run() {
    let sb = Sandbox::new();
    let mut slow = process("slow", "action", "sleep 5");
    slow["provider"]["timeout"] = json!(0.2);
    let out = sb.run(
        &sb.write_json(
            "e.json",
            &exp(json!([slow, process("next", "action", "true")])),
        ),
        &[],
    );
    assert_eq!(out.code, 0);
    assert_eq!(
        out.names("run"),
        vec![
            ("slow".into(), "failed".into()),
            ("next".into(), "succeeded".into())
        ]
    );
    assert!(
        out.journal()["run"][0]["exception"][0]
            .as_str()
            .unwrap()
            .contains("took too long")
    );
}

#[test]
fn python_activities_run_through_an_interpreter() {
    let sb = Sandbox::new();
    let e = exp(json!([
        {"type": "probe", "name": "join", "provider": {"type": "python", "module": "posixpath", "func": "basename", "arguments": {"p": "/x/y"}}},
        {"type": "probe", "name": "raise", "provider": {"type": "python", "module": "json", "func": "loads", "arguments": {"s": "{"}}}
    ]));
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.journal()["run"][0]["output"], "y");
    assert_eq!(out.journal()["run"][1]["status"], "failed");
    assert!(
        out.journal()["run"][1]["exception"][0]
            .as_str()
            .unwrap()
            .contains("JSONDecodeError")
    );
}

/// `worker validate` on `experiment` with no Python interpreter in reach: the exit status and
/// what it said on stderr.
fn validate_without_python(sb: &Sandbox, experiment: &Value) -> (std::process::Output, String) {
    let path = sb.write_json("e.json", experiment);
    let out = sb
        .command(&["validate", path.to_str().unwrap()])
        .env("BROKER_PYTHON", "/nonexistent/python")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

#[test]
fn python_without_interpreter_or_native_activity_is_a_clear_error() {
    let sb = Sandbox::new();
    let e = exp(
        json!([{"type": "action", "name": "stress", "provider": {"type": "python",
        "module": "mycompany.chaos.actions", "func": "not_a_fault", "arguments": {}}}]),
    );
    let (out, err) = validate_without_python(&sb, &e);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("method[0].provider") && err.contains("mycompany.chaos.actions.not_a_fault"),
        "{err}"
    );
    assert!(
        err.contains("no native implementation") && err.contains("no Python interpreter"),
        "{err}"
    );
}

#[test]
fn a_native_fault_checks_its_arguments_as_the_reference_checks_a_signature() {
    let sb = Sandbox::new();
    let e = exp(
        json!([{"type": "action", "name": "stress", "provider": {"type": "python",
        "module": "experimentvr.ec2.actions", "func": "ec2_blackhole_by_port",
        "arguments": {"test_target_type": "ALL", "ec2_blackhole_by_port_speed": 3}}}]),
    );
    let (out, err) = validate_without_python(&sb, &e);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("ec2_blackhole_by_port_speed") && err.contains("not a parameter"),
        "{err}"
    );
    assert!(
        err.contains("ec2_blackhole_by_port_port") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn dynamic_configuration_and_refs() {
    let sb = Sandbox::new();
    let mut e = exp(json!([
        {"type": "action", "name": "use", "provider": {"type": "process", "path": "echo", "arguments": ["${computed}"]}},
        {"ref": "use"}
    ]));
    e["configuration"] = json!({"computed": {"type": "probe", "name": "compute", "provider": {"type": "process", "path": "echo", "arguments": ["  from-probe "]}}});
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let j = out.journal();
    assert_eq!(j["run"][0]["output"]["stdout"], "from-probe\n");
    assert_eq!(
        j["run"][1]["activity"]["name"], "use",
        "a ref is journaled as the activity it names"
    );
}

#[test]
fn yaml_experiments_run_like_json() {
    let sb = Sandbox::new();
    let path = sb.write(
        "e.yaml",
        "version: 1.0.0\ntitle: Hello ${who}\ndescription: d\nconfiguration:\n  who: world\nmethod:\n  - type: action\n    name: say\n    provider:\n      type: process\n      path: echo\n      arguments: hi ${who}\n",
    );
    let out = sb.run(&path, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.journal()["experiment"]["title"], "Hello world");
    assert_eq!(out.journal()["run"][0]["output"]["stdout"], "hi world\n");
}

#[test]
fn a_var_replaces_a_dynamic_configuration_probe_which_then_never_runs() {
    let sb = Sandbox::new();
    let mut e = exp(
        json!([{"type": "action", "name": "show", "provider": {"type": "process", "path": "echo", "arguments": ["${target}"]}}]),
    );
    e["configuration"] = json!({"target": {"type": "probe", "name": "discover",
        "provider": {"type": "process", "path": "sh", "arguments": ["-c", "touch probe-ran; echo prod-cluster"]}}});
    let out = sb.run(
        &sb.write_json("e.json", &e),
        &["--var", "target=staging-cluster"],
    );
    assert_eq!(
        out.journal()["run"][0]["output"]["stdout"],
        "staging-cluster\n"
    );
    assert!(!sb.path("probe-ran").exists());
}

#[test]
fn absurd_durations_do_not_crash_the_run() {
    let sb = Sandbox::new();
    let mut act = process("quick", "action", "true");
    act["provider"]["timeout"] = json!(1e300);
    act["pauses"] = json!({"after": "${p}"});
    let out = sb.run(
        &sb.write_json("e.json", &exp(json!([act]))),
        &["--var", "p:float=-5"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bad = sb.run(
        &sb.write_json("e2.json", &exp(json!([]))),
        &["--hypothesis-frequency", "1e20"],
    );
    assert_eq!(bad.code, 2, "refused by the command line");
    assert!(
        bad.stderr.contains("at most 86400 seconds"),
        "{}",
        bad.stderr
    );
}
