//! Logs and traces as an operator's tools see them: `--log-format json` (and
//! `BROKER_LOG_FORMAT`) writes one JSON object a line, the lines inside a job carrying its
//! suite run id, run id and activity; with an OTLP endpoint set, a suite run is one trace
//! (suite → wave → job → activity) sent to it over HTTP/protobuf, named as
//! `OTEL_SERVICE_NAME` says, with no secret of the experiment in it.

use crate::util;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use util::PRODUCER;

const SECRET: &str = "inline-pass-8731";

/// A suite of one experiment whose action is given a secret, in `dir`.
fn secret_suite(dir: &Path) {
    let e = json!({"title": "traced", "description": "d",
        "secrets": {"api": {"pw": SECRET}},
        "steady-state-hypothesis": {"title": "h", "probes": [{"type": "probe", "name": "look", "tolerance": 0,
            "provider": {"type": "process", "path": "true"}}]},
        "method": [{"type": "action", "name": "use-secret", "provider": {"type": "process", "path": "sh",
            "arguments": ["-c", "echo using ${pw}; echo ${pw} >&2"]}}],
        "rollbacks": [{"type": "action", "name": "undo", "provider": {"type": "process", "path": "true"}}]});
    std::fs::write(dir.join("traced.json"), e.to_string()).unwrap();
    std::fs::write(
        dir.join("s.yaml"),
        "name: traced suite\nwaves:\n  - experiments: [traced.json]\n",
    )
    .unwrap();
}

fn producer(dir: &Path) -> Command {
    let mut c = Command::new(PRODUCER);
    c.current_dir(dir)
        .env("BROKER_STATE_DIR", dir.join("state"))
        .env_remove("BROKER_LOG_FORMAT")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES");
    c
}

#[test]
fn json_logs_carry_the_suite_run_the_job_and_the_activity_on_every_line_inside_a_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    secret_suite(d);
    let out = producer(d)
        .args(["run", "--log-format", "json", "s.yaml"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let id = lines[0]["suite_run_id"]
        .as_str()
        .expect("the first line names the suite run");
    let in_job: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"] == "job" || l["span"] == "activity")
        .collect();
    assert!(!in_job.is_empty(), "no line inside the job:\n{stderr}");
    for line in &in_job {
        assert_eq!(line["suite_run_id"], id, "{line}");
        assert_eq!(line["run_id"], "w0-j0", "{line}");
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    for activity in ["look", "use-secret", "undo"] {
        let said = in_job
            .iter()
            .find(|l| l["message"].as_str().is_some_and(|m| m.contains(activity)))
            .unwrap_or_else(|| panic!("no line for {activity}:\n{stderr}"));
        assert_eq!(said["activity"], activity, "{said}");
        assert_eq!(said["span"], "activity", "{said}");
    }
}

#[test]
fn broker_log_format_json_is_the_default_format_of_worker_run_too() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    secret_suite(d);
    let out = Command::new(util::worker_bin())
        .current_dir(d)
        .args(["run", "--journal-path", "j.json", "traced.json"])
        .env("BROKER_LOG_FORMAT", "json")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let action = stderr
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .find(|l| l["message"] == "Action: use-secret")
        .unwrap_or_else(|| panic!("no action line:\n{stderr}"));
    assert_eq!(action["activity"], "use-secret", "{action}");
    assert_eq!(action["level"], "INFO", "{action}");
}

/// An OTLP/HTTP receiver on 127.0.0.1: every request body it was sent to `/v1/traces`.
struct Receiver {
    endpoint: String,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let kept = bodies.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, &kept));
            }
        });
        Receiver { endpoint, bodies }
    }

    /// Every span received, decoded, with its resource's attributes.
    fn spans(&self) -> Vec<(Vec<KeyValue>, Span)> {
        let mut spans = Vec::new();
        for body in self.bodies.lock().unwrap().iter() {
            let request = ExportTraceServiceRequest::decode(body.as_slice())
                .expect("an ExportTraceServiceRequest");
            for rs in request.resource_spans {
                let resource = rs.resource.map(|r| r.attributes).unwrap_or_default();
                for ss in rs.scope_spans {
                    for span in ss.spans {
                        spans.push((resource.clone(), span));
                    }
                }
            }
        }
        spans
    }
}

/// Answer HTTP/1.1 requests on `stream` (kept alive) with 200 and an empty body.
fn serve(stream: TcpStream, bodies: &Mutex<Vec<Vec<u8>>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut head = String::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(head.starts_with("POST /v1/traces "), "{head}");
        bodies.lock().unwrap().push(body);
        let answer =
            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            any_value::Value::StringValue(s) => s.clone(),
            any_value::Value::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

#[test]
fn a_suite_run_is_one_trace_of_suite_wave_job_and_activity_spans_sent_over_otlp() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    secret_suite(d);
    let out = producer(d)
        .args(["run", "s.yaml"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .env("OTEL_SERVICE_NAME", "broker-under-test")
        .env("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for body in receiver.bodies.lock().unwrap().iter() {
        assert!(
            !body.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
            "the secret was exported"
        );
    }
    let spans = receiver.spans();
    assert!(!spans.is_empty(), "nothing was exported:\n{stderr}");
    for (resource, _) in &spans {
        assert_eq!(
            text(resource, "service.name").as_deref(),
            Some("broker-under-test")
        );
        assert_eq!(
            text(resource, "deployment.environment").as_deref(),
            Some("test")
        );
    }
    let named = |name: &str| -> Vec<&Span> {
        spans
            .iter()
            .map(|(_, s)| s)
            .filter(|s| s.name == name)
            .collect()
    };
    let (suite, wave, job, activities) = (
        named("suite"),
        named("wave"),
        named("job"),
        named("activity"),
    );
    assert_eq!(
        (suite.len(), wave.len(), job.len()),
        (1, 1, 1),
        "{spans:#?}"
    );
    let (suite, wave, job) = (suite[0], wave[0], job[0]);
    let id = text(&suite.attributes, "suite_run_id").expect("the suite span names its run");
    assert_eq!(
        text(&suite.attributes, "suite").as_deref(),
        Some("traced suite")
    );
    assert_eq!(
        wave.parent_span_id, suite.span_id,
        "the wave is the suite's"
    );
    assert_eq!(
        job.parent_span_id, wave.span_id,
        "the job is the wave's (its message's traceparent)"
    );
    assert_eq!(text(&job.attributes, "suite_run_id"), Some(id.clone()));
    assert_eq!(text(&job.attributes, "run_id").as_deref(), Some("w0-j0"));
    let mut names: Vec<String> = activities
        .iter()
        .map(|a| {
            assert_eq!(
                a.parent_span_id, job.span_id,
                "an activity is its job's: {a:?}"
            );
            text(&a.attributes, "activity").expect("an activity span names its activity")
        })
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names, ["look", "undo", "use-secret"]);
    assert!(
        spans.iter().all(|(_, s)| s.trace_id == suite.trace_id),
        "one trace per suite run"
    );
}

#[test]
fn a_tripwire_that_keeps_a_job_from_starting_is_an_event_of_its_span() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    secret_suite(d);
    let halt = producer(d)
        .args(["halt", "--reason", "incident 7"])
        .output()
        .unwrap();
    assert!(
        halt.status.success(),
        "{}",
        String::from_utf8_lossy(&halt.stderr)
    );
    let out = producer(d)
        .args(["run", "s.yaml"])
        .env(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("{}/v1/traces", receiver.endpoint),
        )
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = receiver.spans();
    let job = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == "job")
        .unwrap_or_else(|| panic!("no job span: {spans:#?}"));
    let tripped = job
        .events
        .iter()
        .find(|e| text(&e.attributes, "tripwire").is_some())
        .unwrap_or_else(|| panic!("no tripwire event: {:#?}", job.events));
    assert!(
        text(&tripped.attributes, "tripwire").is_some_and(|t| t.contains("incident 7")),
        "{tripped:?}"
    );
    // without OTEL_SERVICE_NAME, the binary names the service
    assert_eq!(
        text(&spans[0].0, "service.name").as_deref(),
        Some("producer")
    );
}

/// Whether a file named `name` is anywhere under `dir`.
fn found(dir: &Path, name: &str) -> bool {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| {
            let path = e.path();
            if path.is_dir() {
                found(&path, name)
            } else {
                path.file_name().is_some_and(|n| n == name)
            }
        })
}

#[test]
fn the_job_message_carries_the_trace_to_a_worker_in_another_process() {
    let receiver = Receiver::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    secret_suite(d);
    let submit = producer(d)
        .args(["submit", "s.yaml"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .output()
        .unwrap();
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let mut worker = Command::new(util::worker_bin())
        .current_dir(d)
        .args(["serve", "--grace", "1"])
        .env("BROKER_STATE_DIR", d.join("state"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint)
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !found(&d.join("state"), "journal.json") {
        assert!(std::time::Instant::now() < until, "the job never ended");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(worker.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(worker.wait().unwrap().code(), Some(0));
    let spans = receiver.spans();
    let find = |name: &str| {
        spans
            .iter()
            .find(|(_, s)| s.name == name)
            .unwrap_or_else(|| panic!("no {name} span: {spans:#?}"))
    };
    let ((producer, wave), (worker, job)) = (find("wave"), find("job"));
    assert_eq!(text(producer, "service.name").as_deref(), Some("producer"));
    assert_eq!(text(worker, "service.name").as_deref(), Some("worker"));
    assert_eq!(
        job.trace_id, wave.trace_id,
        "one trace across the two processes"
    );
    assert_eq!(job.parent_span_id, wave.span_id);
    assert!(
        spans
            .iter()
            .filter(|(_, s)| s.name == "activity")
            .all(|(_, s)| s.parent_span_id == job.span_id && s.trace_id == job.trace_id),
        "{spans:#?}"
    );
}
