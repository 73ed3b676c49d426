//! The AWS emulator side of the AWS tests (`aws_faults`, `aws_chaosaws`, `aws_alarms`,
//! `aws_probes`), in one place so that they agree on it: where the moto server
//! `scripts/test.sh` starts is, EC2 instances and SSM documents set up on it, what moto's
//! request recording says was sent (e.g. how a command's comment names its activity), `worker
//! run` pointed at the emulator, and the experiment JSON those tests build.
//!
//! Every test binary that declares `mod util` compiles this module, and each AWS test uses only
//! part of it: hence `dead_code` is allowed here.
#![allow(dead_code)]

use super::{Outcome, Sandbox};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The moto server's endpoint (`BROKER_TEST_AWS_ENDPOINT`).
pub fn endpoint() -> String {
    std::env::var("BROKER_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "BROKER_TEST_AWS_ENDPOINT is not set: run the tests through scripts/test.sh, which \
             installs and starts the moto server on 127.0.0.1"
        )
    })
}

/// A runtime for the tests' own SDK calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The Python of the venv `scripts/test.sh` installs moto (and boto3) into.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("BROKER_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-venv"));
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python at {}: run the tests through scripts/test.sh, which makes the venv with \
         moto and boto3 (or set BROKER_TEST_VENV)",
        python.display()
    );
    python
}

/// A unique tag value for one test's instances: the tests share one moto.
pub fn team(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

/// The tag a target must carry for a fault to act on it.
pub const OPT_IN: (&str, &str) = ("experiment-broker:opt-in", "true");

/// EC2 and SSM clients on the emulator.
pub struct Aws {
    pub rt: tokio::runtime::Runtime,
    pub ec2: aws_sdk_ec2::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Aws {
    pub fn new() -> Aws {
        let rt = runtime();
        let sdk = rt.block_on(aws::sdk::emulator(&endpoint()));
        Aws {
            ec2: aws_sdk_ec2::Client::new(&sdk),
            ssm: aws_sdk_ssm::Client::new(&sdk),
            rt,
        }
    }

    /// Start `n` instances with these tags; their ids.
    pub fn instances(&self, n: i32, tags: &[(&str, &str)]) -> Vec<String> {
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

    pub fn stop(&self, ids: &[String]) {
        self.rt
            .block_on(
                self.ec2
                    .stop_instances()
                    .set_instance_ids(Some(ids.to_vec()))
                    .send(),
            )
            .unwrap();
    }

    pub fn terminate(&self, ids: &[String]) {
        let _ = self.rt.block_on(
            self.ec2
                .terminate_instances()
                .set_instance_ids(Some(ids.to_vec()))
                .send(),
        );
    }

    /// The state of each instance, read back from EC2, in the order of `ids`.
    pub fn states(&self, ids: &[String]) -> Vec<String> {
        let out = self
            .rt
            .block_on(
                self.ec2
                    .describe_instances()
                    .set_instance_ids(Some(ids.to_vec()))
                    .send(),
            )
            .unwrap();
        let all: Vec<(String, String)> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .map(|i| {
                (
                    i.instance_id().unwrap().to_string(),
                    i.state().unwrap().name().unwrap().as_str().to_string(),
                )
            })
            .collect();
        ids.iter()
            .map(|id| {
                all.iter()
                    .find(|(i, _)| i == id)
                    .map(|(_, s)| s.clone())
                    .unwrap_or_else(|| panic!("{id} not described"))
            })
            .collect()
    }

    /// Register a document from `ssm-documents/` (already registered is fine).
    pub fn register(&self, name: &str) {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../ssm-documents/{name}.yaml"));
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

/// Every request moto recorded, with its body decoded (from the recording `scripts/test.sh`
/// has moto keep). What was sent is read from here rather than asked of moto: e.g. moto's own
/// ListCommands lists every instance of the region for a command sent to a few.
pub fn recorded() -> Vec<(Value, String)> {
    let path = std::env::var("BROKER_TEST_MOTO_RECORDING").unwrap_or_else(|_| {
        panic!(
            "BROKER_TEST_MOTO_RECORDING is not set: run the tests through scripts/test.sh, which \
             starts moto with MOTO_ENABLE_RECORDING and says where the recording is"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
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
            Some((r, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect()
}

/// The instance ids of every EC2 `action` request (e.g. `StopInstances`) that names one of
/// `instances`, each sorted.
pub fn ec2_calls(action: &str, instances: &[String]) -> Vec<Vec<String>> {
    recorded()
        .into_iter()
        .filter_map(|(_, body)| {
            let fields: Vec<(&str, &str)> =
                body.split('&').filter_map(|f| f.split_once('=')).collect();
            if !fields.contains(&("Action", action)) {
                return None;
            }
            let mut ids: Vec<String> = fields
                .iter()
                .filter(|(k, _)| k.starts_with("InstanceId."))
                .map(|(_, v)| v.to_string())
                .collect();
            ids.sort();
            ids.iter().any(|i| instances.contains(i)).then_some(ids)
        })
        .collect()
}

/// Every SendCommand request that names one of `instances`, as sent.
pub fn sent_to(instances: &[String]) -> Vec<Value> {
    recorded()
        .into_iter()
        .filter(|(r, _)| r["headers"]["X-Amz-Target"] == "AmazonSSM.SendCommand")
        .filter_map(|(_, body)| serde_json::from_str::<Value>(&body).ok())
        .filter(|b| {
            b["InstanceIds"].as_array().is_some_and(|ids| {
                ids.iter()
                    .any(|i| instances.iter().any(|x| i == x.as_str()))
            })
        })
        .collect()
}

/// Whether a SendCommand request was sent for the activity `name`: its comment is
/// `experiment-broker: <name> #<token>`, the token (16 hex digits) marking that one send.
pub fn is_for_activity(request: &Value, name: &str) -> bool {
    let prefix = format!("experiment-broker: {name} #");
    request["Comment"].as_str().is_some_and(|comment| {
        comment
            .strip_prefix(&prefix)
            .is_some_and(|token| token.len() == 16 && token.chars().all(|c| c.is_ascii_hexdigit()))
    })
}

/// The SendCommand requests for the activity `name` that name one of `instances`, as sent.
pub fn sent_for(instances: &[String], name: &str) -> Vec<Value> {
    sent_to(instances)
        .into_iter()
        .filter(|b| is_for_activity(b, name))
        .collect()
}

/// The deployment guard-rail variables the tests' own environment may carry: unset (in
/// `Env::unset`), the defaults apply and the experiment says what it allows.
pub const DEPLOYMENT_GUARD_RAILS: &[&str] = &[
    "BROKER_OPT_IN_TAG",
    "BROKER_MAX_TARGETS",
    "BROKER_MAX_PERCENT",
];

/// How a `worker` command is set up beyond the emulator's endpoint and credentials, which it
/// always gets.
#[derive(Clone, Copy, Default)]
pub struct Env<'a> {
    /// Leave Python in reach. Without this it is out of reach (`PATH` without it,
    /// `BROKER_PYTHON` pointing nowhere): what runs must be native.
    pub with_python: bool,
    /// Variables not inherited from the environment the tests run in (deployment settings,
    /// such as `BROKER_OPT_IN_TAG`, that would change what is refused).
    pub unset: &'a [&'a str],
    /// `BROKER_STATE_DIR`: where a lone `worker run` keeps its locks (the embedded store).
    pub state_dir: Option<&'a Path>,
}

impl Env<'_> {
    fn apply(&self, command: &mut Command) {
        command
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        if !self.with_python {
            command
                .env("PATH", "/usr/bin:/bin")
                .env("BROKER_PYTHON", "/nonexistent/python3");
        }
        if let Some(dir) = self.state_dir {
            command.env("BROKER_STATE_DIR", dir);
        }
        for name in self.unset {
            command.env_remove(name);
        }
    }
}

/// Set `command` up on the emulator as `env` says (for a command built elsewhere).
pub fn command_env(command: &mut Command, env: Env) {
    env.apply(command);
}

/// `worker ARGS` in `sandbox`, on the emulator, set up as `env` says.
pub fn command(sandbox: &Sandbox, args: &[&str], env: Env) -> Command {
    let mut command = sandbox.command(args);
    env.apply(&mut command);
    command
}

/// `worker run --journal-path J [extra...] EXPERIMENT` in `sandbox`, on the emulator, set up
/// as `env` says.
pub fn run(sandbox: &Sandbox, experiment: &Path, extra: &[&str], env: Env) -> Outcome {
    sandbox.run_with(experiment, extra, |command| env.apply(command))
}

/// A Chaos Toolkit action calling `module.func(**arguments)`.
pub fn action(name: &str, module: &str, func: &str, arguments: Value) -> Value {
    json!({"type": "action", "name": name,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}})
}

/// A Chaos Toolkit probe calling `module.func(**arguments)`, with its tolerance.
pub fn probe(name: &str, module: &str, func: &str, arguments: Value, tolerance: Value) -> Value {
    json!({"type": "probe", "name": name, "tolerance": tolerance,
        "provider": {"type": "python", "module": module, "func": func, "arguments": arguments}})
}

/// An experiment running `method`, with the broker's `extension` if any.
pub fn experiment(title: &str, method: Vec<Value>, extension: Option<Value>) -> Value {
    let mut e = json!({"title": title, "description": "d", "method": method});
    if let Some(x) = extension {
        e["extensions"] = json!([x]);
    }
    e
}

/// A JSON list of ids, sorted.
pub fn sorted(v: &Value) -> Vec<String> {
    let mut ids: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("a list of ids: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}
