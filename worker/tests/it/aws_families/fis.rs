//! FIS: `start_experiment` starts only an opted-in template's experiment, on record first and
//! tagged with its record; `get_experiment` reads it; `stop_experiment` stops it and marks the
//! record done.

use super::{boto3, kinds, rest_requests, run};
use crate::util;
use serde_json::{Value, json};
use util::Sandbox;
use util::moto::{self, OPT_IN};

/// A FIS template tagged `tags`; its id.
fn template(tags: &[(&str, &str)]) -> String {
    let tags: serde_json::Map<String, Value> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    boto3(&format!(
        r#"
import uuid
t = fis.create_experiment_template(clientToken=str(uuid.uuid4()), description='d', stopConditions=[{{'source': 'none'}}],
    actions={{'wait': {{'actionId': 'aws:fis:wait', 'parameters': {{'duration': 'PT10M'}}}}}},
    roleArn='arn:aws:iam::123456789012:role/fis', tags=json.loads({tags:?}))
print(json.dumps(t['experimentTemplate']['id']))
"#,
        tags = Value::Object(tags).to_string()
    ))
    .as_str()
    .unwrap()
    .to_string()
}

fn status(id: &str) -> String {
    boto3(&format!(
        "print(json.dumps(fis.get_experiment(id={id:?})['experiment']['state']['status']))"
    ))
    .as_str()
    .unwrap()
    .to_string()
}

fn fis(func: &str, arguments: Value) -> Value {
    moto::experiment(
        "fis",
        vec![moto::action(
            func,
            "experimentvr.fis.actions",
            func,
            arguments,
        )],
        None,
    )
}

/// The StartExperiment requests for `template`.
fn starts(template: &str) -> usize {
    rest_requests("POST", "/experiments")
        .iter()
        .filter(|body| body.contains(template))
        .count()
}

#[test]
fn an_opted_in_template_is_started_on_record_read_and_stopped() {
    let id = template(&[OPT_IN]);
    let sandbox = Sandbox::new();
    let out = run(
        &sandbox,
        &fis(
            "start_experiment",
            json!({"experiment_template_id": id, "tags": {"who": "test"}}),
        ),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    let journal = out.journal();
    let experiment = &journal["run"][0]["output"]["experiment"];
    assert_eq!(
        experiment["experimentTemplateId"],
        id.as_str(),
        "{journal:#}"
    );
    let experiment_id = experiment["id"].as_str().unwrap().to_string();
    assert_eq!(kinds(journal), ["targets", "locks", "revert", "revert"]);
    let records = &journal["broker"]["records"];
    assert_eq!(
        records[2]["undo"]["experiment_id"],
        Value::Null,
        "on record before the start"
    );
    assert_eq!(records[3]["undo"]["experiment_id"], experiment_id.as_str());
    let revert_id = records[2]["revert_id"].as_str().unwrap();
    assert_eq!(experiment["tags"]["experiment-broker:revert"], revert_id);
    assert_eq!(experiment["tags"]["who"], "test");
    assert_eq!(starts(&id), 1);
    assert_ne!(status(&experiment_id), "stopped");

    let mut probe = moto::experiment(
        "fis probe",
        vec![moto::probe(
            "read",
            "experimentvr.fis.probes",
            "get_experiment",
            json!({"experiment_id": experiment_id}),
            json!(true),
        )],
        None,
    );
    probe["method"][0]
        .as_object_mut()
        .unwrap()
        .remove("tolerance");
    let out = run(&sandbox, &probe, &[]);
    assert_eq!(out.code, 0, "{}", out.output());
    assert_eq!(
        out.journal()["run"][0]["output"]["experiment"]["id"],
        experiment_id.as_str()
    );

    let out = run(
        &sandbox,
        &fis("stop_experiment", json!({"experiment_id": experiment_id})),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    let journal = out.journal();
    assert_eq!(kinds(journal), ["reverted"]);
    assert_eq!(journal["broker"]["records"][0]["revert_id"], revert_id);
    assert_eq!(status(&experiment_id), "stopped");
}

#[test]
fn a_template_without_the_opt_in_tag_is_refused_and_a_dry_run_starts_nothing() {
    let bare = template(&[("team", "x")]);
    let sandbox = Sandbox::new();
    let out = run(
        &sandbox,
        &fis("start_experiment", json!({"experiment_template_id": bare})),
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.output());
    let refused = &out.journal()["broker"]["refused"][0];
    assert_eq!(refused["rule"], "opt_in", "{refused}");
    assert_eq!(refused["target"], bare.as_str());
    assert_eq!(starts(&bare), 0);

    let opted = template(&[OPT_IN]);
    let out = run(
        &sandbox,
        &fis("start_experiment", json!({"experiment_template_id": opted})),
        &["--dry", "actions"],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    assert_eq!(out.journal()["run"][0]["output"]["dry_run"], true);
    assert_eq!(starts(&opted), 0);
}

#[test]
fn a_rollback_stops_what_the_broker_started_from_a_template_and_nothing_else() {
    let id = template(&[OPT_IN]);
    // started outside the broker: not ours to stop
    let theirs = boto3(&format!(
        "print(json.dumps(fis.start_experiment(experimentTemplateId={id:?})['experiment']['id']))"
    ))
    .as_str()
    .unwrap()
    .to_string();
    let sandbox = Sandbox::new();
    let mut experiment = fis("start_experiment", json!({"experiment_template_id": id}));
    experiment["rollbacks"] = json!([moto::action(
        "stop",
        "experimentvr.fis.actions",
        "stop_experiment",
        json!({"experiment_template_id": id})
    )]);
    let out = run(&sandbox, &experiment, &[]);
    assert_eq!(out.code, 0, "{}", out.output());
    let journal = out.journal();
    let ours = journal["run"][0]["output"]["experiment"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        journal["rollbacks"][0]["status"], "succeeded",
        "{journal:#}"
    );
    let stopped = &journal["rollbacks"][0]["output"]["experiments"];
    assert_eq!(stopped.as_array().map(Vec::len), Some(1), "{stopped}");
    assert_eq!(stopped[0]["id"], ours.as_str());
    assert_eq!(
        kinds(journal),
        ["targets", "locks", "revert", "revert", "reverted"]
    );
    assert_eq!(status(&ours), "stopped");
    assert_ne!(
        status(&theirs),
        "stopped",
        "an experiment the broker did not start runs on"
    );
}
