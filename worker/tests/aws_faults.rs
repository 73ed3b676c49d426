//! The EC2 fault library against the moto server `scripts/test.sh` starts on 127.0.0.1, run by
//! `worker run` with Python out of reach: the seed's experiment runs unchanged and sends
//! StressMemory to exactly the instance it resolved; each selection mode picks what it should;
//! the opt-in tag and the limits refuse before anything is sent; a dry run sends nothing.
//!
//! What was sent is read back from SSM (`ListCommands`), not from our own output.

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

struct Aws {
    rt: tokio::runtime::Runtime,
    ec2: aws_sdk_ec2::Client,
    ssm: aws_sdk_ssm::Client,
}

impl Aws {
    fn new() -> Aws {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let sdk = rt.block_on(broker_aws::sdk::emulator(&endpoint()));
        Aws {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            rt,
        }
    }

    /// Start `n` instances with these tags; their ids.
    fn instances(&self, n: i32, tags: &[(&str, &str)]) -> Vec<String> {
        use aws_sdk_ec2::types::{ResourceType, Tag, TagSpecification};
        let mut spec = TagSpecification::builder().resource_type(ResourceType::Instance);
        for (k, v) in tags {
            spec = spec.tags(Tag::builder().key(*k).value(*v).build());
        }
        let out = self
            .rt
            .block_on(
                self.ec2
                    .run_instances()
                    .image_id("ami-12c6146b")
                    .min_count(n)
                    .max_count(n)
                    .tag_specifications(spec.build())
                    .send(),
            )
            .unwrap();
        out.instances()
            .iter()
            .map(|i| i.instance_id().unwrap().to_string())
            .collect()
    }

    fn terminate(&self, ids: &[String]) {
        let _ = self.rt.block_on(
            self.ec2
                .terminate_instances()
                .set_instance_ids(Some(ids.to_vec()))
                .send(),
        );
    }

    /// Register a document from `ssm-documents/` (already registered is fine).
    fn register(&self, name: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("../ssm-documents/{name}.yaml"));
        let content =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let r = self.rt.block_on(
            self.ssm
                .create_document()
                .name(name)
                .content(content)
                .document_type(aws_sdk_ssm::types::DocumentType::Command)
                .document_format(aws_sdk_ssm::types::DocumentFormat::Yaml)
                .send(),
        );
        if let Err(e) = r {
            let already = e
                .as_service_error()
                .is_some_and(|s| s.is_document_already_exists());
            assert!(already, "registering {name}: {e:?}");
        }
    }
}

/// Every SendCommand request moto received that names one of `instances`, as sent (from the
/// recording `scripts/test.sh` has moto keep: moto's own ListCommands lists every instance of
/// the region for a command sent to a few, so it cannot show what was sent).
fn sent_to(instances: &[String]) -> Vec<Value> {
    let path = std::env::var("BROKER_TEST_MOTO_RECORDING").unwrap_or_else(|_| {
        panic!(
            "BROKER_TEST_MOTO_RECORDING is not set: run the tests through scripts/test.sh, which \
             starts moto with MOTO_ENABLE_RECORDING and says where the recording is"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["headers"]["X-Amz-Target"] == "AmazonSSM.SendCommand")
        .filter_map(|r| {
            use base64::Engine;
            let body = r["body"].as_str()?;
            let bytes = if r["body_encoded"] == true {
                base64::engine::general_purpose::STANDARD
                    .decode(body)
                    .ok()?
            } else {
                body.as_bytes().to_vec()
            };
            serde_json::from_slice::<Value>(&bytes).ok()
        })
        .filter(|b| {
            b["InstanceIds"].as_array().is_some_and(|ids| {
                ids.iter()
                    .any(|i| instances.iter().any(|x| i == x.as_str()))
            })
        })
        .collect()
}

/// The one command sent for the activity `name` to some of `instances`: (document, sorted
/// instance ids, parameters).
fn command(instances: &[String], name: &str) -> (String, Vec<String>, Value) {
    let comment = format!("experiment-broker: {name}");
    let found: Vec<Value> = sent_to(instances)
        .into_iter()
        .filter(|b| b["Comment"] == comment.as_str())
        .collect();
    assert_eq!(found.len(), 1, "one command for {name}: {found:?}");
    (
        found[0]["DocumentName"].as_str().unwrap().to_string(),
        sorted(&found[0]["InstanceIds"]),
        found[0]["Parameters"].clone(),
    )
}

/// `worker run` with the emulator's endpoint and credentials, Python out of reach.
fn run(sandbox: &Sandbox, experiment: &std::path::Path, extra: &[&str]) -> (i32, Value, String) {
    let journal = sandbox.path("journal.json");
    let _ = std::fs::remove_file(&journal);
    let mut args = vec!["run", "--journal-path", journal.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(experiment.to_str().unwrap());
    let out = sandbox
        .command(&args)
        .env("AWS_ENDPOINT_URL", endpoint())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PATH", "/usr/bin:/bin")
        .env("BROKER_PYTHON", "/nonexistent/python3")
        .env_remove("BROKER_OPT_IN_TAG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let journal: Value = serde_json::from_str(
        &std::fs::read_to_string(&journal)
            .unwrap_or_else(|_| panic!("no journal; stderr:\n{stderr}")),
    )
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        journal,
        format!("{stdout}\n{stderr}"),
    )
}

const OPT_IN: (&str, &str) = ("experiment-broker:opt-in", "true");

fn action(name: &str, func: &str, arguments: Value) -> Value {
    json!({"type": "action", "name": name,
        "provider": {"type": "python", "module": "experimentvr.ec2.actions", "func": func, "arguments": arguments}})
}

fn experiment(method: Vec<Value>, extension: Option<Value>) -> Value {
    let mut e = json!({"title": "faults", "description": "d", "method": method});
    if let Some(x) = extension {
        e["extensions"] = json!([x]);
    }
    e
}

fn sorted(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("a list of ids: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn the_seed_experiment_sends_stress_memory_to_exactly_the_instance_it_resolved() {
    let aws = Aws::new();
    aws.register("StressMemory");
    // the only running *.resiliency.local instance carries the opt-in tag; a stopped one
    // matches the name but is not a candidate
    let target = aws.instances(1, &[("Name", "web-1.resiliency.local"), OPT_IN]);
    let stopped = aws.instances(1, &[("Name", "web-2.resiliency.local"), OPT_IN]);
    aws.rt
        .block_on(
            aws.ec2
                .stop_instances()
                .set_instance_ids(Some(stopped.clone()))
                .send(),
        )
        .unwrap();

    let sandbox = Sandbox::new();
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments/ec2-high-memory-utilization.yaml");
    let (code, journal, out) = run(&sandbox, &seed, &[]);
    aws.terminate(&target);
    aws.terminate(&stopped);
    assert_eq!(code, 0, "{out}\n{journal:#}");
    let run = &journal["run"][0];
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(sorted(&run["output"]["targets"]), target);

    // the targets were on record before the command, and SSM got exactly that
    let records = journal["broker"]["records"].as_array().expect("records");
    assert_eq!(records[0]["kind"], "targets");
    assert_eq!(sorted(&records[0]["chosen"]), target);
    assert_eq!(
        records[1]["kind"], "locks",
        "the target is locked before anything is sent"
    );
    assert_eq!(sorted(&records[1]["targets"]), target);
    assert_eq!(records[2]["kind"], "ssm_command");
    assert!(records[2]["command_id"].is_string());
    let (document, ids, params) = command(&target, "stress-instance-memory");
    assert_eq!(document, "StressMemory");
    assert_eq!(ids, target);
    assert_eq!(
        params,
        json!({"duration": ["300"], "workers": ["1"], "percent": ["99"]})
    );
    assert!(
        sent_to(&stopped).is_empty(),
        "the stopped instance got nothing"
    );
    let invocations = &run["output"]["results"][0]["command"]["invocations"];
    assert_eq!(invocations[0]["instance_id"], target[0].as_str());
    assert_eq!(invocations[0]["status"], "Success");
}

#[test]
fn each_selection_mode_picks_what_it_should() {
    let aws = Aws::new();
    aws.register("StressCPU");
    let team = format!("modes-{}", std::process::id());
    let fleet = aws.instances(5, &[("team", &team), OPT_IN]);
    let args = |mode: &str| {
        json!({"test_target_type": mode, "tag_key": "tag:team", "tag_value": team,
               "ec2_stress_cpu_duration": 5})
    };
    let mut named = args("NAMED_LIST");
    named["targets"] = json!([fleet[3], fleet[1]]);
    // ids under a choosing mode narrow the candidates (they are not ignored)
    let mut listed = args("ALL");
    listed["targets"] = json!([fleet[0], fleet[4]]);
    let e = experiment(
        vec![
            action("count", "ec2_stress_cpu", args("COUNT(2)")),
            action("percent-40", "ec2_stress_cpu", args("PERCENT(40)")),
            action("percent-50", "ec2_stress_cpu", args("PERCENT(50)")),
            action("random", "ec2_stress_cpu", args("RANDOM")),
            action("all", "ec2_stress_cpu", args("ALL")),
            action("named", "ec2_stress_cpu", named),
            action("all-listed", "ec2_stress_cpu", listed),
        ],
        None,
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("modes.json", &e);
    let (code, journal, out) = run(&sandbox, &file, &[]);
    aws.terminate(&fleet);
    assert_eq!(code, 0, "{out}\n{journal:#}");
    let mut expected_named = vec![fleet[1].clone(), fleet[3].clone()];
    expected_named.sort();
    for (i, (name, size)) in [
        ("count", 2),
        ("percent-40", 2),
        ("percent-50", 3),
        ("random", 1),
        ("all", 5),
        ("named", 2),
        ("all-listed", 2),
    ]
    .into_iter()
    .enumerate()
    {
        let run = &journal["run"][i];
        assert_eq!(run["activity"]["name"], name);
        assert_eq!(run["status"], "succeeded", "{name}: {run:#}");
        let chosen = sorted(&run["output"]["targets"]);
        assert_eq!(chosen.len(), size, "{name}: {chosen:?}");
        assert!(
            chosen.iter().all(|c| fleet.contains(c)),
            "{name}: only the team's instances"
        );
        let (document, sent, _) = command(&fleet, name);
        assert_eq!(
            (document.as_str(), &sent),
            ("StressCPU", &chosen),
            "{name}: SSM got the choice"
        );
        if name == "named" {
            assert_eq!(chosen, expected_named);
        }
        if name == "all-listed" {
            let mut listed = vec![fleet[0].clone(), fleet[4].clone()];
            listed.sort();
            assert_eq!(chosen, listed);
        }
    }
}

#[test]
fn a_target_without_the_opt_in_tag_is_refused_before_anything_is_sent() {
    let aws = Aws::new();
    let team = format!("optin-{}", std::process::id());
    let opted = aws.instances(1, &[("team", &team), OPT_IN]);
    let not_opted = aws.instances(1, &[("team", &team)]);
    let e = experiment(
        vec![action(
            "blackhole",
            "ec2_blackhole_by_port",
            json!({"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": team,
                   "ec2_blackhole_by_port_port": 5432, "ec2_blackhole_by_port_duration": 10}),
        )],
        None,
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("optin.json", &e);
    // a failed action does not fail a Chaos Toolkit run: the action's record says it
    let (_, journal, _) = run(&sandbox, &file, &[]);
    let action = &journal["run"][0];
    assert_eq!(action["status"], "failed");
    let exception = action["exception"].to_string();
    assert!(
        exception.contains(&format!(
            "target {} does not carry the opt-in tag experiment-broker:opt-in=true",
            not_opted[0]
        )),
        "{exception}"
    );
    assert!(
        sent_to(&opted).is_empty(),
        "nothing was sent, not even to the opted-in one"
    );
    assert!(sent_to(&not_opted).is_empty());
    let refused = &journal["broker"]["records"][0];
    assert!(
        refused["refused"].as_str().unwrap().contains("opt-in"),
        "{refused}"
    );

    // an account that opts in wholesale turns the tag off
    let (code, journal, out) = run(&sandbox, &file, &["--opt-in-tag", "off"]);
    aws.terminate(&opted);
    aws.terminate(&not_opted);
    assert_eq!(code, 0, "{out}\n{journal:#}");
    assert_eq!(sorted(&journal["run"][0]["output"]["targets"]).len(), 2);
}

#[test]
fn limits_refuse_and_a_dry_run_sends_nothing() {
    let aws = Aws::new();
    let team = format!("limits-{}", std::process::id());
    let fleet = aws.instances(4, &[("team", &team), OPT_IN]);
    let all = json!({"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": team,
                     "ec2_stress_io_duration": 30});
    let sandbox = Sandbox::new();

    // the experiment caps this action at 50%: ALL of 4 is refused
    let capped = experiment(
        vec![action("io", "ec2_stress_io", all.clone())],
        Some(json!({"name": "experiment-broker", "actions": {"io": {"max_percent": 50}}})),
    );
    let file = sandbox.write_json("capped.json", &capped);
    let (_, journal, _) = run(&sandbox, &file, &[]);
    assert_eq!(journal["run"][0]["status"], "failed");
    let exception = journal["run"][0]["exception"].to_string();
    assert!(
        exception.contains("4 of 4 matching targets chosen, more than the limit of 50%"),
        "{exception}"
    );

    // the deployment caps every action at 3 targets
    let plain = experiment(vec![action("io", "ec2_stress_io", all.clone())], None);
    let file = sandbox.write_json("plain.json", &plain);
    let (_, journal, _) = run(&sandbox, &file, &["--max-targets", "3"]);
    assert_eq!(journal["run"][0]["status"], "failed");
    assert!(
        journal["run"][0]["exception"]
            .to_string()
            .contains("more than the limit of 3 (max targets)")
    );

    // max_duration refuses a ladder that would last too long
    let mut ladder = all.clone();
    ladder["max_duration"] = json!(60);
    ladder["ec2_stress_io_parameter_map"] =
        json!([{"percent": 10}, {"percent": 20}, {"percent": 40}]);
    let long = experiment(vec![action("io", "ec2_stress_io", ladder)], None);
    let file = sandbox.write_json("long.json", &long);
    let (_, journal, _) = run(&sandbox, &file, &[]);
    assert_eq!(journal["run"][0]["status"], "failed");
    assert!(
        journal["run"][0]["exception"]
            .to_string()
            .contains("90s in all (3 stages), more than max_duration 60s")
    );

    // a dry run resolves and prints the plan, and sends nothing
    let (code, journal, out) = run(
        &sandbox,
        &file.with_file_name("plain.json"),
        &["--dry", "actions"],
    );
    aws.terminate(&fleet);
    assert_eq!(code, 0, "{out}");
    let output = &journal["run"][0]["output"];
    assert_eq!(output["dry_run"], true);
    assert_eq!(sorted(&output["targets"]).len(), 4);
    assert!(out.contains("dry run: io would send StressIO on"), "{out}");
    assert!(
        sent_to(&fleet).is_empty(),
        "refusals and a dry run sent nothing"
    );
}

#[test]
fn a_locked_target_is_refused_or_waited_for_and_the_lock_is_released_after_the_fault() {
    let aws = Aws::new();
    aws.register("StressCPU");
    let team = format!("locks-{}", std::process::id());
    let host = aws.instances(1, &[("team", &team), OPT_IN]);
    let sandbox = Sandbox::new();
    let lock = sandbox.path("store/locks").join(&host[0]);
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    // another worker's fault is acting on the host
    std::fs::write(
        &lock,
        json!({"owner": "worker-b", "activity": "memory", "expires_at": until}).to_string(),
    )
    .unwrap();
    let cpu = |ext: Option<Value>| {
        experiment(
            vec![action(
                "cpu",
                "ec2_stress_cpu",
                json!({"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": team,
                       "ec2_stress_cpu_duration": 5}),
            )],
            ext,
        )
    };
    let file = sandbox.write_json("cpu.json", &cpu(None));
    let state = sandbox.path("");
    let (_, journal, out) = run_in(&sandbox, &state, &file);
    let action = &journal["run"][0];
    assert_eq!(action["status"], "failed", "{out}");
    assert!(
        action["exception"].to_string().contains(&format!(
            "target {} is locked by worker-b (memory)",
            host[0]
        )),
        "{action}"
    );
    assert!(
        sent_to(&host).is_empty(),
        "nothing stacked on the locked host"
    );

    // waiting: the other fault ends (its lock is released) while this one waits
    let file = sandbox.write_json(
        "cpu-wait.json",
        &cpu(Some(json!({"name": "experiment-broker", "locks": {"on_conflict": "wait", "wait_seconds": 30}}))),
    );
    let releaser = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_secs(1));
            std::fs::remove_file(&lock).unwrap();
        })
    };
    let (_, journal, out) = run_in(&sandbox, &state, &file);
    releaser.join().unwrap();
    aws.terminate(&host);
    assert_eq!(journal["run"][0]["status"], "succeeded", "{out}");
    assert_eq!(sent_to(&host).len(), 1);
    let locks = journal["broker"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "locks")
        .expect("the locks are on record");
    assert_eq!(locks["targets"], json!(host));
    assert!(!lock.exists(), "released after the fault");
}

/// `run`, with the embedded store (where a lone `worker run` keeps its locks) in `state`.
fn run_in(
    sandbox: &Sandbox,
    state: &std::path::Path,
    experiment: &std::path::Path,
) -> (i32, Value, String) {
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
        .env("BROKER_STATE_DIR", state)
        .env_remove("BROKER_OPT_IN_TAG")
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let journal: Value = serde_json::from_str(
        &std::fs::read_to_string(&journal).unwrap_or_else(|_| panic!("no journal:\n{text}")),
    )
    .unwrap();
    (out.status.code().unwrap_or(-1), journal, text)
}
