//! A worker killed mid-fault on the moto server: the job comes back to another worker, which
//! reads the dead owner's checkpoint first, cancels the SSM command on its record (and waits for
//! its invocations to end) before the rollbacks play, and writes a journal that keeps the dead
//! owner's run and records with the revert after them.
//!
//! moto does not implement CancelCommand (it answers it with an error), so what was sent is read
//! from moto's request recording: exactly the recorded command is cancelled, before the first
//! request the rollback makes.

use crate::util;

use serde_json::{Value, json};
use util::Sandbox;
use util::moto::{self, Aws, OPT_IN, team};
use util::redelivery::crash_and_revert;

/// The value of `Name` in a JSON request body, if it is one.
fn body_field(body: &str, name: &str) -> Option<String> {
    serde_json::from_str::<Value>(body).ok()?[name]
        .as_str()
        .map(str::to_string)
}

#[test]
fn a_dead_owners_recorded_command_is_cancelled_before_the_rollbacks_and_its_records_are_kept() {
    let aws = Aws::new();
    aws.register("StressCPU");
    let team = team("redelivery");
    let target = aws.instances(1, &[("team", &team), OPT_IN]);
    // the rollback's one AWS request carries this, so the recording shows when it ran
    let marker = format!("rollback-{team}");
    let experiment = json!({"title": "dies mid-fault", "description": "d",
        "method": [
            moto::action("stress", "experimentvr.ec2.actions", "ec2_stress_cpu",
                json!({"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": team,
                       "ec2_stress_cpu_duration": 5})),
            {"type": "action", "name": "hold", "provider": {"type": "process", "path": "sleep", "arguments": ["60"]}}
        ],
        "rollbacks": [moto::action("look-after", "chaosaws.ec2.probes", "count_instances",
            json!({"filters": [{"Name": "tag:marker", "Values": [marker]}]}))]});
    let sandbox = Sandbox::new();
    // the fault is sent and on record, the method holds: kill the owner there
    let mut command_id = String::new();
    let (journal, _) = crash_and_revert(&aws, &sandbox, &experiment, |c| {
        let recorded = c["broker"]["records"].as_array().and_then(|records| {
            records.iter().find(|r| r["kind"] == "ssm_command")?["command_id"]
                .as_str()
                .map(str::to_string)
        });
        recorded.map(|id| command_id = id).is_some()
    });
    aws.terminate(&target);

    // the journal: the dead owner's run and records, then the stop and the revert
    assert_eq!(journal["status"], "interrupted", "{journal:#}");
    assert_eq!(journal["broker"]["revert_only"], true);
    let names = |list: &str| -> Vec<String> {
        journal[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["activity"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("run"), ["stress"], "{journal:#}");
    assert_eq!(names("rollbacks"), ["look-after"], "{journal:#}");
    let records = journal["broker"]["records"].as_array().expect("records");
    let kinds: Vec<&str> = records
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["targets", "locks", "ssm_command", "orphans_stopped"],
        "{journal:#}"
    );
    assert_eq!(records[2]["command_id"], command_id.as_str());
    let stopped = &records[3]["stopped"];
    assert_eq!(stopped.as_array().map(Vec::len), Some(1), "{stopped}");
    assert_eq!(stopped[0]["command_id"], command_id.as_str());
    assert_eq!(
        stopped[0]["not_ended_on"],
        json!([]),
        "its invocations ended"
    );

    // what moto was sent: the fault once, the recorded command cancelled, then the rollback
    let sent = moto::sent_for(&target, "stress");
    assert_eq!(sent.len(), 1, "the fault was not sent again: {sent:?}");
    let requests = moto::recorded();
    let target_of = |r: &Value| r["headers"]["X-Amz-Target"].as_str().map(str::to_string);
    let cancels: Vec<(usize, String)> = requests
        .iter()
        .enumerate()
        .filter(|(_, (r, _))| target_of(r).as_deref() == Some("AmazonSSM.CancelCommand"))
        .filter_map(|(i, (_, body))| body_field(body, "CommandId").map(|id| (i, id)))
        .filter(|(_, id)| *id == command_id)
        .collect();
    assert!(
        !cancels.is_empty(),
        "CancelCommand was never sent for {command_id}"
    );
    let rollback_at = requests
        .iter()
        .position(|(_, body)| body.contains(&marker))
        .expect("the rollback's request");
    assert!(
        cancels.iter().all(|(i, _)| *i < rollback_at),
        "the command was cancelled before the rollback ran: cancels at {cancels:?}, rollback at {rollback_at}"
    );
}
