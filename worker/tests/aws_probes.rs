//! The native Chaos Toolkit EC2 probes, run by `worker run` with no Python, against the moto
//! server `scripts/test.sh` starts on 127.0.0.1: they read the real instances, and a changed
//! state changes the verdict.

mod util;

use serde_json::{Value, json};
use util::Sandbox;

fn endpoint() -> String {
    std::env::var("BROKER_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "BROKER_TEST_AWS_ENDPOINT is not set: run the tests through scripts/test.sh, which \
             installs and starts the moto server on 127.0.0.1"
        )
    })
}

fn probe(name: &str, module: &str, func: &str, arguments: Value, tolerance: Value) -> Value {
    json!({"type": "probe", "name": name, "tolerance": tolerance,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}})
}

/// `worker run` with the emulator's endpoint and credentials; the journal.
fn run(sandbox: &Sandbox, experiment: &std::path::Path) -> (i32, Value, String) {
    let journal = sandbox.path("journal.json");
    let _ = std::fs::remove_file(&journal);
    let out = sandbox
        .command(&[
            "run",
            "--journal-path",
            journal.to_str().unwrap(),
            experiment.to_str().unwrap(),
        ])
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // no Python may be involved: the probes are native
        .env("PATH", "/usr/bin:/bin")
        .env("BROKER_PYTHON", "/nonexistent/python3")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let journal: Value = serde_json::from_str(
        &std::fs::read_to_string(&journal)
            .unwrap_or_else(|_| panic!("no journal; stderr:\n{stderr}")),
    )
    .unwrap();
    (out.status.code().unwrap_or(-1), journal, stderr)
}

#[test]
fn chaosaws_ec2_probes_read_the_real_instances() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sdk = rt.block_on(broker_aws::sdk::emulator(&endpoint()));
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let team = format!("payments-{}", std::process::id());
    let tags = aws_sdk_ec2::types::TagSpecification::builder()
        .resource_type(aws_sdk_ec2::types::ResourceType::Instance)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key("team")
                .value(&team)
                .build(),
        )
        .build();
    let started = rt
        .block_on(
            ec2.run_instances()
                .image_id("ami-12c6146b")
                .min_count(2)
                .max_count(2)
                .tag_specifications(tags)
                .send(),
        )
        .unwrap();
    let ids: Vec<String> = started
        .instances()
        .iter()
        .filter_map(|i| i.instance_id().map(str::to_string))
        .collect();
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
    rt.block_on(ec2.stop_instances().instance_ids(&ids[0]).send())
        .unwrap();
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
