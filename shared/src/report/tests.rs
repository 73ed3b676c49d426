//! The formats on one suite run with every kind of job (held with a fault window, deviated,
//! failed under the kill switch with a refusal, never run) and a hostile title.

use super::{Format, Link, Report};
use crate::model::Journal;
use serde_json::{Value, json};

const HOSTILE: &str = "<script>alert('x')</script> & \"q\" | *b* : # ;";

fn t(s: u32) -> String {
    format!("2026-01-01T10:00:{s:02}+00:00")
}

fn probe(at: u32, met: bool) -> Value {
    json!({"activity": {"name": "healthy", "type": "probe", "tolerance": 200}, "output": 200,
           "start": t(at), "end": t(at + 1), "duration": 1.0, "status": "succeeded",
           "tolerance_met": met})
}

fn action(name: &str, a: u32, b: u32) -> Value {
    json!({"activity": {"name": name, "type": "action"}, "output": null, "start": t(a),
           "end": t(b), "duration": f64::from(b - a), "status": "succeeded"})
}

fn journal(
    title: &str,
    status: &str,
    deviated: bool,
    start: u32,
    end: u32,
    broker: Value,
) -> Journal {
    serde_json::from_value(json!({
        "chaoslib-version": "x", "platform": "", "node": "", "experiment": {"title": title},
        "start": t(start), "end": t(end), "duration": f64::from(end - start),
        "status": status, "deviated": deviated,
        "steady_states": {"before": {"steady_state_met": true, "probes": [probe(start, true)]},
                          "after": {"steady_state_met": !deviated, "probes": [probe(end - 1, !deviated)]},
                          "during": []},
        "run": [action("stress-cpu", start + 2, end - 3)],
        "rollbacks": [action("undo", end - 2, end - 1)],
        "broker": broker
    }))
    .unwrap()
}

pub fn fixture() -> Report {
    let doc = json!({
        "suite_run_id": "sr-1", "name": format!("nightly {HOSTILE}"), "source": "suites/n.yaml",
        "status": "halted", "outcome": "failed", "problems": [],
        "waves": [
            {"wave": 0, "on_failure": "continue", "jobs": [
                {"run_id": "w0-j0", "experiment_source": "/e/a.json", "state": "completed", "outcome": "held", "journal_key": "runs/sr-1/w0-j0/journal.json"},
                {"run_id": "w0-j1", "experiment_source": "/e/b.json", "state": "completed", "outcome": "deviated", "journal_key": "runs/sr-1/w0-j1/journal.json"}]},
            {"wave": 1, "on_failure": "stop", "jobs": [
                {"run_id": "w1-j0", "experiment_source": "/e/c.json", "state": "completed", "outcome": "failed", "journal_key": "runs/sr-1/w1-j0/journal.json"}]},
            {"wave": 2, "on_failure": "continue", "jobs": [
                {"run_id": "w2-j0", "experiment_source": "/e/d.json", "state": "pending", "outcome": null, "journal_key": null}]}
        ]
    });
    let mut report = Report::from_status(&doc);
    let journals = [
        journal(
            HOSTILE,
            "completed",
            false,
            0,
            20,
            json!({"records": [
            {"kind": "ssm_command", "activity": "stress-cpu", "at": t(3), "command_id": "cmd-1",
             "document": "AWSFIS-Run-CPU-Stress", "instance_ids": ["i-0a", "i-0b"]}]}),
        ),
        journal("Latency stays low", "completed", true, 5, 25, json!({})),
        journal(
            "Kill the leader",
            "aborted",
            false,
            30,
            40,
            json!({
            "refused": [{"activity": "wide", "rule": "max_targets", "message": "3 of 4 targets is over 50%"}],
            "stopped_by": "the kill switch is on (producer halt: incident 42)"}),
        ),
    ];
    for (job, j) in report.jobs_mut().zip(journals) {
        job.link = Some(Link::to_path(&format!(
            "/state/store/{}",
            job.journal_key.clone().unwrap()
        )));
        job.journal = Some(j);
    }
    report
}

#[test]
fn the_score_counts_every_job_of_the_plan() {
    let report = fixture();
    // 1 held, 1 deviated, 1 failed (twice), 1 not run: 100 / 5
    assert_eq!(report.score(), Some(20));
}

#[test]
fn the_html_page_is_self_contained_escaped_and_says_everything() {
    let html = fixture().render(Format::Html);
    assert!(html.contains(&format!(r#"content="{}""#, super::html::CSP)));
    assert!(!html.contains("<script"), "user text is escaped");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
    for needle in [
        "Latency stays low",
        "Kill the leader",
        "/e/d.json",
        "<svg class=\"timeline\"",
        "AWSFIS-Run-CPU-Stress",
        "i-0a, i-0b",
        "cmd-1",
        "Stopped by the kill switch",
        "incident 42",
        "max_targets",
        "hypothesis after",
        "<b>20</b>",
        "href=\"file:///state/store/runs/sr-1/w0-j0/journal.json\"",
        "suites/n.yaml",
        "halted",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    for scheme in ["http:", "https:", "//"] {
        let attrs = ["href=\"", "src=\"", "url("];
        for a in attrs {
            assert!(!html.contains(&format!("{a}{scheme}")), "{a}{scheme}");
        }
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no URL at all"
    );
}

#[test]
fn the_markdown_has_a_gantt_a_table_and_escaped_text() {
    let md = fixture().render(Format::Markdown);
    assert!(!md.contains("<script"), "{md}");
    assert!(md.contains("**Resilience score: 20/100**"), "{md}");
    let gantt: Vec<&str> = md
        .split("```mermaid\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap()
        .lines()
        .collect();
    assert_eq!(
        gantt[..3],
        [
            "gantt",
            "    title nightly script alert( x ) /script q | *b*",
            "    dateFormat x"
        ]
    );
    let tasks: Vec<&&str> = gantt.iter().filter(|l| l.contains(" :")).collect();
    assert_eq!(tasks.len(), 4, "3 jobs and a fault window: {gantt:?}");
    for task in &tasks {
        let (name, spec) = task.split_once(" :").unwrap();
        assert!(!name.contains([':', '#', ';', '<']), "{task}");
        let parts: Vec<&str> = spec.split(", ").collect();
        let [.., id, start, end] = parts[..] else {
            panic!("{task}")
        };
        assert!(id.starts_with('t'), "{task}");
        assert!(
            start.parse::<i64>().unwrap() < end.parse::<i64>().unwrap(),
            "{task}"
        );
    }
    assert!(gantt.contains(&"    section Wave 3"));
    assert!(md.contains("fault AWSFIS-Run-CPU-Stress on i-0a i-0b :crit"));
    let rows = md
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Wave"))
        .count();
    assert_eq!(rows, 4);
    assert!(md.contains("\\| \\*b\\*"), "table text escaped");
    assert!(md.contains("stopped by the kill switch:** the kill switch is on"));
}

#[test]
fn junit_has_one_testcase_per_job_and_maps_outcomes() {
    let xml = fixture().render(Format::Junit);
    assert!(
        xml.contains(r#"<skipped message="not run"/>"#),
        "a halted suite's pending job never ran"
    );
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
    assert_eq!(xml.matches("<testcase ").count(), 4);
    assert_eq!(xml.matches("<failure ").count(), 1);
    assert_eq!(xml.matches("<error ").count(), 1);
    assert_eq!(xml.matches("<skipped ").count(), 1);
    assert!(xml.contains(r#"tests="4" failures="1" errors="1" skipped="1""#));
    assert!(xml.contains(r#"<error type="aborted""#));
    assert!(xml.contains(r#"<property name="score" value="20"/>"#));
    assert!(xml.contains("&lt;script&gt;alert(&apos;x&apos;)"));
    assert!(!xml.contains("<script"));
    // every element opened is closed
    for tag in [
        "testsuites",
        "testsuite",
        "testcase",
        "properties",
        "failure",
        "error",
        "system-out",
    ] {
        assert_eq!(
            xml.matches(&format!("<{tag} ")).count() + xml.matches(&format!("<{tag}>")).count(),
            xml.matches(&format!("</{tag}>")).count(),
            "{tag}"
        );
    }
}

#[test]
fn loose_journals_make_a_one_wave_report_named_after_them() {
    let one = Report::from_journals(vec![(
        Link::to_path("j.json"),
        journal("Solo", "completed", false, 0, 9, json!({})),
    )]);
    assert_eq!((one.name.as_str(), one.score()), ("Solo", Some(100)));
    assert_eq!(
        one.jobs().next().unwrap().link.as_ref().unwrap().href,
        None,
        "a relative path has no URL"
    );
    let two = Report::from_journals(vec![
        (
            Link::to_path("/a b.json"),
            journal("A", "completed", false, 0, 9, json!({})),
        ),
        (
            Link::to_path("b.json"),
            journal("B", "failed", false, 0, 9, json!({})),
        ),
    ]);
    assert_eq!(
        (two.name.as_str(), two.score()),
        ("2 experiments", Some(33))
    );
    assert_eq!(
        two.outcome,
        Some(crate::fleet::outcome::SuiteOutcome::Failed)
    );
    assert_eq!(
        two.jobs()
            .next()
            .unwrap()
            .link
            .as_ref()
            .unwrap()
            .href
            .as_deref(),
        Some("file:///a%20b.json")
    );
    let html = two.render(Format::Html);
    assert!(html.contains("<b>33</b>"));
}

#[test]
fn a_suite_that_has_not_run_yet_renders_without_a_timeline() {
    let report = Report::from_status(&json!({"name": "n", "status": "running", "waves": [
        {"on_failure": "continue", "jobs": [{"run_id": "w0-j0", "experiment_source": "a.json", "state": "enqueued"}]}]}));
    assert_eq!(report.score(), None);
    let html = report.render(Format::Html);
    assert!(html.contains("No experiment has run yet.") && html.contains("<b>–</b>"));
    assert!(!report.render(Format::Markdown).contains("mermaid"));
    assert!(
        report
            .render(Format::Junit)
            .contains(r#"<skipped message="enqueued"/>"#)
    );
}
