//! The native CloudWatch alarm probes, run by `worker run` with no Python, against the moto
//! server `scripts/test.sh` starts on 127.0.0.1: they read the alarms' real states, a state
//! change changes the verdict, and bad input or a missing alarm is a failed probe that says
//! why. Also `alarm_states`, which the stop-condition poller calls in-process, and the
//! tripwires of a lone `worker run`: its stop conditions (an alarm in ALARM, or one that cannot
//! be read for the grace, stops the run) and the kill switch (the store's flag under
//! `BROKER_STATE_DIR`, the SSM parameter `BROKER_HALT_PARAMETER`).
//!
//! The alarms are set up with boto3 from the test venv (moto's own client; the code under test
//! is the worker binary and `broker_aws`, never Python).

use crate::util;

use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use util::Sandbox;
use util::moto::{self, Env, endpoint, probe, venv_python};

/// Set alarms up on moto: `["metric", name]` makes a metric alarm, `["composite", name, rule]`
/// a composite one, `["state", name, state]` sets an alarm's state, `["delete", name]` deletes
/// it; `["param", name, value]` writes an SSM parameter.
const SETUP: &str = r#"
import json, sys, urllib.parse, urllib.request
import boto3
endpoint, ops = sys.argv[1], json.loads(sys.argv[2])
cw = boto3.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
ssm = boto3.client("ssm", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id="testing", aws_secret_access_key="testing")
for op in ops:
    if op[0] == "metric":
        cw.put_metric_alarm(AlarmName=op[1], Namespace="Broker/Test", MetricName="Errors",
                            Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
                            ComparisonOperator="GreaterThanOrEqualToThreshold")
    elif op[0] == "composite":
        # moto has no PutCompositeAlarm: it takes AlarmRule on PutMetricAlarm, which boto3's
        # model does not let through, so post the Query request by hand (moto checks no
        # signature; the credential scope routes it to CloudWatch)
        body = urllib.parse.urlencode({"Action": "PutMetricAlarm", "Version": "2010-08-01",
                                       "AlarmName": op[1], "AlarmRule": op[2]}).encode()
        auth = ("AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/monitoring/aws4_request, "
                "SignedHeaders=host, Signature=0")
        request = urllib.request.Request(endpoint + "/", data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": auth})
        urllib.request.urlopen(request).read()
    elif op[0] == "state":
        cw.set_alarm_state(AlarmName=op[1], StateValue=op[2], StateReason="set by the test")
    elif op[0] == "delete":
        cw.delete_alarms(AlarmNames=[op[1]])
    elif op[0] == "param":
        ssm.put_parameter(Name=op[1], Value=op[2], Type="String", Overwrite=True)
    else:
        sys.exit(f"unknown setup op {op}")
"#;

fn setup(ops: Value) {
    let out = std::process::Command::new(venv_python())
        .args(["-c", SETUP, &endpoint(), &ops.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "alarm setup on moto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A name no other test (or earlier run against the same moto) uses.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{name}-{}-{nanos}", std::process::id())
}

fn alarm_probe(alarm: &str, state: &str) -> Value {
    probe(
        "alarm-state",
        "experimentvr.cloudwatch.probes",
        "probe_alarm_state",
        json!({"alarm_name": alarm, "alarm_state": state}),
        json!({"type": "jsonpath", "path": "$.match", "expect": true}),
    )
}

fn state_probe(alarm: &str, tolerance: Value) -> Value {
    probe(
        "state-value",
        "chaosaws.cloudwatch.probes",
        "get_alarm_state_value",
        json!({ "alarm_name": alarm }),
        tolerance,
    )
}

fn experiment(sandbox: &Sandbox, region: &str, probes: Vec<Value>) -> PathBuf {
    let experiment = sandbox.write_json(
        "alarms.json",
        &json!({"title": "the service is not alarming", "description": "native CloudWatch probes",
            "configuration": {"aws_region": region},
            "steady-state-hypothesis": {"title": "alarms as expected", "probes": probes},
            "method": [{"type": "action", "name": "nothing", "provider": {"type": "process", "path": "true"}}]}),
    );
    let validated = sandbox.validate(&experiment, &[]);
    assert_eq!(
        validated.code, 0,
        "native names validate with no Python: {}",
        validated.stderr
    );
    experiment
}

/// `worker run` with the emulator's endpoint and credentials; the journal.
fn run(sandbox: &Sandbox, experiment: &Path) -> (i32, Value, String) {
    // no Python may be involved: the probes are native
    let out = moto::run(sandbox, experiment, &[], Env::default());
    (out.code, out.journal().clone(), out.stderr)
}

#[test]
fn alarm_probes_read_the_real_state_and_an_alarm_breaks_the_steady_state() {
    let alarm = unique("checkout-errors");
    setup(json!([["metric", alarm], ["state", alarm, "OK"]]));
    let sandbox = Sandbox::new();
    let experiment = experiment(
        &sandbox,
        "us-east-1",
        vec![alarm_probe(&alarm, "OK"), state_probe(&alarm, json!("OK"))],
    );

    let (code, journal, stderr) = run(&sandbox, &experiment);
    assert_eq!(code, 0, "{stderr}\n{journal:#}");
    let before = &journal["steady_states"]["before"];
    assert_eq!(before["steady_state_met"], true, "{journal:#}");
    assert_eq!(
        before["probes"][0]["output"],
        json!({"match": true, "alarm_state": "OK"})
    );
    assert_eq!(before["probes"][1]["output"], "OK");
    assert_eq!(journal["status"], "completed");

    // the alarm fires: the same probes now see it, and the steady state is not met
    setup(json!([["state", alarm, "ALARM"]]));
    let (_, journal, _) = run(&sandbox, &experiment);
    let before = &journal["steady_states"]["before"];
    assert_eq!(before["steady_state_met"], false, "{journal:#}");
    assert_eq!(before["probes"][0]["status"], "succeeded");
    assert_eq!(
        before["probes"][0]["output"],
        json!({"match": false, "alarm_state": "ALARM"})
    );
    // as the reference does: the method is skipped (and the run exits 0)
    assert_eq!(journal["run"], json!([]), "{journal:#}");

    // expecting ALARM now matches
    let experiment = self::experiment(
        &sandbox,
        "us-east-1",
        vec![
            alarm_probe(&alarm, "ALARM"),
            state_probe(&alarm, json!("ALARM")),
        ],
    );
    let (code, journal, stderr) = run(&sandbox, &experiment);
    assert_eq!(code, 0, "{stderr}\n{journal:#}");
    let before = &journal["steady_states"]["before"];
    assert_eq!(before["steady_state_met"], true, "{journal:#}");
    assert_eq!(before["probes"][0]["output"]["match"], true);
    assert_eq!(before["probes"][1]["output"], "ALARM");
}

#[test]
fn get_alarm_state_value_returns_the_state_string_of_metric_and_composite_alarms() {
    let metric = unique("latency");
    let composite = unique("service-health");
    setup(json!([
        ["metric", metric],
        ["state", metric, "INSUFFICIENT_DATA"],
        ["composite", composite, format!("ALARM(\"{metric}\")")],
        ["state", composite, "ALARM"],
    ]));
    let sandbox = Sandbox::new();
    let mut composite_probe = state_probe(&composite, json!("ALARM"));
    composite_probe["name"] = json!("composite-state-value");
    let experiment = experiment(
        &sandbox,
        "us-east-1",
        vec![
            state_probe(&metric, json!("INSUFFICIENT_DATA")),
            composite_probe,
        ],
    );
    let (code, journal, stderr) = run(&sandbox, &experiment);
    assert_eq!(code, 0, "{stderr}\n{journal:#}");
    let probes = &journal["steady_states"]["before"]["probes"];
    assert_eq!(probes[0]["output"], "INSUFFICIENT_DATA", "{journal:#}");
    assert_eq!(probes[1]["output"], "ALARM", "{journal:#}");
}

#[test]
fn an_unknown_alarm_fails_the_probe_naming_the_alarm_and_region() {
    let missing = unique("no-such-alarm");
    let sandbox = Sandbox::new();
    let experiment = experiment(
        &sandbox,
        "us-east-1",
        vec![
            alarm_probe(&missing, "OK"),
            state_probe(&missing, json!("OK")),
        ],
    );
    let (_, journal, _) = run(&sandbox, &experiment);
    let before = &journal["steady_states"]["before"];
    assert_eq!(before["steady_state_met"], false, "{journal:#}");
    for probe in before["probes"].as_array().unwrap() {
        assert_eq!(probe["status"], "failed", "{probe}");
        let exception = probe["exception"].to_string();
        assert!(
            exception.contains(&missing)
                && exception.contains("does not exist in region us-east-1"),
            "{exception}"
        );
    }

    // the region comes from configuration.aws_region: the alarm exists in us-east-1 only
    let alarm = unique("regional");
    setup(json!([["metric", alarm], ["state", alarm, "OK"]]));
    let experiment = self::experiment(&sandbox, "eu-west-1", vec![alarm_probe(&alarm, "OK")]);
    let (_, journal, _) = run(&sandbox, &experiment);
    let probe = &journal["steady_states"]["before"]["probes"][0];
    assert_eq!(probe["status"], "failed", "{journal:#}");
    let exception = probe["exception"].to_string();
    assert!(
        exception.contains(&alarm) && exception.contains("eu-west-1"),
        "{exception}"
    );
}

#[test]
fn a_bad_alarm_state_fails_naming_the_allowed_values() {
    let alarm = unique("disk");
    setup(json!([["metric", alarm], ["state", alarm, "OK"]]));
    let sandbox = Sandbox::new();
    let experiment = experiment(&sandbox, "us-east-1", vec![alarm_probe(&alarm, "FIRING")]);
    let (_, journal, _) = run(&sandbox, &experiment);
    let probe = &journal["steady_states"]["before"]["probes"][0];
    assert_eq!(probe["status"], "failed", "{journal:#}");
    let exception = probe["exception"].to_string();
    assert!(
        exception.contains("alarm_state must be one of OK, ALARM, INSUFFICIENT_DATA")
            && exception.contains("FIRING"),
        "{exception}"
    );
}

#[test]
fn alarm_states_reads_many_alarms_in_order_and_names_every_missing_one() {
    let rt = moto::runtime();
    let sdk = rt.block_on(aws::sdk::emulator(&endpoint()));
    // more than the 100 names DescribeAlarms takes in one call
    let prefix = unique("fleet");
    let names: Vec<String> = (0..120).map(|i| format!("{prefix}-{i:03}")).collect();
    let composite = format!("{prefix}-composite");
    let mut ops: Vec<Value> = names.iter().map(|n| json!(["metric", n])).collect();
    ops.push(json!(["state", names[7], "ALARM"]));
    ops.push(json!(["state", names[110], "OK"]));
    ops.push(json!([
        "composite",
        composite,
        format!("ALARM(\"{}\")", names[7])
    ]));
    ops.push(json!(["state", composite, "ALARM"]));
    setup(Value::Array(ops));

    let mut asked: Vec<String> = names.iter().rev().cloned().collect();
    asked.push(composite.clone());
    asked.push(names[7].clone()); // a repeat is answered again, in place
    let states = rt
        .block_on(aws::native::cloudwatch::alarm_states_with(
            &sdk,
            Some("us-east-1".into()),
            &asked,
        ))
        .unwrap();
    assert_eq!(states.len(), asked.len());
    for ((name, _), asked) in states.iter().zip(&asked) {
        assert_eq!(name, asked);
    }
    let state = |name: &str| {
        states
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.as_str())
            .unwrap()
    };
    assert_eq!(state(&names[7]), "ALARM");
    assert_eq!(state(&names[110]), "OK");
    assert_eq!(state(&composite), "ALARM");
    assert_eq!(states.last().unwrap(), &(names[7].clone(), "ALARM".into()));
    let untouched = state(&names[0]);
    assert!(
        aws::native::cloudwatch::STATES.contains(&untouched),
        "{untouched}"
    );

    let gone = [unique("gone-a"), unique("gone-b")];
    let asked = vec![names[0].clone(), gone[0].clone(), gone[1].clone()];
    let err = rt
        .block_on(aws::native::cloudwatch::alarm_states_with(
            &sdk, None, &asked,
        ))
        .unwrap_err();
    assert!(
        err.contains(&format!("\"{}\"", gone[0]))
            && err.contains(&format!("\"{}\"", gone[1]))
            && !err.contains(&names[0]),
        "{err}"
    );
    assert!(
        rt.block_on(aws::native::cloudwatch::alarm_states_with(&sdk, None, &[]))
            .unwrap()
            .is_empty()
    );
}

/// An experiment with a stop condition on `alarm` (read every second): the method marks its
/// start then waits 30 s; the rollback leaves a mark.
fn guarded(sandbox: &Sandbox, alarm: &str) -> PathBuf {
    watched(
        sandbox,
        Some(json!({"name": "experiment-broker",
            "stop_conditions": [{"alarm_name": alarm}], "stop_condition_interval": 1})),
    )
}

/// The same experiment with `extension` (none: nothing but the kill switch watches it).
fn watched(sandbox: &Sandbox, extension: Option<Value>) -> PathBuf {
    let step = |name: &str, script: String| {
        json!({"type": "action", "name": name,
            "provider": {"type": "process", "path": "sh", "arguments": ["-c", script]}})
    };
    let started = sandbox.path("started");
    let reverted = sandbox.path("reverted");
    sandbox.write_json(
        "guarded.json",
        &json!({"title": "guarded by an alarm", "description": "stop condition",
            "configuration": {"aws_region": "us-east-1"},
            "extensions": extension.into_iter().collect::<Vec<_>>(),
            "method": [step("start", format!("touch {}", started.display())),
                       step("wait", "sleep 30".into())],
            "rollbacks": [step("revert", format!("echo reverted >> {}", reverted.display()))]}),
    )
}

/// `worker run` of `experiment` in the background, with `envs` besides the emulator's; returns
/// once the method has started.
fn start(
    sandbox: &Sandbox,
    experiment: &Path,
    env: Env,
    envs: &[(&str, &str)],
) -> std::process::Child {
    let journal = sandbox.path("journal.json");
    let args = [
        "run",
        "--journal-path",
        journal.to_str().unwrap(),
        experiment.to_str().unwrap(),
    ];
    let child = moto::command(sandbox, &args, env)
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sandbox.path("started").exists() {
        assert!(
            std::time::Instant::now() < until,
            "the method never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child
}

/// Wait for a run `start`ed; after `tripped` it must have stopped within 15 s, interrupted, its
/// rollback run once. Its journal.
fn stopped(sandbox: &Sandbox, child: std::process::Child, tripped: std::time::Instant) -> Value {
    let out = child.wait_with_output().unwrap();
    let stopped_after = tripped.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stopped_after < std::time::Duration::from_secs(15),
        "stopped by the tripwire ({stopped_after:?}), not the end of sleep 30"
    );
    let journal: Value =
        serde_json::from_slice(&std::fs::read(sandbox.path("journal.json")).unwrap()).unwrap();
    assert_eq!(journal["status"], "interrupted", "{journal:#}");
    assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(sandbox.path("reverted")).unwrap(),
        "reverted\n"
    );
    journal
}

#[test]
fn an_alarm_going_off_mid_run_stops_the_run_and_the_rollbacks_run() {
    let alarm = unique("stop-condition");
    setup(json!([["metric", alarm], ["state", alarm, "OK"]]));
    let sandbox = Sandbox::new();
    let experiment = guarded(&sandbox, &alarm);
    let journal = sandbox.path("journal.json");
    let env = Env {
        with_python: true,
        ..Env::default()
    };
    let args = [
        "run",
        "--journal-path",
        journal.to_str().unwrap(),
        experiment.to_str().unwrap(),
    ];
    let child = moto::command(&sandbox, &args, env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sandbox.path("started").exists() {
        assert!(
            std::time::Instant::now() < until,
            "the method never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let alarmed = std::time::Instant::now();
    setup(json!([["state", alarm, "ALARM"]]));
    let out = child.wait_with_output().unwrap();
    let stopped_after = alarmed.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stopped_after < std::time::Duration::from_secs(15),
        "stopped by the alarm ({stopped_after:?})"
    );
    let journal: Value = serde_json::from_slice(&std::fs::read(&journal).unwrap()).unwrap();
    assert_eq!(journal["status"], "interrupted");
    assert_eq!(
        journal["broker"]["stopped_by"],
        format!("stop condition: CloudWatch alarm {alarm} is in ALARM").as_str()
    );
    assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(sandbox.path("reverted")).unwrap(),
        "reverted\n"
    );
}

#[test]
fn a_run_whose_stop_condition_is_already_in_alarm_never_starts() {
    let alarm = unique("already-alarming");
    setup(json!([["metric", alarm], ["state", alarm, "ALARM"]]));
    let sandbox = Sandbox::new();
    let experiment = guarded(&sandbox, &alarm);
    let (code, journal, stderr) = run(&sandbox, &experiment);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(journal["status"], "interrupted");
    assert_eq!(journal["broker"]["not_started"], true);
    assert!(
        journal["broker"]["stopped_by"]
            .as_str()
            .unwrap()
            .contains(&alarm)
    );
    assert!(!sandbox.path("started").exists(), "nothing ran");
    assert!(!sandbox.path("reverted").exists(), "nothing to revert");
}

#[test]
fn a_stop_condition_that_cannot_be_read_keeps_the_run_from_starting() {
    let sandbox = Sandbox::new();
    let experiment = guarded(&sandbox, &unique("no-such-alarm"));
    let (code, journal, stderr) = run(&sandbox, &experiment);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(journal["broker"]["not_started"], true);
    let why = journal["broker"]["stopped_by"].as_str().unwrap();
    assert!(
        why.contains("could not be made") && why.contains("no-such-alarm"),
        "{why}"
    );
    assert!(
        !sandbox.path("started").exists(),
        "a fault never starts unwatched"
    );
}

#[test]
fn a_stop_condition_alarm_deleted_mid_run_stops_the_run_after_the_grace() {
    let alarm = unique("deleted-mid-run");
    setup(json!([["metric", alarm], ["state", alarm, "OK"]]));
    let sandbox = Sandbox::new();
    let experiment = guarded(&sandbox, &alarm);
    let child = start(&sandbox, &experiment, Env::default(), &[]);
    let deleted = std::time::Instant::now();
    setup(json!([["delete", alarm]]));
    let journal = stopped(&sandbox, child, deleted);
    let why = journal["broker"]["stopped_by"].as_str().unwrap();
    assert!(
        why.contains("could not be read for 3 intervals in a row") && why.contains(&alarm),
        "{why}"
    );
    assert!(
        deleted.elapsed() >= std::time::Duration::from_secs(2),
        "two failed reads are within the grace"
    );
}

#[test]
fn a_lone_worker_run_stops_when_the_kill_switch_is_set_mid_run() {
    let sandbox = Sandbox::new();
    let state = sandbox.path("state");
    let experiment = watched(&sandbox, None);
    let env = Env {
        state_dir: Some(&state),
        ..Env::default()
    };
    let child = start(&sandbox, &experiment, env, &[]);
    let store = shared::adapters::embedded::DirStore::new(state.join("store"));
    moto::runtime()
        .block_on(shared::broker::guard::set_halt(&store, Some("incident 7")))
        .unwrap();
    let journal = stopped(&sandbox, child, std::time::Instant::now());
    assert_eq!(
        journal["broker"]["stopped_by"],
        "the kill switch is on (producer halt: incident 7)"
    );
}

#[test]
fn a_lone_worker_run_stops_when_the_ssm_halt_parameter_turns_true() {
    let parameter = format!("/{}", unique("broker-halt"));
    setup(json!([["param", parameter, "false"]]));
    let sandbox = Sandbox::new();
    let experiment = watched(&sandbox, None);
    let child = start(
        &sandbox,
        &experiment,
        Env::default(),
        &[("BROKER_HALT_PARAMETER", &parameter)],
    );
    setup(json!([["param", parameter, "true"]]));
    let journal = stopped(&sandbox, child, std::time::Instant::now());
    assert_eq!(
        journal["broker"]["stopped_by"],
        format!("the kill switch is on (SSM parameter {parameter} is true)").as_str()
    );
}

#[test]
fn a_lone_worker_run_whose_halt_parameter_cannot_be_read_never_starts() {
    let parameter = format!("/{}", unique("no-such-parameter"));
    let sandbox = Sandbox::new();
    let experiment = watched(&sandbox, None);
    let out = moto::command(
        &sandbox,
        &[
            "run",
            "--journal-path",
            sandbox.path("journal.json").to_str().unwrap(),
            experiment.to_str().unwrap(),
        ],
        Env::default(),
    )
    .env("BROKER_HALT_PARAMETER", &parameter)
    .output()
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let journal: Value =
        serde_json::from_slice(&std::fs::read(sandbox.path("journal.json")).unwrap()).unwrap();
    assert_eq!(journal["broker"]["not_started"], true, "{journal:#}");
    let why = journal["broker"]["stopped_by"].as_str().unwrap();
    assert!(
        why.contains("could not be made") && why.contains(&parameter),
        "{why}"
    );
    assert!(
        !sandbox.path("started").exists(),
        "a fault never starts unwatched"
    );
}
