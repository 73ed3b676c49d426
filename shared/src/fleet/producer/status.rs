//! The status document of a suite run (`producer status --json`): the suite run with its
//! timestamps, counts and score, then every job with its state (`pending`, `enqueued`,
//! `completed`, or `skipped`: a seed payload's item already done), outcome, journal and timings.

use super::plan::Plan;
use super::state::{Completion, State};
use crate::fleet::outcome::SuiteStatus;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// Seconds from `start` to `end`, UTC timestamps as journals write them
/// (`2026-12-01T10:00:00.250000+00:00`), when both read.
pub fn seconds_between(start: &str, end: &str) -> Option<f64> {
    Some(epoch_seconds(end)? - epoch_seconds(start)?)
}

/// Seconds since the Unix epoch of a UTC timestamp `YYYY-MM-DDTHH:MM:SS[.fraction](+00:00|Z)`.
fn epoch_seconds(t: &str) -> Option<f64> {
    let t = t.strip_suffix("+00:00").or_else(|| t.strip_suffix('Z'))?;
    let (date, clock) = t.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut c = clock.splitn(3, ':');
    let (h, min) = (
        c.next()?.parse::<i64>().ok()?,
        c.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = c.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // days from the civil date (Howard Hinnant's algorithm)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3_600 + min * 60) as f64 + sec)
}

/// When the suite run ended: the producer's clock, or for a suite run stored before the state
/// said so, the latest `end` of its completions; `None` while it runs.
fn ended(state: &State, completions: &BTreeMap<String, Completion>) -> Option<String> {
    if state.status == SuiteStatus::Running {
        return None;
    }
    state.ended.clone().or_else(|| {
        completions
            .values()
            .filter_map(|c| c.end.clone())
            .filter_map(|e| Some((epoch_seconds(&e)?, e)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, e)| e)
    })
}

/// The status document `producer status --json` prints: `completions` are the suite run's
/// completion records by run id.
pub fn status_document(
    plan: &Plan,
    state: &State,
    completions: &BTreeMap<String, Completion>,
) -> Value {
    let waves: Vec<Value> = plan
        .waves
        .iter()
        .enumerate()
        .map(|(w, wave)| {
            let jobs: Vec<Value> = wave
                .jobs
                .iter()
                .enumerate()
                .map(|(i, j)| {
                    let c = completions.get(&j.run_id);
                    let job_state = if wave.skipped {
                        "skipped"
                    } else if c.is_some() {
                        "completed"
                    } else if state.was_released(w, i) {
                        "enqueued"
                    } else {
                        "pending"
                    };
                    json!({
                        "run_id": j.run_id,
                        "experiment_source": j.experiment_source,
                        "state": job_state,
                        "outcome": c.map(Completion::outcome),
                        "status": c.map(|c| c.status),
                        "journal_key": c.map(|c| c.journal_key.clone()),
                        "start": c.and_then(|c| c.start.clone()),
                        "end": c.and_then(|c| c.end.clone()),
                        "duration": c.and_then(|c| c.duration),
                    })
                })
                .collect();
            json!({"wave": w, "on_failure": wave.on_failure, "jobs": jobs})
        })
        .collect();
    let total: usize = plan.waves.iter().map(|w| w.jobs.len()).sum();
    let mut doc = Map::new();
    doc.insert("suite_run_id".into(), json!(plan.suite_run_id));
    doc.insert("name".into(), json!(plan.name));
    doc.insert("source".into(), json!(plan.source));
    doc.insert("status".into(), json!(state.status));
    doc.insert("outcome".into(), json!(state.outcome));
    doc.insert("score".into(), json!(super::history::score(plan, state)));
    let ended = ended(state, completions);
    doc.insert("created".into(), json!(plan.created));
    doc.insert(
        "duration".into(),
        json!(
            ended
                .as_deref()
                .and_then(|e| seconds_between(&plan.created, e))
        ),
    );
    doc.insert("ended".into(), json!(ended));
    doc.insert("jobs".into(), json!(total));
    doc.insert("completed".into(), json!(completions.len()));
    doc.insert("current_wave".into(), json!(state.current_wave));
    doc.insert("problems".into(), json!(state.problems));
    doc.insert("waves".into(), Value::Array(waves));
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_between_journal_timestamps() {
        let d = seconds_between(
            "2026-12-01T10:00:00.250000+00:00",
            "2026-12-01T10:01:01.750000+00:00",
        );
        assert_eq!(d, Some(61.5));
        assert_eq!(
            seconds_between("2026-02-28T23:59:59+00:00", "2026-03-01T00:00:01Z"),
            Some(2.0)
        );
        assert_eq!(epoch_seconds("1970-01-01T00:00:00+00:00"), Some(0.0));
        assert_eq!(
            seconds_between("not a time", "2026-12-01T10:00:00+00:00"),
            None
        );
    }
}
