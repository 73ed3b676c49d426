//! The experiment's controls, run around each level as the reference runs them: configured
//! once per name at the start, `before_*`/`after_*` hooks around the experiment, each
//! hypothesis evaluation, the method, the rollbacks and every activity, cleaned up at the end.
//!
//! Which controls apply where is `model::control`'s; the hooks run in one Python bridge per
//! run (`providers::python_controls`), never through the native registry, so a control cannot
//! reach a fault. A control from a guarded module (`chaosaws`, `experimentvr`) runs only when
//! `allow_unguarded_python: true`, and the broker's own modules never. A hook that fails is
//! logged and the run goes on, as in the reference. Hooks are not cut by the stop token (the
//! reference runs its after-hooks in `finally` blocks); each is bounded by `HOOK_TIMEOUT`.

use super::activity::RunContext;
use crate::model::control::{
    Level, Moment, PythonControl, context_controls, distinct_python_controls, hook_name,
    own_controls, runs_at,
};
use crate::providers::python_controls::{ControlSession, HookCall, HookOutcome};
use crate::providers::{ALLOW_UNGUARDED_PYTHON, Providers, is_guarded_module, is_internal_module};
use crate::redact::Redactor;
use serde_json::{Map, Value};
use std::sync::Arc;
use tokio::sync::Mutex;

/// The run's controls and the interpreter their hooks run in.
#[derive(Debug)]
pub struct Controls {
    /// The experiment's top-level `controls`.
    top: Vec<Value>,
    /// The experiment as the hooks see it (its title substituted), and as written otherwise.
    experiment: Value,
    distinct: Vec<PythonControl>,
    allow_unguarded: bool,
    session: Mutex<Session>,
}

#[derive(Debug)]
enum Session {
    NotStarted,
    Running(Box<ControlSession>),
    /// Could not start, died or timed out: no further hook runs.
    Stopped,
}

impl Controls {
    /// The controls `experiment` (the document as run) declares; `extension` is its
    /// `experiment-broker` extension.
    pub fn new(experiment: Value, extension: &Map<String, Value>) -> Controls {
        Controls {
            top: own_controls(&experiment).to_vec(),
            distinct: distinct_python_controls(&experiment),
            allow_unguarded: extension.get(ALLOW_UNGUARDED_PYTHON) == Some(&Value::Bool(true)),
            experiment,
            session: Mutex::new(Session::NotStarted),
        }
    }

    /// The experiment, as the method's, the rollbacks' and the experiment's hooks get it.
    pub fn experiment(&self) -> &Value {
        &self.experiment
    }

    fn is_empty(&self) -> bool {
        self.distinct.is_empty()
    }

    /// Whether this control may run here; logs why not.
    fn allowed(&self, control: &PythonControl) -> bool {
        if is_internal_module(&control.module) {
            tracing::error!(
                "control '{}': `{}` is the broker's own and cannot be a control: not run",
                control.name,
                control.module
            );
            return false;
        }
        if is_guarded_module(&control.module) && !self.allow_unguarded {
            tracing::error!(
                "control '{}': `{}` would act without the broker's guard rails (set `{ALLOW_UNGUARDED_PYTHON}: true` in the experiment-broker extension to allow it): not run",
                control.name,
                control.module
            );
            return false;
        }
        true
    }

    /// `configure_control` of each distinct control, then the experiment's before-hooks.
    pub async fn begin(&self, ctx: &RunContext) {
        if self.is_empty() {
            return;
        }
        for control in &self.distinct {
            if self.allowed(control) {
                let arguments = Value::Object(control.arguments.clone());
                self.call(
                    ctx,
                    control,
                    "configure_control",
                    &arguments,
                    &Value::Null,
                    None,
                )
                .await;
            }
        }
        self.apply(
            ctx,
            Level::Experiment,
            Moment::Before,
            &self.experiment,
            None,
        )
        .await;
    }

    /// The experiment's after-hooks with the journal, `cleanup_control` of each distinct
    /// control, and the interpreter stopped.
    pub async fn end(&self, ctx: &RunContext, journal: &Value) {
        if self.is_empty() {
            return;
        }
        self.apply(
            ctx,
            Level::Experiment,
            Moment::After,
            &self.experiment,
            Some(journal),
        )
        .await;
        for control in &self.distinct {
            if self.allowed(control) {
                let none = Value::Object(Map::new());
                self.call(ctx, control, "cleanup_control", &none, &Value::Null, None)
                    .await;
            }
        }
        let session = std::mem::replace(&mut *self.session.lock().await, Session::Stopped);
        if let Session::Running(s) = session {
            s.close().await;
        }
    }

    /// The hooks of `level` at `moment`; `context` is what they wrap (the experiment, the
    /// hypothesis, an activity), `state` what it produced (after-hooks only).
    pub async fn apply(
        &self,
        ctx: &RunContext,
        level: Level,
        moment: Moment,
        context: &Value,
        state: Option<&Value>,
    ) {
        if self.is_empty() {
            return;
        }
        let own = match level {
            Level::Experiment => self.top.as_slice(),
            Level::Method | Level::Rollback => &[],
            Level::Hypothesis | Level::Activity => own_controls(context),
        };
        for control in context_controls(level, &self.top, own) {
            if !runs_at(&control, moment) {
                continue;
            }
            let Some(python) = PythonControl::of(&control) else {
                continue; // the reference runs python controls only
            };
            if !self.allowed(&python) {
                continue;
            }
            let arguments = ctx
                .scope
                .substitute(&Value::Object(python.arguments.clone()));
            self.call(
                ctx,
                &python,
                hook_name(level, moment),
                &arguments,
                context,
                state,
            )
            .await;
        }
    }

    async fn call(
        &self,
        ctx: &RunContext,
        control: &PythonControl,
        hook: &str,
        arguments: &Value,
        context: &Value,
        state: Option<&Value>,
    ) {
        let mut session = self.session.lock().await;
        if matches!(*session, Session::NotStarted) {
            *session = start(&ctx.providers, &ctx.redactor).await;
        }
        let Session::Running(running) = &mut *session else {
            return;
        };
        let configuration = Value::Object(ctx.scope.configuration.clone());
        let secrets = Value::Object(ctx.scope.secrets.clone());
        let call = HookCall {
            hook,
            module: &control.module,
            arguments,
            context,
            state,
            configuration: &configuration,
            secrets: &secrets,
            experiment: &self.experiment,
        };
        let outcome = running.call(&call).await;
        match outcome {
            Ok(HookOutcome::Ran) => {
                tracing::debug!("control '{}': {hook} ran", control.name);
            }
            Ok(HookOutcome::Absent(why)) => tracing::debug!("control '{}': {why}", control.name),
            Ok(HookOutcome::Failed(error)) => tracing::warn!(
                "control '{}': {hook} failed: {}",
                control.name,
                ctx.redactor.text(&error)
            ),
            Err(error) => {
                tracing::error!(
                    "control '{}': {hook}: {}; no further control hook runs",
                    control.name,
                    ctx.redactor.text(&error)
                );
                *session = Session::Stopped;
            }
        }
    }
}

/// The interpreter for the hooks; what the controls print goes to the log, masked.
async fn start(providers: &Providers, redactor: &Arc<Redactor>) -> Session {
    let redactor = redactor.clone();
    let log = move |line: &str| tracing::info!("control: {}", redactor.text(line));
    match providers
        .python
        .control_session(&providers.env_overlay, log)
        .await
    {
        Ok(session) => Session::Running(Box::new(session)),
        Err(why) => {
            tracing::error!("controls cannot run: {why}");
            Session::Stopped
        }
    }
}
