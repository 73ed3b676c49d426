//! `chaosaws`'s EC2 and SSM actions, and the seed library's `terminate_instance`, run natively
//! by `worker run` (Python out of reach) against the moto server `scripts/test.sh` starts on
//! 127.0.0.1: each acts on exactly the instances it resolved (read back with
//! DescribeInstances, and from moto's request recording), the opt-in tag and the limits refuse
//! before anything acts, and a dry run acts on nothing.
//!
//! Every test tags its instances with its own `team` value: the tests share one moto.

use crate::util;

use serde_json::{Value, json};
use util::Sandbox;
use util::moto::{self, Aws, Env, OPT_IN, action, ec2_calls, sent_to, sorted, team};

/// `worker run` of `experiment` with the emulator's endpoint and credentials, Python out of
/// reach.
fn run(sandbox: &Sandbox, experiment: &Value, extra: &[&str]) -> (i32, Value, String) {
    let file = sandbox.write_json("experiment.json", experiment);
    let env = Env {
        unset: moto::DEPLOYMENT_GUARD_RAILS,
        ..Env::default()
    };
    let out = moto::run(sandbox, &file, extra, env);
    (out.code, out.journal().clone(), out.output())
}

fn ec2(name: &str, func: &str, arguments: Value) -> Value {
    action(name, "chaosaws.ec2.actions", func, arguments)
}

fn experiment(method: Vec<Value>) -> Value {
    moto::experiment("chaosaws", method, None)
}

fn by_team(team: &str) -> Value {
    json!([{"Name": "tag:team", "Values": [team]}])
}

fn sort(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// The instance ids of a list of boto3 state changes.
fn changed(changes: &Value) -> Vec<String> {
    sort(
        changes
            .as_array()
            .unwrap_or_else(|| panic!("a list of state changes: {changes}"))
            .iter()
            .map(|c| c["InstanceId"].as_str().unwrap().to_string())
            .collect(),
    )
}

/// The action at `i` succeeded (a failed action does not fail a Chaos Toolkit run).
fn succeeded(journal: &Value, i: usize) -> &Value {
    let run = &journal["run"][i];
    assert_eq!(run["status"], "succeeded", "{run:#}");
    &run["output"]
}

#[test]
fn stop_instances_by_ids_stops_exactly_those_and_start_instances_starts_them_again() {
    let aws = Aws::new();
    let team = team("ids");
    let fleet = aws.instances(3, &[("team", &team), OPT_IN]);
    let chosen = sort(fleet[..2].to_vec());
    let sandbox = Sandbox::new();

    let (code, journal, out) = run(
        &sandbox,
        &experiment(vec![ec2(
            "stop",
            "stop_instances",
            json!({"instance_ids": [fleet[1], fleet[0]], "force": true}),
        )]),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let output = succeeded(&journal, 0);
    // boto3's response, as chaosaws returns it: one StopInstances response per lifecycle type
    assert_eq!(output.as_array().unwrap().len(), 1, "{output:#}");
    let stopping = &output[0]["StoppingInstances"];
    assert_eq!(changed(stopping), chosen);
    assert_eq!(stopping[0]["PreviousState"]["Name"], "running");
    assert!(
        stopping[0]["CurrentState"]["Code"].is_number(),
        "{stopping:#}"
    );
    assert_eq!(aws.states(&fleet), ["stopped", "stopped", "running"]);
    assert_eq!(ec2_calls("StopInstances", &fleet), vec![chosen.clone()]);
    let record = &journal["broker"]["records"][0];
    assert_eq!(record["kind"], "targets");
    assert_eq!(sorted(&record["chosen"]), chosen);
    let locks = &journal["broker"]["records"][1];
    assert_eq!(
        locks["kind"], "locks",
        "the targets were locked while stopped"
    );
    assert_eq!(sorted(&locks["targets"]), chosen);

    // start_instances takes stopped instances only: the running third one is not a candidate
    let (code, journal, out) = run(
        &sandbox,
        &experiment(vec![ec2(
            "start",
            "start_instances",
            json!({"filters": by_team(&team)}),
        )]),
        &[],
    );
    aws.terminate(&fleet);
    assert_eq!(code, 0, "{out}");
    let output = succeeded(&journal, 0);
    // chaosaws returns the StartingInstances entries themselves
    assert_eq!(changed(output), chosen);
    assert_eq!(output[0]["PreviousState"]["Name"], "stopped");
    assert_eq!(ec2_calls("StartInstances", &fleet), vec![chosen]);
}

#[test]
fn stop_instances_by_filters_stops_every_matching_opted_in_instance() {
    let aws = Aws::new();
    let team = team("filters");
    let fleet = aws.instances(2, &[("team", &team), OPT_IN]);
    let other = aws.instances(1, &[("team", &format!("{team}-other")), OPT_IN]);
    let sandbox = Sandbox::new();
    let (code, journal, out) = run(
        &sandbox,
        &experiment(vec![ec2(
            "stop",
            "stop_instances",
            json!({"filters": by_team(&team), "az": "us-east-1a"}),
        )]),
        &[],
    );
    let states = (aws.states(&fleet), aws.states(&other));
    aws.terminate(&fleet);
    aws.terminate(&other);
    assert_eq!(code, 0, "{out}");
    let output = succeeded(&journal, 0);
    assert_eq!(
        changed(&output[0]["StoppingInstances"]),
        sort(fleet.clone())
    );
    assert_eq!(states.0, ["stopped", "stopped"]);
    assert_eq!(
        states.1,
        ["running"],
        "another team's instance is untouched"
    );
    assert!(ec2_calls("StopInstances", &other).is_empty());
}

#[test]
fn restart_instances_reboots_exactly_the_matching_instances() {
    let aws = Aws::new();
    let team = team("restart");
    let fleet = aws.instances(2, &[("team", &team), OPT_IN]);
    let stopped = aws.instances(1, &[("team", &team), OPT_IN]);
    aws.stop(&stopped);
    let sandbox = Sandbox::new();
    let (code, journal, out) = run(
        &sandbox,
        &experiment(vec![ec2(
            "restart",
            "restart_instances",
            json!({"filters": by_team(&team)}),
        )]),
        &[],
    );
    let states = aws.states(&fleet);
    aws.terminate(&fleet);
    aws.terminate(&stopped);
    assert_eq!(code, 0, "{out}");
    // chaosaws's restart_instances returns an empty list
    assert_eq!(succeeded(&journal, 0), &json!([]));
    assert_eq!(states, ["running", "running"]);
    assert_eq!(
        ec2_calls("RebootInstances", &fleet),
        vec![sort(fleet.clone())],
        "one reboot of the running ones"
    );
    assert!(
        ec2_calls("RebootInstances", &stopped).is_empty(),
        "a stopped instance is not a candidate"
    );
}

#[test]
fn terminate_instances_terminates_the_matching_instances() {
    let aws = Aws::new();
    let team = team("terminate");
    let fleet = aws.instances(2, &[("team", &team), OPT_IN]);
    let sandbox = Sandbox::new();
    let (code, journal, out) = run(
        &sandbox,
        &experiment(vec![ec2(
            "terminate",
            "terminate_instances",
            json!({"filters": by_team(&team)}),
        )]),
        &[],
    );
    assert_eq!(code, 0, "{out}");
    let output = succeeded(&journal, 0);
    assert_eq!(
        changed(&output[0]["TerminatingInstances"]),
        sort(fleet.clone())
    );
    assert_eq!(aws.states(&fleet), ["terminated", "terminated"]);
}

#[test]
fn an_instance_without_the_opt_in_tag_is_refused_and_not_stopped() {
    let aws = Aws::new();
    let team = team("optin");
    let opted = aws.instances(1, &[("team", &team), OPT_IN]);
    let not_opted = aws.instances(1, &[("team", &team)]);
    let sandbox = Sandbox::new();
    // a refusal aborts its run: each action runs in an experiment of its own
    let runs: Vec<(i32, Value)> = [
        ec2(
            "stop-team",
            "stop_instances",
            json!({"filters": by_team(&team)}),
        ),
        ec2(
            "stop-one",
            "stop_instances",
            json!({"instance_ids": not_opted}),
        ),
        ec2("stop-nothing", "stop_instances", json!({})),
    ]
    .into_iter()
    .map(|a| {
        let (code, journal, _) = run(&sandbox, &experiment(vec![a]), &[]);
        (code, journal)
    })
    .collect();
    let states = aws.states(&[opted[0].clone(), not_opted[0].clone()]);
    aws.terminate(&opted);
    aws.terminate(&not_opted);
    let refusal = format!(
        "target {} does not carry the opt-in tag experiment-broker:opt-in=true",
        not_opted[0]
    );
    for (code, journal) in &runs[..2] {
        let action = &journal["run"][0];
        assert_eq!(action["status"], "failed", "{action:#}");
        let exception = action["exception"].to_string();
        assert!(exception.contains(&refusal), "{exception}");
        assert_eq!((*code, journal["status"].as_str()), (1, Some("aborted")));
        assert_eq!(journal["broker"]["refused"][0]["rule"], "opt_in");
        assert_eq!(journal["broker"]["refused"][0]["target"], not_opted[0]);
    }
    let journal = &runs[2].1;
    let nothing = journal["run"][0]["exception"].to_string();
    assert_eq!(journal["run"][0]["status"], "failed");
    assert!(
        nothing.contains("stop_instances needs instance_ids, az or filters"),
        "{nothing}"
    );
    assert_eq!(states, ["running", "running"], "nothing was stopped");
    assert!(ec2_calls("StopInstances", &opted).is_empty());
    assert!(ec2_calls("StopInstances", &not_opted).is_empty());
    let refused = &runs[0].1["broker"]["records"][0];
    assert!(
        refused["refused"].as_str().unwrap().contains("opt-in"),
        "{refused}"
    );
}

#[test]
fn a_dry_run_reports_the_targets_and_max_targets_refuses_two() {
    let aws = Aws::new();
    let team = team("dry");
    let fleet = aws.instances(2, &[("team", &team), OPT_IN]);
    let sandbox = Sandbox::new();
    let e = experiment(vec![
        ec2("stop", "stop_instances", json!({"filters": by_team(&team)})),
        ec2(
            "terminate",
            "terminate_instances",
            json!({"instance_ids": fleet}),
        ),
    ]);

    let (code, journal, out) = run(&sandbox, &e, &["--dry", "actions"]);
    assert_eq!(code, 0, "{out}");
    for (i, name) in ["stop_instances", "terminate_instances"].iter().enumerate() {
        let output = &journal["run"][i]["output"];
        assert_eq!(output["dry_run"], true, "{output:#}");
        assert_eq!(output["action"], *name);
        assert_eq!(sorted(&output["targets"]), sort(fleet.clone()));
        assert_eq!(output["matched"], 2);
        assert!(output["seed"].is_u64());
    }
    assert_eq!(aws.states(&fleet), ["running", "running"]);

    // a refusal aborts its run: each action runs in an experiment of its own
    let journals: Vec<Value> = e["method"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let (code, journal, out) = run(
                &sandbox,
                &experiment(vec![a.clone()]),
                &["--max-targets", "1"],
            );
            assert_eq!(
                (code, journal["status"].as_str()),
                (1, Some("aborted")),
                "{out}"
            );
            assert_eq!(journal["broker"]["refused"][0]["rule"], "max_targets");
            journal
        })
        .collect();
    let states = aws.states(&fleet);
    let terminated = ec2_calls("TerminateInstances", &fleet);
    aws.terminate(&fleet);
    for journal in &journals {
        let action = &journal["run"][0];
        assert_eq!(action["status"], "failed", "{action:#}");
        assert!(
            action["exception"]
                .to_string()
                .contains("2 targets chosen, more than the limit of 1 (max targets)"),
            "{action:#}"
        );
    }
    assert_eq!(states, ["running", "running"]);
    assert!(ec2_calls("StopInstances", &fleet).is_empty());
    assert!(terminated.is_empty());
}

#[test]
fn send_command_with_tag_targets_sends_to_exactly_the_resolved_opted_in_instances() {
    let aws = Aws::new();
    aws.register("KillProcessByName");
    let team = team("ssm");
    let fleet = aws.instances(2, &[("team", &team), OPT_IN]);
    let stopped = aws.instances(1, &[("team", &team), OPT_IN]);
    aws.stop(&stopped);
    let others = aws.instances(1, &[("team", &format!("{team}-other")), OPT_IN]);
    let refused_team = format!("{team}-refused");
    let not_opted = aws.instances(1, &[("team", &refused_team)]);
    let send = |name: &str, team: &str, extra: Value| {
        let mut args = json!({"document_name": "KillProcessByName",
            "targets": [{"Key": "tag:team", "Values": [team]}],
            "parameters": {"name": "nginx", "duration": "0"}});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        action(name, "chaosaws.ssm.actions", "send_command", args)
    };
    let e = experiment(vec![
        send("kill", &team, json!({})),
        send("kill-one-by-one", &team, json!({"max_concurrency": "1"})),
    ]);
    let sandbox = Sandbox::new();
    let (code, journal, out) = run(&sandbox, &e, &[]);
    // a refusal aborts its run (exit 1): it runs in an experiment of its own
    let refused_run = run(
        &sandbox,
        &experiment(vec![send("kill-refused", &refused_team, json!({}))]),
        &[],
    );
    aws.terminate(&fleet);
    aws.terminate(&stopped);
    aws.terminate(&others);
    aws.terminate(&not_opted);
    assert_eq!(code, 0, "{out}");

    let running = sort(fleet.clone());
    let output = succeeded(&journal, 0);
    assert_eq!(sorted(&output["targets"]), running);
    assert_eq!(output["Command"]["DocumentName"], "KillProcessByName");
    assert_eq!(sorted(&output["Command"]["InstanceIds"]), running);
    assert!(output["Command"]["CommandId"].is_string(), "{output:#}");
    assert_eq!(output["commands"][0]["invocations"][0]["status"], "Success");

    let sent = |activity: &str| -> Vec<Vec<String>> {
        moto::sent_for(&fleet, activity)
            .into_iter()
            .map(|b| {
                assert_eq!(b["DocumentName"], "KillProcessByName");
                assert_eq!(
                    b["Parameters"],
                    json!({"name": ["nginx"], "duration": ["0"]})
                );
                sorted(&b["InstanceIds"])
            })
            .collect()
    };
    assert_eq!(sent("kill"), vec![running.clone()], "one command to both");
    let mut one_by_one = sent("kill-one-by-one");
    one_by_one.sort();
    assert_eq!(
        one_by_one,
        vec![vec![running[0].clone()], vec![running[1].clone()]],
        "max_concurrency 1: one command per instance"
    );
    assert_eq!(
        succeeded(&journal, 1)["commands"].as_array().unwrap().len(),
        2
    );
    assert!(
        sent_to(&stopped).is_empty(),
        "a stopped instance is not a target"
    );
    assert!(
        sent_to(&others).is_empty(),
        "another team's instance got nothing"
    );

    assert_eq!(refused_run.0, 1, "{}", refused_run.2);
    assert_eq!(refused_run.1["status"], "aborted");
    let refused = &refused_run.1["run"][0];
    assert_eq!(refused["status"], "failed");
    assert!(
        refused["exception"].to_string().contains(&format!(
            "target {} does not carry the opt-in tag",
            not_opted[0]
        )),
        "{refused:#}"
    );
    assert!(sent_to(&not_opted).is_empty());
}

#[test]
fn experimentvr_terminate_instance_with_a_named_list_terminates_exactly_that_one() {
    let aws = Aws::new();
    let team = team("seed-terminate");
    let fleet = aws.instances(2, &[("team", &team), OPT_IN]);
    let sandbox = Sandbox::new();
    let (code, journal, out) = run(
        &sandbox,
        &experiment(vec![action(
            "terminate",
            "experimentvr.ec2.actions",
            "terminate_instance",
            json!({"targets": [fleet[0]], "test_target_type": "NAMED_LIST",
                   "tag_key": "tag:team", "tag_value": team, "region": "us-east-1"}),
        )]),
        &[],
    );
    let states = aws.states(&fleet);
    let terminated = ec2_calls("TerminateInstances", &fleet);
    aws.terminate(&fleet);
    assert_eq!(code, 0, "{out}");
    let output = succeeded(&journal, 0);
    assert_eq!(sorted(&output["targets"]), [fleet[0].clone()]);
    assert_eq!(changed(&output["TerminatingInstances"]), [fleet[0].clone()]);
    assert_eq!(states, ["terminated", "running"]);
    assert_eq!(terminated, vec![vec![fleet[0].clone()]]);
}
