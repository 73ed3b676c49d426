//! Execute one activity: pauses, dry mode, timing, interruption → a journal `Run`.

use super::controls::Controls;
use crate::clock::now_iso;
use crate::model::control::{Level, Moment};
use crate::model::{Activity, ActivityKind, Dry, Experiment, Run, RunStatus};
use crate::providers::memory::RunMemory;
use crate::providers::registry::Recorder;
use crate::providers::{ActivityError, CallContext, Providers, Refusal};
use crate::redact::Redactor;
use crate::scope::Scope;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What every activity of one run shares.
#[derive(Debug, Clone)]
pub struct RunContext {
    pub experiment: Arc<Experiment>,
    pub scope: Arc<Scope>,
    pub providers: Arc<Providers>,
    pub dry: Option<Dry>,
    /// Cancelled when the run must stop (signal, halt, stop condition).
    pub stop: CancellationToken,
    pub redactor: Arc<Redactor>,
    /// The experiment's `experiment-broker` extension (substituted), for native activities.
    pub extension: Arc<serde_json::Map<String, Value>>,
    /// Journal records made while an activity runs (resolved targets, before acting).
    pub recorder: Recorder,
    /// The activities run in this context are the method's or the rollbacks': the only place
    /// a fault may act (and then only as an action).
    pub acting: bool,
    /// The experiment's controls, run around each level.
    pub controls: Arc<Controls>,
    /// What the run's native activities keep for each other; the engine never looks inside.
    pub memory: RunMemory,
}

impl RunContext {
    /// What a native call gets beyond its arguments. Outside the method and the rollbacks
    /// (`acting` false) nothing may act; within them only actions may.
    pub fn call_context(&self, plan_only: bool, kind: ActivityKind) -> CallContext {
        CallContext {
            extension: (*self.extension).clone(),
            plan_only,
            recorder: self.recorder.clone(),
            may_act: self.acting && kind == ActivityKind::Action,
            memory: self.memory.clone(),
        }
    }
}

// the fleet and the fault library still read these from here

/// Whether this activity is skipped under the dry mode in force.
pub fn is_dry(dry: Option<Dry>, kind: ActivityKind) -> bool {
    match dry {
        Some(Dry::Activities) => true,
        Some(Dry::Actions) => kind == ActivityKind::Action,
        Some(Dry::Probes) => kind == ActivityKind::Probe,
        Some(Dry::Pause) | None => false,
    }
}

/// A pause value after substitution, in seconds; `None` when absent or not a number.
fn pause_seconds(pause: Option<&Value>, scope: &Scope) -> Option<f64> {
    let v = scope.substitute(pause?);
    let secs = match &v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    if secs.is_none() {
        tracing::warn!("a pause is not a number of seconds; not pausing");
    }
    secs.filter(|s| *s > 0.0)
}

/// Sleep unless the run is stopped first; returns false when interrupted.
async fn pause(seconds: f64, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(crate::clock::seconds(seconds)) => true,
        _ = stop.cancelled() => false,
    }
}

/// Run `activity` and record it. Never fails: a failure is a `Run` with status `failed`.
pub async fn execute(ctx: &RunContext, activity: &Activity) -> Run {
    execute_checked(ctx, activity).await.0
}

/// `execute`, also saying whether a guard rail refused the activity (then the run is aborted).
/// In a span of its own, `activity` (its name): every line it logs carries it, and a trace
/// shows it as a child of the run's span.
pub async fn execute_checked(ctx: &RunContext, activity: &Activity) -> (Run, Option<Refusal>) {
    let span = tracing::info_span!(
        "activity",
        activity = %activity.name,
        kind = if activity.kind == ActivityKind::Action { "action" } else { "probe" },
    );
    execute_controlled(ctx, activity).instrument(span).await
}

/// The activity's control hooks run around it.
async fn execute_controlled(ctx: &RunContext, activity: &Activity) -> (Run, Option<Refusal>) {
    let controls = ctx.controls.clone();
    controls
        .apply(ctx, Level::Activity, Moment::Before, &activity.raw, None)
        .await;
    let (run, refusal) = execute_bare(ctx, activity).await;
    let state = serde_json::to_value(&run).unwrap_or(Value::Null);
    controls
        .apply(
            ctx,
            Level::Activity,
            Moment::After,
            &activity.raw,
            Some(&state),
        )
        .await;
    (run, refusal)
}

async fn execute_bare(ctx: &RunContext, activity: &Activity) -> (Run, Option<Refusal>) {
    let dry = activity.dry.or(ctx.dry);
    let skipped = is_dry(dry, activity.kind);
    let pauses_apply = dry != Some(Dry::Pause) && !skipped;
    if let Some(secs) = pause_seconds(activity.pause_before.as_ref(), &ctx.scope)
        && pauses_apply
    {
        tracing::info!("pausing before activity for {secs}s");
        pause(secs, &ctx.stop).await;
    }
    let label = if activity.kind == ActivityKind::Action {
        "Action"
    } else {
        "Probe"
    };
    tracing::info!(
        "{label}: {}{}",
        activity.name,
        if activity.background {
            " [in background]"
        } else {
            ""
        }
    );

    let start = now_iso();
    let clock = Instant::now();
    // a fault under a dry mode plans (resolves what it would act on) instead of acting
    let plans = skipped
        && activity.kind == ActivityKind::Action
        && ctx.providers.native(activity).is_some_and(|n| n.fault);
    let result = if plans {
        tracing::info!("  dry run: resolving what {} would act on", activity.name);
        ctx.providers
            .run_in(activity, &ctx.scope, &ctx.call_context(true, activity.kind))
            .await
    } else if skipped {
        tracing::debug!("activity {} is in dry mode", activity.name);
        Ok(Value::Null)
    } else if ctx.stop.is_cancelled() {
        Err(ActivityError::Interrupted(
            "the run was stopped before this activity started".into(),
        ))
    } else {
        let call = ctx.call_context(false, activity.kind);
        tokio::select! {
            r = ctx.providers.run_in(activity, &ctx.scope, &call) => r,
            _ = ctx.stop.cancelled() => Err(ActivityError::Interrupted("the run was stopped while this activity ran".into())),
        }
    };
    let duration = clock.elapsed().as_secs_f64();
    let end = now_iso();
    let mut refusal = None;
    let (status, output, exception) = match result {
        Ok(v) => (RunStatus::Succeeded, v, None),
        Err(e) => {
            if let ActivityError::Refused(r) = &e {
                refusal = Some(r.clone());
            }
            let message = ctx.redactor.text(&e.to_string());
            tracing::error!("  => failed: {message}");
            let kind = match e {
                ActivityError::Timeout(_) | ActivityError::Failed(_) => {
                    "chaoslib.exceptions.ActivityFailed"
                }
                ActivityError::Interrupted(_) | ActivityError::Refused(_) => {
                    "chaoslib.exceptions.InterruptExecution"
                }
                ActivityError::Unavailable(_) => "chaoslib.exceptions.InvalidActivity",
            };
            (
                RunStatus::Failed,
                Value::Null,
                Some(vec![format!("{kind}: {message}\n")]),
            )
        }
    };
    if let Some(secs) = pause_seconds(activity.pause_after.as_ref(), &ctx.scope)
        && pauses_apply
        && !ctx.stop.is_cancelled()
    {
        tracing::info!("pausing after activity for {secs}s");
        pause(secs, &ctx.stop).await;
    }
    let run = Run {
        activity: activity.raw.clone(),
        output,
        start,
        status,
        end,
        duration,
        exception,
        tolerance_met: None,
    };
    (run, refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_modes_skip_the_right_kinds() {
        use ActivityKind::*;
        assert!(!is_dry(None, Action));
        assert!(!is_dry(Some(Dry::Pause), Probe));
        assert!(is_dry(Some(Dry::Actions), Action) && !is_dry(Some(Dry::Actions), Probe));
        assert!(is_dry(Some(Dry::Probes), Probe) && !is_dry(Some(Dry::Probes), Action));
        assert!(is_dry(Some(Dry::Activities), Probe) && is_dry(Some(Dry::Activities), Action));
    }

    #[test]
    fn pauses_substitute_and_ignore_non_numbers() {
        let scope = Scope::new(
            serde_json::json!({"p": 0.5, "s": "x"})
                .as_object()
                .unwrap()
                .clone(),
            Default::default(),
        );
        assert_eq!(
            pause_seconds(Some(&serde_json::json!("${p}")), &scope),
            Some(0.5)
        );
        assert_eq!(
            pause_seconds(Some(&serde_json::json!(2)), &scope),
            Some(2.0)
        );
        assert_eq!(
            pause_seconds(Some(&serde_json::json!("${s}")), &scope),
            None
        );
        assert_eq!(pause_seconds(None, &scope), None);
    }
}
