//! The native Chaos Toolkit EC2 probes, run by `worker run` with no Python, against the moto
//! server `scripts/test.sh` starts on 127.0.0.1: they read the real instances, and a changed
//! state changes the verdict.

use crate::util;

use serde_json::{Value, json};
use util::Sandbox;
use util::moto::{self, Aws, Env, probe, team};

/// `worker run` with the emulator's endpoint and credentials; the journal.
fn run(sandbox: &Sandbox, experiment: &std::path::Path) -> (i32, Value, String) {
    // no Python may be involved: the probes are native
    let out = moto::run(sandbox, experiment, &[], Env::default());
    (out.code, out.journal().clone(), out.stderr)
}

#[test]
fn chaosaws_ec2_probes_read_the_real_instances() {
    let aws = Aws::new();
    let team = team("payments");
    let ids = aws.instances(2, &[("team", &team)]);
    assert_eq!(ids.len(), 2);
    let filters = json!([{"Name": "tag:team", "Values": [team]}]);
    let sandbox = Sandbox::new();
    let experiment = sandbox.write_json(
        "probes.json",
        &json!({"title": "the payments fleet is healthy", "description": "native chaosaws probes",
            "configuration": {"aws_region": "us-east-1"},
            "steady-state-hypothesis": {"title": "two running instances", "probes": [
                probe("count", "chaosaws.ec2.probes", "count_instances", json!({"filters": filters}), json!(2)),
                probe("running", "chaosaws.ec2.probes", "instance_state", json!({"state": "running", "filters": filters}), json!(true)),
                probe("described", "chaosaws.ec2.probes", "describe_instances", json!({"filters": filters}),
                      json!({"type": "jsonpath", "path": "$.Reservations[*].Instances[*].InstanceId", "count": 2})),
            ]},
            "method": [{"type": "action", "name": "nothing", "provider": {"type": "process", "path": "true"}}]}),
    );
    let validated = sandbox.validate(&experiment, &[]);
    assert_eq!(
        validated.code, 0,
        "native names validate with no Python: {}",
        validated.stderr
    );

    let (code, journal, stderr) = run(&sandbox, &experiment);
    assert_eq!(code, 0, "{stderr}\n{journal:#}");
    let before = &journal["steady_states"]["before"]["probes"];
    assert_eq!(before[0]["output"], 2);
    assert_eq!(before[1]["output"], true);
    assert_eq!(journal["deviated"], false);

    // the world changes: one instance stops; the same probes now say so
    aws.stop(&ids[..1]);
    let (_, journal, _) = run(&sandbox, &experiment);
    let before = &journal["steady_states"]["before"];
    assert_eq!(before["steady_state_met"], false, "{journal:#}");
    assert_eq!(
        before["probes"][1]["output"], false,
        "one instance is stopped"
    );

    // filters EC2 refuses are a failed probe with EC2's message, not a crash
    let bad = sandbox.write_json(
        "bad.json",
        &json!({"title": "t", "description": "d",
            "steady-state-hypothesis": {"title": "h", "probes": [
                probe("count", "chaosaws.ec2.probes", "count_instances", json!({"filters": [{"Name": "tag:team"}]}), json!(2))]},
            "method": []}),
    );
    let (_, journal, _) = run(&sandbox, &bad);
    let probe = &journal["steady_states"]["before"]["probes"][0];
    assert_eq!(probe["status"], "failed", "{journal:#}");
    assert!(
        probe["exception"].to_string().contains("filters[0].Values"),
        "{probe}"
    );
}
