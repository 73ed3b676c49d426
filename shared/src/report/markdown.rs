//! The Markdown report, for pull requests, wikis and `$GITHUB_STEP_SUMMARY`: the suite's
//! outcome and score, a Mermaid gantt of waves, jobs and fault windows, a table of the
//! experiments, and per experiment a collapsed section with its checks, faults, stop and
//! errors. Everything from the suite or the journals is escaped (or, in the gantt, stripped of
//! what Mermaid reads as syntax).

use super::View;
use super::facts::Facts;
use super::text::{instant, markdown as esc, seconds};
use std::fmt::Write;

/// Text Mermaid takes as a task or title: no `:`, `;`, `#`, markup or line breaks.
fn mermaid(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| match c {
            ':' | ';' | '#' | '<' | '>' | '&' | '`' | '"' | '\'' | '{' | '}' | '%' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let words: Vec<&str> = cleaned.split_whitespace().collect();
    if words.is_empty() {
        "(untitled)".into()
    } else {
        words.join(" ")
    }
}

fn ms(t: f64) -> i64 {
    (t * 1000.0).round() as i64
}

pub fn render(view: &View) -> String {
    let r = view.report;
    let tally = r.tally();
    let mut out = String::new();
    let outcome = r.outcome.map(|o| o.as_str()).unwrap_or("not ended");
    let score = r
        .score()
        .map(|s| format!("{s}/100"))
        .unwrap_or_else(|| "–".into());
    let _ = writeln!(out, "## {} — {}\n", esc(&r.name), esc(outcome));
    let _ = write!(
        out,
        "**Resilience score: {score}** ({})",
        esc(&tally.explain())
    );
    if let Some(status) = r.status {
        let _ = write!(out, " · {status}");
    }
    if let Some((a, b)) = view.span() {
        let _ = write!(out, " · {}, {}", instant(a), seconds(b - a));
    }
    out.push_str("\n\n");
    if let Some(id) = &r.suite_run_id {
        let _ = write!(out, "Suite run `{}`", id.replace('`', "'"));
        if let Some(source) = &r.source {
            let _ = write!(out, " from `{}`", source.replace('`', "'"));
        }
        out.push_str("\n\n");
    }
    for p in &r.problems {
        let _ = writeln!(out, "- **problem:** {}", esc(p));
    }
    gantt(&mut out, view);
    out.push_str("| Wave | Experiment | Outcome | Status | Duration | Rollbacks | Journal |\n");
    out.push_str("|---:|---|---|---|---:|---:|---|\n");
    for (job, facts) in &view.jobs {
        let f = facts.as_ref();
        let journal = job
            .link
            .as_ref()
            .map(|l| l.text.clone())
            .or_else(|| job.journal_key.clone())
            .map(|j| format!("`{}`", j.replace('`', "'")))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            job.wave + 1,
            esc(&View::title(job, f)),
            mark(View::word(job)),
            f.and_then(|f| f.status).map(|s| s.as_str()).unwrap_or("–"),
            f.and_then(|f| f.duration)
                .map(seconds)
                .unwrap_or_else(|| "–".into()),
            f.map(|f| f
                .activities
                .iter()
                .filter(|a| a.phase == super::facts::Phase::Rollback)
                .count()
                .to_string())
                .unwrap_or_else(|| "–".into()),
            journal
        );
    }
    out.push('\n');
    for (job, facts) in &view.jobs {
        if let Some(f) = facts {
            details(&mut out, &View::title(job, Some(f)), View::word(job), f);
        }
    }
    out
}

fn mark(word: &str) -> String {
    let sign = match word {
        "held" => "✅",
        "deviated" => "⚠️",
        "failed" => "❌",
        _ => "⏸️",
    };
    format!("{sign} {word}")
}

fn gantt(out: &mut String, view: &View) {
    if view.span().is_none() {
        return;
    }
    let _ = writeln!(
        out,
        "```mermaid\ngantt\n    title {}\n    dateFormat x\n    axisFormat %H:%M:%S",
        mermaid(&view.report.name)
    );
    let mut task = 0;
    for w in 0..view.report.waves.len() {
        let _ = writeln!(out, "    section Wave {}", w + 1);
        let jobs = view.jobs.iter().filter(|(j, _)| j.wave == w);
        for (job, facts) in jobs {
            let Some(f) = facts else { continue };
            let Some((a, b)) = f.span() else { continue };
            let tag = match View::word(job) {
                "held" => "done, ",
                "deviated" => "active, ",
                "failed" => "crit, ",
                _ => "",
            };
            let _ = writeln!(
                out,
                "    {} ({}) :{tag}t{task}, {}, {}",
                mermaid(&View::title(job, Some(f))),
                mermaid(View::word(job)),
                ms(a),
                ms(b.max(a + 0.001))
            );
            task += 1;
            for fault in &f.faults {
                let (Some(s), Some(e)) = (fault.start, fault.end) else {
                    continue;
                };
                let _ = writeln!(
                    out,
                    "    fault {} on {} :crit, t{task}, {}, {}",
                    mermaid(&fault.document),
                    mermaid(&fault.targets.join(" ")),
                    ms(s),
                    ms(e.max(s + 0.001))
                );
                task += 1;
            }
        }
    }
    out.push_str("```\n\n");
}

fn details(out: &mut String, title: &str, word: &str, f: &Facts) {
    let _ = writeln!(
        out,
        "<details><summary>{} — {}</summary>\n",
        esc(title),
        esc(word)
    );
    let _ = writeln!(
        out,
        "- status {}, deviated: {}, duration {}",
        f.status.map(|s| s.as_str()).unwrap_or("not ended"),
        if f.deviated { "yes" } else { "no" },
        f.duration.map(seconds).unwrap_or_else(|| "–".into())
    );
    if let Some(stop) = &f.stop {
        let _ = writeln!(
            out,
            "- **{} {}:** {}",
            if stop.not_started {
                "not started by the"
            } else {
                "stopped by the"
            },
            stop.kind.as_str(),
            esc(&stop.reason)
        );
    }
    for c in &f.checks {
        let met = match c.met {
            Some(true) => "held",
            Some(false) => "**not met**",
            None => "not evaluated",
        };
        let probes: Vec<String> = c
            .probes
            .iter()
            .map(|p| {
                format!(
                    "{} (tolerance {}: {})",
                    esc(&p.name),
                    esc(p.tolerance.as_deref().unwrap_or("–")),
                    match p.tolerance_met {
                        Some(true) => "met",
                        Some(false) => "not met",
                        None => "–",
                    }
                )
            })
            .collect();
        let _ = writeln!(out, "- {}: {met}; {}", c.phase.as_str(), probes.join("; "));
    }
    for w in &f.faults {
        let _ = writeln!(
            out,
            "- fault window: {} on {} ({}, command {}), {} → {}",
            esc(&w.document),
            esc(&w.targets.join(", ")),
            esc(&w.activity),
            esc(&w.command_id),
            w.start.map(instant).unwrap_or_else(|| "–".into()),
            w.end.map(instant).unwrap_or_else(|| "–".into())
        );
    }
    for r in &f.refusals {
        let _ = writeln!(
            out,
            "- refused ({}): {} — {}",
            esc(&r.rule),
            esc(&r.activity),
            esc(&r.message)
        );
    }
    for a in f
        .activities
        .iter()
        .filter(|a| a.phase == super::facts::Phase::Rollback)
    {
        let _ = writeln!(
            out,
            "- rollback {}: {}",
            esc(&a.name),
            if a.succeeded { "succeeded" } else { "failed" }
        );
    }
    for e in &f.errors {
        let _ = writeln!(out, "- error: {}", esc(e));
    }
    out.push_str("\n</details>\n\n");
}
