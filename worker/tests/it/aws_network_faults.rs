//! The seed's network blackholes (`experimentvr.{dynamodb,s3,network,kafka}.actions`) against
//! moto, run by `worker run` with Python out of reach: each sends `BlackholeAddresses` (or
//! `PointInactiveDNS`) with the right list to exactly the opted-in instances it resolved; a
//! target without the opt-in tag is refused before anything is sent; `--dry actions` sends
//! nothing. AWS's ip-ranges document is served by a stub on 127.0.0.1 (`BROKER_IP_RANGES_URL`),
//! and so is MSK's `ListNodes` (`AWS_ENDPOINT_URL_KAFKA`): moto's MSK has no ListNodes nor
//! GetBootstrapBrokers.

use crate::util;

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use util::Sandbox;
use util::moto::{self, Aws, OPT_IN, sent_to, sorted, team};

/// A stub HTTP server on 127.0.0.1 answering every GET with `body` (JSON), recording the
/// paths asked. Lives as long as the test process (one thread).
struct Stub {
    url: String,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Stub {
    fn start(body: Value) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let paths = Arc::new(Mutex::new(Vec::new()));
        let seen = paths.clone();
        let body = body.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                // the rest of the head (no body on a GET)
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = first.split(' ').nth(1).unwrap_or("").to_string();
                seen.lock().unwrap().push(path);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Stub { url, paths }
    }

    fn paths(&self) -> Vec<String> {
        self.paths.lock().unwrap().clone()
    }
}

/// A small ip-ranges.json of the real shape.
fn ranges() -> Value {
    json!({"syncToken": "1767225600", "createDate": "2026-01-01-00-00-00",
        "prefixes": [
            {"ip_prefix": "52.94.0.0/22", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"},
            {"ip_prefix": "52.94.0.0/22", "region": "us-east-1", "service": "DYNAMODB", "network_border_group": "us-east-1"},
            {"ip_prefix": "3.218.180.0/22", "region": "us-east-1", "service": "DYNAMODB", "network_border_group": "us-east-1"},
            {"ip_prefix": "35.71.64.0/22", "region": "eu-west-1", "service": "DYNAMODB", "network_border_group": "eu-west-1"},
            {"ip_prefix": "52.216.0.0/15", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"},
            {"ip_prefix": "3.5.0.0/19", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"},
            {"ip_prefix": "52.95.0.0/16", "region": "eu-west-1", "service": "S3", "network_border_group": "eu-west-1"}],
        "ipv6_prefixes": [
            {"ipv6_prefix": "2600:1f18::/33", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"}]})
}

/// `worker run` on the emulator (Python out of reach), with the ip-ranges and MSK stubs.
fn run(
    sandbox: &Sandbox,
    experiment: &Path,
    extra: &[&str],
    stubs: &[(&str, &str)],
) -> util::Outcome {
    sandbox.run_with(experiment, extra, |command| {
        command
            .env("AWS_ENDPOINT_URL", moto::endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("PATH", "/usr/bin:/bin")
            .env("BROKER_PYTHON", "/nonexistent/python3")
            .env_remove("BROKER_OPT_IN_TAG");
        for (k, v) in stubs {
            command.env(k, v);
        }
    })
}

/// The one command sent for the activity `name`: (document, sorted instance ids, parameters).
fn command(instances: &[String], name: &str) -> (String, Vec<String>, Value) {
    let found = moto::sent_for(instances, name);
    assert_eq!(found.len(), 1, "one command for {name}: {found:?}");
    (
        found[0]["DocumentName"].as_str().unwrap().to_string(),
        sorted(&found[0]["InstanceIds"]),
        found[0]["Parameters"].clone(),
    )
}

fn action(name: &str, module: &str, func: &str, arguments: Value) -> Value {
    moto::action(
        name,
        &format!("experimentvr.{module}.actions"),
        func,
        arguments,
    )
}

#[test]
fn each_blackhole_sends_its_list_to_exactly_the_opted_in_targets() {
    let aws = Aws::new();
    aws.register("BlackholeAddresses");
    aws.register("PointInactiveDNS");
    let team = team("blackholes");
    let fleet = aws.instances(2, &[("team", &team), OPT_IN]);
    let outsider = aws.instances(1, &[("team", "someone-else"), OPT_IN]);
    let stub = Stub::start(ranges());
    let url = format!("{}/ip-ranges.json", stub.url);
    let select = |more: Value| {
        let mut a = json!({"targets": null, "test_target_type": "ALL", "tag_key": "tag:team",
                           "tag_value": team, "region": "us-east-1"});
        a.as_object_mut()
            .unwrap()
            .extend(more.as_object().unwrap().clone());
        a
    };
    let e = moto::experiment(
        "blackholes",
        vec![
            action(
                "dynamodb",
                "dynamodb",
                "blackhole_dynamodb",
                select(json!({"duration": "30"})),
            ),
            action("s3", "s3", "blackhole_s3", select(json!({"duration": 20}))),
            action(
                "secrets",
                "network",
                "blackhole_secrets_manager",
                select(json!({})),
            ),
            action(
                "urls",
                "network",
                "blackhole_by_url",
                select(json!({"urls": "https://api.example.com/v1 db.example.org:5432"})),
            ),
            action(
                "dns",
                "network",
                "point_inactive_dns",
                select(json!({"names": ["db.internal", "api.internal"], "duration": 15})),
            ),
        ],
        None,
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("blackholes.json", &e);
    let out = run(&sandbox, &file, &[], &[("BROKER_IP_RANGES_URL", &url)]);
    aws.terminate(&fleet);
    aws.terminate(&outsider);
    let journal = out.journal().clone();
    assert_eq!(out.code, 0, "{}\n{journal:#}", out.output());
    let mut fleet_sorted = fleet.clone();
    fleet_sorted.sort();
    for (i, (name, document, params)) in [
        ("dynamodb", "BlackholeAddresses",
            json!({"duration": ["30"], "addresses": ["3.218.180.0/22,52.94.0.0/22"]})),
        ("s3", "BlackholeAddresses",
            json!({"duration": ["20"], "addresses": ["3.5.0.0/19,52.216.0.0/15"]})),
        ("secrets", "BlackholeAddresses",
            json!({"duration": ["180"], "addresses": ["secretsmanager.us-east-1.amazonaws.com"]})),
        ("urls", "BlackholeAddresses",
            json!({"duration": ["60"], "addresses": ["api.example.com,db.example.org"]})),
        ("dns", "PointInactiveDNS",
            json!({"duration": ["15"], "names": ["db.internal,api.internal"], "address": ["192.0.2.1"]})),
    ]
    .into_iter()
    .enumerate()
    {
        let run = &journal["run"][i];
        assert_eq!(run["activity"]["name"], name);
        assert_eq!(run["status"], "succeeded", "{name}: {run:#}");
        assert_eq!(sorted(&run["output"]["targets"]), fleet_sorted, "{name}");
        let (sent, ids, parameters) = command(&fleet, name);
        assert_eq!((sent.as_str(), &ids), (document, &fleet_sorted), "{name}");
        assert_eq!(parameters, params, "{name}");
    }
    assert!(sent_to(&outsider).is_empty(), "the other team got nothing");
    // targets, then locks, then the command: on record before anything was sent
    let kinds: Vec<&str> = journal["broker"]["records"]
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["targets", "locks", "ssm_command"]);
    assert_eq!(
        stub.paths(),
        ["/ip-ranges.json"],
        "fetched once for the three service blackholes (cached in the process)"
    );
    assert!(
        journal["run"][2]["output"]["source"]["why"]
            .as_str()
            .unwrap()
            .contains("no SECRETSMANAGER prefix"),
        "{:#}",
        journal["run"][2]["output"]
    );
}

#[test]
fn kafka_brokers_are_blackholed_on_the_seed_s_node_targets() {
    let aws = Aws::new();
    aws.register("BlackholeAddresses");
    let team = team("kafka");
    let clients = aws.instances(2, &[("Name", &team), OPT_IN]);
    let brokers = json!({"nodeInfoList": [
        {"nodeType": "BROKER", "brokerNodeInfo": {"brokerId": 1.0,
            "endpoints": ["b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com"]}},
        {"nodeType": "BROKER", "brokerNodeInfo": {"brokerId": 2.0,
            "endpoints": ["b-2.demo.abc123.c2.kafka.us-east-1.amazonaws.com"]}}]});
    let stub = Stub::start(brokers);
    let arn =
        "arn:aws:kafka:us-east-1:123456789012:cluster/demo/0f1e2d3c-aaaa-bbbb-cccc-000000000001-2";
    let e = moto::experiment(
        "kafka",
        vec![action(
            "kafka",
            "kafka",
            "blackhole_kafka",
            json!({"region": "us-east-1", "msk_cluster": arn, "node_key": "tag:Name",
                   "node_values": [team], "duration": 45}),
        )],
        None,
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("kafka.json", &e);
    let out = run(
        &sandbox,
        &file,
        &[],
        &[("AWS_ENDPOINT_URL_KAFKA", &stub.url)],
    );
    aws.terminate(&clients);
    let journal = out.journal().clone();
    assert_eq!(out.code, 0, "{}\n{journal:#}", out.output());
    let mut expected = clients.clone();
    expected.sort();
    let (document, ids, parameters) = command(&clients, "kafka");
    assert_eq!((document.as_str(), ids), ("BlackholeAddresses", expected));
    assert_eq!(
        parameters,
        json!({"duration": ["45"], "addresses": [
            "b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com,b-2.demo.abc123.c2.kafka.us-east-1.amazonaws.com"]})
    );
    let paths = stub.paths();
    assert_eq!(paths.len(), 1, "{paths:?}");
    assert!(
        paths[0].starts_with("/v1/clusters/arn%3Aaws%3Akafka") && paths[0].contains("/nodes"),
        "ListNodes of the cluster: {paths:?}"
    );
}

#[test]
fn a_target_without_the_opt_in_tag_is_refused_and_a_dry_run_sends_nothing() {
    let aws = Aws::new();
    aws.register("BlackholeAddresses");
    let team = team("netoptin");
    let opted = aws.instances(1, &[("team", &team), OPT_IN]);
    let not_opted = aws.instances(1, &[("team", &team)]);
    let stub = Stub::start(ranges());
    let url = format!("{}/ip-ranges.json", stub.url);
    let s3 = |name: &str| {
        moto::experiment(
            "optin",
            vec![action(
                name,
                "s3",
                "blackhole_s3",
                json!({"test_target_type": "ALL", "tag_key": "tag:team", "tag_value": team,
                       "region": "us-east-1", "duration": 30}),
            )],
            None,
        )
    };
    let sandbox = Sandbox::new();
    let file = sandbox.write_json("optin.json", &s3("s3"));
    let stubs = [("BROKER_IP_RANGES_URL", url.as_str())];
    let out = run(&sandbox, &file, &[], &stubs);
    let journal = out.journal().clone();
    assert_eq!(
        (out.code, journal["status"].as_str()),
        (1, Some("aborted")),
        "{}",
        out.output()
    );
    let refused = &journal["broker"]["refused"][0];
    assert_eq!(refused["rule"], "opt_in", "{journal:#}");
    assert_eq!(refused["target"], not_opted[0].as_str());
    assert!(sent_to(&opted).is_empty() && sent_to(&not_opted).is_empty());

    // only the opted-in one, as a dry run: the plan, nothing sent
    let mut only = s3("dry");
    only["method"][0]["provider"]["arguments"]["targets"] = json!(opted);
    let file = sandbox.write_json("dry.json", &only);
    let out = run(&sandbox, &file, &["--dry", "actions"], &stubs);
    aws.terminate(&opted);
    aws.terminate(&not_opted);
    assert_eq!(out.code, 0, "{}", out.output());
    let output = &out.journal()["run"][0]["output"];
    assert_eq!(output["dry_run"], true);
    assert_eq!(output["addresses"], json!(["3.5.0.0/19", "52.216.0.0/15"]));
    assert!(
        out.stdout
            .contains("dry run: dry would send BlackholeAddresses on"),
        "{}",
        out.output()
    );
    assert!(sent_to(&opted).is_empty(), "a dry run sent nothing");
}

#[test]
fn experiments_with_the_library_s_argument_names_validate_and_plan() {
    let aws = Aws::new();
    let team = team("netplan");
    let fleet = aws.instances(2, &[("team", &team), ("Name", &team), OPT_IN]);
    let ranges = Stub::start(ranges());
    let kafka = Stub::start(
        json!({"nodeInfoList": [{"brokerNodeInfo": {"endpoints": ["b-1.k.kafka.us-east-1.amazonaws.com"]}}]}),
    );
    let arn =
        "arn:aws:kafka:us-east-1:123456789012:cluster/plan/0f1e2d3c-aaaa-bbbb-cccc-000000000002-1";
    // the seed's signatures, argument for argument, as a seed experiment writes them
    let select = format!(
        "targets: null\n        test_target_type: ALL\n        tag_key: 'tag:team'\n        tag_value: {team}\n        region: us-east-1"
    );
    let step = |name: &str, module: &str, func: &str, more: &str| {
        format!(
            "  - type: action\n    name: {name}\n    provider:\n      type: python\n      module: experimentvr.{module}.actions\n      func: {func}\n      arguments:\n        {select}{more}\n"
        )
    };
    let yaml = format!(
        "title: the seed's network blackholes\ndescription: library argument names\nmethod:\n{}{}{}{}{}  - type: action\n    name: kafka\n    provider:\n      type: python\n      module: experimentvr.kafka.actions\n      func: blackhole_kafka\n      arguments:\n        region: us-east-1\n        msk_cluster: {arn}\n        node_key: 'tag:Name'\n        node_values: [{team}]\n",
        step(
            "dynamodb",
            "dynamodb",
            "blackhole_dynamodb",
            "\n        duration: '60'"
        ),
        step("s3", "s3", "blackhole_s3", "\n        duration: '60'"),
        step(
            "secrets",
            "network",
            "blackhole_secrets_manager",
            "\n        duration: '60'"
        ),
        step(
            "urls",
            "network",
            "blackhole_by_url",
            "\n        urls: https://api.example.com"
        ),
        step(
            "dns",
            "network",
            "point_inactive_dns",
            "\n        names: [db.internal]"
        ),
    );
    let sandbox = Sandbox::new();
    let file = sandbox.write("seed-network.yaml", &yaml);
    let out = sandbox.validate(&file, &[]);
    assert_eq!(out.code, 0, "{}", out.output());
    assert!(out.stdout.contains("valid experiment"), "{}", out.output());
    assert!(
        !out.stderr.contains("warning: "),
        "no warning: {}",
        out.stderr
    );
    // a misspelt argument is a located error
    let typo = sandbox.write("typo.yaml", &yaml.replace("urls:", "url:"));
    let out = sandbox.validate(&typo, &[]);
    assert_eq!(out.code, 1, "{}", out.output());
    assert!(
        out.stderr
            .contains("arguments.url: argument `url` is not a parameter of this function"),
        "{}",
        out.stderr
    );

    let out = run(
        &sandbox,
        &file,
        &["--dry", "actions"],
        &[
            ("BROKER_IP_RANGES_URL", &ranges.url),
            ("AWS_ENDPOINT_URL_KAFKA", &kafka.url),
        ],
    );
    aws.terminate(&fleet);
    assert_eq!(out.code, 0, "{}", out.output());
    let mut expected = fleet.clone();
    expected.sort();
    for (i, (name, document)) in [
        ("dynamodb", "BlackholeAddresses"),
        ("s3", "BlackholeAddresses"),
        ("secrets", "BlackholeAddresses"),
        ("urls", "BlackholeAddresses"),
        ("dns", "PointInactiveDNS"),
        ("kafka", "BlackholeAddresses"),
    ]
    .into_iter()
    .enumerate()
    {
        let run = &out.journal()["run"][i];
        assert_eq!(run["status"], "succeeded", "{name}: {run:#}");
        assert_eq!(run["output"]["dry_run"], true, "{name}");
        assert_eq!(run["output"]["document"], document, "{name}");
        assert_eq!(sorted(&run["output"]["targets"]), expected, "{name}");
        assert!(
            out.stdout
                .contains(&format!("dry run: {name} would send {document} on")),
            "{name}: {}",
            out.stdout
        );
    }
    assert!(sent_to(&fleet).is_empty(), "a dry run sent nothing");
}
