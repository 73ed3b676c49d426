//! A worker killed while the fault it started is still on (an AZ cut off, a FIS experiment
//! running): the job comes back to another worker, which undoes what the dead owner's records
//! leave on (every subnet back on its previous NACL and ours deleted; the experiment stopped)
//! before the rollbacks, and says so in the journal.

use crate::util;
use aws_sdk_ec2::types::{Filter, ResourceType, Tag, TagSpecification};
use serde_json::{Value, json};
use shared::ports::ObjectStore;
use util::Sandbox;
use util::moto::{self, Aws, OPT_IN};
use util::redelivery::crash_and_revert;

fn nacl_of(aws: &Aws, subnet: &str) -> String {
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
    out.network_acls()[0].network_acl_id().unwrap().to_string()
}

/// The dead owner's undone ways back, as its `orphans_stopped` record reports them.
fn undone(journal: &Value) -> Value {
    journal["broker"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "orphans_stopped")
        .expect("the stop is on record")["stopped"]
        .clone()
}

fn hold() -> Value {
    json!({"type": "action", "name": "hold", "provider": {"type": "process", "path": "sleep", "arguments": ["60"]}})
}

#[test]
fn a_dead_owners_disabled_az_is_reenabled_from_its_record_before_the_rollbacks() {
    let aws = Aws::new();
    let az = "us-east-1f";
    let vpc = aws
        .rt
        .block_on(
            aws.ec2
                .create_vpc()
                .cidr_block("10.61.0.0/16")
                .tag_specifications(
                    TagSpecification::builder()
                        .resource_type(ResourceType::Vpc)
                        .tags(Tag::builder().key(OPT_IN.0).value(OPT_IN.1).build())
                        .build(),
                )
                .send(),
        )
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string();
    let subnet = aws
        .rt
        .block_on(
            aws.ec2
                .create_subnet()
                .vpc_id(&vpc)
                .cidr_block("10.61.1.0/24")
                .availability_zone(az)
                .send(),
        )
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    let _network = super::Network {
        aws: &aws,
        subnets: vec![subnet.clone()],
        vpcs: vec![vpc.clone()],
    };
    let before = nacl_of(&aws, &subnet);
    let experiment = json!({"title": "dies with an AZ disabled", "description": "d",
    "method": [
        moto::action("cut", "experimentvr.az.actions", "disable_az", json!({"availability_zone": az})),
        hold()
    ]});
    let sandbox = Sandbox::new();
    let mut ours = String::new();
    let (journal, e) = crash_and_revert(&aws, &sandbox, &experiment, |_| {
        ours = nacl_of(&aws, &subnet);
        ours != before
    });
    assert_eq!(
        nacl_of(&aws, &subnet),
        before,
        "the subnet is back on its NACL"
    );
    let gone = aws
        .rt
        .block_on(
            aws.ec2
                .describe_network_acls()
                .network_acl_ids(&ours)
                .send(),
        )
        .map(|o| o.network_acls().is_empty())
        .unwrap_or(true);
    assert!(gone, "our NACL {ours} is deleted");
    let undone = undone(&journal);
    assert_eq!(undone[0]["family"], "az", "{undone}");
    assert_eq!(
        undone[0]["outcome"]["subnets"][0]["restored"], "restored",
        "{undone}"
    );
    let saved = aws
        .rt
        .block_on(e.store.get("faults/az/disable_az.json"))
        .unwrap();
    assert!(saved.is_none(), "the saved state is gone");
}

#[test]
fn a_dead_owners_fis_experiment_is_stopped_from_its_record() {
    let aws = Aws::new();
    let template = super::boto3(&format!(
        r#"
import uuid
t = fis.create_experiment_template(clientToken=str(uuid.uuid4()), description='d', stopConditions=[{{'source': 'none'}}],
    actions={{'wait': {{'actionId': 'aws:fis:wait', 'parameters': {{'duration': 'PT10M'}}}}}},
    roleArn='arn:aws:iam::123456789012:role/fis', tags={{{:?}: {:?}}})
print(json.dumps(t['experimentTemplate']['id']))
"#,
        OPT_IN.0, OPT_IN.1
    ));
    let template = template.as_str().unwrap().to_string();
    let experiment = json!({"title": "dies with a FIS experiment running", "description": "d",
    "method": [
        moto::action("start", "experimentvr.fis.actions", "start_experiment", json!({"experiment_template_id": template})),
        hold()
    ]});
    let sandbox = Sandbox::new();
    let mut started = String::new();
    let (journal, _) = crash_and_revert(&aws, &sandbox, &experiment, |c| {
        let id = c["run"][0]["output"]["experiment"]["id"].as_str();
        started = id.unwrap_or_default().to_string();
        id.is_some()
    });
    let status = super::boto3(&format!(
        "print(json.dumps(fis.get_experiment(id={started:?})['experiment']['state']['status']))"
    ));
    assert!(
        matches!(status.as_str(), Some("stopping" | "stopped")),
        "{status}"
    );
    let undone = undone(&journal);
    assert_eq!(undone[0]["family"], "fis", "{undone}");
    assert_eq!(
        undone[0]["outcome"],
        json!([{"experiment_id": started, "stopped": true}]),
        "{undone}"
    );
}
