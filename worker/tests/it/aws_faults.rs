//! The EC2 fault library against the moto server `scripts/test.sh` starts on 127.0.0.1, run by
//! `worker run` with Python out of reach: the seed's experiment runs unchanged and sends
//! StressMemory to exactly the instance it resolved; each selection mode picks what it should;
//! the opt-in tag and the limits refuse before anything is sent; a dry run sends nothing.
//!
//! What was sent is read back from SSM (`ListCommands`), not from our own output.

use crate::util;

use serde_json::{Value, json};
use std::path::Path;
use util::Sandbox;
use util::moto::{self, Aws, Env, OPT_IN, sent_to, sorted, team};

/// The one command sent for the activity `name` to some of `instances`: (document, sorted
/// instance ids, parameters).
fn command(instances: &[String], name: &str) -> (String, Vec<String>, Value) {
    let found = moto::sent_for(instances, name);
    assert_eq!(found.len(), 1, "one command for {name}: {found:?}");
    (
        found[0]["DocumentName"].as_str().unwrap().to_string(),
        sorted(&found[0]["InstanceIds"]),
        found[0]["Parameters"].clone(),
    )
}

/// `worker run` with the emulator's endpoint and credentials, Python out of reach.
fn run(sandbox: &Sandbox, experiment: &Path, extra: &[&str]) -> (i32, Value, String) {
    let env = Env {
        unset: &["BROKER_OPT_IN_TAG"],
        ..Env::default()
    };
    let out = moto::run(sandbox, experiment, extra, env);
    (out.code, out.journal().clone(), out.output())
}

/// `worker run` with the emulator's endpoint and credentials, and the embedded store (where a
/// lone `worker run` keeps its locks) in `state`.
fn run_in(sandbox: &Sandbox, state: &Path, experiment: &Path) -> (i32, Value, String) {
    let env = Env {
        with_python: true,
        unset: &["BROKER_OPT_IN_TAG"],
        state_dir: Some(state),
    };
    let out = moto::run(sandbox, experiment, &[], env);
    (out.code, out.journal().clone(), out.output())
}

fn action(name: &str, func: &str, arguments: Value) -> Value {
    moto::action(name, "experimentvr.ec2.actions", func, arguments)
}

fn experiment(method: Vec<Value>, extension: Option<Value>) -> Value {
    moto::experiment("faults", method, extension)
}

#[test]
fn the_seed_experiment_sends_stress_memory_to_exactly_the_instance_it_resolved() {
    let aws = Aws::new();
    aws.register("StressMemory");
    // the only running *.resiliency.local instance carries the opt-in tag; a stopped one
    // matches the name but is not a candidate
    let target = aws.instances(1, &[("Name", "web-1.resiliency.local"), OPT_IN]);
    let stopped = aws.instances(1, &[("Name", "web-2.resiliency.local"), OPT_IN]);
    aws.stop(&stopped);

    let sandbox = Sandbox::new();
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments/ec2-high-memory-utilization.yaml");
    let (code, journal, out) = run(&sandbox, &seed, &[]);
    aws.terminate(&target);
    aws.terminate(&stopped);
    assert_eq!(code, 0, "{out}\n{journal:#}");
    let run = &journal["run"][0];
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(sorted(&run["output"]["targets"]), target);

    // the targets were on record before the command, and SSM got exactly that
    let records = journal["broker"]["records"].as_array().expect("records");
    assert_eq!(records[0]["kind"], "targets");
    assert_eq!(sorted(&records[0]["chosen"]), target);
    assert_eq!(
        records[1]["kind"], "locks",
        "the target is locked before anything is sent"
    );
    assert_eq!(sorted(&records[1]["targets"]), target);
    assert_eq!(records[2]["kind"], "ssm_command");
    assert!(records[2]["command_id"].is_string());
    let (document, ids, params) = command(&target, "stress-instance-memory");
    assert_eq!(document, "StressMemory");
    assert_eq!(ids, target);
    assert_eq!(
        params,
        json!({"duration": ["300"], "workers": ["1"], "percent": ["99"]})
    );
    assert!(
        sent_to(&stopped).is_empty(),
        "the stopped instance got nothing"
    );
    let invocations = &run["output"]["results"][0]["command"]["invocations"];
    assert_eq!(invocations[0]["instance_id"], target[0].as_str());
    assert_eq!(invocations[0]["status"], "Success");
}

#[test]
fn each_selection_mode_picks_what_it_should() {
    let aws = Aws::new();
    aws.register("StressCPU");
    let team = team("modes");
    let fleet = aws.instances(5, &[("team", &team), OPT_IN]);
    let args = |mode: &str| {
        json!({"test_target_type": mode, "tag_key": "tag:team", "tag_value": team,
               "ec2_stress_cpu_duration": 5})
    };
    let mut named = args("NAMED_LIST");
    named["targets"] = json!([fleet[3], fleet[1]]);
    // ids under a choosing mode narrow the candidates (they are not ignored)
    let mut listed = args("ALL");
    listed["targets"] = json!([fleet[0], fleet[4]]);
    let e = experiment(
        vec![
            action("count", "ec2_stress_cpu", args("COUNT(2)")),
            action("percent-40", "ec2_stress_cpu", args("PERCENT(40)")),
            action("percent-50", "ec2_stress_cpu", args("PERCENT(50)")),
            action("random", "ec2_stress_cpu", args("RANDOM")),
            action("all", "ec2_stress_cpu", args("ALL")),
            action("named", "ec2_stress_cpu", named),
            action("all-listed", "ec2_stress_cpu", listed),
        ],
        None,
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("modes.json", &e);
    let (code, journal, out) = run(&sandbox, &file, &[]);
    aws.terminate(&fleet);
    assert_eq!(code, 0, "{out}\n{journal:#}");
    let mut expected_named = vec![fleet[1].clone(), fleet[3].clone()];
    expected_named.sort();
    for (i, (name, size)) in [
        ("count", 2),
        ("percent-40", 2),
        ("percent-50", 3),
        ("random", 1),
        ("all", 5),
        ("named", 2),
        ("all-listed", 2),
    ]
    .into_iter()
    .enumerate()
    {
        let run = &journal["run"][i];
        assert_eq!(run["activity"]["name"], name);
        assert_eq!(run["status"], "succeeded", "{name}: {run:#}");
        let chosen = sorted(&run["output"]["targets"]);
        assert_eq!(chosen.len(), size, "{name}: {chosen:?}");
        assert!(
            chosen.iter().all(|c| fleet.contains(c)),
            "{name}: only the team's instances"
        );
        let (document, sent, _) = command(&fleet, name);
        assert_eq!(
            (document.as_str(), &sent),
            ("StressCPU", &chosen),
            "{name}: SSM got the choice"
        );
        if name == "named" {
            assert_eq!(chosen, expected_named);
        }
        if name == "all-listed" {
            let mut listed = vec![fleet[0].clone(), fleet[4].clone()];
            listed.sort();
            assert_eq!(chosen, listed);
        }
    }
}

/// The journal names the rule (and the target) that refused the run's first refused action.
fn assert_refused(journal: &Value, rule: &str, target: Option<&str>) {
    let refused = &journal["broker"]["refused"][0];
    assert_eq!(refused["rule"], rule, "{journal:#}");
    assert_eq!(refused["activity"], journal["run"][0]["activity"]["name"]);
    if let Some(target) = target {
        assert_eq!(refused["target"], target, "{refused}");
    }
}

#[test]
fn a_target_without_the_opt_in_tag_is_refused_before_anything_is_sent() {
    let aws = Aws::new();
    let team = team("optin");
    let opted = aws.instances(1, &[("team", &team), OPT_IN]);
    let not_opted = aws.instances(1, &[("team", &team)]);
    let e = experiment(
        vec![action(
            "blackhole",
            "ec2_blackhole_by_port",
            json!({"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": team,
                   "ec2_blackhole_by_port_port": 5432, "ec2_blackhole_by_port_duration": 10}),
        )],
        None,
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("optin.json", &e);
    // a refusal aborts the run (exit 1): a pipeline never goes green with nothing injected
    let (code, journal, out) = run(&sandbox, &file, &[]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(journal["status"], "aborted", "{journal:#}");
    assert_refused(&journal, "opt_in", Some(&not_opted[0]));
    let action = &journal["run"][0];
    assert_eq!(action["status"], "failed");
    let exception = action["exception"].to_string();
    assert!(
        exception.contains(&format!(
            "target {} does not carry the opt-in tag experiment-broker:opt-in=true",
            not_opted[0]
        )),
        "{exception}"
    );
    assert!(
        sent_to(&opted).is_empty(),
        "nothing was sent, not even to the opted-in one"
    );
    assert!(sent_to(&not_opted).is_empty());
    let refused = &journal["broker"]["records"][0];
    assert!(
        refused["refused"].as_str().unwrap().contains("opt-in"),
        "{refused}"
    );

    // an account that opts in wholesale turns the tag off
    let (code, journal, out) = run(&sandbox, &file, &["--opt-in-tag", "off"]);
    aws.terminate(&opted);
    aws.terminate(&not_opted);
    assert_eq!(code, 0, "{out}\n{journal:#}");
    assert_eq!(sorted(&journal["run"][0]["output"]["targets"]).len(), 2);
}

#[test]
fn limits_refuse_and_a_dry_run_sends_nothing() {
    let aws = Aws::new();
    let team = team("limits");
    let fleet = aws.instances(4, &[("team", &team), OPT_IN]);
    let all = json!({"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": team,
                     "ec2_stress_io_duration": 30});
    let sandbox = Sandbox::new();

    // the experiment caps this action at 50%: ALL of 4 is refused
    let capped = experiment(
        vec![action("io", "ec2_stress_io", all.clone())],
        Some(json!({"name": "experiment-broker", "actions": {"io": {"max_percent": 50}}})),
    );
    let file = sandbox.write_json("capped.json", &capped);
    let (code, journal, _) = run(&sandbox, &file, &[]);
    assert_eq!((code, journal["status"].as_str()), (1, Some("aborted")));
    assert_refused(&journal, "max_percent", None);
    assert_eq!(journal["run"][0]["status"], "failed");
    let exception = journal["run"][0]["exception"].to_string();
    assert!(
        exception.contains("4 of 4 matching targets chosen, more than the limit of 50%"),
        "{exception}"
    );

    // the deployment caps every action at 3 targets
    let plain = experiment(vec![action("io", "ec2_stress_io", all.clone())], None);
    let file = sandbox.write_json("plain.json", &plain);
    let (code, journal, _) = run(&sandbox, &file, &["--max-targets", "3"]);
    assert_eq!((code, journal["status"].as_str()), (1, Some("aborted")));
    assert_refused(&journal, "max_targets", None);
    assert_eq!(journal["run"][0]["status"], "failed");
    assert!(
        journal["run"][0]["exception"]
            .to_string()
            .contains("more than the limit of 3 (max targets)")
    );

    // max_duration refuses a ladder that would last too long
    let mut ladder = all.clone();
    ladder["max_duration"] = json!(60);
    ladder["ec2_stress_io_parameter_map"] =
        json!([{"percent": 10}, {"percent": 20}, {"percent": 40}]);
    let long = experiment(vec![action("io", "ec2_stress_io", ladder)], None);
    let file = sandbox.write_json("long.json", &long);
    let (code, journal, _) = run(&sandbox, &file, &[]);
    assert_eq!((code, journal["status"].as_str()), (1, Some("aborted")));
    assert_refused(&journal, "max_duration", None);
    assert_eq!(journal["run"][0]["status"], "failed");
    assert!(
        journal["run"][0]["exception"]
            .to_string()
            .contains("90s in all (3 stages), more than max_duration 60s")
    );

    // a dry run resolves and prints the plan, and sends nothing
    let (code, journal, out) = run(
        &sandbox,
        &file.with_file_name("plain.json"),
        &["--dry", "actions"],
    );
    aws.terminate(&fleet);
    assert_eq!(code, 0, "{out}");
    let output = &journal["run"][0]["output"];
    assert_eq!(output["dry_run"], true);
    assert_eq!(sorted(&output["targets"]).len(), 4);
    assert!(out.contains("dry run: io would send StressIO on"), "{out}");
    assert!(
        sent_to(&fleet).is_empty(),
        "refusals and a dry run sent nothing"
    );
}

#[test]
fn a_locked_target_is_refused_or_waited_for_and_the_lock_is_released_after_the_fault() {
    let aws = Aws::new();
    aws.register("StressCPU");
    let team = team("locks");
    let host = aws.instances(1, &[("team", &team), OPT_IN]);
    let sandbox = Sandbox::new();
    let lock = sandbox.path("store/locks").join(&host[0]);
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    // another worker's fault is acting on the host
    std::fs::write(
        &lock,
        json!({"owner": "worker-b", "activity": "memory", "expires_at": until}).to_string(),
    )
    .unwrap();
    let cpu = |ext: Option<Value>| {
        experiment(
            vec![action(
                "cpu",
                "ec2_stress_cpu",
                json!({"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": team,
                       "ec2_stress_cpu_duration": 5}),
            )],
            ext,
        )
    };
    let file = sandbox.write_json("cpu.json", &cpu(None));
    let state = sandbox.path("");
    let (code, journal, out) = run_in(&sandbox, &state, &file);
    assert_eq!(
        (code, journal["status"].as_str()),
        (1, Some("aborted")),
        "{out}"
    );
    assert_refused(&journal, "target_locked", Some(&host[0]));
    let action = &journal["run"][0];
    assert_eq!(action["status"], "failed", "{out}");
    assert!(
        action["exception"].to_string().contains(&format!(
            "target {} is locked by worker-b (memory)",
            host[0]
        )),
        "{action}"
    );
    assert!(
        sent_to(&host).is_empty(),
        "nothing stacked on the locked host"
    );

    // waiting: the other fault ends (its lock is released) while this one waits
    let file = sandbox.write_json(
        "cpu-wait.json",
        &cpu(Some(json!({"name": "experiment-broker", "locks": {"on_conflict": "wait", "wait_seconds": 30}}))),
    );
    let releaser = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(1));
            std::fs::remove_file(&lock).unwrap();
        })
    };
    let (_, journal, out) = run_in(&sandbox, &state, &file);
    releaser.join().unwrap();
    aws.terminate(&host);
    assert_eq!(journal["run"][0]["status"], "succeeded", "{out}");
    assert_eq!(sent_to(&host).len(), 1);
    let locks = journal["broker"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "locks")
        .expect("the locks are on record");
    assert_eq!(locks["targets"], json!(host));
    assert!(!lock.exists(), "released after the fault");
}
