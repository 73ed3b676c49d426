//! The continuous hypothesis: the steady state evaluated every `frequency` seconds while the
//! method runs (`--hypothesis-strategy during-method` or `continuously`).

use super::activity::RunContext;
use super::hypothesis::run_steady_state;
use super::report::Reporter;
use crate::clock::seconds;
use crate::model::{Status, Step};
use tokio_util::sync::CancellationToken;

/// Evaluate the hypothesis every `frequency` seconds while the method runs.
pub(super) async fn continuous_hypothesis(
    ctx: RunContext,
    report: Reporter,
    done: CancellationToken,
    (frequency, fail_fast): (f64, bool),
) {
    tracing::info!("Executing the steady-state hypothesis continuously every {frequency} seconds");
    let probes: Vec<Step> = ctx
        .experiment
        .hypothesis
        .as_ref()
        .map(|h| h.probes.clone())
        .unwrap_or_default();
    let pause = seconds(frequency);
    let (mut iteration, mut failed) = (1u64, 0u64);
    // the first evaluation always happens, even when the method is over at once
    loop {
        if matches!(
            report.status(),
            Some(Status::Failed | Status::Interrupted | Status::Aborted)
        ) || ctx.stop.is_cancelled()
        {
            break;
        }
        let state = run_steady_state(&ctx, &probes).await;
        let met = state.steady_state_met == Some(true);
        report.update(|j| j.steady_states.during.push(state));
        if !met && !ctx.stop.is_cancelled() {
            failed += 1;
            tracing::warn!(
                "Continuous steady state hypothesis deviated ({failed} of {iteration} iterations)"
            );
            if fail_fast {
                tracing::info!("Terminating immediately the experiment (fail fast)");
                report.update(|j| j.status = Some(Status::Failed));
                break;
            }
        }
        iteration += 1;
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = done.cancelled() => break,
            _ = ctx.stop.cancelled() => break,
        }
    }
}
