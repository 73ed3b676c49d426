//! The deployment and the binaries agree, and the deployment's defaults are safe: every
//! `BROKER_*` variable the CloudFormation template sets is one the binaries read, the nightly
//! schedule's message is one the producer accepts, and a stack deployed with its defaults
//! bounds every fault action (one target, 10 % of the matches), runs the binaries under an init
//! process, expires old object versions, triggers runs only for suite documents, keeps the
//! schedule's undeliverable messages and grants the command-following SSM actions no wider than
//! IAM allows. (The template itself is checked by `cfn-lint` in `scripts/test.sh`.)

use serde_json::{Value, json};
use shared::fleet::safety::targets::{Candidate, Limits, Mode, Refusal, Selector, select};
use shared::load::document::{Format, parse};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn template() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/experiment-broker.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The template as data. CloudFormation's short tags are read as their plain argument:
/// `!Ref X` is `"X"`, `!GetAtt X.Arn` is `"X.Arn"`.
fn parsed() -> Value {
    parse(&template(), Format::Yaml)
        .unwrap_or_else(|e| panic!("infra/experiment-broker.yaml: {e:?}"))
        .value
}

fn resource<'a>(template: &'a Value, logical: &str) -> &'a Value {
    let r = &template["Resources"][logical];
    assert!(r.is_object(), "the template has no resource {logical}");
    r
}

/// The only container of a task definition.
fn container<'a>(template: &'a Value, task_definition: &str) -> &'a Value {
    let containers = resource(template, task_definition)["Properties"]["ContainerDefinitions"]
        .as_array()
        .unwrap_or_else(|| panic!("{task_definition} has ContainerDefinitions"));
    assert_eq!(containers.len(), 1, "{task_definition}: one container");
    &containers[0]
}

/// A container's environment, name → value.
fn environment(container: &Value) -> BTreeMap<String, Value> {
    container["Environment"]
        .as_array()
        .expect("the container has an Environment")
        .iter()
        .map(|v| {
            (
                v["Name"].as_str().expect("a Name").to_string(),
                v["Value"].clone(),
            )
        })
        .collect()
}

/// A whole number at `path` ("Parameters.MaxTargets.Default"), given as a number or a string.
fn number(template: &Value, path: &str) -> u32 {
    let value = path.split('.').fold(template, |v, key| &v[key]);
    value
        .as_u64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or_else(|| panic!("{path}: expected a whole number, found {value}"))
}

fn help(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Variables the template sets for features still being built, and the issue that reads them.
const PENDING: [&str; 0] = [];

#[test]
fn every_variable_the_template_sets_is_read_by_the_binaries() {
    let producer = env!("CARGO_BIN_EXE_producer");
    let worker = Path::new(producer).with_file_name("worker");
    let known = [
        help(producer, &["serve", "--help"]),
        help(worker.to_str().unwrap(), &["serve", "--help"]),
    ]
    .join("\n");
    let text = template();
    let names: Vec<&str> = text
        .split("Name: ")
        .skip(1)
        .filter_map(|rest| rest.split([',', ' ', '}', '\n']).next())
        .filter(|n| n.starts_with("BROKER_"))
        .collect();
    assert!(
        names.len() >= 6,
        "the task definitions set the backend: {names:?}"
    );
    for name in names {
        assert!(
            known.contains(&format!("env: {name}")) || PENDING.contains(&name),
            "the template sets {name}, which neither binary reads"
        );
    }
}

#[test]
fn the_nightly_schedule_sends_a_message_the_producer_accepts() {
    use shared::fleet::producer::trigger::parse::{SuiteLocation, Trigger, parse_trigger};
    let text = template();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Input: !Sub"))
        .expect("the schedule's Input");
    let message = line
        .split_once('\'')
        .and_then(|(_, rest)| rest.rsplit_once('\''))
        .map(|(m, _)| m)
        .expect("a quoted message")
        .replace("${NightlySuiteKey}", "suites/nightly.yaml");
    assert_eq!(
        parse_trigger(&message, Some("bucket")),
        Ok(Trigger::Run(vec![SuiteLocation::Store {
            key: "suites/nightly.yaml".into()
        }]))
    );
}

#[test]
fn a_default_deployment_lets_a_fault_act_on_one_target_among_at_least_ten() {
    let t = parsed();
    let max_targets = number(&t, "Parameters.MaxTargets.Default");
    let max_percent = number(&t, "Parameters.MaxPercent.Default");
    assert_eq!(
        (max_targets, max_percent),
        (1, 10),
        "the conservative defaults"
    );
    assert_eq!(number(&t, "Parameters.MaxTargets.MinValue"), 1);
    // the worker's --max-percent accepts 0-100; 0 would refuse every fault
    assert_eq!(number(&t, "Parameters.MaxPercent.MinValue"), 1);
    assert_eq!(number(&t, "Parameters.MaxPercent.MaxValue"), 100);
    let env = environment(container(&t, "WorkerTaskDefinition"));
    assert_eq!(env.get("BROKER_MAX_TARGETS"), Some(&json!("MaxTargets")));
    assert_eq!(env.get("BROKER_MAX_PERCENT"), Some(&json!("MaxPercent")));

    // What the worker then decides (targets::select with these limits), opted-in instances:
    // (instances matching the selection, mode, targets acted on or None = refused)
    let limits = Limits {
        max_targets: Some(max_targets),
        max_percent: Some(max_percent),
        opt_in: None,
    };
    let cases: [(usize, Mode, Option<usize>); 7] = [
        (10, Mode::Random, Some(1)),
        (50, Mode::Count(1), Some(1)),
        (9, Mode::Random, None),
        (1, Mode::Ids(vec!["i-0".into()]), None),
        (50, Mode::Count(2), None),
        (50, Mode::Percent(10), None),
        (10, Mode::All, None),
    ];
    for (matching, mode, expected) in cases {
        let candidates: Vec<Candidate> = (0..matching)
            .map(|i| Candidate {
                id: format!("i-{i}"),
                tags: BTreeMap::new(),
                attributes: BTreeMap::new(),
            })
            .collect();
        let selector = Selector {
            tags: Vec::new(),
            filters: Vec::new(),
            mode: mode.clone(),
            within: Vec::new(),
            allow_empty: false,
        };
        let outcome = select(&candidates, &selector, &limits, 7);
        match expected {
            Some(n) => assert_eq!(
                outcome.as_ref().map(|s| s.chosen.len()),
                Ok(n),
                "{mode:?} among {matching}"
            ),
            None => assert!(
                matches!(
                    outcome,
                    Err(Refusal::TooMany { .. } | Refusal::TooLarge { .. })
                ),
                "{mode:?} among {matching} is refused by a ceiling: {outcome:?}"
            ),
        }
    }
}

#[test]
fn the_worker_and_the_producer_run_under_an_init_process() {
    let t = parsed();
    for task in ["WorkerTaskDefinition", "ProducerTaskDefinition"] {
        assert_eq!(
            container(&t, task)["LinuxParameters"]["InitProcessEnabled"],
            json!(true),
            "{task}: an init process reaps the children and forwards SIGTERM"
        );
    }
}

#[test]
fn noncurrent_object_versions_expire_and_current_ones_do_not() {
    let t = parsed();
    assert_eq!(number(&t, "Parameters.NoncurrentVersionDays.Default"), 90);
    assert_eq!(number(&t, "Parameters.NoncurrentVersionDays.MinValue"), 1);
    let bucket = &resource(&t, "Bucket")["Properties"];
    assert_eq!(bucket["VersioningConfiguration"]["Status"], "Enabled");
    let rules = bucket["LifecycleConfiguration"]["Rules"]
        .as_array()
        .expect("lifecycle rules");
    let expiring: Vec<&Value> = rules
        .iter()
        .filter(|r| r["Status"] == "Enabled" && r.get("NoncurrentVersionExpiration").is_some())
        .collect();
    assert_eq!(expiring.len(), 1, "one rule expires noncurrent versions");
    assert_eq!(
        expiring[0]["NoncurrentVersionExpiration"]["NoncurrentDays"],
        "NoncurrentVersionDays"
    );
    for rule in rules {
        for current in ["ExpirationInDays", "ExpirationDate"] {
            assert!(
                rule.get(current).is_none(),
                "no rule expires current versions (the journals): {rule}"
            );
        }
    }
}

#[test]
fn only_suite_documents_uploaded_under_suites_trigger_runs() {
    let t = parsed();
    let configurations =
        resource(&t, "Bucket")["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
            .as_array()
            .expect("queue notifications");
    let mut filters = Vec::new();
    for c in configurations {
        assert_eq!(c["Event"], "s3:ObjectCreated:*");
        assert_eq!(c["Queue"], "TriggersQueue.Arn");
        let rules = c["Filter"]["S3Key"]["Rules"].as_array().expect("key rules");
        let rule = |name: &str| -> String {
            let found: Vec<&Value> = rules.iter().filter(|r| r["Name"] == name).collect();
            assert_eq!(found.len(), 1, "one {name} rule per configuration: {c}");
            found[0]["Value"].as_str().expect("a value").to_string()
        };
        filters.push((rule("prefix"), rule("suffix")));
    }
    filters.sort();
    assert_eq!(
        filters,
        [
            ("suites/".to_string(), ".json".to_string()),
            ("suites/".to_string(), ".yaml".to_string()),
            ("suites/".to_string(), ".yml".to_string()),
        ],
        "the extensions the loader reads, under suites/"
    );
    // S3 rejects two configurations for the same event whose filters overlap: with one prefix,
    // no suffix may end with another
    for (_, a) in &filters {
        for (_, b) in &filters {
            assert!(a == b || !a.ends_with(b.as_str()), "{a} overlaps {b}");
        }
    }
}

#[test]
fn a_nightly_trigger_the_schedule_cannot_deliver_is_kept_in_a_dead_letter_queue() {
    let t = parsed();
    let target = &resource(&t, "NightlySchedule")["Properties"]["Target"];
    let arn = target["DeadLetterConfig"]["Arn"]
        .as_str()
        .expect("the schedule's target has a DeadLetterConfig");
    let queue = arn
        .strip_suffix(".Arn")
        .expect("the dead-letter queue is a resource of the stack (!GetAtt <queue>.Arn)");
    assert_eq!(resource(&t, queue)["Type"], "AWS::SQS::Queue");
    assert_ne!(arn, target["Arn"], "not the triggers queue itself");
    // EventBridge Scheduler dead-letters with the schedule's execution role
    let role = target["RoleArn"]
        .as_str()
        .and_then(|r| r.strip_suffix(".Arn"))
        .expect("the schedule's role");
    let may_send = resource(&t, role)["Properties"]["Policies"]
        .as_array()
        .expect("the role's policies")
        .iter()
        .flat_map(|p| p["PolicyDocument"]["Statement"].as_array().unwrap().iter())
        .any(|s| {
            s["Effect"] == "Allow" && s["Action"] == "sqs:SendMessage" && s["Resource"] == arn
        });
    assert!(may_send, "{role} may send to {queue}");
    assert!(
        t["Outputs"]
            .as_object()
            .unwrap()
            .values()
            .any(|o| o["Value"] == queue),
        "an output names {queue}, so operators can find it"
    );
}

/// Actions that have no resource type in IAM (Service Authorization Reference for EC2, Systems
/// Manager, EKS, FIS and CloudWatch): a statement granting them can only name `"*"`. Every other
/// action the worker is granted names the ARNs it may touch.
const NO_RESOURCE_TYPE: [&str; 14] = [
    "ec2:DescribeInstances",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeVolumes",
    "ec2:DescribeIamInstanceProfileAssociations",
    "eks:ListClusters",
    "fis:ListExperiments",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:GetMetricData",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "ssm:ListCommands",
    "ssm:CancelCommand",
];

#[test]
fn following_and_cancelling_commands_is_limited_to_the_stack_region() {
    let t = parsed();
    let text = resource(&t, "WorkerFaultInjectionPolicy")["Properties"]["PolicyDocument"]
        .as_str()
        .expect("the fault-injection policy is a !Sub JSON text");
    let policy: Value = serde_json::from_str(text).expect("the fault-injection policy is JSON");
    let statements = policy["Statement"].as_array().expect("statements");
    let actions = |s: &Value| -> Vec<String> {
        match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(a) => a.iter().map(|a| a.as_str().unwrap().to_string()).collect(),
            other => panic!("Action {other}"),
        }
    };
    let mut on_any_resource = Vec::new();
    for s in statements.iter().filter(|s| s["Resource"] == "*") {
        for action in actions(s) {
            assert!(
                NO_RESOURCE_TYPE.contains(&action.as_str()),
                "{action} is granted on \"*\" although IAM knows its resources"
            );
            if action.starts_with("ssm:") {
                assert_eq!(
                    s["Condition"],
                    json!({"StringEquals": {"aws:RequestedRegion": "${AWS::Region}"}}),
                    "{action}: only in the region where the worker may send commands"
                );
            }
            on_any_resource.push(action);
        }
    }
    on_any_resource.sort();
    let mut expected = NO_RESOURCE_TYPE.map(String::from).to_vec();
    expected.sort();
    assert_eq!(on_any_resource, expected);
    let cancel: Vec<&Value> = statements
        .iter()
        .filter(|s| actions(s).contains(&"ssm:CancelCommand".to_string()))
        .collect();
    assert_eq!(cancel.len(), 1);
    assert_eq!(
        actions(cancel[0]),
        ["ssm:CancelCommand"],
        "the one write among them stands alone"
    );
}
