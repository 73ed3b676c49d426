//! The journal of a `worker run` on disk: checked writable before the run starts, written
//! durably after it, and the plan a dry run prints from it.

use anyhow::Context;
use std::path::Path;

/// Write durably (`shared::durable`): a reader never sees half a journal, and after a crash
/// the file is the old journal or the new one.
pub fn write(path: &Path, journal: &shared::Journal) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(journal).context("serialising the journal")?;
    shared::durable::write_atomically(path, (text + "\n").as_bytes())
        .with_context(|| format!("writing the journal to {}", path.display()))?;
    tracing::info!("journal written to {}", path.display());
    Ok(())
}

/// Before the run: a journal that cannot be written would leave faults injected with nothing on
/// record, so the run does not start.
pub fn check_path(path: &Path) -> anyhow::Result<()> {
    shared::durable::check_writable(path).with_context(|| {
        format!(
            "cannot write the journal to {} (its directory must exist and be writable); the experiment was not run",
            path.display()
        )
    })
}

/// After a dry run: what each fault action would have acted on.
pub fn print_plan(journal: &shared::Journal) {
    for run in &journal.run {
        let out = &run.output;
        if out.get("dry_run") == Some(&serde_json::Value::Bool(true)) {
            let targets: Vec<&str> = out["targets"]
                .as_array()
                .map(|t| t.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let what = match out["document"].as_str() {
                Some(document) => format!("send {document}"),
                None => format!("run {}", out["action"].as_str().unwrap_or("?")),
            };
            let stages = match out["stages"].as_array() {
                Some(stages) => format!(
                    "; {} stage(s), {}s in all",
                    stages.len(),
                    out["total_duration"]
                ),
                None => String::new(),
            };
            println!(
                "dry run: {} would {what} on {} ({} of {} matching; seed {}{stages})",
                run.activity["name"].as_str().unwrap_or("?"),
                if targets.is_empty() {
                    "nothing".to_string()
                } else {
                    targets.join(", ")
                },
                targets.len(),
                out["matched"],
                out["seed"],
            );
        }
    }
}
