//! The Chaos Toolkit experiment, typed.
//!
//! An `Experiment` only exists once `load::validate` accepted the document, so the engine never
//! re-checks shapes. Fields that the reference substitutes at run time (`${name}`) are kept as
//! JSON values (`arguments`, `url`, `headers`, http `timeout`, pauses); everything else is typed.
//! Each activity also keeps its `raw` JSON because the journal must carry the activity exactly as
//! the author wrote it.

use serde_json::{Map, Value};

/// The name of the broker's entry in an experiment's `extensions`.
pub const BROKER_EXTENSION: &str = "experiment-broker";

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

/// A validated experiment.
#[derive(Debug, Clone, Default)]
pub struct Experiment {
    pub version: Option<String>,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub contributions: Option<Map<String, Value>>,
    /// Configuration as written (plain values, `{type: env}` and `{type: probe}` entries).
    pub configuration: Map<String, Value>,
    /// The `{type: probe}` configuration entries, parsed (dynamic configuration).
    pub config_probes: Vec<(String, Activity)>,
    pub secrets: Map<String, Value>,
    pub extensions: Vec<Value>,
    pub controls: Vec<Value>,
    pub runtime: Runtime,
    pub hypothesis: Option<Hypothesis>,
    pub method: Vec<Step>,
    pub rollbacks: Vec<Step>,
    /// The document as written; the journal's `experiment` is this with the title substituted.
    pub raw: Value,
    /// What the loader found beyond the reference's verdict (unknown or repeated keys, risky
    /// substitutions...), located; the journal lists them under `broker.warnings`, and under
    /// strictness they are errors (`load::strict_problems`).
    pub warnings: Vec<crate::load::Problem>,
}

/// `runtime:` in the experiment; the command line overrides it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Runtime {
    pub hypothesis_strategy: Option<HypothesisStrategy>,
    pub rollback_strategy: Option<RollbackStrategy>,
}

#[derive(Debug, Clone)]
pub struct Hypothesis {
    pub title: String,
    pub probes: Vec<Step>,
}

/// One entry of a hypothesis, method or rollbacks list: an activity, or a reference to one.
#[derive(Debug, Clone)]
pub enum Step {
    Activity(Box<Activity>),
    /// `{"ref": "name"}`: resolved by name among method and hypothesis activities at run time.
    /// In a hypothesis, the tolerance is the one written beside the `ref`, as in the reference.
    Ref {
        name: String,
        tolerance: Option<Tolerance>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    Action,
    Probe,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Action => "action",
            ActivityKind::Probe => "probe",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Activity {
    pub kind: ActivityKind,
    pub name: String,
    pub provider: Provider,
    pub tolerance: Option<Tolerance>,
    /// `pauses.before` / `pauses.after`: numbers or `${name}` strings, substituted at run time.
    pub pause_before: Option<Value>,
    pub pause_after: Option<Value>,
    pub background: bool,
    /// Validated, but like the reference not enforced: the provider's timeout is.
    pub timeout: Option<f64>,
    /// Per-activity `dry` override.
    pub dry: Option<Dry>,
    pub raw: Value,
}

#[derive(Debug, Clone)]
pub enum Provider {
    Process(ProcessProvider),
    Http(HttpProvider),
    Python(PythonProvider),
}

impl Provider {
    pub fn type_name(&self) -> &'static str {
        match self {
            Provider::Process(_) => "process",
            Provider::Http(_) => "http",
            Provider::Python(_) => "python",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProcessProvider {
    pub path: String,
    /// A string (run through the shell), a list, or a mapping flattened to key/value pairs.
    pub arguments: Value,
    pub timeout: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct HttpProvider {
    pub url: Value,
    pub method: String,
    pub headers: Value,
    pub arguments: Value,
    /// A number of seconds or `[connect, read]`; may be a `${name}`.
    pub timeout: Value,
    pub expected_status: Option<u16>,
    pub verify_tls: bool,
    /// Retries on connection failures, as `requests`' `max_retries`.
    pub max_retries: u32,
}

#[derive(Debug, Clone)]
pub struct PythonProvider {
    pub module: String,
    pub func: String,
    pub arguments: Map<String, Value>,
    /// Secret scopes handed to the function's `secrets` parameter.
    pub secrets: Vec<String>,
}

impl PythonProvider {
    /// The registry key, `module.func`.
    pub fn key(&self) -> String {
        format!("{}.{}", self.module, self.func)
    }
}

#[derive(Debug, Clone)]
pub enum Tolerance {
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Regex {
        pattern: String,
        target: Option<String>,
    },
    JsonPath {
        path: String,
        expect: Option<Value>,
        count: Option<u64>,
        target: Option<String>,
    },
    Range {
        low: f64,
        high: f64,
        target: Option<String>,
    },
    Probe(Box<Activity>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dry {
    Probes,
    Actions,
    Activities,
    Pause,
}

impl Dry {
    pub fn parse(s: &str) -> Option<Dry> {
        Some(match s {
            "probes" => Dry::Probes,
            "actions" => Dry::Actions,
            "activities" => Dry::Activities,
            "pause" => Dry::Pause,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Dry::Probes => "probes",
            Dry::Actions => "actions",
            Dry::Activities => "activities",
            Dry::Pause => "pause",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HypothesisStrategy {
    #[default]
    Default,
    BeforeMethodOnly,
    AfterMethodOnly,
    DuringMethodOnly,
    Continuously,
    /// Never check the hypothesis (experiment `runtime` only, as in the reference).
    Skip,
}

impl HypothesisStrategy {
    pub const NAMES: [&'static str; 6] = [
        "default",
        "before-method-only",
        "after-method-only",
        "during-method-only",
        "continuously",
        "skip",
    ];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "default" => Self::Default,
            "before-method-only" => Self::BeforeMethodOnly,
            "after-method-only" => Self::AfterMethodOnly,
            "during-method-only" => Self::DuringMethodOnly,
            // the reference accepts its historical misspelling too
            "continuously" | "continously" => Self::Continuously,
            "skip" => Self::Skip,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RollbackStrategy {
    #[default]
    Default,
    Always,
    Never,
    Deviated,
}

impl RollbackStrategy {
    pub const NAMES: [&'static str; 4] = ["default", "always", "never", "deviated"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "default" => Self::Default,
            "always" => Self::Always,
            "never" => Self::Never,
            "deviated" => Self::Deviated,
            _ => return None,
        })
    }
}

/// The activity a `ref` names, looked up in the method then the hypothesis probes.
pub fn find_referenced<'a>(
    method: &'a [Step],
    probes: &'a [Step],
    name: &str,
) -> Option<&'a Activity> {
    method
        .iter()
        .chain(probes)
        .rev()
        .find_map(|step| match step {
            Step::Activity(a) if a.name == name => Some(a.as_ref()),
            _ => None,
        })
}

impl Experiment {
    /// Every activity that a `ref` may name: the method first, then the hypothesis probes,
    /// later ones shadowing earlier ones of the same name (the reference's cache order).
    pub fn find_referenced(&self, name: &str) -> Option<&Activity> {
        let probes = self
            .hypothesis
            .as_ref()
            .map(|h| h.probes.as_slice())
            .unwrap_or(&[]);
        find_referenced(&self.method, probes, name)
    }

    /// Every activity declared anywhere, tolerance probes included.
    pub fn all_activities(&self) -> Vec<&Activity> {
        let mut out = Vec::new();
        let steps = self
            .hypothesis
            .iter()
            .flat_map(|h| h.probes.iter())
            .chain(self.method.iter())
            .chain(self.rollbacks.iter());
        for step in steps {
            if let Step::Activity(a) = step {
                out.push(a.as_ref());
                if let Some(Tolerance::Probe(p)) = &a.tolerance {
                    out.push(p.as_ref());
                }
            }
        }
        out
    }
}
