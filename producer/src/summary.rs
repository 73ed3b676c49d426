//! A suite run as people and scripts see it: the summary `submit --wait`, `status` and `run`
//! print (its times, then a table: every job with its experiment's title, outcome, duration
//! and journal, then the totals), `producer status` itself, and the exit code of a suite run's
//! outcome. A status reads the plan, the state and the completion records once; a journal only
//! for what its record lacks (records of older workers' events carry no title).

use crate::ports::{Ports, locate, open};
use aws::Backend;
use cli::BackendArgs;
use cli::Exit;
use comfy_table::{CellAlignment, Table, presets};
use serde_json::Value;
use shared::fleet::outcome::{JobOutcome, SuiteOutcome, SuiteStatus};
use shared::fleet::producer::{Completion, Plan, State, status_document};
use shared::ports::ObjectStore;
use std::collections::BTreeMap;

/// `Held` when every experiment held, `Failed` otherwise.
pub fn exit(state: &State) -> Exit {
    Exit::held_if(state.outcome == Some(SuiteOutcome::Held))
}

/// What a job's journal says that the suite run's state does not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The experiment's title.
    pub title: Option<String>,
    /// How long the run took, in seconds.
    pub duration: Option<f64>,
    /// When the run started and ended (the journal's `start` and `end`).
    pub start: Option<String>,
    pub end: Option<String>,
}

impl Facts {
    /// The facts of a journal's text (none of it when it does not read).
    pub fn of(journal: &[u8]) -> Facts {
        let Ok(j) = serde_json::from_slice::<Value>(journal) else {
            return Facts::default();
        };
        Facts {
            title: j["experiment"]["title"].as_str().map(str::to_string),
            duration: j["duration"].as_f64(),
            start: j["start"].as_str().map(str::to_string),
            end: j["end"].as_str().map(str::to_string),
        }
    }
}

/// Journals read at once for the facts their completion records lack (on S3 each is a request).
const JOURNAL_READS_AT_ONCE: usize = 32;

/// The facts of every job of `completions` not in `known` yet: its title and times from its
/// completion record; its journal is read only for what the record lacks (the records of
/// dead-lettered jobs and of older workers' events), `JOURNAL_READS_AT_ONCE` at a time. A
/// journal that cannot be read leaves its title empty.
pub async fn read_facts(
    ports: &Ports,
    completions: &BTreeMap<String, Completion>,
    known: &mut BTreeMap<String, Facts>,
) {
    let mut lacking = Vec::new();
    for (run_id, c) in completions {
        if known.contains_key(run_id) {
            continue;
        }
        let recorded = Facts {
            title: c.title.clone(),
            duration: c.duration,
            start: c.start.clone(),
            end: c.end.clone(),
        };
        if recorded.title.is_some() && recorded.duration.is_some() {
            known.insert(run_id.clone(), recorded);
        } else {
            lacking.push((run_id.clone(), c.journal_key.clone(), recorded));
        }
    }
    for chunk in lacking.chunks(JOURNAL_READS_AT_ONCE) {
        let mut reads = tokio::task::JoinSet::new();
        for (run_id, key, recorded) in chunk.iter().cloned() {
            let store = ports.store.clone();
            reads.spawn(async move {
                let mut facts = match store.get(&key).await {
                    Ok(Some(bytes)) => Facts::of(&bytes),
                    _ => Facts::default(),
                };
                if recorded.title.is_some() {
                    facts.title = recorded.title;
                }
                if recorded.duration.is_some() {
                    facts.duration = recorded.duration;
                    facts.start = recorded.start;
                    facts.end = recorded.end;
                }
                (run_id, facts)
            });
        }
        while let Some(read) = reads.join_next().await {
            if let Ok((run_id, facts)) = read {
                known.insert(run_id, facts);
            }
        }
    }
}

/// `producer status`: the summary, or with `--json` one document.
pub async fn status(id: &str, as_json: bool, args: &BackendArgs) -> anyhow::Result<Exit> {
    let (backend, ports) = open(args).await?;
    let (plan, state) = ports.load(id).await?;
    let completions = ports.completions(id).await?;
    if as_json {
        // the records carry the times; a journal is read only for a record without them
        let lacking: BTreeMap<String, Completion> = completions
            .iter()
            .filter(|(_, c)| c.duration.is_none())
            .map(|(k, c)| (k.clone(), c.clone()))
            .collect();
        let mut facts = BTreeMap::new();
        read_facts(&ports, &lacking, &mut facts).await;
        let doc = with_timings(status_document(&plan, &state, &completions), &facts);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Held);
    }
    let mut facts = BTreeMap::new();
    read_facts(&ports, &completions, &mut facts).await;
    print!("{}", summary(&plan, &state, &completions, &backend, &facts));
    Ok(Exit::Held)
}

/// The status document with the times its completion records lack (dead-lettered jobs,
/// events of older workers) filled in from the journals read: each job's `start`, `end` and
/// `duration` (seconds).
fn with_timings(mut doc: Value, facts: &BTreeMap<String, Facts>) -> Value {
    for wave in doc["waves"].as_array_mut().into_iter().flatten() {
        for job in wave["jobs"].as_array_mut().into_iter().flatten() {
            let Some(known) = job["run_id"].as_str().and_then(|id| facts.get(id)) else {
                continue;
            };
            if job["duration"].is_null() {
                job["start"] = serde_json::json!(known.start);
                job["end"] = serde_json::json!(known.end);
                job["duration"] = serde_json::json!(known.duration);
            }
        }
    }
    doc
}

/// Seconds for people: `4.2s`, `3m 04s`, `1h 02m`.
pub fn duration(seconds: f64) -> String {
    let whole = seconds.max(0.0).round() as u64;
    if seconds < 60.0 {
        format!("{:.1}s", seconds.max(0.0))
    } else if whole < 3600 {
        format!("{}m {:02}s", whole / 60, whole % 60)
    } else {
        format!("{}h {:02}m", whole / 3600, whole % 3600 / 60)
    }
}

/// The human summary of a suite run: its status and times, then a table of every job (wave,
/// run id, experiment, outcome, duration, journal) with the totals under it. `facts`: what
/// the journals say (titles).
pub fn summary(
    plan: &Plan,
    state: &State,
    completions: &BTreeMap<String, Completion>,
    backend: &Backend,
    facts: &BTreeMap<String, Facts>,
) -> String {
    use std::fmt::Write;
    let doc = status_document(plan, state, completions);
    let skipped = plan.skipped().len();
    let mut out = format!(
        "suite run {} ({}): {}{}{}\n",
        plan.suite_run_id,
        plan.name,
        state.status,
        state
            .outcome
            .as_ref()
            .map(|o| format!(", {o}"))
            .unwrap_or_default(),
        if skipped > 0 {
            format!(" ({skipped} skipped: already completed)")
        } else {
            String::new()
        }
    );
    if let Some(source) = &plan.source {
        let _ = writeln!(out, "from {source}");
    }
    let _ = writeln!(
        out,
        "created {}{}; {} of {} jobs completed",
        plan.created,
        match (doc["ended"].as_str(), doc["duration"].as_f64()) {
            (Some(end), Some(d)) => format!(", ended {end} ({})", duration(d)),
            (Some(end), None) => format!(", ended {end}"),
            _ => String::new(),
        },
        doc["completed"],
        doc["jobs"]
    );
    if let Some(score) = doc["score"].as_u64() {
        let tally = shared::fleet::producer::history::tally(plan, state);
        let _ = writeln!(out, "resilience score {score}/100 ({})", tally.explain());
    }
    for p in &state.problems {
        let _ = writeln!(out, "  problem: {p}");
    }
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    table.set_header(vec![
        "wave",
        "run",
        "experiment",
        "outcome",
        "duration",
        "journal",
    ]);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut jobs, mut total) = (0, 0.0);
    for wave in doc["waves"].as_array().into_iter().flatten() {
        for job in wave["jobs"].as_array().into_iter().flatten() {
            jobs += 1;
            let run_id = job["run_id"].as_str().unwrap_or("");
            let known = facts.get(run_id).cloned().unwrap_or_default();
            let outcome = match job["outcome"].as_str() {
                Some(o) => o,
                // a seed payload's item that was already completed: never run here
                None if job["state"].as_str() == Some("skipped") => "skipped",
                // a suite run that ended leaves the jobs it did not run
                None if state.status != SuiteStatus::Running => "not run",
                None => job["state"].as_str().unwrap_or(""),
            };
            *counts.entry(outcome).or_default() += 1;
            let took = job["duration"].as_f64().or(known.duration);
            total += took.unwrap_or(0.0);
            let journal = job["journal_key"]
                .as_str()
                .map(|k| locate(backend, k))
                .unwrap_or_default();
            table.add_row(vec![
                wave["wave"].to_string(),
                run_id.to_string(),
                known
                    .title
                    .unwrap_or_else(|| job["experiment_source"].as_str().unwrap_or("").into()),
                outcome.to_string(),
                took.map(duration).unwrap_or_else(|| "-".into()),
                journal,
            ]);
        }
    }
    let order = [
        JobOutcome::Held.as_str(),
        JobOutcome::Deviated.as_str(),
        JobOutcome::Failed.as_str(),
    ];
    let mut said: Vec<String> = order
        .iter()
        .map(|o| format!("{} {o}", counts.get(o).copied().unwrap_or(0)))
        .collect();
    said.extend(
        counts
            .iter()
            .filter(|(o, _)| !order.contains(o))
            .map(|(o, n)| format!("{n} {o}")),
    );
    table.add_row(vec![
        "total".to_string(),
        String::new(),
        format!("{jobs} experiment{}", if jobs == 1 { "" } else { "s" }),
        said.join(", "),
        duration(total),
        String::new(),
    ]);
    if let Some(column) = table.column_mut(4) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    let _ = writeln!(out, "{table}");
    out
}

#[cfg(test)]
mod tests {
    use super::{Facts, duration};

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration(4.24), "4.2s");
        assert_eq!(duration(184.0), "3m 04s");
        assert_eq!(duration(3720.0), "1h 02m");
        assert_eq!(duration(-1.0), "0.0s");
    }

    #[test]
    fn a_journal_gives_its_title_and_duration_and_a_bad_one_nothing() {
        let facts = Facts::of(br#"{"experiment": {"title": "CPU burn"}, "duration": 2.5}"#);
        assert_eq!(facts.title.as_deref(), Some("CPU burn"));
        assert_eq!(facts.duration, Some(2.5));
        assert_eq!(Facts::of(b"not json"), Facts::default());
    }
}
