//! `remove_iam_role`: the instance profile comes off exactly the chosen instance and goes back
//! on after `sleep_length`, or when the run is stopped mid-fault.

use super::{boto3, ec2_requests, kinds, run};
use crate::util;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use util::Sandbox;
use util::moto::{self, Aws, Env, OPT_IN, team};

/// An instance profile (with a role) and `n` instances using it, tagged `tags`; (profile ARN,
/// instance ids).
fn with_profile(team: &str, n: usize, tags: &[(&str, &str)]) -> (String, Vec<String>) {
    let tags: Vec<Value> = tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect();
    let out = boto3(&format!(
        r#"
name = {team:?}
try:
    iam.create_role(RoleName=name, AssumeRolePolicyDocument='{{}}')
    p = iam.create_instance_profile(InstanceProfileName=name)['InstanceProfile']
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
except iam.exceptions.EntityAlreadyExistsException:
    p = iam.get_instance_profile(InstanceProfileName=name)['InstanceProfile']
r = ec2.run_instances(ImageId='ami-12c6146b', MinCount={n}, MaxCount={n}, IamInstanceProfile={{'Arn': p['Arn']}},
    TagSpecifications=[{{'ResourceType': 'instance', 'Tags': json.loads({tags:?})}}])
print(json.dumps([p['Arn'], [i['InstanceId'] for i in r['Instances']]]))
"#,
        tags = serde_json::to_string(&tags).unwrap()
    ));
    let ids = out[1]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect();
    (out[0].as_str().unwrap().to_string(), ids)
}

/// Each instance's associated profile ARN and association id (`None` when it has none).
fn associations(aws: &Aws, ids: &[String]) -> Vec<Option<(String, String)>> {
    let out = aws
        .rt
        .block_on(
            aws.ec2
                .describe_iam_instance_profile_associations()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("instance-id")
                        .set_values(Some(ids.to_vec()))
                        .build(),
                )
                .send(),
        )
        .unwrap();
    ids.iter()
        .map(|id| {
            out.iam_instance_profile_associations()
                .iter()
                .find(|a| {
                    a.instance_id() == Some(id)
                        && a.state().map(|s| s.as_str()) == Some("associated")
                })
                .map(|a| {
                    (
                        a.iam_instance_profile().unwrap().arn().unwrap().to_string(),
                        a.association_id().unwrap().to_string(),
                    )
                })
        })
        .collect()
}

fn remove(arguments: Value) -> Value {
    moto::experiment(
        "iam role",
        vec![moto::action(
            "no-role",
            "experimentvr.ec2.actions",
            "remove_iam_role",
            arguments,
        )],
        None,
    )
}

#[test]
fn the_profile_comes_off_the_named_instance_only_and_goes_back_after_the_sleep() {
    let aws = Aws::new();
    let team = team("iam-role");
    let (arn, chosen) = with_profile(&team, 1, &[("Name", &team), OPT_IN]);
    let other_name = format!("{team}-other");
    let (_, other) = with_profile(&team, 1, &[("Name", &other_name), OPT_IN]);
    let before_other = associations(&aws, &other);
    let before = associations(&aws, &chosen)[0].clone().expect("associated");
    let sandbox = Sandbox::new();
    let out = run(
        &sandbox,
        &remove(json!({"instance_tag_value": team, "profile_tag_value": team, "sleep_length": 1})),
        &[],
    );
    let journal = out.journal();
    assert_eq!(out.code, 0, "{}", out.output());
    assert_eq!(journal["run"][0]["status"], "succeeded", "{journal:#}");
    assert_eq!(kinds(journal), ["targets", "locks", "revert", "reverted"]);
    let revert = &journal["broker"]["records"][2];
    assert_eq!(revert["family"], "iam_role");
    assert_eq!(
        revert["undo"]["associations"],
        json!([{"instance_id": chosen[0], "profile_arn": arn}]),
        "which profile goes back on which instance is on record"
    );
    assert_eq!(
        journal["broker"]["records"][3]["revert_id"],
        revert["revert_id"]
    );
    // taken off by its association id, put back on the same instance
    assert_eq!(
        ec2_requests("DisassociateIamInstanceProfile", &before.1).len(),
        1
    );
    assert_eq!(
        ec2_requests("AssociateIamInstanceProfile", &chosen[0]).len(),
        1
    );
    let after = associations(&aws, &chosen)[0]
        .clone()
        .expect("associated again");
    assert_eq!(after.0, arn);
    assert_ne!(after.1, before.1, "a new association");
    assert_eq!(
        associations(&aws, &other),
        before_other,
        "the other instance is untouched"
    );
    assert!(ec2_requests("AssociateIamInstanceProfile", &other[0]).is_empty());
    aws.terminate(&chosen);
    aws.terminate(&other);
}

#[test]
fn an_instance_without_the_opt_in_tag_is_refused_and_a_dry_run_sends_nothing() {
    let aws = Aws::new();
    let team = team("iam-refused");
    let (_, bare) = with_profile(&team, 1, &[("Name", &team)]);
    let before = associations(&aws, &bare)[0].clone().expect("associated");
    let sandbox = Sandbox::new();
    let out = run(
        &sandbox,
        &remove(json!({"instance_tag_value": team, "sleep_length": 1})),
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.output());
    let refused = &out.journal()["broker"]["refused"][0];
    assert_eq!(refused["rule"], "opt_in", "{refused}");
    assert_eq!(refused["target"], bare[0].as_str());
    assert!(ec2_requests("DisassociateIamInstanceProfile", &before.1).is_empty());

    let opted_name = format!("{team}-opted");
    let (_, opted) = with_profile(&team, 1, &[("Name", &opted_name), OPT_IN]);
    let assoc = associations(&aws, &opted)[0].clone().expect("associated");
    let out = run(
        &sandbox,
        &remove(json!({"instance_tag_value": opted_name, "sleep_length": 1})),
        &["--dry", "actions"],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    let output = &out.journal()["run"][0]["output"];
    assert_eq!(output["dry_run"], true, "{output}");
    assert_eq!(output["targets"], json!(opted));
    assert!(ec2_requests("DisassociateIamInstanceProfile", &assoc.1).is_empty());
    assert_eq!(associations(&aws, &opted)[0], Some(assoc));
    aws.terminate(&bare);
    aws.terminate(&opted);
}

#[test]
fn a_run_stopped_mid_fault_puts_the_profile_back_before_it_exits() {
    let aws = Aws::new();
    let team = team("iam-stopped");
    let (arn, chosen) = with_profile(&team, 1, &[("Name", &team), OPT_IN]);
    let sandbox = Sandbox::new();
    let file = sandbox.write_json(
        "experiment.json",
        &remove(json!({"instance_tag_value": team, "sleep_length": 120})),
    );
    let journal = sandbox.path("journal.json");
    let mut child = moto::command(
        &sandbox,
        &[
            "run",
            "--journal-path",
            journal.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        Env {
            unset: moto::DEPLOYMENT_GUARD_RAILS,
            ..Env::default()
        },
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    while associations(&aws, &chosen)[0].is_some() {
        assert!(Instant::now() < until, "the profile never came off");
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted");
    let after = associations(&aws, &chosen)[0].clone();
    aws.terminate(&chosen);
    assert_eq!(
        after.map(|a| a.0),
        Some(arn),
        "the profile is back on before the worker exits"
    );
}
