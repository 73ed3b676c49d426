//! `disable_az` / `reenable_az`: only the AZ's opted-in subnets (their own tag or their VPC's)
//! move onto our deny-all NACL, their previous NACLs are on record and in the store first, and
//! `reenable_az` puts every one back and deletes ours. Each test uses an AZ of its own: the
//! action takes every opted-in subnet of its AZ, and the tests share one moto.

use super::{ec2_requests, kinds, run};
use crate::util;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use util::Sandbox;
use util::moto::{self, Aws, OPT_IN};

fn tagged(kind: ResourceType, tags: &[(&str, &str)]) -> TagSpecification {
    let mut spec = TagSpecification::builder().resource_type(kind);
    for (k, v) in tags {
        spec = spec.tags(Tag::builder().key(*k).value(*v).build());
    }
    spec.build()
}

fn vpc(aws: &Aws, cidr: &str, tags: &[(&str, &str)]) -> String {
    let out = aws
        .rt
        .block_on(
            aws.ec2
                .create_vpc()
                .cidr_block(cidr)
                .tag_specifications(tagged(ResourceType::Vpc, tags))
                .send(),
        )
        .unwrap();
    out.vpc().unwrap().vpc_id().unwrap().to_string()
}

fn subnet(aws: &Aws, vpc: &str, cidr: &str, az: &str, tags: &[(&str, &str)]) -> String {
    let mut req = aws
        .ec2
        .create_subnet()
        .vpc_id(vpc)
        .cidr_block(cidr)
        .availability_zone(az);
    if !tags.is_empty() {
        req = req.tag_specifications(tagged(ResourceType::Subnet, tags));
    }
    let out = aws.rt.block_on(req.send()).unwrap();
    out.subnet().unwrap().subnet_id().unwrap().to_string()
}

/// Each subnet's NACL (one request per subnet: moto matches a multi-valued
/// `association.subnet-id` filter wrongly).
fn nacls(aws: &Aws, subnets: &[String]) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for subnet in subnets {
        let out = aws
            .rt
            .block_on(
                aws.ec2
                    .describe_network_acls()
                    .filters(
                        Filter::builder()
                            .name("association.subnet-id")
                            .values(subnet)
                            .build(),
                    )
                    .send(),
            )
            .unwrap();
        for acl in out.network_acls() {
            if acl
                .associations()
                .iter()
                .any(|a| a.subnet_id() == Some(subnet))
            {
                map.insert(subnet.clone(), acl.network_acl_id().unwrap().to_string());
            }
        }
    }
    map
}

/// The NACL `id`, if it exists: its tags and entries.
fn nacl(aws: &Aws, id: &str) -> Option<aws_sdk_ec2::types::NetworkAcl> {
    aws.rt
        .block_on(aws.ec2.describe_network_acls().network_acl_ids(id).send())
        .ok()?
        .network_acls()
        .first()
        .cloned()
}

fn az_action(func: &str, arguments: Value) -> Value {
    moto::experiment(
        "az",
        vec![moto::action(
            func,
            "experimentvr.az.actions",
            func,
            arguments,
        )],
        None,
    )
}

#[test]
fn disable_az_swaps_only_opted_in_subnets_and_reenable_az_restores_them() {
    let aws = Aws::new();
    let (az, other_az) = ("us-east-1c", "us-east-1d");
    let opted_vpc = vpc(&aws, "10.51.0.0/16", &[OPT_IN]);
    let plain_vpc = vpc(&aws, "10.52.0.0/16", &[]);
    let s1 = subnet(&aws, &opted_vpc, "10.51.1.0/24", az, &[]);
    let s2 = subnet(&aws, &opted_vpc, "10.51.2.0/24", az, &[]);
    let s5 = subnet(&aws, &opted_vpc, "10.51.5.0/24", other_az, &[]);
    let s3 = subnet(&aws, &plain_vpc, "10.52.3.0/24", az, &[]);
    let s4 = subnet(&aws, &plain_vpc, "10.52.4.0/24", az, &[OPT_IN]);
    let all = vec![s1.clone(), s2.clone(), s3.clone(), s4.clone(), s5.clone()];
    let _network = super::Network {
        aws: &aws,
        subnets: all.clone(),
        vpcs: vec![opted_vpc.clone(), plain_vpc.clone()],
    };
    let before = nacls(&aws, &all);
    assert_eq!(before.len(), 5, "{before:?}");
    let sandbox = Sandbox::new();
    let state_file = format!("az-{}.json", std::process::id());

    let out = run(
        &sandbox,
        &az_action(
            "disable_az",
            json!({"availability_zone": az, "state_file_name": state_file}),
        ),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    let journal = out.journal();
    assert_eq!(journal["run"][0]["status"], "succeeded", "{journal:#}");
    let mut chosen = moto::sorted(&journal["run"][0]["output"]["subnets"]);
    chosen.retain(|s| all.contains(s));
    assert_eq!(
        chosen,
        moto::sorted(&json!([s1, s2, s4])),
        "the opted-in subnets of {az}"
    );
    assert_eq!(kinds(journal), ["targets", "locks", "revert", "revert"]);
    // the previous NACLs were on record before the swap
    let first = &journal["broker"]["records"][2]["undo"]["subnets"];
    let recorded: BTreeMap<String, String> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["subnet_id"].as_str().unwrap().into(),
                s["network_acl_id"].as_str().unwrap().into(),
            )
        })
        .collect();
    for s in [&s1, &s2, &s4] {
        assert_eq!(recorded.get(s), before.get(s), "{s} on record");
    }
    let saved = sandbox.path(&format!(".broker/store/faults/az/{state_file}"));
    let state: Value = serde_json::from_slice(&std::fs::read(&saved).unwrap()).unwrap();
    assert_eq!(
        state["undo"]["subnets"].as_array().unwrap().len(),
        3,
        "{state}"
    );

    let during = nacls(&aws, &all);
    for s in [&s3, &s5] {
        assert_eq!(during[s], before[s], "{s} is left alone");
    }
    assert_eq!(during[&s1], during[&s2], "one NACL per VPC");
    assert_ne!(during[&s1], during[&s4]);
    for s in [&s1, &s4] {
        assert_ne!(during[s], before[s]);
        let ours = nacl(&aws, &during[s]).expect("our NACL");
        let tags: Vec<&str> = ours.tags().iter().filter_map(|t| t.key()).collect();
        assert!(tags.contains(&"experiment-broker:disable-az"), "{tags:?}");
        let denies = ours
            .entries()
            .iter()
            .filter(|e| {
                e.rule_number() == Some(100) && e.rule_action().map(|a| a.as_str()) == Some("deny")
            })
            .count();
        assert_eq!(denies, 2, "deny all, both ways: {ours:?}");
    }
    let ours = [during[&s1].clone(), during[&s4].clone()];

    let out = run(
        &sandbox,
        &az_action("reenable_az", json!({"state_file_name": state_file})),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    let journal = out.journal();
    assert_eq!(journal["run"][0]["status"], "succeeded", "{journal:#}");
    assert_eq!(kinds(journal), ["reverted"]);
    assert_eq!(
        nacls(&aws, &all),
        before,
        "every subnet is back on its NACL"
    );
    for id in &ours {
        assert!(nacl(&aws, id).is_none(), "our NACL {id} is deleted");
    }
    assert!(!saved.exists(), "the state is gone");
    // nothing left to re-enable: said, not failed
    let out = run(
        &sandbox,
        &az_action("reenable_az", json!({"state_file_name": state_file})),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    assert_eq!(out.journal()["run"][0]["output"]["reenabled"], false);
}

#[test]
fn an_az_with_no_opted_in_subnet_is_refused_so_are_too_many_and_a_dry_run_creates_nothing() {
    let aws = Aws::new();
    let az = "us-east-1e";
    let plain_vpc = vpc(&aws, "10.53.0.0/16", &[]);
    let plain = subnet(&aws, &plain_vpc, "10.53.1.0/24", az, &[]);
    let mut network = super::Network {
        aws: &aws,
        subnets: vec![plain.clone()],
        vpcs: vec![plain_vpc.clone()],
    };
    let before = nacls(&aws, std::slice::from_ref(&plain));
    let sandbox = Sandbox::new();
    let out = run(
        &sandbox,
        &az_action("disable_az", json!({"availability_zone": az})),
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.output());
    let refused = &out.journal()["broker"]["refused"][0];
    assert_eq!(refused["rule"], "opt_in", "{refused}");
    assert!(ec2_requests("CreateNetworkAcl", &plain_vpc).is_empty());
    assert_eq!(nacls(&aws, std::slice::from_ref(&plain)), before);

    let opted_vpc = vpc(&aws, "10.54.0.0/16", &[OPT_IN]);
    let opted = subnet(&aws, &opted_vpc, "10.54.1.0/24", az, &[]);
    network.subnets.push(opted.clone());
    network.vpcs.push(opted_vpc.clone());
    let before = nacls(&aws, std::slice::from_ref(&opted));
    let out = run(
        &sandbox,
        &az_action("disable_az", json!({"availability_zone": az})),
        &["--dry", "actions"],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    let output = &out.journal()["run"][0]["output"];
    assert_eq!(output["dry_run"], true, "{output}");
    assert!(
        moto::sorted(&output["subnets"]).contains(&opted),
        "{output}"
    );
    assert!(ec2_requests("CreateNetworkAcl", &opted_vpc).is_empty());
    assert_eq!(nacls(&aws, std::slice::from_ref(&opted)), before);
    assert!(
        !sandbox
            .path(".broker/store/faults/az/disable_az.json")
            .exists()
    );

    // two opted-in subnets where the experiment allows one: refused, nothing created
    let second = subnet(&aws, &opted_vpc, "10.54.2.0/24", az, &[]);
    network.subnets.push(second.clone());
    let mut capped = az_action("disable_az", json!({"availability_zone": az}));
    capped["extensions"] = json!([{"name": "experiment-broker", "max_targets": 1}]);
    let out = run(&sandbox, &capped, &[]);
    assert_eq!(out.code, 1, "{}", out.output());
    let refused = &out.journal()["broker"]["refused"][0];
    assert_eq!(refused["rule"], "max_targets", "{refused}");
    assert!(ec2_requests("CreateNetworkAcl", &opted_vpc).is_empty());
    assert_eq!(nacls(&aws, &[opted.clone(), second.clone()]).len(), 2);
    assert_eq!(nacls(&aws, std::slice::from_ref(&opted)), before);
}

#[test]
fn a_subnet_another_disable_az_holds_is_refused_and_the_first_reenable_restores_it() {
    let aws = Aws::new();
    let az = "us-east-1f";
    let opted_vpc = vpc(&aws, "10.55.0.0/16", &[OPT_IN]);
    let opted = subnet(&aws, &opted_vpc, "10.55.1.0/24", az, &[]);
    let _network = super::Network {
        aws: &aws,
        subnets: vec![opted.clone()],
        vpcs: vec![opted_vpc.clone()],
    };
    let subnets = std::slice::from_ref(&opted);
    let before = nacls(&aws, subnets);
    let sandbox = Sandbox::new();
    let (first, second) = ("az-first.json", "az-second.json");
    let disable = |state: &str| {
        az_action(
            "disable_az",
            json!({"availability_zone": az, "state_file_name": state}),
        )
    };
    let out = run(&sandbox, &disable(first), &[]);
    assert_eq!(out.code, 0, "{}", out.output());
    let during = nacls(&aws, subnets);
    assert_ne!(during, before);

    // another state file, the same subnet: the locks ended with the first action, the fault not
    let out = run(&sandbox, &disable(second), &[]);
    assert_eq!(out.code, 1, "{}", out.output());
    let refused = &out.journal()["broker"]["refused"][0];
    assert_eq!(refused["rule"], "target_locked", "{refused}");
    assert_eq!(refused["target"], json!(opted), "{refused}");
    assert_eq!(
        ec2_requests("CreateNetworkAcl", &opted_vpc).len(),
        1,
        "the second run created no NACL"
    );
    assert_eq!(nacls(&aws, subnets), during, "nothing was swapped again");
    assert!(
        !sandbox
            .path(&format!(".broker/store/faults/az/{second}"))
            .exists()
    );

    let out = run(
        &sandbox,
        &az_action("reenable_az", json!({"state_file_name": first})),
        &[],
    );
    assert_eq!(out.code, 0, "{}", out.output());
    assert_eq!(nacls(&aws, subnets), before, "back on its own NACL");
}
