//! `producer submit`: store a suite's plan and enqueue its first wave; with `--wait`, a CI
//! gate that blocks until the suite run ends (or `--timeout`, or a signal).

use crate::ports::open;
use crate::summary::{exit, summary};
use anyhow::Context;
use aws::Store;
use cli::BackendArgs;
use cli::{Exit, Signals};
use shared::load::Purpose;
use shared::providers::Providers;
use std::path::Path;
use std::time::Duration;

/// `wait`: `None` to return at once, `Some(timeout)` to wait for the end.
pub async fn submit(
    path: &Path,
    wait: Option<Option<Duration>>,
    args: &BackendArgs,
    providers: &Providers,
    strict: bool,
    signals: &Signals,
) -> anyhow::Result<Exit> {
    let (mut suite, _) = match crate::suite::checked(path, providers, (Purpose::Run, strict)) {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    // the workers hold experiments the producer could not check (S3, store keys) to it too
    suite.strict |= strict;
    let (backend, ports) = open(args).await?;
    let base = path.parent().unwrap_or(Path::new("."));
    // workers elsewhere cannot read this machine's files: copy them into the bucket
    let submitted = match backend.store {
        Store::S3(_) => ports.submit_uploading(&suite, base).await,
        Store::Dir(_) => ports.submit(&suite, base).await,
    };
    let id = submitted.with_context(|| format!("submitting {}", path.display()))?;
    println!("{id}");
    let Some(timeout) = wait else {
        return Ok(Exit::Held);
    };
    let stop = signals.watch("stopping");
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        // the small state document while waiting; the plan and the records once at the end
        match ports.load_state(&id).await {
            Ok(state) if state.status != "running" => {
                let (plan, state) = ports.load(&id).await?;
                let completions = ports.completions(&id).await?;
                let mut facts = std::collections::BTreeMap::new();
                crate::summary::read_facts(&ports, &completions, &mut facts).await;
                eprint!("{}", summary(&plan, &state, &completions, &backend, &facts));
                crate::report::step_summary(&plan, &state, &completions, &backend, &ports).await;
                return Ok(exit(&state));
            }
            Ok(_) => failing_since = None,
            // the store may be briefly unavailable: keep waiting, up to a minute of failures
            Err(e) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                tracing::warn!("reading suite run {id}: {e}");
                if since.elapsed() > Duration::from_secs(60) {
                    return Err(
                        anyhow::Error::new(e).context(format!("waiting for suite run {id}"))
                    );
                }
            }
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            eprintln!("timed out waiting; suite run {id} goes on (producer status {id})");
            return Ok(Exit::Timeout);
        }
        tokio::select! {
            _ = stop.cancelled() => {
                eprintln!("stopped waiting; suite run {id} goes on (producer status {id})");
                return Ok(Exit::Interrupted);
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
