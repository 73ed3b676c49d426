//! Playing a list of steps (the method, the rollbacks): in order, background activities
//! beside the others, each run landing in the journal (redacted) in start order; a guard
//! rail's refusal aborts the run.

use super::activity::{RunContext, execute_checked};
use super::report::Reporter;
use crate::clock::now_iso;
use crate::model::{Activity, Journal, Run, RunStatus, Status, Step};
use crate::providers::Refusal;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Aborts a spawned task if the run is dropped before the task is joined.
pub(super) struct AbortOnDrop<T>(pub(super) tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Wait for the task; `None` if it panicked or was aborted.
    pub(super) async fn join(mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn resolve_step<'a>(ctx: &'a RunContext, step: &'a Step) -> Option<&'a Activity> {
    match step {
        Step::Activity(a) => Some(a),
        Step::Ref { name, .. } => ctx.experiment.find_referenced(name),
    }
}

/// Run a list of steps in order, background ones concurrently; their runs land in the journal
/// (redacted) in start order. Stops early when `keep_going` says so.
async fn run_steps(
    ctx: &RunContext,
    steps: &[Step],
    report: &Reporter,
    pick: fn(&mut Journal) -> &mut Vec<Run>,
    keep_going: impl Fn(&RunContext, &Reporter) -> bool,
) -> Result<(), String> {
    let mut background = Vec::new();
    let mut outcome = Ok(());
    for step in steps {
        let Some(activity) = resolve_step(ctx, step) else {
            let name = match step {
                Step::Ref { name, .. } => name.as_str(),
                Step::Activity(a) => a.name.as_str(),
            };
            outcome = Err(format!("could not find referenced activity '{name}'"));
            break;
        };
        if activity.background {
            let slot = reserve(ctx, report, pick, activity);
            let (task_ctx, activity) = (ctx.clone(), activity.clone());
            // in the span of the run that starts it: its log lines and trace stay the run's
            let handle = tokio::spawn(
                async move { execute_checked(&task_ctx, &activity).await }.in_current_span(),
            );
            background.push((slot, AbortOnDrop(handle)));
        } else {
            let (run, refusal) = execute_checked(ctx, activity).await;
            let run = ctx.redactor.run(run);
            report.update(|j| pick(j).push(run));
            if let Some(refusal) = refusal {
                abort_on_refusal(ctx, report, &activity.name, &refusal);
            }
        }
        if !keep_going(ctx, report) {
            break;
        }
    }
    for (slot, handle) in background {
        if let Some((run, refusal)) = handle.join().await {
            let name = run.activity["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let run = ctx.redactor.run(run);
            report.update(|j| {
                if let Some(entry) = pick(j).get_mut(slot) {
                    *entry = run;
                }
            });
            if let Some(refusal) = refusal {
                abort_on_refusal(ctx, report, &name, &refusal);
            }
        }
    }
    outcome
}

/// A guard rail refused an activity: the run is aborted (as Chaos Toolkit aborts on an
/// interrupted execution), the refusal goes to `broker.refused`, the method stops there and the
/// rollbacks run as the strategy says. A refused rollback also marks the run aborted: a revert
/// that was not made must not read as a held experiment.
fn abort_on_refusal(ctx: &RunContext, report: &Reporter, activity: &str, refusal: &Refusal) {
    tracing::error!(
        "{activity}: {}; aborting the run",
        ctx.redactor.text(&refusal.to_string())
    );
    let mut entry = json!({
        "activity": activity,
        "rule": refusal.rule,
        "target": refusal.target,
        "message": refusal.message,
        "at": now_iso(),
    });
    ctx.redactor.value(&mut entry);
    report.update(|j| {
        j.status = Some(Status::Aborted);
        let broker = j.broker.get_or_insert_with(|| json!({}));
        if let Value::Object(b) = broker {
            let list = b.entry("refused").or_insert_with(|| json!([]));
            if let Value::Array(list) = list {
                list.push(entry);
            }
        }
    });
}

/// Put a placeholder for a background activity so the journal keeps start order.
fn reserve(
    ctx: &RunContext,
    report: &Reporter,
    pick: fn(&mut Journal) -> &mut Vec<Run>,
    activity: &Activity,
) -> usize {
    let placeholder = ctx.redactor.run(Run {
        activity: activity.raw.clone(),
        output: Value::Null,
        start: now_iso(),
        status: RunStatus::Failed,
        end: String::new(),
        duration: 0.0,
        exception: Some(vec!["still running in the background\n".into()]),
        tolerance_met: None,
    });
    let mut j = report.journal.lock().unwrap_or_else(|e| e.into_inner());
    let list = pick(&mut j);
    list.push(placeholder);
    list.len() - 1
}

pub(super) async fn run_method(ctx: &RunContext, report: &Reporter) {
    tracing::info!("Playing your experiment's method now...");
    let ctx = &RunContext {
        acting: true,
        ..ctx.clone()
    };
    let keep_going = |ctx: &RunContext, report: &Reporter| {
        !ctx.stop.is_cancelled()
            && !matches!(
                report.status(),
                Some(Status::Aborted | Status::Failed | Status::Interrupted)
            )
    };
    if let Err(e) = run_steps(
        ctx,
        &ctx.experiment.method,
        report,
        |j| &mut j.run,
        keep_going,
    )
    .await
    {
        tracing::error!("Experiment ran into an unexpected fatal error, aborting now: {e}");
        report.update(|j| j.status = Some(Status::Aborted));
    }
}

/// Rollbacks always run to the end: they are not cut by the stop token.
pub(super) async fn run_rollbacks(ctx: &RunContext, report: &Reporter) {
    if ctx.experiment.rollbacks.is_empty() {
        tracing::info!("No declared rollbacks, let's move on.");
        return;
    }
    tracing::info!("Let's rollback...");
    let ctx = RunContext {
        stop: CancellationToken::new(),
        acting: true,
        ..ctx.clone()
    };
    if let Err(e) = run_steps(
        &ctx,
        &ctx.experiment.rollbacks,
        report,
        |j| &mut j.rollbacks,
        |_, _| true,
    )
    .await
    {
        tracing::error!("rollbacks stopped: {e}");
    }
}
