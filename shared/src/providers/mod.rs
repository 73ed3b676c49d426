//! Providers: how an activity's `provider` block is executed.
//!
//! One file per provider type, each with the same shape (`run`, plus `check` where validation
//! needs the outside world). `Providers` bundles what they share: the native registry, the
//! lazily found Python interpreter, the HTTP clients and the environment overlay. The engine
//! calls `Providers::run` and gets the activity's output or an `ActivityError`; dropping the
//! returned future cancels the activity (a running process group is killed).
//!
//! Beside them: `registry` (native activities under Python names), `load` (the native HTTP
//! load actions and probes, which need no AWS) and `memory` (what the native calls of one run
//! share, handed over in `CallContext`).

pub mod arguments;
pub mod http;
pub mod load;
pub mod memory;
pub mod output;
pub mod process;
pub mod python;
pub mod python_controls;
pub mod registry;

use crate::model::{Activity, Provider};
use crate::scope::Scope;
use registry::{LazyRegistry, NativeCall};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Why an activity failed. The message is what the journal's `exception` shows.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ActivityError {
    /// The activity ran and failed (exception, connection refused, non-expected status...).
    #[error("{0}")]
    Failed(String),
    /// The provider's own timeout elapsed.
    #[error("{0}")]
    Timeout(String),
    /// The run was interrupted while this activity was running.
    #[error("activity interrupted: {0}")]
    Interrupted(String),
    /// Nothing can run this activity here (e.g. no native implementation and no Python).
    #[error("{0}")]
    Unavailable(String),
    /// A guard rail refused the activity before it acted on anything. The run is aborted.
    #[error("{0}")]
    Refused(Refusal),
}

/// A guard rail's refusal: the rule that refused, the target it named (if one), and what to
/// tell the operator. A refusal aborts the run (journal status `aborted`, `broker.refused`), so
/// a pipeline never goes green on an experiment whose fault was never injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A stable name for the rule: `opt_in`, `max_targets`, `max_percent`, `unknown_target`,
    /// `empty_selection`, `max_duration`, `target_locked`, `no_targets`, `fault_outside_method`,
    /// `unguarded_python`.
    pub rule: &'static str,
    pub target: Option<String>,
    pub message: String,
}

impl Refusal {
    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            rule,
            target: None,
            message: message.into(),
        }
    }

    pub fn on(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused ({}): {}", self.rule, self.message)
    }
}

/// Module families whose activities act on AWS under our guard rails. A `python` activity in
/// one of them with no native implementation would run the real package with no opt-in tag,
/// caps or locks, so it is refused unless the experiment's `experiment-broker` extension says
/// `allow_unguarded_python: true`.
pub const GUARDED_MODULES: &[&str] = &["experimentvr", "chaosaws"];

/// Whether `module` belongs to a guarded family (`chaosaws`, `chaosaws.ec2.actions`, ...).
pub fn is_guarded_module(module: &str) -> bool {
    GUARDED_MODULES.iter().any(|family| {
        module == *family
            || module
                .strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

/// The broker's own native activities (the redelivery stopper): called by the fleet, never by
/// an experiment, which would otherwise be able to cancel commands with the worker's rights.
pub const INTERNAL_MODULE: &str = "experiment_broker";

/// Whether `module` is the broker's own (`experiment_broker`, `experiment_broker.*`).
pub fn is_internal_module(module: &str) -> bool {
    module == INTERNAL_MODULE
        || module
            .strip_prefix(INTERNAL_MODULE)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The extension key that lets a guarded module fall back to Python.
pub const ALLOW_UNGUARDED_PYTHON: &str = "allow_unguarded_python";

/// What the run adds to a native call: see `registry::NativeCall`.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub extension: Map<String, Value>,
    pub plan_only: bool,
    pub recorder: registry::Recorder,
    /// This call is a method or rollback action: the only place a fault may act. Every other
    /// call (probes, tolerances, dynamic configuration) refuses a fault.
    pub may_act: bool,
    /// The run's memory (`memory::RunMemory`), shared by the native calls of one run.
    pub memory: memory::RunMemory,
}

/// Everything providers need, built once per process.
#[derive(Debug, Default)]
pub struct Providers {
    /// Built on first use (`registry::LazyRegistry`).
    pub registry: LazyRegistry,
    pub python: python::PythonBridge,
    pub http: http::HttpClients,
    /// Environment variables added by `.env` var files, on top of the process environment.
    pub env_overlay: BTreeMap<String, String>,
}

impl Providers {
    pub fn new(registry: impl Into<LazyRegistry>) -> Self {
        Providers {
            registry: registry.into(),
            ..Default::default()
        }
    }

    /// Run an activity's provider with `${name}` resolved from `scope`.
    pub async fn run(&self, activity: &Activity, scope: &Scope) -> Result<Value, ActivityError> {
        self.run_in(activity, scope, &CallContext::default()).await
    }

    /// The native activity that would run `activity`, if any.
    pub fn native(&self, activity: &Activity) -> Option<&registry::NativeActivity> {
        match &activity.provider {
            Provider::Python(p) => self.registry.get(&p.module, &p.func),
            _ => None,
        }
    }

    /// `run`, with what native activities get beyond their arguments.
    pub async fn run_in(
        &self,
        activity: &Activity,
        scope: &Scope,
        context: &CallContext,
    ) -> Result<Value, ActivityError> {
        match &activity.provider {
            Provider::Process(p) => process::run(p, scope, &self.env_overlay).await,
            Provider::Http(p) => self.http.run(p, scope).await,
            Provider::Python(p) => {
                let arguments = if scope.is_empty() {
                    p.arguments.clone()
                } else {
                    match scope.substitute(&Value::Object(p.arguments.clone())) {
                        Value::Object(m) => m,
                        _ => p.arguments.clone(),
                    }
                };
                if is_internal_module(&p.module) {
                    return Err(ActivityError::Refused(Refusal::new(
                        "internal",
                        format!(
                            "`{}` is the broker's own and cannot be called by an experiment",
                            p.key()
                        ),
                    )));
                }
                if let Some(native) = self.registry.get(&p.module, &p.func) {
                    if native.fault && !context.may_act {
                        return Err(ActivityError::Refused(Refusal::new(
                            "fault_outside_method",
                            format!(
                                "`{}` is a fault: it may only run as an action of the method or the rollbacks",
                                p.key()
                            ),
                        )));
                    }
                    let call = NativeCall {
                        arguments,
                        configuration: scope.configuration.clone(),
                        secrets: scope.secrets.clone(),
                        activity: activity.name.clone(),
                        extension: context.extension.clone(),
                        plan_only: context.plan_only,
                        recorder: context.recorder.clone(),
                        memory: context.memory.clone(),
                    };
                    return native.call(call).await;
                }
                if is_guarded_module(&p.module)
                    && context.extension.get(ALLOW_UNGUARDED_PYTHON) != Some(&Value::Bool(true))
                {
                    return Err(ActivityError::Refused(Refusal::new(
                        "unguarded_python",
                        format!(
                            "`{}` has no native implementation, and running the Python package would act without the broker's guard rails (set `{ALLOW_UNGUARDED_PYTHON}: true` in the experiment-broker extension to allow it)",
                            p.key()
                        ),
                    )));
                }
                self.python
                    .call(p, arguments, scope, &self.env_overlay)
                    .await
            }
        }
    }
}
