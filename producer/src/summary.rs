//! A suite run as people and scripts see it: the summary `submit --wait`, `status` and `run`
//! print, `producer status` itself, and the exit code of a suite run's outcome.

use crate::ports::{locate, open};
use aws::Backend;
use cli::BackendArgs;
use cli::Exit;
use shared::fleet::outcome::SuiteOutcome;
use shared::fleet::producer::{Plan, State, status_document};

/// `Held` when every experiment held, `Failed` otherwise.
pub fn exit(state: &State) -> Exit {
    Exit::held_if(state.outcome == Some(SuiteOutcome::Held))
}

/// `producer status`: the summary, or with `--json` one document.
pub async fn status(id: &str, as_json: bool, args: &BackendArgs) -> anyhow::Result<Exit> {
    let (backend, ports) = open(args).await?;
    let (plan, state) = ports.load(id).await?;
    if as_json {
        let doc = status_document(&plan, &state);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Held);
    }
    print!("{}", summary(&plan, &state, &backend));
    Ok(Exit::Held)
}

/// The human summary of a suite run: its status, then every job with its journal.
pub fn summary(plan: &Plan, state: &State, backend: &Backend) -> String {
    use std::fmt::Write;
    let doc = status_document(plan, state);
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
    if let Some(score) = doc["score"].as_u64() {
        let tally = shared::fleet::producer::history::tally(plan, state);
        let _ = writeln!(out, "resilience score {score}/100 ({})", tally.explain());
    }
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
                "  {:<8} {:<10} {:<9} {}  {}",
                job["run_id"].as_str().unwrap_or(""),
                job["state"].as_str().unwrap_or(""),
                job["outcome"].as_str().unwrap_or("-"),
                job["experiment_source"].as_str().unwrap_or(""),
                journal
            );
        }
    }
    out
}
