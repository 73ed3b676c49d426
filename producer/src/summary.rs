//! A suite run as people and scripts see it: the summary `submit --wait`, `status` and `run`
//! print (with timestamps and durations), `producer status` itself, and the exit code of a
//! suite run's outcome. A status reads the plan, the state and the completion records once.

use crate::ports::{locate, open};
use aws::Backend;
use cli::BackendArgs;
use cli::Exit;
use shared::fleet::outcome::SuiteOutcome;
use shared::fleet::producer::{Completion, Plan, State, status_document};
use std::collections::BTreeMap;

/// `Held` when every experiment held, `Failed` otherwise.
pub fn exit(state: &State) -> Exit {
    Exit::held_if(state.outcome == Some(SuiteOutcome::Held))
}

/// `producer status`: the summary, or with `--json` one document.
pub async fn status(id: &str, as_json: bool, args: &BackendArgs) -> anyhow::Result<Exit> {
    let (backend, ports) = open(args).await?;
    let (plan, state) = ports.load(id).await?;
    let completions = ports.completions(id).await?;
    if as_json {
        let doc = status_document(&plan, &state, &completions);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Held);
    }
    print!("{}", summary(&plan, &state, &completions, &backend));
    Ok(Exit::Held)
}

/// Seconds as people read them: `850 ms`, `12.3 s`, `4 min 05 s`.
fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02.0} s", (s / 60.0).floor(), s % 60.0)
    }
}

/// The human summary of a suite run: its status and times, then every job with its duration
/// and journal.
pub fn summary(
    plan: &Plan,
    state: &State,
    completions: &BTreeMap<String, Completion>,
    backend: &Backend,
) -> String {
    use std::fmt::Write;
    let doc = status_document(plan, state, completions);
    let mut out = format!(
        "suite run {} ({}): {}{}\n",
        plan.suite_run_id,
        plan.name,
        state.status,
        state
            .outcome
            .as_ref()
            .map(|o| format!(", {o}"))
            .unwrap_or_default()
    );
    if let Some(source) = &plan.source {
        let _ = writeln!(out, "from {source}");
    }
    let _ = writeln!(
        out,
        "created {}{}; {} of {} jobs completed",
        plan.created,
        match (&state.ended, doc["duration"].as_f64()) {
            (Some(end), Some(d)) => format!(", ended {end} ({})", seconds(d)),
            (Some(end), None) => format!(", ended {end}"),
            _ => String::new(),
        },
        doc["completed"],
        doc["jobs"]
    );
    for p in &state.problems {
        let _ = writeln!(out, "  problem: {p}");
    }
    for wave in doc["waves"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "wave {} (on failure: {})",
            wave["wave"],
            wave["on_failure"].as_str().unwrap_or("")
        );
        for job in wave["jobs"].as_array().into_iter().flatten() {
            let journal = job["journal_key"]
                .as_str()
                .map(|k| locate(backend, k))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<8} {:<10} {:<9} {:>10}  {}  {}",
                job["run_id"].as_str().unwrap_or(""),
                job["state"].as_str().unwrap_or(""),
                job["outcome"].as_str().unwrap_or("-"),
                job["duration"].as_f64().map(seconds).unwrap_or_default(),
                job["experiment_source"].as_str().unwrap_or(""),
                journal
            );
        }
    }
    out
}
