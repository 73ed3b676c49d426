//! A run's start: configuration and secrets resolved, dynamic configuration probed, the
//! journal opened (platform, node, the experiment as run, the `broker` section) and the context
//! every activity of the run shares built.

use super::activity::{RunContext, is_dry};
use super::controls::Controls;
use super::report::{Reporter, recorder};
use super::run::{Observer, RunOptions};
use super::strategy::resolve;
use crate::clock::now_iso;
use crate::load::config::{resolve_configuration, resolve_secrets};
use crate::load::{Problems, Vars};
use crate::model::*;
use crate::providers::registry::Recorder;
use crate::providers::{CallContext, Providers};
use crate::redact::Redactor;
use crate::scope::{Scope, secret_values};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// What the rest of the run works with.
pub(super) struct Started {
    pub(super) ctx: RunContext,
    pub(super) report: Reporter,
    pub(super) hypothesis_strategy: HypothesisStrategy,
    pub(super) rollback_strategy: RollbackStrategy,
}

/// Resolve configuration and secrets, probe the dynamic configuration and open the journal. A
/// problem (a variable vanished since validation) is `Err` before anything runs.
pub(super) async fn start(
    experiment: Arc<Experiment>,
    vars: &Vars,
    options: &RunOptions,
    providers: Arc<Providers>,
    stop: &CancellationToken,
    observer: Option<Arc<dyn Observer>>,
) -> Result<Started, Problems> {
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
        stop,
        DynamicContext {
            dry: options.dry,
            records: early_records.clone(),
        },
    )
    .await;
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
    // the hooks see the experiment as run, as the reference passes it
    let as_run = raw.clone();
    redactor.value(&mut raw);
    let journal = Arc::new(Mutex::new(Journal {
        chaoslib_version: crate::model::journal::CHAOSLIB_VERSION.to_string(),
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
    let controls = Arc::new(Controls::new(as_run, &extension));
    let ctx = RunContext {
        controls,
        experiment: experiment.clone(),
        scope,
        providers,
        dry: options.dry,
        stop: stop.clone(),
        redactor: redactor.clone(),
        extension: Arc::new(extension),
        recorder: recorder(&report, redactor),
        acting: false,
        memory: Default::default(),
    };

    Ok(Started {
        ctx,
        report,
        hypothesis_strategy,
        rollback_strategy,
    })
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
    if !experiment.warnings.is_empty() {
        // what the loader found beyond the reference's verdict, located
        let mut warnings = Value::Array(experiment.warnings.iter().map(warning).collect());
        redactor.value(&mut warnings);
        broker["warnings"] = warnings;
    }
    broker
}

/// One loader warning as the journal keeps it: where, what, and the whole located line.
fn warning(p: &crate::load::Problem) -> Value {
    json!({
        "file": p.file.as_ref().map(|f| f.display().to_string()),
        "line": p.line,
        "column": p.column,
        "field": p.field,
        "message": p.message,
        "expected": p.expected,
        "text": p.to_string(),
    })
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
    // a `{type: probe}` entry the loader could not read (a warning) fails as the reference's
    // does when it runs: its key stays unresolved
    configuration.retain(|key, value| {
        value.get("type") != Some(&json!("probe"))
            || vars.configuration.contains_key(key)
            || experiment.config_probes.iter().any(|(k, _)| k == key)
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
            memory: Default::default(),
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
