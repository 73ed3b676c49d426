//! `worker report`: the journals `worker run` wrote, as HTML, Markdown and JUnit; a file that
//! is not a journal is refused, naming it, and nothing is written.

use crate::util::Sandbox;
use serde_json::{Value, json};

/// An experiment titled `title` whose hypothesis deviates after the method when `deviate`.
fn experiment(title: &str, deviate: bool) -> Value {
    let flag = format!("flag-{}", title.len());
    json!({"title": title, "description": "d",
        "steady-state-hypothesis": {"title": "h", "probes": [{"type": "probe", "name": "up", "tolerance": 0,
            "provider": {"type": "process", "path": "sh", "arguments": ["-c", format!("test ! -e {flag}")]}}]},
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "sh",
            "arguments": ["-c", if deviate { format!("touch {flag}") } else { "true".to_string() }]}}],
        "rollbacks": [{"type": "action", "name": "undo", "provider": {"type": "process", "path": "sh",
            "arguments": ["-c", format!("rm -f {flag}")]}}]})
}

/// Run `experiment` and keep its journal as `name`.
fn journal(sb: &Sandbox, name: &str, experiment: &Value) -> String {
    let out = sb.run(&sb.write_json("e.json", experiment), &[]);
    assert!(out.code == 0 || out.code == 1, "{}", out.stderr);
    std::fs::rename(sb.path("journal.json"), sb.path(name)).unwrap();
    name.to_string()
}

#[test]
fn worker_report_renders_the_journals_it_is_given_in_each_format() {
    let sb = Sandbox::new();
    let held = journal(
        &sb,
        "held.json",
        &experiment("Web <stays> up & \"fast\"", false),
    );
    let deviated = journal(&sb, "deviated.json", &experiment("Cache | *warms*", true));

    let out = sb
        .command(&["report", "--format", "junit", &held, &deviated])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8_lossy(&out.stdout);
    assert!(
        xml.contains(r#"tests="2" failures="1" errors="0" skipped="0""#),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 2);
    assert!(
        xml.contains("Web &lt;stays&gt; up &amp; &quot;fast&quot; (j1)"),
        "{xml}"
    );
    assert!(xml.contains("<failure type=\"deviated\""), "{xml}");

    let out = sb
        .command(&["report", "--format", "md", &held, &deviated])
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("**Resilience score: 50/100** (1 held, 1 deviated)"),
        "{md}"
    );
    assert!(
        md.contains("Cache \\| \\*warms\\*") && md.contains("Web &lt;stays&gt; up"),
        "{md}"
    );
    assert!(md.contains("```mermaid\ngantt"), "{md}");

    let out = sb
        .command(&["report", "-o", "r.html", &held, &deviated])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "the report goes to the file");
    let html = std::fs::read_to_string(sb.path("r.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("Web &lt;stays&gt; up &amp; &quot;fast&quot;"),
        "{html}"
    );
    assert!(html.contains("<b>50</b>"));
    let link = format!(
        "href=\"file://{}\"",
        sb.path("held.json").canonicalize().unwrap().display()
    );
    assert!(html.contains(&link), "{link} in {html}");
}

#[test]
fn worker_report_refuses_a_file_that_is_not_a_journal_and_names_it() {
    let sb = Sandbox::new();
    sb.write("notes.json", r#"{"title": "not a journal"}"#);
    let out = sb
        .command(&["report", "-o", "r.html", "notes.json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("notes.json is not a Chaos Toolkit journal"),
        "{stderr}"
    );
    assert!(!sb.path("r.html").exists());
    let out = sb.command(&["report"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a journal is required");
}
