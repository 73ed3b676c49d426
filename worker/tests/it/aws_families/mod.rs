//! The fault families that change AWS resources (`remove_iam_role`, `disable_az`/`reenable_az`,
//! `detach_volume`, FIS), run natively by `worker run` against the moto server: each acts on
//! exactly what it resolved (read back with Describe* and from moto's request recording), puts
//! its way back on record, reverts to the recorded state, is refused before anything is sent on
//! a target without the opt-in tag, and sends nothing under `--dry actions`. IAM instance
//! profiles and FIS templates are set up with boto3 from the test venv (the worker's own SDKs
//! are what is under test).

mod az;
mod ebs;
mod fis;
mod iam_role;
mod redelivery;

use crate::util;

use serde_json::Value;
use util::Sandbox;
use util::moto::{self, Env};

/// Run `script` with boto3 clients `ec2`, `iam`, `fis` on the emulator; what it prints, as JSON.
pub fn boto3(script: &str) -> Value {
    let preamble = format!(
        "import boto3, json\nkw = dict(endpoint_url={:?}, region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\nec2 = boto3.client('ec2', **kw)\niam = boto3.client('iam', **kw)\nfis = boto3.client('fis', **kw)\n",
        moto::endpoint()
    );
    let out = std::process::Command::new(moto::venv_python())
        .arg("-c")
        .arg(format!("{preamble}{script}"))
        .output()
        .expect("the venv's python");
    assert!(
        out.status.success(),
        "boto3 setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "boto3 setup printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `worker run` of `experiment` on the emulator, deployment guard rails unset (the default
/// opt-in tag applies), Python out of reach.
pub fn run(sandbox: &Sandbox, experiment: &Value, extra: &[&str]) -> util::Outcome {
    let file = sandbox.write_json("experiment.json", experiment);
    let env = Env {
        unset: moto::DEPLOYMENT_GUARD_RAILS,
        ..Env::default()
    };
    moto::run(sandbox, &file, extra, env)
}

/// Subnets and VPCs a test made, deleted when it ends (pass or fail): the action takes every
/// opted-in subnet of its AZ, so none may outlive the test on the shared moto.
pub struct Network<'a> {
    pub aws: &'a util::moto::Aws,
    pub subnets: Vec<String>,
    pub vpcs: Vec<String>,
}

impl Drop for Network<'_> {
    fn drop(&mut self) {
        for s in &self.subnets {
            let _ = self
                .aws
                .rt
                .block_on(self.aws.ec2.delete_subnet().subnet_id(s).send());
        }
        for v in &self.vpcs {
            let _ = self
                .aws
                .rt
                .block_on(self.aws.ec2.delete_vpc().vpc_id(v).send());
        }
    }
}

/// The record kinds of a journal, in order.
pub fn kinds(journal: &Value) -> Vec<String> {
    journal["broker"]["records"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r["kind"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The query-protocol EC2 requests moto recorded with this `Action` whose body mentions `id`.
pub fn ec2_requests(action: &str, id: &str) -> Vec<String> {
    moto::recorded()
        .into_iter()
        .map(|(_, body)| body)
        .filter(|b| b.split('&').any(|f| f == format!("Action={action}")) && b.contains(id))
        .collect()
}

/// The REST requests moto recorded with this method whose URL ends with `path`: their bodies.
pub fn rest_requests(method: &str, path: &str) -> Vec<String> {
    moto::recorded()
        .into_iter()
        .filter(|(r, _)| {
            r["method"] == method && r["url"].as_str().is_some_and(|u| u.ends_with(path))
        })
        .map(|(_, body)| body)
        .collect()
}

#[test]
fn experiments_written_with_the_librarys_argument_names_validate() {
    let sandbox = Sandbox::new();
    let call = |module: &str, func: &str, args: Value| moto::action(func, module, func, args);
    let experiment = moto::experiment(
        "the seed's families",
        vec![
            call(
                "experimentvr.ec2.actions",
                "remove_iam_role",
                serde_json::json!({"region": "us-east-1", "name_space": "ns", "instance_tag_value": "web", "profile_tag_value": "web", "sleep_length": 10}),
            ),
            call(
                "experimentvr.az.actions",
                "disable_az",
                serde_json::json!({"availability_zone": "us-east-1a", "state_file_name": "disable_az.json"}),
            ),
            call(
                "experimentvr.az.actions",
                "reenable_az",
                serde_json::json!({"state_file_name": "disable_az.json"}),
            ),
            call(
                "experimentvr.ebs.actions",
                "detach_volume",
                serde_json::json!({"region": "us-east-1", "name_space": "ns", "pod_name_pattern": "db-*", "tag_key_1": "tag:Name", "tag_value_1": "db", "tag_key_2": "tag:team", "tag_value_2": "a"}),
            ),
            call(
                "experimentvr.fis.actions",
                "start_experiment",
                serde_json::json!({"experiment_template_id": "EXT1", "client_token": "t", "tags": {"a": "b"}}),
            ),
            call(
                "experimentvr.fis.actions",
                "stop_experiment",
                serde_json::json!({"experiment_id": "EXP1"}),
            ),
            moto::probe(
                "rebuilt",
                "experimentvr.ec2.probes",
                "assert_instance_rebuilt",
                serde_json::json!({"tag_value": "web", "region": "us-east-1", "tag_key": "tag:Name"}),
                serde_json::json!(true),
            ),
            moto::probe(
                "fis",
                "experimentvr.fis.probes",
                "get_experiment",
                serde_json::json!({"experiment_id": "EXP1"}),
                serde_json::json!({"type": "jsonpath", "path": "$.experiment.state.status", "expect": "running"}),
            ),
        ],
        None,
    );
    let file = sandbox.write_json("seed.json", &experiment);
    let out = sandbox.validate(&file, &[]);
    assert_eq!(out.code, 0, "{}", out.output());
    // a misspelt argument of the library's is named
    let mut bad = experiment.clone();
    bad["method"][0]["provider"]["arguments"]["sleep_lenght"] = serde_json::json!(1);
    let file = sandbox.write_json("bad.json", &bad);
    let out = sandbox.validate(&file, &[]);
    assert_ne!(out.code, 0, "{}", out.output());
    assert!(out.output().contains("sleep_lenght"), "{}", out.output());
}
