//! Providers: how an activity's `provider` block is executed.
//!
//! One file per provider type, each with the same shape (`run`, plus `check` where validation
//! needs the outside world). `Providers` bundles what they share: the native registry, the
//! lazily found Python interpreter, the HTTP clients and the environment overlay. The engine
//! calls `Providers::run` and gets the activity's output or an `ActivityError`; dropping the
//! returned future cancels the activity (a running process group is killed).

pub mod http;
pub mod process;
pub mod python;
pub mod registry;

use crate::engine::substitute::Scope;
use crate::model::{Activity, Provider};
use registry::{NativeCall, Registry};
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
}

/// What the run adds to a native call: see `registry::NativeCall`.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub extension: Map<String, Value>,
    pub plan_only: bool,
    pub recorder: registry::Recorder,
}

/// Everything providers need, built once per process.
#[derive(Debug, Default)]
pub struct Providers {
    pub registry: Registry,
    pub python: python::PythonBridge,
    pub http: http::HttpClients,
    /// Environment variables added by `.env` var files, on top of the process environment.
    pub env_overlay: BTreeMap<String, String>,
}

impl Providers {
    pub fn new(registry: Registry) -> Self {
        Providers {
            registry,
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
                if let Some(native) = self.registry.get(&p.module, &p.func) {
                    let call = NativeCall {
                        arguments,
                        configuration: scope.configuration.clone(),
                        secrets: scope.secrets.clone(),
                        activity: activity.name.clone(),
                        extension: context.extension.clone(),
                        plan_only: context.plan_only,
                        recorder: context.recorder.clone(),
                    };
                    return native.call(call).await;
                }
                self.python
                    .call(p, arguments, scope, &self.env_overlay)
                    .await
            }
        }
    }
}
