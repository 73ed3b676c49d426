//! The HTML report: one self-contained page (inline CSS and SVG, no script, no request: a
//! Content-Security-Policy that forbids any), readable in a browser and printable. The suite's
//! name, source, outcome and score; the timeline; per experiment its facts, hypothesis checks,
//! fault windows, activities, refusals, what stopped it and its errors, and a link to its
//! journal.

use super::View;
use super::facts::{Facts, Phase};
use super::text::{html as esc, instant, seconds};
use super::{Job, timeline};
use std::fmt::Write;

/// No request may leave the page: styles inline, images as data only.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = r#"
:root { --held: #1a7f37; --deviated: #bc4c00; --failed: #cf222e; --idle: #8c959f; --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--ink); margin: 0 auto; padding: 24px; max-width: 1080px; }
header { display: flex; gap: 24px; align-items: center; border-bottom: 1px solid var(--line); padding-bottom: 16px; }
header h1 { margin: 0 0 4px; font-size: 24px; word-break: break-word; }
header .meta { color: var(--muted); }
.score { flex: none; width: 96px; height: 96px; border-radius: 50%; display: flex; flex-direction: column; align-items: center; justify-content: center; border: 6px solid var(--idle); }
.score b { font-size: 30px; line-height: 1; }
.score span { font-size: 11px; color: var(--muted); }
.score.good { border-color: var(--held); } .score.fair { border-color: var(--deviated); } .score.poor { border-color: var(--failed); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; vertical-align: middle; background: var(--idle); }
.badge.held { background: var(--held); } .badge.deviated { background: var(--deviated); } .badge.failed, .badge.invalid { background: var(--failed); }
h2 { font-size: 18px; margin: 28px 0 8px; }
h3 { font-size: 16px; margin: 0 0 8px; word-break: break-word; }
h4 { font-size: 13px; margin: 14px 0 4px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: break-word; }
th { color: var(--muted); font-weight: 600; }
code, pre { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
pre { background: #f6f8fa; padding: 8px; white-space: pre-wrap; word-break: break-word; margin: 4px 0; }
article { border: 1px solid var(--line); border-left: 6px solid var(--idle); border-radius: 6px; padding: 12px 16px; margin: 12px 0; break-inside: avoid; }
article.held { border-left-color: var(--held); } article.deviated { border-left-color: var(--deviated); } article.failed { border-left-color: var(--failed); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; word-break: break-word; }
.yes { color: var(--held); font-weight: 600; } .no { color: var(--failed); font-weight: 600; }
.stop { background: #fff1e5; border: 1px solid var(--deviated); border-radius: 6px; padding: 6px 10px; margin: 8px 0; }
.problems { background: #ffebe9; border: 1px solid var(--failed); border-radius: 6px; padding: 6px 10px; }
.timeline-box { overflow-x: auto; }
svg.timeline { max-width: 100%; height: auto; font-family: inherit; }
svg .tick { font-size: 10px; fill: var(--muted); text-anchor: middle; }
svg .grid { stroke: #eaeef2; }
svg .wave { font-size: 12px; font-weight: 600; fill: var(--ink); }
svg .wave-rule { stroke: var(--line); }
svg .label { font-size: 12px; fill: var(--ink); }
svg .sub { font-size: 10px; fill: var(--muted); }
svg .job { fill: var(--idle); } svg .job.held { fill: var(--held); } svg .job.deviated { fill: var(--deviated); } svg .job.failed { fill: var(--failed); }
svg .act { stroke: #fff; stroke-width: .5; } svg .act-method { fill: #0969da; } svg .act-rollback { fill: #8250df; } svg .act-probe { fill: #6e7781; }
svg .act-failed { stroke: var(--failed); stroke-width: 1.5; }
svg .fault { fill: url(#hatch); stroke: var(--failed); stroke-width: 1; fill-opacity: .5; }
svg .hatch { fill: var(--failed); }
svg .check { stroke: #fff; stroke-width: 1; } svg .check.met { fill: var(--held); } svg .check.unmet { fill: var(--failed); } svg .check.unknown { fill: var(--idle); }
svg .stop { stroke: var(--ink); stroke-width: 2; stroke-dasharray: 3 2; }
svg .stop-label { font-size: 10px; fill: var(--ink); text-anchor: end; }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print { body { padding: 0; max-width: none; } a { color: inherit; text-decoration: none; } .timeline-box { overflow: visible; } }
"#;

/// The page.
pub fn render(view: &View) -> String {
    let r = view.report;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="experiment-broker {}">
<title>{} — chaos report</title>
<style>{STYLE}</style>
</head>
<body>
"#,
        env!("CARGO_PKG_VERSION"),
        esc(&r.name)
    );
    header(&mut out, view);
    if !r.problems.is_empty() {
        out.push_str(r#"<div class="problems"><b>Rejected:</b><ul>"#);
        for p in &r.problems {
            let _ = write!(out, "<li>{}</li>", esc(p));
        }
        out.push_str("</ul></div>\n");
    }
    out.push_str("<section>\n<h2>Timeline</h2>\n");
    match timeline::svg(view) {
        Some(svg) => {
            let _ = writeln!(out, r#"<div class="timeline-box">{svg}</div>"#);
        }
        None => out.push_str("<p>No experiment has run yet.</p>\n"),
    }
    out.push_str("</section>\n<section>\n<h2>Experiments</h2>\n");
    summary_table(&mut out, view);
    for (job, facts) in &view.jobs {
        experiment(&mut out, job, facts.as_ref());
    }
    let _ = write!(
        out,
        "</section>\n<footer>Made by experiment-broker {} at {}. Journals are shown as they were written, secrets masked.</footer>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&r.generated)
    );
    out
}

fn header(out: &mut String, view: &View) {
    let r = view.report;
    let tally = r.tally();
    let (score, grade) = match r.score() {
        Some(s) if s >= 90 => (s.to_string(), "good"),
        Some(s) if s >= 60 => (s.to_string(), "fair"),
        Some(s) => (s.to_string(), "poor"),
        None => ("–".to_string(), ""),
    };
    let _ = write!(
        out,
        r#"<header>
<div class="score {grade}" title="resilience score: {}"><b>{score}</b><span>of 100</span></div>
<div>
<h1>{}</h1>
<div class="meta">"#,
        esc(&tally.explain()),
        esc(&r.name)
    );
    let mut meta = Vec::new();
    if let Some(id) = &r.suite_run_id {
        meta.push(format!("suite run <code>{}</code>", esc(id)));
    }
    if let Some(source) = &r.source {
        meta.push(format!("from <code>{}</code>", esc(source)));
    }
    if let Some((a, b)) = view.span() {
        meta.push(format!("{}, {}", esc(&instant(a)), esc(&seconds(b - a))));
    }
    out.push_str(&meta.join(" · "));
    out.push_str("</div>\n<p>");
    if let Some(status) = r.status {
        let _ = write!(out, "{} ", esc(status.as_str()));
    }
    if let Some(outcome) = r.outcome {
        let _ = write!(
            out,
            r#"<span class="badge {o}">{o}</span> "#,
            o = outcome.as_str()
        );
    }
    let _ = writeln!(
        out,
        "· resilience score {score}/100 ({}) · {} experiment{}</p>\n</div>\n</header>",
        esc(&tally.explain()),
        tally.jobs(),
        if tally.jobs() == 1 { "" } else { "s" }
    );
}

fn summary_table(out: &mut String, view: &View) {
    out.push_str("<table>\n<tr><th>Wave</th><th>Experiment</th><th>Outcome</th><th>Status</th><th>Duration</th><th>Rollbacks</th></tr>\n");
    for (job, facts) in &view.jobs {
        let word = View::word(job);
        let _ = writeln!(
            out,
            r##"<tr><td>{}</td><td><a href="#job-{}">{}</a></td><td><span class="badge {}">{}</span></td><td>{}</td><td>{}</td><td>{}</td></tr>"##,
            job.wave + 1,
            esc(&job.run_id),
            esc(&View::title(job, facts.as_ref())),
            word.replace(' ', "-"),
            esc(word),
            facts
                .as_ref()
                .and_then(|f| f.status)
                .map(|s| s.as_str())
                .unwrap_or("–"),
            facts
                .as_ref()
                .and_then(|f| f.duration)
                .map(seconds)
                .unwrap_or_else(|| "–".into()),
            facts
                .as_ref()
                .map(|f| f
                    .activities
                    .iter()
                    .filter(|a| a.phase == Phase::Rollback)
                    .count()
                    .to_string())
                .unwrap_or_else(|| "–".into()),
        );
    }
    out.push_str("</table>\n");
}

fn yes_no(value: Option<bool>, yes: &str, no: &str) -> String {
    match value {
        Some(true) => format!(r#"<span class="yes">{yes}</span>"#),
        Some(false) => format!(r#"<span class="no">{no}</span>"#),
        None => "–".into(),
    }
}

fn time(at: Option<f64>) -> String {
    at.map(|t| esc(&instant(t))).unwrap_or_else(|| "–".into())
}

fn experiment(out: &mut String, job: &Job, facts: Option<&Facts>) {
    let word = View::word(job);
    let _ = write!(
        out,
        r#"<article id="job-{}" class="{}">
<h3><span class="badge {}">{}</span> {}</h3>
<dl class="facts">
<dt>Run</dt><dd><code>{}</code> · wave {}</dd>
<dt>Source</dt><dd><code>{}</code></dd>
"#,
        esc(&job.run_id),
        word.replace(' ', "-"),
        word.replace(' ', "-"),
        esc(word),
        esc(&View::title(job, facts)),
        esc(&job.run_id),
        job.wave + 1,
        esc(&job.source),
    );
    if let Some(f) = facts {
        let _ = write!(
            out,
            "<dt>Status</dt><dd>{}</dd>\n<dt>Deviated</dt><dd>{}</dd>\n<dt>Started</dt><dd>{}</dd>\n<dt>Ended</dt><dd>{}</dd>\n<dt>Duration</dt><dd>{}</dd>\n",
            f.status.map(|s| s.as_str()).unwrap_or("not ended"),
            if f.deviated {
                r#"<span class="no">yes</span>"#
            } else {
                "no"
            },
            time(f.start),
            time(f.end),
            f.duration.map(seconds).unwrap_or_else(|| "–".into()),
        );
    }
    match (&job.link, &job.journal_key) {
        (Some(link), _) => {
            let text = format!("<code>{}</code>", esc(&link.text));
            let _ = match &link.href {
                Some(href) => writeln!(
                    out,
                    r#"<dt>Journal</dt><dd><a href="{}">{text}</a></dd>"#,
                    esc(href)
                ),
                None => writeln!(out, "<dt>Journal</dt><dd>{text}</dd>"),
            };
        }
        (None, Some(key)) => {
            let _ = writeln!(out, "<dt>Journal</dt><dd><code>{}</code></dd>", esc(key));
        }
        (None, None) => {}
    }
    out.push_str("</dl>\n");
    if let Some(p) = &job.journal_problem {
        let _ = writeln!(
            out,
            r#"<p class="stop">The journal could not be read: {}</p>"#,
            esc(p)
        );
    }
    let Some(f) = facts else {
        out.push_str("</article>\n");
        return;
    };
    if let Some(stop) = &f.stop {
        let _ = writeln!(
            out,
            r#"<p class="stop"><b>{} {}</b> {}</p>"#,
            if stop.not_started {
                "Not started: the"
            } else {
                "Stopped by the"
            },
            stop.kind.as_str(),
            esc(&stop.reason)
        );
    }
    checks(out, f);
    faults(out, f);
    activities(out, f);
    if !f.refusals.is_empty() {
        out.push_str("<h4>Refused by a guard rail</h4>\n<table><tr><th>Activity</th><th>Rule</th><th>Why</th></tr>\n");
        for r in &f.refusals {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&r.activity),
                esc(&r.rule),
                esc(&r.message)
            );
        }
        out.push_str("</table>\n");
    }
    if !f.errors.is_empty() {
        out.push_str("<h4>Errors</h4>\n");
        for e in &f.errors {
            let _ = writeln!(out, "<pre>{}</pre>", esc(e));
        }
    }
    out.push_str("</article>\n");
}

fn checks(out: &mut String, f: &Facts) {
    if f.checks.is_empty() {
        return;
    }
    out.push_str("<h4>Hypothesis checks</h4>\n<table><tr><th>When</th><th>Probe</th><th>Tolerance</th><th>Met</th><th>At</th></tr>\n");
    for c in &f.checks {
        let _ = writeln!(
            out,
            r#"<tr><td>{}</td><td colspan="2"><i>steady state</i></td><td>{}</td><td>{}</td></tr>"#,
            c.phase.as_str(),
            yes_no(c.met, "held", "not met"),
            time(c.at)
        );
        for p in &c.probes {
            let _ = writeln!(
                out,
                "<tr><td></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&p.name),
                esc(p.tolerance.as_deref().unwrap_or("–")),
                yes_no(p.tolerance_met, "yes", "no"),
                time(p.start)
            );
        }
    }
    out.push_str("</table>\n");
}

fn faults(out: &mut String, f: &Facts) {
    if f.faults.is_empty() {
        return;
    }
    out.push_str("<h4>Fault windows</h4>\n<table><tr><th>Activity</th><th>Document</th><th>Targets</th><th>Command</th><th>Start</th><th>End</th></tr>\n");
    for w in &f.faults {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(&w.activity),
            esc(&w.document),
            esc(&w.targets.join(", ")),
            esc(&w.command_id),
            time(w.start),
            time(w.end)
        );
    }
    out.push_str("</table>\n");
}

fn activities(out: &mut String, f: &Facts) {
    if f.activities.is_empty() {
        return;
    }
    out.push_str("<h4>Activities and rollbacks</h4>\n<table><tr><th>Phase</th><th>Activity</th><th>Type</th><th>Start</th><th>Duration</th><th>Result</th></tr>\n");
    for a in &f.activities {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.phase.as_str(),
            esc(&a.name),
            esc(&a.kind),
            time(a.start),
            seconds(a.duration),
            if a.succeeded {
                r#"<span class="yes">succeeded</span>"#.to_string()
            } else {
                format!(
                    r#"<span class="no">failed</span> {}"#,
                    esc(a.error.as_deref().unwrap_or(""))
                )
            }
        );
    }
    out.push_str("</table>\n");
}
