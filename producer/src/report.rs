//! `producer report` (a suite run as HTML, Markdown or JUnit), `producer history` (a suite's
//! runs with their outcome and score, newest first), and the Markdown summary `submit --wait`
//! appends to `$GITHUB_STEP_SUMMARY`. The reports themselves are `shared::report`'s; this file
//! reads the store and writes the file.

use crate::ports::{Ports, locate, open};
use anyhow::Context;
use aws::{Backend, Store};
use cli::{BackendArgs, Exit};
use shared::fleet::producer::{Completion, Plan, State, status_document};
use shared::model::Journal;
use shared::ports::ObjectStore;
use shared::report::{Format, Link, Report};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The report of a suite run: its status document, and each completed job's journal read from
/// the store (a journal that cannot be read is said in the report, not an error).
pub async fn build(
    plan: &Plan,
    state: &State,
    completions: &BTreeMap<String, Completion>,
    backend: &Backend,
    ports: &Ports,
) -> Report {
    let mut report = Report::from_status(&status_document(plan, state, completions));
    for job in report.jobs_mut() {
        let Some(key) = job.journal_key.clone() else {
            continue;
        };
        let place = locate(backend, &key);
        job.link = Some(match &backend.store {
            Store::Dir(_) => Link::to_path(&place),
            Store::S3(_) => Link {
                text: place,
                href: None,
            },
        });
        match ports.store.get(&key).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Journal>(&bytes) {
                Ok(journal) => job.journal = Some(journal),
                Err(e) => job.journal_problem = Some(format!("{key} is not a journal: {e}")),
            },
            Ok(None) => job.journal_problem = Some(format!("{key} is not in the store")),
            Err(e) => job.journal_problem = Some(format!("reading {key}: {e}")),
        }
    }
    report
}

/// Write `text` to `output`, or to stdout.
pub fn emit(text: &str, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("writing the report to {}", path.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            Ok(out.flush()?)
        }
    }
}

/// `producer report`.
pub async fn report(
    id: &str,
    format: Format,
    output: Option<&Path>,
    args: &BackendArgs,
) -> anyhow::Result<Exit> {
    let (backend, ports) = open(args).await?;
    let (plan, state) = ports.load(id).await?;
    let completions = ports.completions(id).await?;
    let report = build(&plan, &state, &completions, &backend, &ports).await;
    emit(&report.render(format), output)?;
    if let Some(path) = output {
        eprintln!("{} written", path.display());
    }
    Ok(Exit::Held)
}

/// `submit --wait`: append the Markdown summary to the file `$GITHUB_STEP_SUMMARY` names (as
/// GitHub Actions expects: each step appends); a failure is a warning, never the gate's answer.
pub async fn step_summary(
    plan: &Plan,
    state: &State,
    completions: &BTreeMap<String, Completion>,
    backend: &Backend,
    ports: &Ports,
) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    let markdown = build(plan, state, completions, backend, ports)
        .await
        .render(Format::Markdown);
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{markdown}\n").as_bytes()));
    if let Err(e) = written {
        tracing::warn!(
            "the step summary could not be appended to {} ($GITHUB_STEP_SUMMARY): {e}",
            Path::new(&path).display()
        );
    }
}

/// `producer history`.
pub async fn history(name: &str, as_json: bool, args: &BackendArgs) -> anyhow::Result<Exit> {
    let (_, ports) = open(args).await?;
    let entries = ports.history(name).await?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(Exit::Held);
    }
    if entries.is_empty() {
        eprintln!("no suite run of '{name}' on record");
        return Ok(Exit::Held);
    }
    println!(
        "{:<32}  {:<34}  {:<9}  {:<8}  {:>5}  {:>4}",
        "submitted", "suite run", "status", "outcome", "score", "jobs"
    );
    for e in &entries {
        println!(
            "{:<32}  {:<34}  {:<9}  {:<8}  {:>5}  {:>4}",
            e.created,
            e.suite_run_id,
            e.status.as_str(),
            e.outcome.map(|o| o.as_str()).unwrap_or("-"),
            e.score.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            e.jobs
        );
    }
    Ok(Exit::Held)
}
