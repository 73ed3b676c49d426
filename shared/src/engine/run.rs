//! The run loop: hypothesis before, method (with the continuous hypothesis beside it),
//! hypothesis after, rollbacks, journal. The reference's `Runner._run`, phase for phase.
//!
//! Status rules (the reference's): a hypothesis not met before the method ends the run
//! `completed` (or `failed` if a probe raised) without running the method; not met after the
//! method marks it `deviated`; an unresolvable activity in the method `aborts` it; a signal or
//! a stop request `interrupts` it. The engine takes no port: it sees providers and a stop token,
//! and reports progress to an optional observer (the worker writes checkpoints from it).

use super::activity::{RunContext, execute_checked, is_dry, now_iso};
use super::hypothesis::run_steady_state;
use super::strategy::{phases, play_rollbacks, resolve, status_when_missed};
use super::substitute::Scope;
use crate::load::config::{resolve_configuration, resolve_secrets, secret_values};
use crate::load::{Problems, Vars};
use crate::model::*;
use crate::providers::registry::Recorder;
use crate::providers::{CallContext, Providers, Refusal};
use crate::redact::Redactor;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

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
    let configuration = resolve_configuration(&experiment.configuration, vars).map_err(Problems)?;
    let secrets = resolve_secrets(&experiment.secrets, vars).map_err(Problems)?;
    let redactor = Arc::new(Redactor::new(secret_values(&secrets)));
    let early_records = Arc::new(Mutex::new(Vec::new()));
    let (configuration, dynamic) = dynamic_configuration(
        &experiment,
        configuration,
        &secrets,
        vars,
        &providers,
        &redactor,
        &stop,
        DynamicContext {
            dry: options.dry,
            records: early_records.clone(),
        },
    )
    .await;
    if !experiment.controls.is_empty() {
        tracing::warn!(
            "this experiment declares {} control(s); controls are not supported by this broker yet and are ignored",
            experiment.controls.len()
        );
    }
    let scope = Arc::new(Scope::new(configuration, secrets).with_dynamic(dynamic));

    let hypothesis_strategy = resolve(
        options.hypothesis_strategy,
        experiment.runtime.hypothesis_strategy,
    );
    let rollback_strategy = resolve(
        options.rollback_strategy,
        experiment.runtime.rollback_strategy,
    );
    let title = scope.interpolate(&experiment.title);
    tracing::info!("Running experiment: {}", redactor.text(&title));

    let mut raw = experiment.raw.clone();
    if let Value::Object(m) = &mut raw {
        m.insert("title".into(), Value::String(title));
        // the reference always records the dry mode, `null` when there is none
        let dry = options.dry.map(|d| Value::String(d.as_str().into()));
        m.insert("dry".into(), dry.unwrap_or(Value::Null));
    }
    redactor.value(&mut raw);
    let journal = Arc::new(Mutex::new(Journal {
        chaoslib_version: concat!("experiment-broker/", env!("CARGO_PKG_VERSION")).to_string(),
        platform: platform(),
        node: node(),
        experiment: raw,
        start: now_iso(),
        status: None,
        deviated: false,
        steady_states: SteadyStates::default(),
        run: Vec::new(),
        rollbacks: Vec::new(),
        end: None,
        duration: None,
        broker: Some(broker_section(
            hypothesis_strategy,
            rollback_strategy,
            &experiment,
            take(&early_records),
            &redactor,
        )),
    }));
    let report = Reporter {
        journal: journal.clone(),
        observer,
    };
    let extension = match scope.substitute(&broker_extension(&experiment)) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let ctx = RunContext {
        experiment: experiment.clone(),
        scope,
        providers,
        dry: options.dry,
        stop: stop.clone(),
        redactor: redactor.clone(),
        extension: Arc::new(extension),
        recorder: recorder(&report, redactor),
        acting: false,
    };

    let probes: &[Step] = experiment
        .hypothesis
        .as_ref()
        .map(|h| h.probes.as_slice())
        .unwrap_or(&[]);
    let with_hypothesis = !probes.is_empty();
    let phases = phases(hypothesis_strategy);
    let mut gate_passed = true;

    if options.revert_only {
        tracing::warn!("an earlier run of this experiment was lost mid-way: reverting only");
        report.update(|j| {
            j.status = Some(Status::Interrupted);
            if let Some(Value::Object(b)) = &mut j.broker {
                b.insert("revert_only".into(), Value::Bool(true));
            }
        });
        gate_passed = false;
    } else if with_hypothesis && phases.before {
        let state = run_steady_state(&ctx, probes).await;
        let missed = status_when_missed(&state);
        report.update(|j| {
            j.steady_states.before = Some(state);
            if missed.is_some() {
                j.status = missed;
            }
        });
        if missed.is_some() {
            tracing::error!(
                "Steady state hypothesis not met before the method: skipping the method"
            );
            gate_passed = false;
        }
    }

    if gate_passed && !stop.is_cancelled() {
        let method_done = CancellationToken::new();
        let continuous = (with_hypothesis && phases.during).then(|| {
            let ctx = ctx.clone();
            let report = report.clone();
            let done = method_done.clone();
            let schedule = (options.hypothesis_frequency, options.fail_fast);
            AbortOnDrop(tokio::spawn(async move {
                continuous_hypothesis(ctx, report, done, schedule).await
            }))
        });
        // let the continuous hypothesis take its first measure before the method acts
        tokio::task::yield_now().await;
        run_method(&ctx, &report).await;
        method_done.cancel();
        if let Some(handle) = continuous {
            handle.join().await;
        }
        let interrupted = stop.is_cancelled();
        let aborted = report.status() == Some(Status::Aborted);
        if !interrupted && !aborted && with_hypothesis && phases.after {
            let state = run_steady_state(&ctx, probes).await;
            // a verdict cut short by an interruption says nothing about the system
            let missed = (!stop.is_cancelled())
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
    }
    if stop.is_cancelled() {
        report.update(|j| j.status = Some(Status::Interrupted));
    }

    let (status, deviated) = {
        let j = report.journal.lock().unwrap_or_else(|e| e.into_inner());
        (j.status, j.deviated)
    };
    if play_rollbacks(rollback_strategy, status, deviated) {
        run_rollbacks(&ctx, &report).await;
    } else {
        tracing::info!(
            "Rollbacks not played (strategy {rollback_strategy:?}, status {})",
            status.map(Status::as_str).unwrap_or("running")
        );
    }

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
    Ok(journal)
}

/// Aborts a spawned task if the run is dropped before the task is joined.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Wait for the task; `None` if it panicked or was aborted.
    async fn join(mut self) -> Option<T> {
        (&mut self.0).await.ok()
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The experiment's `extensions` entry named `experiment-broker` (limits, stop conditions,
/// locks), or an empty object.
pub fn broker_extension(experiment: &Experiment) -> Value {
    experiment
        .extensions
        .iter()
        .find(|e| e["name"] == BROKER_EXTENSION)
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()))
}

pub use crate::model::BROKER_EXTENSION;

/// Records made by native activities go to `broker.records` in the journal, redacted, and are
/// checkpointed at once (the fleet writes the checkpoint to the store before the action acts).
fn recorder(report: &Reporter, redactor: Arc<Redactor>) -> Recorder {
    let report = report.clone();
    Recorder::new(move |mut value| {
        redactor.value(&mut value);
        report.update(|j| {
            let broker = j.broker.get_or_insert_with(|| json!({}));
            if let Value::Object(b) = broker {
                let records = b.entry("records").or_insert_with(|| json!([]));
                if let Value::Array(list) = records {
                    list.push(value);
                }
            }
        });
        match &report.observer {
            Some(o) => o.flush(),
            None => Box::pin(std::future::ready(Ok(()))),
        }
    })
}

/// Shared journal + checkpoints. Everything in the journal is redacted before it gets there.
#[derive(Clone)]
struct Reporter {
    journal: Arc<Mutex<Journal>>,
    observer: Option<Arc<dyn Observer>>,
}

impl Reporter {
    fn update(&self, f: impl FnOnce(&mut Journal)) {
        {
            let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut j);
        }
        if let Some(o) = &self.observer {
            o.checkpoint(&self.snapshot());
        }
    }

    fn status(&self) -> Option<Status> {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .status
    }

    fn snapshot(&self) -> Journal {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What the dynamic configuration's probes get besides their scope: the run's dry mode and a
/// place for their journal records (the journal does not exist yet; they join it when it does).
struct DynamicContext {
    dry: Option<Dry>,
    records: Arc<Mutex<Vec<Value>>>,
}

/// The journal's `broker` section at the start of a run.
fn broker_section(
    hypothesis_strategy: HypothesisStrategy,
    rollback_strategy: RollbackStrategy,
    experiment: &Experiment,
    records: Vec<Value>,
    redactor: &Redactor,
) -> Value {
    let mut broker = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "hypothesis_strategy": format!("{hypothesis_strategy:?}"),
        "rollback_strategy": format!("{rollback_strategy:?}"),
    });
    if broker_extension(experiment).get(crate::providers::ALLOW_UNGUARDED_PYTHON)
        == Some(&Value::Bool(true))
    {
        // on record: this experiment let guarded modules run through Python, unguarded
        broker["allow_unguarded_python"] = Value::Bool(true);
    }
    if !records.is_empty() {
        let mut records = Value::Array(records);
        redactor.value(&mut records);
        broker["records"] = records;
    }
    broker
}

fn take(records: &Mutex<Vec<Value>>) -> Vec<Value> {
    std::mem::take(&mut *records.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Resolve `{type: probe}` configuration entries by running them; a failing one leaves its
/// key undefined, as in the reference. An entry given by `--var`/`--var-file` is not a probe
/// any more: the user's value wins and the probe does not run. A native probe gets the
/// experiment's extension, the dry flag and a recorder like any other call; it may not act.
/// Also returns the keys whose values probes returned, for shell quoting (`Scope::dynamic`).
#[allow(clippy::too_many_arguments)]
async fn dynamic_configuration(
    experiment: &Experiment,
    mut configuration: Map<String, Value>,
    secrets: &Map<String, Value>,
    vars: &Vars,
    providers: &Providers,
    redactor: &Redactor,
    stop: &CancellationToken,
    context: DynamicContext,
) -> (Map<String, Value>, BTreeSet<String>) {
    let mut dynamic = BTreeSet::new();
    let records = context.records.clone();
    let recorder = Recorder::new(move |value| {
        records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(value);
        Box::pin(std::future::ready(Ok(())))
    });
    for (key, probe) in &experiment.config_probes {
        if vars.configuration.contains_key(key) {
            continue;
        }
        configuration.remove(key);
        dynamic.remove(key);
        let scope =
            Scope::new(configuration.clone(), secrets.clone()).with_dynamic(dynamic.clone());
        let call = CallContext {
            extension: match scope.substitute(&broker_extension(experiment)) {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            plan_only: is_dry(context.dry, probe.kind),
            recorder: recorder.clone(),
            may_act: false,
        };
        let result = tokio::select! {
            r = providers.run_in(probe, &scope, &call) => r,
            _ = stop.cancelled() => {
                tracing::warn!("dynamic configuration '{key}' interrupted");
                continue;
            }
        };
        match result {
            Ok(output) => {
                let value = match &probe.provider {
                    Provider::Python(_) => Some(output),
                    Provider::Process(_) if output["status"] == json!(0) => Some(Value::String(
                        output["stdout"]
                            .as_str()
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    )),
                    Provider::Process(_) => None,
                    Provider::Http(_) => Some(output.get("body").cloned().unwrap_or(Value::Null)),
                };
                match value {
                    Some(v) => {
                        configuration.insert(key.clone(), v);
                        dynamic.insert(key.clone());
                    }
                    None => tracing::warn!(
                        "dynamic configuration '{key}' failed: its probe exited non-zero"
                    ),
                }
            }
            Err(e) => tracing::warn!(
                "dynamic configuration '{key}' failed: {}",
                redactor.text(&e.to_string())
            ),
        }
    }
    (configuration, dynamic)
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
            let handle = tokio::spawn(async move { execute_checked(&task_ctx, &activity).await });
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

async fn run_method(ctx: &RunContext, report: &Reporter) {
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
async fn run_rollbacks(ctx: &RunContext, report: &Reporter) {
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

/// Evaluate the hypothesis every `frequency` seconds while the method runs.
async fn continuous_hypothesis(
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
    let pause = super::activity::seconds(frequency);
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

fn platform() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let os = std::env::consts::OS;
    let os = format!("{}{}", os[..1].to_uppercase(), &os[1..]);
    format!("{os}-{}-{}", release.trim(), std::env::consts::ARCH)
}

fn node() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}
