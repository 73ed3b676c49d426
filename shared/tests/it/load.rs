//! The native load actions and probes against a local server on 127.0.0.1: the generator keeps
//! its arrival rate whatever the server does and measures latency from the intended send
//! times; a full set of slots counts requests as missed, not delayed; the probes judge the
//! run's own records, in the background of the method too, and never another run's; bad
//! arguments are located problems at validation.

use super::load_server::LoadServer;
use serde_json::{Value, json};
use shared::engine::{RunOptions, run_experiment};
use shared::load::document::Format;
use shared::load::{Vars, load_experiment_text};
use shared::model::Journal;
use shared::providers::Providers;
use shared::providers::registry::{NativeCall, Registry};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn providers() -> Arc<Providers> {
    let mut registry = Registry::new();
    shared::providers::load::register(&mut registry);
    Arc::new(Providers::new(registry))
}

async fn generate(arguments: Value) -> Value {
    let p = providers();
    let action = p
        .registry
        .get("experimentvr.load.actions", "load_generate")
        .unwrap();
    action
        .call(NativeCall {
            arguments: arguments.as_object().unwrap().clone(),
            ..NativeCall::default()
        })
        .await
        .unwrap()
}

fn action(name: &str, func: &str, arguments: Value) -> Value {
    json!({"type": "action", "name": name, "provider": {"type": "python",
        "module": "experimentvr.load.actions", "func": func, "arguments": arguments}})
}

fn probe(name: &str, func: &str, arguments: Value) -> Value {
    json!({"type": "probe", "name": name, "provider": {"type": "python",
        "module": "experimentvr.load.probes", "func": func, "arguments": arguments}})
}

fn with(mut activity: Value, key: &str, value: Value) -> Value {
    activity[key] = value;
    activity
}

async fn run(doc: Value) -> Journal {
    let p = providers();
    let e = load_experiment_text(&doc.to_string(), Format::Json, None, &Vars::default(), &p)
        .unwrap_or_else(|e| panic!("{e}"));
    run_experiment(
        Arc::new(e),
        &Vars::default(),
        &RunOptions::default(),
        p,
        CancellationToken::new(),
        None,
    )
    .await
    .unwrap()
}

fn runs(journal: &Journal) -> Vec<Value> {
    serde_json::to_value(journal).unwrap()["run"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_server_slower_than_the_arrival_rate_shows_as_latency_not_as_a_lower_rate() {
    let server = LoadServer::start();
    // the server answers one request at a time in 20 ms: 50 a second at most; 100 a second
    // arrive for 1 s, so the queue grows and the last requests wait about half a second
    let out =
        generate(json!({"load": server.url("/serial/20"), "count": 100, "duration": 1})).await;
    assert_eq!(out["scheduled"], 100);
    assert_eq!(out["sent"], 100, "every request sent on schedule: {out}");
    assert_eq!(
        (&out["missed"], &out["error_count"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(out["status_counts"], json!({"200": 100}));
    assert_eq!(
        server.answered.load(std::sync::atomic::Ordering::Relaxed),
        100
    );
    let rate = out["achieved_rate"].as_f64().unwrap();
    assert!((90.0..=110.0).contains(&rate), "{out}");
    let rt = &out["response_time"];
    // a closed-model generator would report ~20 ms for each request
    assert!(rt["max"].as_f64().unwrap() > 600.0, "{out}");
    assert!(rt["p90"].as_f64().unwrap() > 500.0, "{out}");
    assert!(rt["min"].as_f64().unwrap() >= 19.0, "{out}");
    for key in ["avg", "p50", "p99"] {
        assert!(rt[key].is_f64(), "{key}: {out}");
    }
    assert!(
        out["throughput"].as_f64().unwrap() < 75.0,
        "answers/s is what the server managed: {out}"
    );
}

#[tokio::test]
async fn requests_due_while_every_slot_is_taken_are_missed_not_delayed() {
    let server = LoadServer::start();
    // 4 slots, 300 ms per answer: at 40 a second the slots fill after 4 requests, free up
    // 300 ms later, and so on; the rest are counted missed and errors
    let out = generate(
        json!({"load": server.url("/slow/300"), "count": 40, "duration": 1,
        "max_in_flight": 4}),
    )
    .await;
    let (sent, missed) = (
        out["sent"].as_u64().unwrap(),
        out["missed"].as_u64().unwrap(),
    );
    assert_eq!(sent + missed, 40, "{out}");
    assert!((8..=16).contains(&sent), "{out}");
    assert_eq!(out["error_count"].as_u64().unwrap(), missed, "{out}");
    assert_eq!(out["status_counts"]["missed"].as_u64().unwrap(), missed);
    let mut codes = out["status_counts"].as_object().unwrap().clone();
    codes.remove("missed");
    assert_eq!(codes, *json!({"200": sent}).as_object().unwrap());
}

#[tokio::test]
async fn errors_timeouts_and_refused_connections_are_counted_by_kind() {
    let server = LoadServer::start();
    let out =
        generate(json!({"load": server.url("/status/503"), "count": 20, "duration": 0.5})).await;
    assert_eq!(out["status_counts"], json!({"503": 10}));
    assert_eq!(out["error_count"], 10);
    let out = generate(
        json!({"load": server.url("/slow/2000"), "count": 10, "duration": 0.3,
        "timeout": 0.2}),
    )
    .await;
    assert_eq!(out["status_counts"], json!({"timeout": 3}), "{out}");
    assert!(out["response_time"]["avg"].is_null(), "no answer: {out}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let out = generate(json!({"load": url, "count": 10, "duration": 0.3})).await;
    assert_eq!(out["status_counts"], json!({"error": 3}), "{out}");
    assert_eq!(out["error_count"], 3);
}

#[tokio::test]
async fn the_probes_judge_the_runs_own_requests_in_their_window_even_from_the_background() {
    let server = LoadServer::start();
    let now = time::OffsetDateTime::now_utc();
    let doc = json!({"title": "load", "description": "d", "method": [
        with(action("demo load", "load_generate_demo", json!({
            "target": server.url("/"), "intensity": 100, "load_duration": 1})),
            "background", json!(true)),
        with(probe("within sla", "load_probe_relative",
            json!({"testday": "today", "minutes": 1, "sla": "250", "missed_percent": 5})),
            "pauses", json!({"before": 1.5})),
        probe("impossible sla", "load_probe_relative",
            json!({"testday": "today", "minutes": 1, "sla": 0.001, "missed_percent": 50})),
        probe("window", "load_probe_absolute", json!({"testday": "today",
            "teststart": format!("{} {:02}:{:02}:{:02}", now.date(), now.hour(), now.minute(), now.second()),
            "testend": "2100-01-01T00:00:00Z", "sla": 250, "missed_percent": 1})),
        probe("before the load", "load_probe_absolute", json!({"testday": "today",
            "teststart": "2020-01-01 00:00:00", "testend": "2020-01-01 01:00:00", "sla": 250,
            "missed_percent": 1})),
    ]});
    let journal = run(doc).await;
    let all = runs(&journal);
    let by_name = |name: &str| {
        all.iter()
            .find(|r| r["activity"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {all:?}"))
            .clone()
    };
    let load = by_name("demo load");
    assert_eq!(load["status"], "succeeded", "{load}");
    assert_eq!(load["output"]["sent"], 100);
    assert_eq!(load["output"]["target"], server.url("/"));
    assert_eq!(by_name("within sla")["output"], json!(true));
    assert_eq!(by_name("impossible sla")["output"], json!(false));
    assert_eq!(by_name("window")["output"], json!(true));
    let before = by_name("before the load");
    assert_eq!(before["status"], "failed");
    assert!(
        before["exception"].to_string().contains("no request of this run's load generators was sent between 2020-01-01T00:00:00.000Z and 2020-01-01T01:00:00.000Z"),
        "{before}"
    );

    // another run never sees this run's records
    let alone = run(json!({"title": "alone", "description": "d", "method": [
        probe("other run", "load_probe_relative",
            json!({"testday": "today", "minutes": 5, "sla": 250, "missed_percent": 5}))]}))
    .await;
    let other = &runs(&alone)[0];
    assert_eq!(other["status"], "failed");
    assert!(
        other["exception"]
            .to_string()
            .contains("(0 generator(s) in this run)"),
        "{other}"
    );
}

#[test]
fn bad_load_arguments_are_located_problems_at_validation() {
    let p = providers();
    let doc = json!({"title": "t", "description": "d", "method": [
        action("a", "load_generate", json!({"load": "ftp://x/", "count": 0})),
        action("b", "load_generate_demo", json!({"intensity": "many", "load_duration": -1})),
        probe("c", "load_probe_absolute", json!({"testday": "d", "teststart": "noon",
            "testend": "2026-12-01 10:00:00", "sla": "fast", "missed_percent": 120})),
        probe("d", "load_probe_relative", json!({"minutes": 5, "sla": 250, "missed_percent": 5})),
    ]});
    let err = load_experiment_text(&doc.to_string(), Format::Json, None, &Vars::default(), &p)
        .unwrap_err()
        .to_string();
    for expected in [
        "method[0].provider.arguments.load: \"ftp://x/\" is not an http:// or https:// URL",
        "method[0].provider.arguments.count: is 0, out of range",
        "method[1].provider.arguments: required argument `target` is missing",
        "method[1].provider.arguments.intensity: is \"many\", not a number",
        "method[1].provider.arguments.load_duration: is -1, out of range",
        "method[2].provider.arguments.teststart: \"noon\" is not a time",
        "method[2].provider.arguments.sla: is \"fast\"",
        "method[2].provider.arguments.missed_percent: is 120",
        "method[3].provider.arguments: required argument `testday` is missing",
    ] {
        assert!(err.contains(expected), "{expected}\nnot in\n{err}");
    }
}
