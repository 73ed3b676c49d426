//! One evaluation of the steady-state hypothesis.
//!
//! Probes run in order and the evaluation stops at the first probe that fails (raised, timed
//! out) or is out of tolerance, as in the reference. In dry mode for probes, tolerances are not
//! checked. A probe tolerance runs the tolerance's probe with the output as its `value`
//! argument: met when it succeeds with a truthy result. A string tolerance that is exactly
//! `${name}` takes the kind of the value it names (an integer compares a status, a list is a
//! range or a membership test, a mapping is a regex/jsonpath/range/probe tolerance).

use super::activity::{RunContext, execute};
use super::tolerance::{Verdict, within};
use crate::load::validate::tolerance_from_value;
use crate::model::control::{Level, Moment};
use crate::model::{
    Activity, ActivityKind, Dry, Provider, RunStatus, SteadyState, Step, Tolerance,
};
use crate::pyvalue::py_truthy;
use crate::scope::whole_braced_reference;
use serde_json::Value;

/// One evaluation, its hypothesis's control hooks around it.
pub async fn run_steady_state(ctx: &RunContext, probes: &[Step]) -> SteadyState {
    let hypothesis = &ctx.experiment.raw["steady-state-hypothesis"];
    let controls = ctx.controls.clone();
    controls
        .apply(ctx, Level::Hypothesis, Moment::Before, hypothesis, None)
        .await;
    let state = evaluate(ctx, probes).await;
    let value = serde_json::to_value(&state).unwrap_or(Value::Null);
    controls
        .apply(
            ctx,
            Level::Hypothesis,
            Moment::After,
            hypothesis,
            Some(&value),
        )
        .await;
    state
}

async fn evaluate(ctx: &RunContext, probes: &[Step]) -> SteadyState {
    let mut state = SteadyState {
        steady_state_met: None,
        probes: Vec::new(),
    };
    for step in probes {
        let (activity, tolerance) = match step {
            Step::Activity(a) => (a.as_ref(), a.tolerance.as_ref()),
            Step::Ref { name, tolerance } => match ctx.experiment.find_referenced(name) {
                Some(a) => (a, tolerance.as_ref()),
                None => {
                    tracing::error!("referenced activity '{name}' could not be found");
                    state.steady_state_met = Some(false);
                    return state;
                }
            },
        };
        let mut run = execute(ctx, activity).await;
        if run.status == RunStatus::Failed {
            tracing::warn!(
                "Probe terminated unexpectedly, so its tolerance could not be validated"
            );
            run.tolerance_met = Some(false);
            state.probes.push(ctx.redactor.run(run));
            state.steady_state_met = Some(false);
            return state;
        }
        run.tolerance_met = Some(true);
        let dry = activity.dry.or(ctx.dry);
        if !matches!(dry, Some(Dry::Probes | Dry::Activities))
            && let Some(tolerance) = tolerance
        {
            // checked on the real output; only what is journaled is masked
            let verdict = check(ctx, tolerance, &run.output).await;
            if let Verdict::Error(reason) = &verdict {
                tracing::warn!(
                    "tolerance of probe '{}' could not be checked: {}",
                    activity.name,
                    ctx.redactor.text(reason)
                );
            }
            if !verdict.is_met() {
                tracing::error!(
                    "Steady state probe '{}' is not in the given tolerance",
                    activity.name
                );
                run.tolerance_met = Some(false);
                state.probes.push(ctx.redactor.run(run));
                state.steady_state_met = Some(false);
                return state;
            }
        }
        state.probes.push(ctx.redactor.run(run));
    }
    state.steady_state_met = Some(true);
    tracing::info!("Steady state hypothesis is met!");
    state
}

/// Every tolerance kind, probe tolerances and `${name}` tolerances included.
pub async fn check(ctx: &RunContext, tolerance: &Tolerance, output: &Value) -> Verdict {
    if let Tolerance::Str(s) = tolerance
        && let Some(value) = whole_braced_reference(s).and_then(|name| ctx.scope.lookup(name))
        && !value.is_string()
    {
        return match tolerance_from_value(value, "tolerance") {
            Ok(Tolerance::Probe(p)) => check_probe(ctx, &p, output).await,
            Ok(typed) => within(&typed, output, &ctx.scope),
            Err(problems) => Verdict::Error(format!(
                "{s} is not a usable tolerance: {}",
                problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        };
    }
    match tolerance {
        Tolerance::Probe(probe) => check_probe(ctx, probe, output).await,
        other => within(other, output, &ctx.scope),
    }
}

async fn check_probe(ctx: &RunContext, probe: &Activity, output: &Value) -> Verdict {
    let probe = with_value_argument(probe, output);
    let call = ctx.call_context(false, ActivityKind::Probe);
    let result = tokio::select! {
        r = ctx.providers.run_in(&probe, &ctx.scope, &call) => r,
        _ = ctx.stop.cancelled() => return Verdict::Error("interrupted".into()),
    };
    match result {
        Ok(result) if py_truthy(&result) => Verdict::Met,
        Ok(_) => Verdict::NotMet,
        Err(e) => {
            tracing::info!(
                "tolerance probe '{}' failed: {}",
                probe.name,
                ctx.redactor.text(&e.to_string())
            );
            Verdict::NotMet
        }
    }
}

/// The tolerance probe with `arguments.value` set to the checked output.
fn with_value_argument(probe: &Activity, output: &Value) -> Activity {
    let mut probe = probe.clone();
    match &mut probe.provider {
        Provider::Python(p) => {
            p.arguments.insert("value".into(), output.clone());
        }
        Provider::Process(p) => {
            if let Value::Object(m) = &mut p.arguments {
                m.insert("value".into(), output.clone());
            }
        }
        Provider::Http(p) => match &mut p.arguments {
            Value::Object(m) => {
                m.insert("value".into(), output.clone());
            }
            args @ Value::Null => *args = serde_json::json!({ "value": output }),
            _ => {}
        },
    }
    probe
}
