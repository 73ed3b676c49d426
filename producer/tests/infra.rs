//! The deployment and the binaries agree: every `BROKER_*` variable the CloudFormation template
//! sets is one the binaries read, and the nightly schedule's message is one the producer
//! accepts. (The template itself is checked by `cfn-lint` in `scripts/test.sh`.)

use std::path::Path;
use std::process::Command;

fn template() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/experiment-broker.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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
    use broker::broker::triggers::{SuiteLocation, Trigger, parse_trigger};
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
