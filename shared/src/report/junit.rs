//! The JUnit XML report, for CI dashboards: one `testsuite` for the suite run, one `testcase`
//! per job. Held passes; deviated is a `failure`; failed, aborted or interrupted is an
//! `error`; a job that never ran is `skipped`. The score and the suite run are properties.

use super::View;
use super::text::xml as esc;
use std::fmt::Write;

pub fn render(view: &View) -> String {
    let r = view.report;
    let tally = r.tally();
    let time = view.span().map(|(a, b)| b - a).unwrap_or(0.0);
    let mut cases = String::new();
    for (job, facts) in &view.jobs {
        let f = facts.as_ref();
        let title = View::title(job, f);
        let _ = writeln!(
            cases,
            "    <testcase classname=\"{}.wave{}\" name=\"{} ({})\" time=\"{:.3}\">",
            esc(&r.name),
            job.wave + 1,
            esc(&title),
            esc(&job.run_id),
            f.and_then(|f| f.duration).unwrap_or(0.0)
        );
        let status = f
            .and_then(|f| f.status)
            .map(|s| s.as_str())
            .unwrap_or("not ended");
        let mut detail = Vec::new();
        if let Some(f) = f {
            if let Some(stop) = &f.stop {
                detail.push(format!("{}: {}", stop.kind.as_str(), stop.reason));
            }
            for c in f.checks.iter().filter(|c| c.met == Some(false)) {
                detail.push(format!("steady state not met ({})", c.phase.as_str()));
            }
            for r in &f.refusals {
                detail.push(format!("refused ({}): {}", r.rule, r.message));
            }
            detail.extend(f.errors.iter().cloned());
        }
        if let Some(p) = &job.journal_problem {
            detail.push(format!("journal unreadable: {p}"));
        }
        let detail = esc(&detail.join("\n"));
        match View::word(job) {
            "held" => {}
            "deviated" => {
                let _ = writeln!(
                    cases,
                    "      <failure type=\"deviated\" message=\"the steady-state hypothesis deviated\">{detail}</failure>"
                );
            }
            "failed" => {
                let _ = writeln!(
                    cases,
                    "      <error type=\"{status}\" message=\"the run {status}\">{detail}</error>"
                );
            }
            other => {
                let _ = writeln!(cases, "      <skipped message=\"{}\"/>", esc(other));
            }
        }
        let journal = job
            .link
            .as_ref()
            .map(|l| l.text.clone())
            .or_else(|| job.journal_key.clone());
        if let Some(j) = journal {
            let _ = writeln!(cases, "      <system-out>journal: {}</system-out>", esc(&j));
        }
        cases.push_str("    </testcase>\n");
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let counts = format!(
        "tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.3}\"",
        tally.jobs(),
        tally.deviated,
        tally.failed,
        tally.not_run
    );
    let _ = writeln!(out, "<testsuites name=\"{}\" {counts}>", esc(&r.name));
    let _ = write!(out, "  <testsuite name=\"{}\" {counts}", esc(&r.name));
    if let Some((a, _)) = view.span() {
        let stamp = super::text::instant(a)
            .replace(' ', "T")
            .replace("TUTC", "");
        let _ = write!(out, " timestamp=\"{stamp}\"");
    }
    out.push_str(">\n    <properties>\n");
    let mut props = vec![(
        "score",
        r.score().map(|s| s.to_string()).unwrap_or_default(),
    )];
    if let Some(id) = &r.suite_run_id {
        props.push(("suite_run_id", id.clone()));
    }
    if let Some(source) = &r.source {
        props.push(("source", source.clone()));
    }
    if let Some(outcome) = r.outcome {
        props.push(("outcome", outcome.to_string()));
    }
    for (name, value) in props {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            esc(&value)
        );
    }
    out.push_str("    </properties>\n");
    out.push_str(&cases);
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
