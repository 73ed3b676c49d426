//! The native registry: Rust activities under Python `module.func` names.
//!
//! A `python` provider is looked up here first; only when no native activity has its
//! `module.func` does the call go to a Python interpreter. This is how the seed's
//! `experimentvr.*` and common `chaosaws.*` experiments will run unchanged with no Python:
//! the AWS fault library registers its actions and probes here. Each entry declares its
//! parameters so `validate` can check arguments the way the reference checks a Python
//! signature.

use super::ActivityError;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};

/// What a native activity receives: its substituted arguments and the run's context.
#[derive(Debug, Clone, Default)]
pub struct NativeCall {
    pub arguments: Map<String, Value>,
    pub configuration: Map<String, Value>,
    pub secrets: Map<String, Value>,
    /// The activity's name in the experiment (for the journal and per-action limits).
    pub activity: String,
    /// The experiment's `extensions` entry named `experiment-broker`, or empty.
    pub extension: Map<String, Value>,
    /// Dry run: resolve and report what would be done, act on nothing.
    pub plan_only: bool,
    /// Writes a record into the journal (and its checkpoint) at once, before the activity
    /// ends: how a fault action puts its resolved targets on record before it acts.
    pub recorder: Recorder,
    /// What the run's native activities keep for each other (`super::memory::RunMemory`).
    pub memory: super::memory::RunMemory,
}

/// A sink for journal records made while an activity runs; see `NativeCall::recorder`.
#[derive(Clone, Default)]
pub struct Recorder(Option<Arc<RecordFn>>);

/// Put a value in the journal; the future resolves once it is durable (checkpointed).
type RecordFn =
    dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync;

impl Recorder {
    pub fn new(
        f: impl Fn(Value) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Recorder(Some(Arc::new(f)))
    }

    /// Record `value` and wait until it is durable: in the fleet, until the journal checkpoint
    /// that holds it is written to the store. An `Err` says it may not have been; a fault
    /// action then refuses to act. Without a journal (a bare call in a test) this only logs.
    pub async fn record(&self, value: Value) -> Result<(), String> {
        match &self.0 {
            Some(f) => f(value).await,
            None => {
                tracing::info!("record: {value}");
                Ok(())
            }
        }
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Recorder(journal)"
        } else {
            "Recorder(log)"
        })
    }
}

pub type NativeFuture = Pin<Box<dyn Future<Output = Result<Value, ActivityError>> + Send>>;
type NativeFn = dyn Fn(NativeCall) -> NativeFuture + Send + Sync;

/// A declared parameter of a native activity: its name, whether it is required, and what its
/// value must be (`kind`, checked at validation; `super::arguments`).
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    pub kind: ArgKind,
    /// Other names that satisfy a required parameter (its aliases, declared as parameters of
    /// their own).
    pub or: &'static [&'static str],
}

pub use super::arguments::ArgKind;

impl Param {
    pub const fn required(name: &'static str) -> Param {
        Param {
            name,
            required: true,
            kind: ArgKind::Any,
            or: &[],
        }
    }
    pub const fn optional(name: &'static str) -> Param {
        Param {
            name,
            required: false,
            kind: ArgKind::Any,
            or: &[],
        }
    }
    /// The same parameter, also satisfied by one of `names`.
    pub const fn or(mut self, names: &'static [&'static str]) -> Param {
        self.or = names;
        self
    }
    /// The same parameter, its value checked as `kind`.
    pub const fn of(mut self, kind: ArgKind) -> Param {
        self.kind = kind;
        self
    }
}

#[derive(Clone)]
pub struct NativeActivity {
    pub params: Vec<Param>,
    /// Like Python's `**kwargs`: accept arguments that are not declared.
    pub accepts_extra: bool,
    /// A fault: it changes the state of a system (stops, stresses, cuts off...). A fault is
    /// accepted only as a method or rollback action (`load` rejects it anywhere else, and
    /// `Providers::run_in` refuses it in a call that may not act), and under a dry run it is
    /// called with `plan_only` to report what it would do instead of being skipped.
    pub fault: bool,
    call: Arc<NativeFn>,
}

impl NativeActivity {
    pub fn new<F, Fut>(params: Vec<Param>, f: F) -> Self
    where
        F: Fn(NativeCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, ActivityError>> + Send + 'static,
    {
        NativeActivity {
            params,
            accepts_extra: false,
            fault: false,
            call: Arc::new(move |c| Box::pin(f(c))),
        }
    }

    pub fn with_extra_arguments(mut self) -> Self {
        self.accepts_extra = true;
        self
    }

    /// Declare this activity a fault; see `fault`.
    pub fn fault(mut self) -> Self {
        self.fault = true;
        self
    }

    pub fn call(&self, call: NativeCall) -> NativeFuture {
        (self.call)(call)
    }

    /// The reference's signature check: unknown arguments and missing required ones.
    pub fn check_arguments<'a>(&self, given: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        self.argument_problems(given)
            .into_iter()
            .map(|(_, message)| message)
            .collect()
    }

    /// As `check_arguments`, each message with the argument it concerns when that argument
    /// is given (an unknown one), `None` when it is missing.
    pub fn argument_problems<'a>(
        &self,
        given: impl IntoIterator<Item = &'a String>,
    ) -> Vec<(Option<String>, String)> {
        let given: Vec<&String> = given.into_iter().collect();
        let mut problems = Vec::new();
        if !self.accepts_extra {
            for name in &given {
                if !self.params.iter().any(|p| p.name == name.as_str()) {
                    problems.push((
                        Some(name.to_string()),
                        format!("argument `{name}` is not a parameter of this function"),
                    ));
                }
            }
        }
        for p in self.params.iter().filter(|p| p.required) {
            if !given
                .iter()
                .any(|g| g.as_str() == p.name || p.or.contains(&g.as_str()))
            {
                let or: String = p.or.iter().map(|n| format!(" (or `{n}`)")).collect();
                problems.push((
                    None,
                    format!("required argument `{}`{or} is missing", p.name),
                ));
            }
        }
        problems
    }

    /// Each given argument whose value its parameter's kind refuses: (argument, what is
    /// wrong, what was expected).
    pub fn value_problems(&self, given: &Map<String, Value>) -> Vec<(String, String, String)> {
        self.params
            .iter()
            .filter_map(|p| {
                let value = given.get(p.name)?;
                let (message, expected) = p.kind.check(value).err()?;
                Some((p.name.to_string(), message, expected))
            })
            .collect()
    }
}

impl std::fmt::Debug for NativeActivity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeActivity")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

/// `module.func` → native activity.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    entries: BTreeMap<String, NativeActivity>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Register `module.func`; a later registration replaces an earlier one.
    pub fn register(&mut self, module: &str, func: &str, activity: NativeActivity) {
        self.entries.insert(format!("{module}.{func}"), activity);
    }

    pub fn get(&self, module: &str, func: &str) -> Option<&NativeActivity> {
        self.entries.get(&format!("{module}.{func}"))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

/// A registry built the first time it is read. The AWS fault library registers some hundred
/// activities, each with its parameter list and closure, in code spread over the whole binary:
/// an experiment that names no `python` provider (a process or HTTP one) never builds it, so
/// `worker run` and `validate` neither spend the time nor page in that code (bench/README.md,
/// "Peak RSS"). Built at most once, by whichever thread reads it first.
pub struct LazyRegistry(LazyLock<Registry, Box<dyn FnOnce() -> Registry + Send>>);

impl LazyRegistry {
    pub fn new(build: impl FnOnce() -> Registry + Send + 'static) -> Self {
        LazyRegistry(LazyLock::new(Box::new(build)))
    }
}

impl Default for LazyRegistry {
    fn default() -> Self {
        Registry::default().into()
    }
}

impl From<Registry> for LazyRegistry {
    fn from(registry: Registry) -> Self {
        LazyRegistry::new(move || registry)
    }
}

impl Deref for LazyRegistry {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.0
    }
}

impl std::fmt::Debug for LazyRegistry {
    /// Says nothing of the entries: formatting must not build the registry.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyRegistry").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn argument_check_reports_unknown_and_missing() {
        let a = NativeActivity::new(
            vec![Param::required("region"), Param::optional("tag_key")],
            |_| async { Ok(json!(null)) },
        );
        let args = ["tag_key".to_string(), "nope".to_string()];
        let problems = a.check_arguments(args.iter());
        assert_eq!(
            problems,
            vec![
                "argument `nope` is not a parameter of this function",
                "required argument `region` is missing"
            ]
        );
        assert!(
            a.with_extra_arguments()
                .check_arguments([&"region".to_string(), &"x".to_string()])
                .is_empty()
        );
    }

    #[tokio::test]
    async fn registered_activities_are_found_and_called() {
        let mut r = Registry::new();
        r.register(
            "m.sub",
            "f",
            NativeActivity::new(vec![Param::required("x")], |c| async move {
                Ok(json!(c.arguments["x"].as_i64().unwrap() * 2))
            }),
        );
        let a = r.get("m.sub", "f").unwrap();
        let call = NativeCall {
            arguments: json!({"x": 21}).as_object().unwrap().clone(),
            ..Default::default()
        };
        assert_eq!(a.call(call).await.unwrap(), json!(42));
        assert!(r.get("m", "sub.f").is_some(), "the key is the dotted name");
        assert!(r.get("m.sub", "g").is_none());
    }

    #[test]
    fn a_lazy_registry_is_built_on_its_first_read_and_only_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let lazy = LazyRegistry::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut r = Registry::new();
            r.register(
                "m",
                "f",
                NativeActivity::new(vec![], |_| async { Ok(json!(1)) }),
            );
            r
        });
        assert_eq!(format!("{lazy:?}"), "LazyRegistry { .. }");
        assert_eq!(
            builds.load(Ordering::SeqCst),
            0,
            "not built before it is read"
        );
        assert!(lazy.get("m", "f").is_some());
        assert!(lazy.get("m", "g").is_none());
        assert_eq!(lazy.names().collect::<Vec<_>>(), ["m.f"]);
        assert_eq!(
            builds.load(Ordering::SeqCst),
            1,
            "built once, on the first read"
        );
    }
}
