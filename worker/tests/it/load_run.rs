//! `worker run` of an experiment in the seed's shape that drives HTTP load in the background of
//! its method and judges it with the seed's SLA probe, with no Python: the binary's registry
//! holds the load actions and probes, `load_generate` takes its target from the configuration's
//! `load_target` (the seed's experiments give none), and the probe reads the run's own records.

use crate::util::{Sandbox, TestServer};
use serde_json::json;
use std::sync::atomic::Ordering;

#[test]
fn a_background_load_is_judged_by_the_seeds_sla_probe_in_the_same_run() {
    let server = TestServer::start();
    let sandbox = Sandbox::new();
    let experiment = sandbox.write(
        "load.yml",
        &format!(
            r#"
version: 1.0.0
title: Health endpoint under steady load
description: Forty requests a second for a second, then the SLA is judged
configuration:
  load_target: '{}/health'
method:
  - type: action
    name: Establish load of 40 tps
    background: true
    provider:
      type: python
      module: experimentvr.load.actions
      func: load_generate
      arguments:
        count: 40
        duration: 1
  - type: probe
    name: load_report
    pauses:
      before: 1.5
    provider:
      type: python
      module: experimentvr.load.probes
      func: load_probe_relative
      arguments:
        testday: 'today'
        minutes: 1
        sla: '1000'
        missed_percent: 5
"#,
            server.base
        ),
    );
    let out = sandbox.run_with(&experiment, &[], |c| {
        c.env("PATH", "/usr/bin:/bin")
            .env("BROKER_PYTHON", "/nonexistent/python3");
    });
    assert_eq!(out.code, 0, "{}", out.stderr);
    let journal = out.journal();
    assert_eq!(journal["status"], "completed", "{journal:#}");
    let runs = journal["run"].as_array().unwrap();
    let load = &runs[0];
    assert_eq!(load["activity"]["name"], "Establish load of 40 tps");
    assert_eq!(
        load["output"]["target"],
        json!(format!("{}/health", server.base))
    );
    assert_eq!(load["output"]["sent"], 40, "{load:#}");
    assert_eq!(load["output"]["error_count"], 0, "{load:#}");
    assert_eq!(load["output"]["status_counts"], json!({"200": 40}));
    assert_eq!(server.hits.load(Ordering::SeqCst), 40);
    assert_eq!(runs[1]["activity"]["name"], "load_report");
    assert_eq!(runs[1]["output"], json!(true), "{journal:#}");
}
