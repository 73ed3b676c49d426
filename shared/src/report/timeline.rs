//! The timeline of a suite run as inline SVG: a row per job, wave by wave, on one time axis;
//! in each row the job's bar (its outcome's colour), its activities (method, rollbacks,
//! probes), the fault windows, the hypothesis checks (met or not) and the tripwire that
//! stopped it. Tooltips are SVG `<title>`s and each bar links to the job's section: no script.
//! Styled by the classes the HTML page's stylesheet defines.

use super::View;
use super::facts::{Facts, Phase};
use super::text::{html as esc, seconds};
use std::fmt::Write;

const WIDTH: f64 = 1000.0;
const LABEL: f64 = 250.0;
const RIGHT: f64 = 24.0;
const AXIS: f64 = 30.0;
const WAVE: f64 = 22.0;
const ROW: f64 = 46.0;
const LEGEND: f64 = 34.0;

/// The time axis: instants to x.
struct Axis {
    t0: f64,
    span: f64,
}

impl Axis {
    fn x(&self, t: f64) -> f64 {
        LABEL + (t - self.t0).max(0.0) / self.span * (WIDTH - LABEL - RIGHT)
    }

    /// A bar from `a` to `b`: x and width (at least 2 px, so an instant shows).
    fn bar(&self, a: f64, b: f64) -> (f64, f64) {
        let (x0, x1) = (self.x(a), self.x(b.max(a)));
        (x0, (x1 - x0).max(2.0))
    }
}

/// A tick step giving at most 10 ticks over `span` seconds.
fn step(span: f64) -> f64 {
    const STEPS: [f64; 16] = [
        0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0,
        3600.0,
    ];
    STEPS
        .into_iter()
        .find(|s| span / s <= 10.0)
        .unwrap_or_else(|| (span / 10.0 / 3600.0).ceil() * 3600.0)
}

/// A tick's label: `+0 s`, `+1.5 s`, `+2 min`, `+1 h 30 min`.
fn tick(offset: f64) -> String {
    if offset < 60.0 {
        let text = format!("{offset:.1}");
        format!("+{} s", text.trim_end_matches('0').trim_end_matches('.'))
    } else if offset < 3600.0 {
        let (m, s) = ((offset / 60.0).floor(), offset % 60.0);
        if s < 0.5 {
            format!("+{m} min")
        } else {
            format!("+{m} min {s:.0} s")
        }
    } else {
        let (h, m) = (
            (offset / 3600.0).floor(),
            ((offset % 3600.0) / 60.0).round(),
        );
        if m == 0.0 {
            format!("+{h} h")
        } else {
            format!("+{h} h {m} min")
        }
    }
}

/// Cut a label to `max` characters.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max - 1).collect();
        s.push('…');
        s
    }
}

/// The SVG, or `None` when no job has a time (nothing ran yet).
pub fn svg(view: &View) -> Option<String> {
    let (t0, t1) = view.span()?;
    let axis = Axis {
        t0,
        span: (t1 - t0).max(1e-3),
    };
    let waves = view.report.waves.len();
    let height = AXIS + waves as f64 * WAVE + view.jobs.len() as f64 * ROW + LEGEND;
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="timeline" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" role="img" aria-label="Timeline of the suite run">"#
    );
    out.push_str(r#"<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="3" height="6" class="hatch"/></pattern></defs>"#);
    // the axis
    let step = step(axis.span);
    let mut k = 0.0;
    while k * step <= axis.span + 1e-9 {
        let x = axis.x(t0 + k * step);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{:.1}"/><text class="tick" x="{x:.1}" y="{}">{}</text>"#,
            AXIS - 6.0,
            height - LEGEND,
            AXIS - 10.0,
            esc(&tick(k * step))
        );
        k += 1.0;
    }
    let mut y = AXIS;
    let mut jobs = view.jobs.iter().peekable();
    for (w, wave) in view.report.waves.iter().enumerate() {
        let on_failure = wave
            .on_failure
            .as_deref()
            .map(|o| format!(" (on failure: {o})"))
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<text class="wave" x="4" y="{:.1}">Wave {}{}</text><line class="wave-rule" x1="0" y1="{y:.1}" x2="{WIDTH}" y2="{y:.1}"/>"#,
            y + 15.0,
            w + 1,
            esc(&on_failure)
        );
        y += WAVE;
        while let Some((job, facts)) = jobs.next_if(|(j, _)| j.wave == w) {
            row(&mut out, &axis, y, job, facts.as_ref());
            y += ROW;
        }
    }
    legend(&mut out, height - LEGEND + 8.0);
    out.push_str("</svg>");
    Some(out)
}

/// One job's row at `y`.
fn row(out: &mut String, axis: &Axis, y: f64, job: &super::Job, facts: Option<&Facts>) {
    let title = View::title(job, facts);
    let word = View::word(job);
    let class = word.replace(' ', "-");
    let _ = write!(
        out,
        r##"<a href="#job-{id}"><text class="label" x="14" y="{:.1}"><title>{t}</title>{}</text></a><text class="sub" x="14" y="{:.1}">{} · {}</text>"##,
        y + 16.0,
        esc(&cut(&title, 34)),
        y + 31.0,
        esc(&job.run_id),
        esc(word),
        id = esc(&job.run_id),
        t = esc(&title),
    );
    let Some(f) = facts else { return };
    let Some((a, b)) = f.span() else { return };
    let (x, w) = axis.bar(a, b);
    let _ = write!(
        out,
        r##"<a href="#job-{id}"><rect class="job {class}" x="{x:.1}" y="{:.1}" width="{w:.1}" height="12" rx="2"><title>{t}: {word}, {d}</title></rect></a>"##,
        y + 5.0,
        id = esc(&job.run_id),
        t = esc(&title),
        d = seconds(b - a),
    );
    for fault in &f.faults {
        let (Some(s), Some(e)) = (fault.start, fault.end.or(fault.start)) else {
            continue;
        };
        let (x, w) = axis.bar(s, e);
        let _ = write!(
            out,
            r#"<rect class="fault" x="{x:.1}" y="{:.1}" width="{w:.1}" height="{:.1}"><title>fault window: {} on {} ({}, command {}), {}</title></rect>"#,
            y + 2.0,
            ROW - 8.0,
            esc(&fault.document),
            esc(&fault.targets.join(", ")),
            esc(&fault.activity),
            esc(&fault.command_id),
            seconds(e - s),
        );
    }
    let probes = f.checks.iter().flat_map(|c| c.probes.iter());
    for act in f.activities.iter().chain(probes) {
        let (Some(s), Some(e)) = (act.start, act.end.or(act.start)) else {
            continue;
        };
        let (x, w) = axis.bar(s, e);
        let kind = match act.phase {
            Phase::Method if act.kind == "probe" => "act-probe",
            Phase::Method => "act-method",
            Phase::Rollback => "act-rollback",
            _ => "act-probe",
        };
        let failed = if act.succeeded { "" } else { " act-failed" };
        let _ = write!(
            out,
            r#"<rect class="act {kind}{failed}" x="{x:.1}" y="{:.1}" width="{w:.1}" height="8"><title>{} ({}): {}{}</title></rect>"#,
            y + 21.0,
            esc(&act.name),
            act.phase.as_str(),
            seconds(act.duration),
            if act.succeeded { "" } else { ", failed" },
        );
    }
    for check in &f.checks {
        let Some(at) = check.at else { continue };
        let (class, met) = match check.met {
            Some(true) => ("met", "met"),
            Some(false) => ("unmet", "not met"),
            None => ("unknown", "not evaluated"),
        };
        let _ = write!(
            out,
            r#"<circle class="check {class}" cx="{:.1}" cy="{:.1}" r="4"><title>{}: {met}</title></circle>"#,
            axis.x(at),
            y + 36.0,
            check.phase.as_str(),
        );
    }
    if let Some(stop) = &f.stop {
        let x = axis.x(stop.at.unwrap_or(b));
        let _ = write!(
            out,
            r#"<line class="stop" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"><title>{}: {}</title></line><text class="stop-label" x="{:.1}" y="{:.1}">{}</text>"#,
            y + 1.0,
            y + ROW - 4.0,
            stop.kind.as_str(),
            esc(&stop.reason),
            (x - 4.0).max(LABEL),
            y + 44.0,
            stop.kind.as_str(),
        );
    }
}

fn legend(out: &mut String, y: f64) {
    let items = [
        ("job held", "held"),
        ("deviated", "deviated"),
        ("failed", "failed"),
        ("action", "act act-method"),
        ("rollback", "act act-rollback"),
        ("probe", "act act-probe"),
        ("fault window", "fault"),
    ];
    let mut x = 14.0;
    for (label, class) in items {
        let class = if class.starts_with("act") || class == "fault" {
            class.to_string()
        } else {
            format!("job {class}")
        };
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{x}" y="{y}" width="14" height="10"/><text class="sub" x="{}" y="{}">{label}</text>"#,
            x + 18.0,
            y + 9.5
        );
        x += 28.0 + label.len() as f64 * 6.5;
    }
    for (label, class) in [("hypothesis met", "met"), ("not met", "unmet")] {
        let _ = write!(
            out,
            r#"<circle class="check {class}" cx="{}" cy="{}" r="4"/><text class="sub" x="{}" y="{}">{label}</text>"#,
            x + 5.0,
            y + 5.0,
            x + 14.0,
            y + 9.5
        );
        x += 24.0 + label.len() as f64 * 6.5;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_few_and_read_as_offsets() {
        for (span, expected) in [
            (0.5, 0.1),
            (1.0, 0.1),
            (9.0, 1.0),
            (45.0, 5.0),
            (600.0, 60.0),
            (7200.0, 900.0),
            (360_000.0, 36_000.0),
        ] {
            assert_eq!(step(span), expected, "{span}");
        }
        for (offset, text) in [
            (0.0, "+0 s"),
            (1.5, "+1.5 s"),
            (30.0, "+30 s"),
            (120.0, "+2 min"),
            (90.0, "+1 min 30 s"),
            (3600.0, "+1 h"),
            (5400.0, "+1 h 30 min"),
        ] {
            assert_eq!(tick(offset), text);
        }
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
