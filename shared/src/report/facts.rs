//! What a report shows of one journal, read out of it once: the activities with their times,
//! the hypothesis checks with their tolerances, the fault windows (from the journal's
//! `broker.records`), refusals, what stopped the run, and the errors. Pure; lenient (a journal
//! from elsewhere may lack the `broker` section: it then has no fault windows).

use crate::fleet::outcome::JobOutcome;
use crate::model::{Journal, Run, RunStatus, Status};
use serde_json::Value;

/// Where in a run an activity ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Before,
    Method,
    During,
    After,
    Rollback,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "hypothesis before",
            Phase::Method => "method",
            Phase::During => "hypothesis during",
            Phase::After => "hypothesis after",
            Phase::Rollback => "rollback",
        }
    }
}

/// One executed activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    pub name: String,
    /// `action` or `probe`.
    pub kind: String,
    pub phase: Phase,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub duration: f64,
    pub succeeded: bool,
    /// The last line of its exception.
    pub error: Option<String>,
    /// Hypothesis probes: the tolerance as written, and whether it was met.
    pub tolerance: Option<String>,
    pub tolerance_met: Option<bool>,
}

/// One evaluation of the steady-state hypothesis.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub phase: Phase,
    pub met: Option<bool>,
    pub at: Option<f64>,
    pub probes: Vec<Activity>,
}

/// A window during which a fault acted: an SSM command on record, from when it was sent to the
/// end of the activity that sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub activity: String,
    pub document: String,
    pub command_id: String,
    pub targets: Vec<String>,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub start_text: String,
    pub end_text: String,
}

/// A guard rail that refused an activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub activity: String,
    pub rule: String,
    pub message: String,
}

/// What stopped a run from outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    KillSwitch,
    StopCondition,
    /// Another tripwire (one that could not be read).
    Tripwire,
}

impl StopKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StopKind::KillSwitch => "kill switch",
            StopKind::StopCondition => "stop condition",
            StopKind::Tripwire => "tripwire",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub kind: StopKind,
    pub reason: String,
    /// It kept the run from starting.
    pub not_started: bool,
    pub at: Option<f64>,
}

/// Everything a report shows of one journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub title: String,
    pub status: Option<Status>,
    pub deviated: bool,
    pub outcome: JobOutcome,
    pub start: Option<f64>,
    pub end: Option<f64>,
    pub start_text: String,
    pub end_text: String,
    pub duration: Option<f64>,
    pub activities: Vec<Activity>,
    pub checks: Vec<Check>,
    pub faults: Vec<Fault>,
    pub refusals: Vec<Refusal>,
    pub stop: Option<Stop>,
    pub errors: Vec<String>,
}

impl Facts {
    pub fn of(journal: &Journal) -> Facts {
        let broker = journal.broker.clone().unwrap_or(Value::Null);
        let mut activities: Vec<Activity> = journal
            .run
            .iter()
            .map(|r| activity(r, Phase::Method))
            .collect();
        activities.extend(
            journal
                .rollbacks
                .iter()
                .map(|r| activity(r, Phase::Rollback)),
        );
        let ss = &journal.steady_states;
        let mut checks = Vec::new();
        let phases = [(Phase::Before, ss.before.as_ref())]
            .into_iter()
            .chain(ss.during.iter().map(|d| (Phase::During, Some(d))))
            .chain([(Phase::After, ss.after.as_ref())]);
        for (phase, state) in phases {
            let Some(state) = state else { continue };
            let probes: Vec<Activity> = state.probes.iter().map(|r| activity(r, phase)).collect();
            checks.push(Check {
                phase,
                met: state.steady_state_met,
                at: probes.iter().filter_map(|p| p.start).reduce(f64::min),
                probes,
            });
        }
        let start = parse_time(&journal.start);
        let end = journal.end.as_deref().and_then(parse_time);
        let end = end.or_else(|| Some(start? + journal.duration?));
        let faults = faults(&broker, &activities, journal);
        let refusals = text_list(&broker["refused"])
            .iter()
            .map(|r| Refusal {
                activity: text(&r["activity"]),
                rule: text(&r["rule"]),
                message: text(&r["message"]),
            })
            .collect();
        let stop = broker["stopped_by"].as_str().map(|reason| Stop {
            kind: stop_kind(reason),
            reason: reason.to_string(),
            not_started: broker["not_started"] == true,
            at: end,
        });
        let mut errors: Vec<String> = Vec::new();
        if let Some(e) = broker["error"].as_str() {
            errors.push(e.to_string());
        }
        let all = activities
            .iter()
            .chain(checks.iter().flat_map(|c| c.probes.iter()));
        for a in all {
            if let Some(e) = &a.error {
                errors.push(format!("{} ({}): {e}", a.name, a.phase.as_str()));
            }
        }
        Facts {
            title: journal.experiment["title"]
                .as_str()
                .unwrap_or("(untitled experiment)")
                .to_string(),
            status: journal.status,
            deviated: journal.deviated,
            outcome: JobOutcome::of(journal),
            start,
            end,
            start_text: journal.start.clone(),
            end_text: journal.end.clone().unwrap_or_default(),
            duration: journal.duration,
            activities,
            checks,
            faults,
            refusals,
            stop,
            errors,
        }
    }

    /// The first and last instants of anything in the run.
    pub fn span(&self) -> Option<(f64, f64)> {
        let times = self
            .activities
            .iter()
            .chain(self.checks.iter().flat_map(|c| c.probes.iter()))
            .flat_map(|a| [a.start, a.end])
            .chain(self.faults.iter().flat_map(|f| [f.start, f.end]))
            .chain([self.start, self.end])
            .flatten();
        times.fold(None, |acc, t| match acc {
            None => Some((t, t)),
            Some((a, b)) => Some((a.min(t), b.max(t))),
        })
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn text_list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn activity(run: &Run, phase: Phase) -> Activity {
    let raw = &run.activity;
    let tolerance = raw.get("tolerance").map(|t| match t {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    Activity {
        name: raw["name"].as_str().unwrap_or("(unnamed)").to_string(),
        kind: raw["type"].as_str().unwrap_or("activity").to_string(),
        phase,
        start: parse_time(&run.start),
        end: parse_time(&run.end),
        duration: run.duration,
        succeeded: run.status == RunStatus::Succeeded,
        error: run.exception.as_ref().and_then(|lines| {
            lines
                .iter()
                .rev()
                .map(|l| l.trim())
                .find(|l| !l.is_empty())
                .map(str::to_string)
        }),
        tolerance: tolerance
            .filter(|_| matches!(phase, Phase::Before | Phase::During | Phase::After)),
        tolerance_met: run.tolerance_met,
    }
}

/// The fault windows the `ssm_command` records name; each ends when the activity that sent it
/// ended (the run's end when that activity is not in the journal).
fn faults(broker: &Value, activities: &[Activity], journal: &Journal) -> Vec<Fault> {
    text_list(&broker["records"])
        .iter()
        .filter(|r| r["kind"] == "ssm_command")
        .map(|r| {
            let name = text(&r["activity"]);
            let start_text = text(&r["at"]);
            let start = parse_time(&start_text);
            let by = activities.iter().find(|a| {
                a.name == name
                    && match (a.start, a.end, start) {
                        (Some(s), Some(e), Some(at)) => s <= at + 1e-3 && at <= e + 1e-3,
                        _ => true,
                    }
            });
            let (end, end_text) = match by.and_then(|a| a.end) {
                Some(e) => (Some(e), String::new()),
                None => (
                    journal.end.as_deref().and_then(parse_time),
                    journal.end.clone().unwrap_or_default(),
                ),
            };
            Fault {
                activity: name,
                document: text(&r["document"]),
                command_id: text(&r["command_id"]),
                targets: text_list(&r["instance_ids"]).iter().map(text).collect(),
                start,
                end,
                start_text,
                end_text,
            }
        })
        .collect()
}

fn stop_kind(reason: &str) -> StopKind {
    let lower = reason.to_ascii_lowercase();
    if lower.starts_with("stop condition") {
        StopKind::StopCondition
    } else if lower.contains("kill switch") {
        StopKind::KillSwitch
    } else {
        StopKind::Tripwire
    }
}

/// Seconds since the Unix epoch of an ISO 8601 timestamp as journals write them
/// (`2026-11-25T16:28:42.737616+00:00`, `...Z`, or without an offset: UTC); `None` otherwise.
pub fn parse_time(text: &str) -> Option<f64> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().all(u8::is_ascii_digit).then_some(())?;
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b.get(i) == Some(&b'.') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        frac = format!("0.{}", std::str::from_utf8(&b[i + 1..i + 1 + digits]).ok()?)
            .parse()
            .ok()?;
        i += 1 + digits;
    }
    let offset = match b.get(i) {
        None => 0,
        Some(b'Z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let minutes = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    // days from the civil date (proleptic Gregorian), after H. Hinnant
    let (y, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3600 + mi * 60 + s - offset) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_parse_as_journals_write_them_and_nothing_else() {
        for (text, expected) in [
            ("1970-01-01T00:00:00", Some(0.0)),
            ("1970-01-01T00:00:01.5+00:00", Some(1.5)),
            (
                "2026-11-25T16:28:42.737616+00:00",
                Some(1_795_624_122.737_616),
            ),
            ("2026-11-25T16:28:42Z", Some(1_795_624_122.0)),
            ("2026-11-25T17:28:42+01:00", Some(1_795_624_122.0)),
            ("2026-11-25T15:28:42-01:00", Some(1_795_624_122.0)),
            ("2000-02-29T00:00:00", Some(951_782_400.0)),
            ("", None),
            ("2026-13-01T00:00:00", None),
            ("2026-11-25", None),
            ("2026-11-25T16:28:42.", None),
            ("2026-11-25T16:28:42+0100", None),
            ("2026-11-25T16:28:42 junk", None),
            ("yesterday at noon, roughly", None),
        ] {
            let got = parse_time(text);
            match (got, expected) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-6, "{text}: {g} vs {e}"),
                _ => assert_eq!(got, expected, "{text}"),
            }
        }
    }

    fn journal(value: Value) -> Journal {
        serde_json::from_value(value).unwrap()
    }

    fn run(name: &str, kind: &str, start: &str, end: &str, extra: Value) -> Value {
        let mut r = json!({"activity": {"name": name, "type": kind}, "output": null,
            "start": start, "end": end, "duration": 1.0, "status": "succeeded"});
        if let (Value::Object(r), Value::Object(extra)) = (&mut r, extra) {
            for (k, v) in extra {
                if k == "tolerance" {
                    r["activity"]["tolerance"] = v;
                } else {
                    r.insert(k, v);
                }
            }
        }
        r
    }

    #[test]
    fn a_journal_gives_its_faults_checks_refusals_stop_and_errors() {
        let t = |s: u32| format!("2026-01-01T00:00:{s:02}+00:00");
        let j = journal(json!({
            "chaoslib-version": "x", "platform": "", "node": "",
            "experiment": {"title": "CPU <stress> & \"quotes\""},
            "start": t(0), "end": t(30), "duration": 30.0,
            "status": "interrupted", "deviated": false,
            "steady_states": {
                "before": {"steady_state_met": true, "probes": [
                    run("healthy", "probe", &t(1), &t(2), json!({"tolerance": 200, "tolerance_met": true}))]},
                "after": null,
                "during": [{"steady_state_met": false, "probes": [
                    run("healthy", "probe", &t(10), &t(11), json!({"tolerance": {"type": "range", "range": [1, 2]}, "tolerance_met": false}))]}]
            },
            "run": [
                run("stress", "action", &t(3), &t(20), json!({})),
                run("broken", "action", &t(21), &t(22), json!({"status": "failed", "exception": ["Traceback\n", "ActivityFailed: boom\n", "\n"]}))
            ],
            "rollbacks": [run("undo", "action", &t(25), &t(26), json!({}))],
            "broker": {
                "records": [
                    {"kind": "targets", "activity": "stress", "chosen": ["i-1"]},
                    {"kind": "ssm_command", "activity": "stress", "at": t(4), "command_id": "c-1",
                     "document": "StressCPU", "instance_ids": ["i-1", "i-2"]},
                    {"kind": "ssm_command", "activity": "elsewhere", "at": t(23), "command_id": "c-2",
                     "document": "KillProcess", "instance_ids": ["i-3"]}
                ],
                "refused": [{"activity": "wide", "rule": "max_targets", "message": "too many"}],
                "stopped_by": "stop condition: CloudWatch alarm 5xx is in ALARM"
            }
        }));
        let f = Facts::of(&j);
        assert_eq!(f.title, "CPU <stress> & \"quotes\"");
        assert_eq!(f.outcome, JobOutcome::Failed);
        assert_eq!(f.activities.len(), 3);
        assert_eq!(f.activities[2].phase, Phase::Rollback);
        assert_eq!(
            (
                f.checks.len(),
                f.checks[0].met,
                f.checks[1].phase,
                f.checks[1].met
            ),
            (2, Some(true), Phase::During, Some(false))
        );
        assert_eq!(f.checks[0].probes[0].tolerance.as_deref(), Some("200"));
        assert_eq!(
            f.checks[1].probes[0].tolerance.as_deref(),
            Some(r#"{"type":"range","range":[1,2]}"#)
        );
        assert_eq!(f.faults.len(), 2);
        let base = parse_time(&t(0)).unwrap();
        let stress = &f.faults[0];
        assert_eq!(
            (
                stress.document.as_str(),
                stress.targets.clone(),
                stress.start.map(|s| s - base),
                stress.end.map(|e| e - base)
            ),
            (
                "StressCPU",
                vec!["i-1".to_string(), "i-2".to_string()],
                Some(4.0),
                Some(20.0)
            ),
            "a fault window ends with the activity that sent it"
        );
        assert_eq!(
            f.faults[1].end.map(|e| e - base),
            Some(30.0),
            "else with the run"
        );
        assert_eq!(f.refusals[0].rule, "max_targets");
        let stop = f.stop.clone().unwrap();
        assert_eq!(
            (stop.kind, stop.not_started),
            (StopKind::StopCondition, false)
        );
        assert_eq!(f.errors, ["broken (method): ActivityFailed: boom"]);
        assert_eq!(
            f.span().map(|(a, b)| (a - base, b - base)),
            Some((0.0, 30.0))
        );
    }

    #[test]
    fn what_stopped_a_run_is_told_apart() {
        for (reason, kind) in [
            (
                "the kill switch is on (producer halt: incident)",
                StopKind::KillSwitch,
            ),
            (
                "the kill switch is on (SSM parameter /broker/halt is true)",
                StopKind::KillSwitch,
            ),
            (
                "stop condition: CloudWatch alarm a is in ALARM",
                StopKind::StopCondition,
            ),
            (
                "a tripwire could not be read for 3 intervals",
                StopKind::Tripwire,
            ),
        ] {
            assert_eq!(stop_kind(reason), kind, "{reason}");
        }
    }

    #[test]
    fn a_journal_without_a_broker_section_or_times_reads() {
        let f = Facts::of(&crate::model::failed_journal("s3://b/e.json", "not found"));
        assert_eq!(f.title, "s3://b/e.json");
        assert_eq!(f.errors, ["not found"]);
        assert!(f.faults.is_empty() && f.checks.is_empty() && f.stop.is_none());
        let mut j = crate::model::failed_journal("x", "y");
        j.start = "garbage".into();
        j.end = None;
        j.broker = Some(json!({"records": "not a list", "refused": 3}));
        let f = Facts::of(&j);
        assert_eq!((f.start, f.end, f.span()), (None, None, None));
    }
}
