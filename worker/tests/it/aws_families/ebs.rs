//! `detach_volume`: the volume the seed's two tag pairs find is unmounted on its instance (the
//! `UnmountVolume` document), detached, and attached again on the same device.

use super::{ec2_requests, kinds, run};
use crate::util;
use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
use serde_json::{Value, json};
use util::Sandbox;
use util::moto::{self, Aws, OPT_IN, team};

/// A volume tagged `tags`, attached to `instance` as `device`.
fn volume(aws: &Aws, instance: &str, device: &str, tags: &[(&str, &str)]) -> String {
    let mut spec = TagSpecification::builder().resource_type(ResourceType::Volume);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    let out = aws
        .rt
        .block_on(
            aws.ec2
                .create_volume()
                .size(1)
                .availability_zone("us-east-1a")
                .tag_specifications(spec.build())
                .send(),
        )
        .unwrap();
    let id = out.volume_id().unwrap().to_string();
    aws.rt
        .block_on(
            aws.ec2
                .attach_volume()
                .volume_id(&id)
                .instance_id(instance)
                .device(device)
                .send(),
        )
        .unwrap();
    id
}

/// The volume's attachment: (instance, device), if attached.
fn attachment(aws: &Aws, id: &str) -> Option<(String, String)> {
    let out = aws
        .rt
        .block_on(aws.ec2.describe_volumes().volume_ids(id).send())
        .unwrap();
    let a = out.volumes()[0].attachments().first()?;
    Some((
        a.instance_id().unwrap().to_string(),
        a.device().unwrap().to_string(),
    ))
}

fn detach(team: &str, extra: Value) -> Value {
    let mut arguments = json!({"tag_key_1": "tag:Name", "tag_value_1": "data", "tag_key_2": "tag:team", "tag_value_2": team, "duration": 1});
    for (k, v) in extra.as_object().unwrap() {
        arguments[k] = v.clone();
    }
    moto::experiment(
        "ebs",
        vec![moto::action(
            "detach",
            "experimentvr.ebs.actions",
            "detach_volume",
            arguments,
        )],
        None,
    )
}

#[test]
fn the_tagged_volume_is_unmounted_detached_and_attached_again_on_its_device() {
    let aws = Aws::new();
    aws.register("UnmountVolume");
    let team = team("ebs");
    let instance = aws.instances(1, &[OPT_IN]);
    let chosen = volume(
        &aws,
        &instance[0],
        "/dev/sdf",
        &[("Name", "data"), ("team", &team)],
    );
    let other = volume(
        &aws,
        &instance[0],
        "/dev/sdg",
        &[("Name", "logs"), ("team", &team)],
    );
    let sandbox = Sandbox::new();
    let out = run(&sandbox, &detach(&team, json!({})), &[]);
    assert_eq!(out.code, 0, "{}", out.output());
    let journal = out.journal();
    assert_eq!(journal["run"][0]["status"], "succeeded", "{journal:#}");
    assert_eq!(
        kinds(journal),
        ["targets", "locks", "revert", "ssm_command", "reverted"],
        "the way back is on record before the unmount is sent"
    );
    assert_eq!(
        journal["broker"]["records"][2]["undo"],
        json!({"volume_id": chosen, "instance_id": instance[0], "device": "/dev/sdf"})
    );
    let sent = moto::sent_for(&instance, "detach");
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["DocumentName"], "UnmountVolume");
    assert_eq!(sent[0]["Parameters"]["device"], json!(["/dev/sdf"]));
    assert_eq!(sent[0]["Parameters"]["volume"], json!([chosen]));
    assert_eq!(ec2_requests("DetachVolume", &chosen).len(), 1);
    assert_eq!(
        ec2_requests("AttachVolume", &chosen).len(),
        2,
        "the setup's attach, then the revert's"
    );
    assert_eq!(
        attachment(&aws, &chosen),
        Some((instance[0].clone(), "/dev/sdf".into())),
        "attached again on the same device"
    );
    assert!(
        ec2_requests("DetachVolume", &other).is_empty(),
        "the other volume is untouched"
    );
    assert_eq!(
        attachment(&aws, &other),
        Some((instance[0].clone(), "/dev/sdg".into()))
    );
    aws.terminate(&instance);
}

#[test]
fn a_volume_whose_instance_and_itself_are_not_opted_in_is_refused_and_a_dry_run_sends_nothing() {
    let aws = Aws::new();
    aws.register("UnmountVolume");
    let team = team("ebs-refused");
    let bare = aws.instances(1, &[("team", &team)]);
    let volume_id = volume(
        &aws,
        &bare[0],
        "/dev/sdf",
        &[("Name", "data"), ("team", &team)],
    );
    let sandbox = Sandbox::new();
    let out = run(&sandbox, &detach(&team, json!({})), &[]);
    assert_eq!(out.code, 1, "{}", out.output());
    let refused = &out.journal()["broker"]["refused"][0];
    assert_eq!(refused["rule"], "opt_in", "{refused}");
    assert_eq!(refused["target"], volume_id.as_str());
    assert!(moto::sent_to(&bare).is_empty(), "no unmount sent");
    assert!(ec2_requests("DetachVolume", &volume_id).is_empty());

    // the volume's own opt-in tag does not make its instance a target: the instance decides
    let tagged_team = format!("{team}-tagged");
    let tagged = volume(
        &aws,
        &bare[0],
        "/dev/sdh",
        &[("Name", "data"), ("team", &tagged_team), OPT_IN],
    );
    let out = run(&sandbox, &detach(&tagged_team, json!({})), &[]);
    assert_eq!(out.code, 1, "{}", out.output());
    let refused = &out.journal()["broker"]["refused"][0];
    assert_eq!(refused["rule"], "opt_in", "{refused}");
    assert!(moto::sent_to(&bare).is_empty(), "no unmount sent");
    assert!(ec2_requests("DetachVolume", &tagged).is_empty());

    // on an opted-in instance, a dry run plans and still sends nothing
    let opted_instance = aws.instances(1, &[("team", &team), OPT_IN]);
    let opted_team = format!("{team}-opted");
    let opted = volume(
        &aws,
        &opted_instance[0],
        "/dev/sdh",
        &[("Name", "data"), ("team", &opted_team)],
    );
    let out = run(
        &sandbox,
        &detach(&opted_team, json!({})),
        &["--dry", "actions"],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    let output = &out.journal()["run"][0]["output"];
    assert_eq!(output["dry_run"], true, "{output}");
    assert_eq!(output["targets"], json!([opted]));
    assert!(moto::sent_to(&opted_instance).is_empty());
    assert!(ec2_requests("DetachVolume", &opted).is_empty());
    assert_eq!(
        attachment(&aws, &opted),
        Some((opted_instance[0].clone(), "/dev/sdh".into()))
    );
    aws.terminate(&bare);
    aws.terminate(&opted_instance);
}

#[test]
fn a_run_stopped_while_the_volume_is_detached_attaches_it_again_before_it_exits() {
    let aws = Aws::new();
    aws.register("UnmountVolume");
    let team = team("ebs-stopped");
    let instance = aws.instances(1, &[OPT_IN]);
    let chosen = volume(
        &aws,
        &instance[0],
        "/dev/sdf",
        &[("Name", "data"), ("team", &team)],
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("experiment.json", &detach(&team, json!({"duration": 120})));
    let journal = sandbox.path("journal.json");
    let mut child = moto::command(
        &sandbox,
        &[
            "run",
            "--journal-path",
            journal.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        moto::Env {
            unset: moto::DEPLOYMENT_GUARD_RAILS,
            ..moto::Env::default()
        },
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while attachment(&aws, &chosen).is_some() {
        assert!(
            std::time::Instant::now() < until,
            "the volume was never detached"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130), "interrupted");
    let after = attachment(&aws, &chosen);
    aws.terminate(&instance);
    assert_eq!(
        after,
        Some((instance[0].clone(), "/dev/sdf".into())),
        "attached again on its device before the worker exits"
    );
}
