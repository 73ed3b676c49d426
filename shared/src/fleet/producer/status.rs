//! The status document of a suite run (`producer status --json`): every job with its state
//! (`pending`, `enqueued`, `completed`, or `skipped`: a seed payload's item already done),
//! outcome and journal.

use super::plan::Plan;
use super::state::{Completion, State};
use serde_json::{Map, Value, json};

/// The status document `producer status --json` prints.
pub fn status_document(plan: &Plan, state: &State) -> Value {
    let waves: Vec<Value> = plan
        .waves
        .iter()
        .enumerate()
        .map(|(w, wave)| {
            let jobs: Vec<Value> = wave
                .jobs
                .iter()
                .map(|j| {
                    let c = state.completions.get(&j.run_id);
                    json!({
                        "run_id": j.run_id,
                        "experiment_source": j.experiment_source,
                        "state": if wave.skipped { "skipped" } else if c.is_some() { "completed" } else if state.enqueued.contains(&j.run_id) { "enqueued" } else { "pending" },
                        "outcome": c.map(Completion::outcome),
                        "status": c.map(|c| c.status),
                        "journal_key": c.map(|c| c.journal_key.clone()),
                    })
                })
                .collect();
            json!({"wave": w, "on_failure": wave.on_failure, "jobs": jobs})
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("suite_run_id".into(), json!(plan.suite_run_id));
    doc.insert("name".into(), json!(plan.name));
    doc.insert("source".into(), json!(plan.source));
    doc.insert("status".into(), json!(state.status));
    doc.insert("outcome".into(), json!(state.outcome));
    doc.insert("score".into(), json!(super::history::score(plan, state)));
    doc.insert("current_wave".into(), json!(state.current_wave));
    doc.insert("problems".into(), json!(state.problems));
    doc.insert("waves".into(), Value::Array(waves));
    Value::Object(doc)
}
