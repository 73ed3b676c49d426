//! The native CloudWatch metric probes (`chaosaws.cloudwatch.probes.get_metric_statistics`,
//! `get_metric_data`), run by `worker run` with no Python against the moto server: data put
//! with boto3 (moto's own client) is read back with chaosaws's arguments and outputs, as a
//! steady-state tolerance and in the method; a window with no data is 0 as in chaosaws; no
//! dimension at all is a failed probe saying so.

use crate::util;

use serde_json::{Value, json};
use util::Sandbox;
use util::moto::{self, Env, endpoint, experiment, probe, venv_python};

/// Put `values` of `metric` in `namespace` with dimension `InstanceId=instance`, 30 s ago.
const PUT: &str = r#"
import datetime, json, sys
import boto3
endpoint, namespace, metric, instance, values = sys.argv[1:6]
cw = boto3.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
at = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=30)
cw.put_metric_data(Namespace=namespace, MetricData=[
    {"MetricName": metric, "Dimensions": [{"Name": "InstanceId", "Value": instance}],
     "Timestamp": at, "Value": float(v), "Unit": "Milliseconds"} for v in json.loads(values)])
"#;

fn put(namespace: &str, metric: &str, instance: &str, values: &[f64]) {
    let out = std::process::Command::new(venv_python())
        .args(["-c", PUT, &endpoint(), namespace, metric, instance])
        .arg(json!(values).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "put_metric_data on moto failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn metric_probe(name: &str, func: &str, arguments: Value) -> Value {
    let mut p = probe(
        name,
        "chaosaws.cloudwatch.probes",
        func,
        arguments,
        json!(null),
    );
    p.as_object_mut().unwrap().remove("tolerance");
    p
}

#[test]
fn metric_probes_read_back_what_was_put_with_chaosaws_arguments_and_outputs() {
    let namespace = format!("Broker/Metrics-{}", std::process::id());
    put(&namespace, "Latency", "i-0abc", &[10.0, 20.0, 30.0]);
    let pair = json!({"namespace": namespace, "metric_name": "Latency",
        "dimension_name": "InstanceId", "dimension_value": "i-0abc"});
    let with = |extra: Value| {
        let mut args = pair.clone();
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        args
    };
    let hypothesis = probe(
        "average latency within bounds",
        "chaosaws.cloudwatch.probes",
        "get_metric_statistics",
        with(json!({"statistic": "Average", "duration": 300})),
        json!({"type": "range", "range": [15, 25]}),
    );
    let mut doc = experiment(
        "metrics",
        vec![
            metric_probe(
                "max by dimensions list",
                "get_metric_statistics",
                json!({"namespace": namespace, "metric_name": "Latency", "statistic": "Maximum",
                    "duration": 300, "dimensions": [{"Name": "InstanceId", "Value": "i-0abc"}]}),
            ),
            metric_probe(
                "an hour ago",
                "get_metric_statistics",
                with(json!({"statistic": "Sum", "duration": 300, "offset": 3600})),
            ),
            metric_probe(
                "data sum",
                "get_metric_data",
                with(json!({"statistic": "Sum", "duration": 600, "period": 60})),
            ),
            metric_probe(
                "data maximum",
                "get_metric_data",
                with(json!({"statistic": "Maximum"})),
            ),
            metric_probe(
                "no dimension",
                "get_metric_data",
                json!({"namespace": namespace, "metric_name": "Latency", "statistic": "Sum"}),
            ),
        ],
        None,
    );
    doc["steady-state-hypothesis"] = json!({"title": "latency", "probes": [hypothesis]});
    let sandbox = Sandbox::new();
    let path = sandbox.write_json("metrics.json", &doc);
    let validated = sandbox.validate(&path, &[]);
    assert_eq!(validated.code, 0, "{}", validated.stderr);

    let out = moto::run(&sandbox, &path, &[], Env::default());
    let journal = out.journal();
    let before = &journal["steady_states"]["before"];
    assert_eq!(
        before["steady_state_met"], true,
        "{journal:#}\n{}",
        out.stderr
    );
    assert_eq!(before["probes"][0]["output"], json!(20.0));
    let runs = journal["run"].as_array().unwrap();
    let output = |name: &str| {
        runs.iter()
            .find(|r| r["activity"]["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {journal:#}"))
            .clone()
    };
    assert_eq!(output("max by dimensions list")["output"], json!(30.0));
    assert_eq!(
        output("an hour ago")["output"],
        json!(0),
        "no datapoint is 0"
    );
    assert_eq!(output("data sum")["output"], json!(60.0));
    assert_eq!(output("data maximum")["output"], json!(30.0));
    let none = output("no dimension");
    assert_eq!(none["status"], "failed");
    assert!(
        none["exception"]
            .to_string()
            .contains("You must supply argument for dimensions"),
        "{none}"
    );
}

#[test]
fn a_statistic_cloudwatch_does_not_compute_is_a_located_problem() {
    let sandbox = Sandbox::new();
    let doc = experiment(
        "bad statistic",
        vec![metric_probe(
            "p",
            "get_metric_statistics",
            json!({"namespace": "N", "metric_name": "M", "statistic": "Mean",
                "dimension_name": "A", "dimension_value": "B", "duration": -5}),
        )],
        None,
    );
    let path = sandbox.write_json("bad.json", &doc);
    let out = sandbox.validate(&path, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for expected in [
        "method[0].provider.arguments.statistic",
        "one of SampleCount, Average, Sum, Minimum, Maximum",
        "method[0].provider.arguments.duration",
    ] {
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
}
