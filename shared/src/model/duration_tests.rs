//! Table tests of the declared-duration estimate (`duration.rs`).

use super::*;
use crate::load::Vars;
use crate::load::validate::{Checks, validate};
use serde_json::json;

fn experiment(doc: Value) -> Experiment {
    validate(
        &doc,
        &Checks {
            vars: &Vars::default(),
            check_executables: false,
        },
    )
    .unwrap_or_else(|p| panic!("{doc}: {p:?}"))
}

/// An experiment whose method is this one action.
fn one(action: Value) -> Experiment {
    experiment(json!({"title": "t", "description": "d", "method": [action]}))
}

fn action(provider: Value) -> Value {
    json!({"type": "action", "name": "a", "provider": provider})
}

fn values() -> Map<String, Value> {
    json!({"long": 600, "text": "soon", "d": "120"})
        .as_object()
        .unwrap()
        .clone()
}

fn bound(activity: Value) -> Bound {
    let e = one(activity);
    let Step::Activity(a) = &e.method[0] else {
        panic!()
    };
    activity_bound(a, &values())
}

fn fault(func: &str, args: Value) -> Value {
    action(
        json!({"type": "python", "module": "experimentvr.ec2.actions", "func": func,
        "arguments": args}),
    )
}

fn known(s: f64) -> Bound {
    Bound::Known(s)
}

fn partly(s: f64, why: &str) -> Bound {
    Bound::Partly(s, why.into())
}

#[test]
fn each_activity_declares_its_pauses_timeouts_and_fault_durations() {
    let process = |t: Value| {
        let mut p = json!({"type": "process", "path": "sleep"});
        if !t.is_null() {
            p["timeout"] = t;
        }
        action(p)
    };
    let http = |t: Value, retries: u32| {
        action(json!({"type": "http", "url": "http://x", "timeout": t, "max_retries": retries}))
    };
    let paused = |before: Value, after: Value| {
        let mut a = process(json!(5));
        a["pauses"] = json!({"before": before, "after": after});
        a
    };
    let cases: Vec<(&str, Value, Bound)> = vec![
        ("process with a timeout", process(json!(30)), known(30.0)),
        (
            "process with none",
            process(Value::Null),
            partly(0.0, "process `sleep` has no timeout"),
        ),
        ("pauses add up", paused(json!(10), json!(2.5)), known(17.5)),
        (
            "a numeric string from a value",
            paused(json!("${d}"), json!(0)),
            known(125.0),
        ),
        (
            "a pause from a value",
            paused(json!("${long}"), json!(0)),
            known(605.0),
        ),
        (
            "a pause no value resolves",
            paused(json!("${nope}"), json!(1)),
            partly(6.0, "pause before \"${nope}\" is not a known number"),
        ),
        (
            "a pause that is not a number",
            paused(json!(1), json!("${text}")),
            partly(6.0, "pause after \"${text}\" is not a known number"),
        ),
        (
            "http: one number bounds connect and read",
            http(json!(3), 0),
            known(6.0),
        ),
        ("http: [connect, read]", http(json!([1, 4]), 0), known(5.0)),
        (
            "http: each retry may take as long",
            http(json!([1, 4]), 2),
            known(15.0),
        ),
        (
            "http: a timeout from a value",
            http(json!("${d}"), 0),
            known(240.0),
        ),
        (
            "http with no timeout",
            http(Value::Null, 0),
            partly(0.0, "http timeout null does not bound the call"),
        ),
        (
            "a native probe declares nothing",
            action(
                json!({"type": "python", "module": "chaosaws.ec2.probes", "func": "describe_instances", "arguments": {}}),
            ),
            partly(
                0.0,
                "`chaosaws.ec2.probes.describe_instances` declares no duration",
            ),
        ),
        (
            "the seed's stress_memory: its duration",
            fault("stress_memory", json!({"duration": "300"})),
            known(300.0),
        ),
        (
            "the seed's stress_memory: its default",
            fault("stress_memory", json!({})),
            known(60.0),
        ),
        (
            "a ladder fault's own duration",
            fault("ec2_stress_cpu", json!({"ec2_stress_cpu_duration": 90})),
            known(90.0),
        ),
        (
            "a kill lasts nothing by default",
            fault("ec2_kill_process", json!({"ec2_kill_process_pid": 1})),
            known(0.0),
        ),
        (
            "a ladder: every stage, by suffix or full name, else the base",
            fault(
                "ec2_stress_network_latency",
                json!({"ec2_stress_network_latency_duration": 30,
                "ec2_stress_network_latency_parameter_map": [{"duration": 100},
                    {"ec2_stress_network_latency_duration": "200"}, {"network_delay": 5}]}),
            ),
            known(330.0),
        ),
        (
            "max_duration bounds the ladder (a longer one is refused before it acts)",
            fault(
                "ec2_stress_io",
                json!({"ec2_stress_io_parameter_map": [{"duration": 100}, {"duration": 200}],
                "max_duration": "150"}),
            ),
            known(150.0),
        ),
        (
            "a duration from a value",
            fault(
                "ec2_stress_memory",
                json!({"ec2_stress_memory_duration": "${long}"}),
            ),
            known(600.0),
        ),
        (
            "a duration that is not whole seconds",
            fault(
                "ec2_blackhole_by_ip",
                json!({"ec2_blackhole_by_ip_ip": "10.0.0.1", "ec2_blackhole_by_ip_duration": "${text}"}),
            ),
            partly(
                0.0,
                "`ec2_blackhole_by_ip` duration \"${text}\" is not a known whole number of seconds",
            ),
        ),
        (
            "an experimentvr action that is not an SSM fault",
            fault("terminate_instance", json!({})),
            partly(
                0.0,
                "`experimentvr.ec2.actions.terminate_instance` declares no duration",
            ),
        ),
    ];
    for (what, activity, expected) in cases {
        assert_eq!(bound(activity.clone()), expected, "{what}: {activity}");
    }
}

#[test]
fn every_ec2_fault_is_in_the_table_once_with_its_default() {
    let mut names: Vec<&str> = FAULT_DURATIONS.iter().map(|f| f.0).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), FAULT_DURATIONS.len());
    for (func, default, ladder, _) in FAULT_DURATIONS {
        let name = if *ladder {
            format!("{func}_duration")
        } else {
            "duration".into()
        };
        let args = json!({ name: 7 }).as_object().unwrap().clone();
        assert_eq!(
            fault_seconds(func, &args, &Map::new()),
            Some(Ok(7.0)),
            "{func}"
        );
        assert_eq!(
            fault_seconds(func, &Map::new(), &Map::new()),
            Some(Ok(*default as f64)),
            "{func}"
        );
    }
    assert_eq!(
        fault_seconds("stop_instances", &Map::new(), &Map::new()),
        None
    );
}

#[test]
fn the_hypothesis_counts_as_often_as_the_strategy_runs_it() {
    use HypothesisStrategy as S;
    for (s, runs) in [
        (S::Default, 2),
        (S::BeforeMethodOnly, 1),
        (S::AfterMethodOnly, 1),
        (S::DuringMethodOnly, 1),
        (S::Continuously, 3),
        (S::Skip, 0),
    ] {
        assert_eq!(hypothesis_runs(s), runs, "{s:?}");
    }
}

fn whole() -> Experiment {
    let p = |name: &str, t: u32| {
        json!({"type": "probe", "name": name, "tolerance": 0,
            "provider": {"type": "process", "path": "true", "timeout": t}})
    };
    let mut with_probe_tolerance = p("checked", 1);
    with_probe_tolerance["tolerance"] = json!({"type": "probe", "name": "tol",
        "provider": {"type": "process", "path": "true", "timeout": 2}});
    experiment(json!({"title": "t", "description": "d",
        "configuration": {"c": {"type": "probe", "name": "cfg",
            "provider": {"type": "process", "path": "true", "timeout": 1000}}},
        "steady-state-hypothesis": {"title": "h", "probes": [p("h1", 10), with_probe_tolerance]},
        "method": [
            {"type": "action", "name": "wait", "provider": {"type": "process", "path": "sleep"},
             "pauses": {"after": 100}},
            {"ref": "h1"},
            {"type": "action", "name": "bg", "background": true,
             "provider": {"type": "process", "path": "true", "timeout": 20000}}],
        "rollbacks": [{"type": "action", "name": "undo",
            "provider": {"type": "process", "path": "true", "timeout": 5}}]}))
}

#[test]
fn an_experiment_declares_the_sum_of_every_phase_and_lists_what_is_unbounded() {
    let e = whole();
    // configuration 1000, hypothesis (10 + 1 + 2) per run, method 100 + 10 (the ref) + 20000
    // (background activities are counted as if sequential: an upper bound), rollbacks 5
    for (strategy, total) in [
        (HypothesisStrategy::Default, 21_141.0),
        (HypothesisStrategy::Skip, 21_115.0),
        (HypothesisStrategy::Continuously, 21_154.0),
    ] {
        let got = estimate(&e, strategy, &Map::new());
        assert_eq!(got.known, total, "{strategy:?}");
        assert_eq!(
            got.unknown,
            ["method[0] 'wait': process `sleep` has no timeout"],
            "{strategy:?}"
        );
    }
}

#[test]
fn a_job_fits_when_what_it_declares_leaves_the_margin_free() {
    let room = (SQS_LEASE_LIMIT - LEASE_MARGIN).as_secs_f64();
    assert_eq!(room, 42_300.0);
    let est = |known: f64, unknown: usize| Estimate {
        known,
        unknown: (0..unknown).map(|i| format!("u{i}")).collect(),
    };
    for (known, unknown, ok) in [
        (0.0, 0, true),
        (room, 0, true),
        (room, 5, true),
        (room + 0.5, 0, false),
        (50_000.0, 1, false),
        (f64::INFINITY, 0, false),
    ] {
        assert_eq!(
            fits("x.json", &est(known, unknown), SQS_LEASE_LIMIT).is_ok(),
            ok,
            "{known} s, {unknown} unknown"
        );
    }
    let e = fits("exp/long.json", &est(50_000.0, 2), SQS_LEASE_LIMIT).unwrap_err();
    for needle in [
        "exp/long.json: declares 13 h 53 min (50000 s",
        "2 more activities declare no bound and are not counted",
        "past 12 h from the first receive",
        "15 min of that is kept",
        "at most 42300 s",
    ] {
        assert!(e.contains(needle), "{needle:?} in {e}");
    }
    let e = fits("x", &est(43_200.0, 1), SQS_LEASE_LIMIT).unwrap_err();
    assert!(
        e.contains("1 more activity declares no bound and is not counted"),
        "{e}"
    );
    assert!(fits("x", &est(1e9, 0), Duration::MAX).is_ok(), "no limit");
}

#[test]
fn durations_read_as_hours_minutes_and_seconds() {
    for (s, text) in [
        (0.0, "0 s"),
        (59.2, "1 min"),
        (61.0, "1 min 1 s"),
        (900.0, "15 min"),
        (43_200.0, "12 h"),
        (50_000.0, "13 h 53 min"),
    ] {
        assert_eq!(human(s), text, "{s}");
    }
}
