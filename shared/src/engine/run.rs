//! The run loop: hypothesis before, method (with the continuous hypothesis beside it),
//! hypothesis after, rollbacks, journal. The reference's `Runner._run`, phase for phase.
//!
//! Status rules (the reference's): a hypothesis not met before the method ends the run
//! `completed` (or `failed` if a probe raised) without running the method; not met after the
//! method marks it `deviated`; an unresolvable activity in the method `aborts` it; a signal or
//! a stop request `interrupts` it. The engine takes no port: it sees providers and a stop token,
//! and reports progress to an optional observer (the worker writes checkpoints from it).
//!
//! This file orchestrates the phases; `start` opens the run and its journal, `steps` plays the
//! method and the rollbacks, `continuous` watches the hypothesis during the method, `report`
//! keeps the journal.

use super::activity::RunContext;
use super::continuous::continuous_hypothesis;
use super::hypothesis::run_steady_state;
use super::report::Reporter;
use super::start::{Started, start};
use super::steps::{AbortOnDrop, run_method, run_rollbacks};
use super::strategy::{phases, play_rollbacks, status_when_missed};
use crate::clock::now_iso;
use crate::load::{Problems, Vars};
use crate::model::control::{Level, Moment};
use crate::model::*;
use crate::providers::Providers;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

// the fleet and the fault library read the extension from here

/// How to run, as `chaos run`'s options say it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `None`: the experiment's `runtime`, else `default`.
    pub hypothesis_strategy: Option<HypothesisStrategy>,
    pub rollback_strategy: Option<RollbackStrategy>,
    /// Seconds between two continuous hypothesis evaluations.
    pub hypothesis_frequency: f64,
    /// Fail the run at the first deviation of the continuous hypothesis.
    pub fail_fast: bool,
    pub dry: Option<Dry>,
    /// Only revert: skip the hypothesis and the method, play the rollbacks, end `interrupted`.
    /// For a job whose earlier run was lost mid-way (its worker died): never inject twice.
    pub revert_only: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            hypothesis_strategy: None,
            rollback_strategy: None,
            hypothesis_frequency: 1.0,
            fail_fast: false,
            dry: None,
            revert_only: false,
        }
    }
}

/// Receives journal snapshots (already redacted) as the run progresses.
pub trait Observer: Send + Sync {
    /// Take this snapshot (it may be written later, coalesced with newer ones).
    fn checkpoint(&self, journal: &Journal);
    /// Resolves once every snapshot handed to `checkpoint` so far is written (or a newer one
    /// is); `Err` if that write failed. What a fault action waits for before it acts.
    fn flush(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Run `experiment` to its end and return the (redacted) journal.
///
/// Configuration and secrets are resolved first; a problem there (a variable vanished since
/// validation) is returned as `Err` before anything runs. Every task the run starts is tied to
/// it: dropping the returned future cancels them.
pub async fn run_experiment(
    experiment: Arc<Experiment>,
    vars: &Vars,
    options: &RunOptions,
    providers: Arc<Providers>,
    stop: CancellationToken,
    observer: Option<Arc<dyn Observer>>,
) -> Result<Journal, Problems> {
    let started = Instant::now();
    let Started {
        ctx,
        report,
        hypothesis_strategy,
        rollback_strategy,
    } = start(experiment, vars, options, providers, &stop, observer).await?;
    ctx.controls.begin(&ctx).await;

    let probes: &[Step] = ctx
        .experiment
        .hypothesis
        .as_ref()
        .map(|h| h.probes.as_slice())
        .unwrap_or(&[]);
    let with_hypothesis = !probes.is_empty();
    let phases = phases(hypothesis_strategy);
    let gate_passed = if options.revert_only {
        revert_only(&report);
        false
    } else if with_hypothesis && phases.before {
        hypothesis_before(&ctx, &report, probes).await
    } else {
        true
    };

    if gate_passed && !stop.is_cancelled() {
        method(&ctx, &report, options, with_hypothesis && phases.during).await;
        let interrupted = stop.is_cancelled();
        let aborted = report.status() == Some(Status::Aborted);
        if !interrupted && !aborted && with_hypothesis && phases.after {
            hypothesis_after(&ctx, &report, probes).await;
        }
    }
    if stop.is_cancelled() {
        report.update(|j| j.status = Some(Status::Interrupted));
    }
    rollbacks(&ctx, &report, rollback_strategy).await;
    let journal = finish(&report, started, &stop);
    let state = serde_json::to_value(&journal).unwrap_or(Value::Null);
    ctx.controls.end(&ctx, &state).await;
    Ok(journal)
}

/// An earlier run of this job was lost mid-way: no hypothesis, no method, the run is
/// `interrupted` and only its rollbacks play.
fn revert_only(report: &Reporter) {
    tracing::warn!("an earlier run of this experiment was lost mid-way: reverting only");
    report.update(|j| {
        j.status = Some(Status::Interrupted);
        if let Some(Value::Object(b)) = &mut j.broker {
            b.insert("revert_only".into(), Value::Bool(true));
        }
    });
}

/// The hypothesis before the method; false when it is not met (the method is skipped).
async fn hypothesis_before(ctx: &RunContext, report: &Reporter, probes: &[Step]) -> bool {
    let state = run_steady_state(ctx, probes).await;
    let missed = status_when_missed(&state);
    report.update(|j| {
        j.steady_states.before = Some(state);
        if missed.is_some() {
            j.status = missed;
        }
    });
    if missed.is_some() {
        tracing::error!("Steady state hypothesis not met before the method: skipping the method");
        return false;
    }
    true
}

/// The method, with the continuous hypothesis beside it when `continuous`.
async fn method(ctx: &RunContext, report: &Reporter, options: &RunOptions, continuous: bool) {
    let method_done = CancellationToken::new();
    let continuous = continuous.then(|| {
        let ctx = ctx.clone();
        let report = report.clone();
        let done = method_done.clone();
        let schedule = (options.hypothesis_frequency, options.fail_fast);
        AbortOnDrop(tokio::spawn(
            async move { continuous_hypothesis(ctx, report, done, schedule).await }
                .in_current_span(),
        ))
    });
    // let the continuous hypothesis take its first measure before the method acts
    tokio::task::yield_now().await;
    let experiment = &ctx.controls.experiment().clone();
    ctx.controls
        .apply(ctx, Level::Method, Moment::Before, experiment, None)
        .await;
    run_method(ctx, report).await;
    let runs = report.runs(|j| &j.run);
    ctx.controls
        .apply(ctx, Level::Method, Moment::After, experiment, Some(&runs))
        .await;
    method_done.cancel();
    if let Some(handle) = continuous {
        handle.join().await;
    }
}

/// The hypothesis after the method; not met marks the run `deviated`.
async fn hypothesis_after(ctx: &RunContext, report: &Reporter, probes: &[Step]) {
    let state = run_steady_state(ctx, probes).await;
    // a verdict cut short by an interruption says nothing about the system
    let missed = (!ctx.stop.is_cancelled())
        .then(|| status_when_missed(&state))
        .flatten();
    report.update(|j| {
        j.steady_states.after = Some(state);
        if missed.is_some() {
            j.deviated = true;
            j.status = missed;
        }
    });
}

/// The rollbacks, when the strategy plays them for the run's status so far.
async fn rollbacks(ctx: &RunContext, report: &Reporter, rollback_strategy: RollbackStrategy) {
    let (status, deviated) = {
        let j = report.journal.lock().unwrap_or_else(|e| e.into_inner());
        (j.status, j.deviated)
    };
    if play_rollbacks(rollback_strategy, status, deviated) {
        let experiment = &ctx.controls.experiment().clone();
        ctx.controls
            .apply(ctx, Level::Rollback, Moment::Before, experiment, None)
            .await;
        run_rollbacks(ctx, report).await;
        let runs = report.runs(|j| &j.rollbacks);
        ctx.controls
            .apply(ctx, Level::Rollback, Moment::After, experiment, Some(&runs))
            .await;
    } else {
        tracing::info!(
            "Rollbacks not played (strategy {rollback_strategy:?}, status {})",
            status.map(Status::as_str).unwrap_or("running")
        );
    }
}

/// Close the journal: end, duration, the final status.
fn finish(report: &Reporter, started: Instant, stop: &CancellationToken) -> Journal {
    report.update(|j| {
        j.end = Some(now_iso());
        j.duration = Some(started.elapsed().as_secs_f64());
        if j.status.is_none() {
            j.status = Some(Status::Completed);
        }
        if stop.is_cancelled() {
            j.status = Some(Status::Interrupted);
        }
    });
    let journal = report.snapshot();
    let outcome = if journal.deviated {
        "deviated"
    } else {
        journal.status.map(Status::as_str).unwrap_or("completed")
    };
    tracing::info!("Experiment ended with status: {outcome}");
    journal
}
