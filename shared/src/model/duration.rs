//! How long an experiment declares it can run, and whether that fits a queue's lease limit.
//!
//! SQS cannot keep a message invisible for more than 12 hours from its first receive: a job
//! that runs longer loses its lease mid-run, and another worker may receive it while the first
//! one still injects faults. So before a job is enqueued on such a queue, the producer adds up
//! what the experiment *declares*: pauses, process and http timeouts, the `experimentvr` EC2
//! faults' durations (every stage of a `parameter_map` ladder, bounded by `max_duration`), the
//! hypothesis as often as the strategy runs it, tolerance probes, dynamic configuration probes
//! and rollbacks. Activities that declare no bound (a process with no timeout, a native probe,
//! a `${name}` that cannot be resolved before the run) are listed as unknown, not guessed: the
//! estimate is the time the experiment is known to be allowed to take, and a job is refused
//! only when that alone does not fit (`fits`). Pure: no I/O, no clock.
//!
//! The EC2 fault table mirrors `FAULTS` in `shared/aws/src/faults/ec2/fault_table.rs` (name,
//! default duration, ladder or not): the engine crate cannot depend on the AWS crate, and a
//! test over there checks that both agree.

use super::{Activity, Experiment, HypothesisStrategy, Provider, Step, Tolerance};
use serde_json::{Map, Value};
use std::time::Duration;

/// SQS's limit: a message's visibility cannot be extended past 12 hours from its first receive.
pub const SQS_LEASE_LIMIT: Duration = Duration::from_secs(43_200);

/// Kept free under a lease limit: receiving, fetching and loading the job, writing the journal,
/// publishing and acking it, and the heartbeat's last period (a heartbeat SQS refuses interrupts
/// the run, so that its rollbacks still run under the lease).
pub const LEASE_MARGIN: Duration = Duration::from_secs(900);

/// The module of the seed library's EC2 faults.
const EC2_FAULTS: &str = "experimentvr.ec2.actions";

/// `(func, default duration in seconds, ladder, the duration's other names)`: see the aws
/// crate's `ec2::fault_table::FAULTS`. A ladder fault names its arguments `<func>_<arg>` (the
/// library names some otherwise: the other names) and takes `<func>_parameter_map` (a dict by
/// severity level or a list) and `max_duration` (default 900).
pub const FAULT_DURATIONS: &[(&str, u64, bool, &[&str])] = &[
    ("stress_memory", 60, false, &[]),
    ("root_vol_exhaustion", 60, false, &[]),
    ("ec2_stress_cpu", 60, true, &["ec2_cpu_duration"]),
    ("ec2_stress_memory", 60, true, &[]),
    ("ec2_stress_io", 60, true, &[]),
    ("ec2_exhaust_root_vol", 60, true, &[]),
    ("ec2_stress_network_latency", 60, true, &[]),
    (
        "ec2_stress_packet_loss",
        60,
        true,
        &["ec2_stress_packet_duration"],
    ),
    ("ec2_stress_network_utilization", 60, true, &[]),
    ("ec2_blackhole_by_port", 60, true, &[]),
    ("ec2_blackhole_by_ip", 60, true, &[]),
    ("ec2_kill_process", 0, true, &[]),
    ("ec2_kill_process_by_name", 0, true, &[]),
    ("ec2_stress_all_network_io", 60, true, &[]),
    ("ec2_block_all_network_traffic", 60, true, &[]),
    ("ec2_shutdown_network_interface", 60, true, &[]),
];

/// A ladder fault's `max_duration` when none is given (the library's default).
const DEFAULT_MAX_DURATION: u64 = 900;

/// One activity's declared bound.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    /// At most this many seconds (pauses included).
    Known(f64),
    /// Some of it is declared (the pauses, say), the rest has no bound; the reason says why.
    Partly(f64, String),
}

impl Bound {
    fn seconds(&self) -> f64 {
        match self {
            Bound::Known(s) | Bound::Partly(s, _) => *s,
        }
    }
}

/// What an experiment declares, in all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Estimate {
    /// Seconds declared by the activities that declare a bound.
    pub known: f64,
    /// `<where> '<name>': <why it has no bound>`, once per activity and appearance.
    pub unknown: Vec<String>,
}

impl Estimate {
    fn add(&mut self, times: u32, place: &str, a: &Activity, values: &Map<String, Value>) {
        if times == 0 {
            return;
        }
        let bound = activity_bound(a, values);
        self.known += f64::from(times) * bound.seconds();
        if let Bound::Partly(_, why) = bound {
            self.unknown.push(format!("{place} '{}': {why}", a.name));
        }
    }
}

/// How many times a strategy evaluates the hypothesis (its probes, sequentially): before and
/// after the method; once more for the last check of a continuous hypothesis, which may still
/// be running when the method ends.
pub fn hypothesis_runs(strategy: HypothesisStrategy) -> u32 {
    match strategy {
        HypothesisStrategy::Default => 2,
        HypothesisStrategy::BeforeMethodOnly
        | HypothesisStrategy::AfterMethodOnly
        | HypothesisStrategy::DuringMethodOnly => 1,
        HypothesisStrategy::Continuously => 3,
        HypothesisStrategy::Skip => 0,
    }
}

/// The declared duration of `e` run under `strategy`; `values` resolve `${name}` (the job's
/// vars over the experiment's plain configuration values).
pub fn estimate(
    e: &Experiment,
    strategy: HypothesisStrategy,
    values: &Map<String, Value>,
) -> Estimate {
    let mut out = Estimate::default();
    for (key, a) in &e.config_probes {
        out.add(1, &format!("configuration.{key}"), a, values);
    }
    let probes = e
        .hypothesis
        .as_ref()
        .map(|h| h.probes.as_slice())
        .unwrap_or(&[]);
    let runs = hypothesis_runs(strategy);
    for (i, step) in probes.iter().enumerate() {
        add_step(
            &mut out,
            e,
            runs,
            &format!("steady-state-hypothesis.probes[{i}]"),
            step,
            values,
        );
    }
    for (i, step) in e.method.iter().enumerate() {
        add_step(&mut out, e, 1, &format!("method[{i}]"), step, values);
    }
    for (i, step) in e.rollbacks.iter().enumerate() {
        add_step(&mut out, e, 1, &format!("rollbacks[{i}]"), step, values);
    }
    out
}

fn add_step(
    out: &mut Estimate,
    e: &Experiment,
    times: u32,
    place: &str,
    step: &Step,
    values: &Map<String, Value>,
) {
    let (activity, tolerance) = match step {
        Step::Activity(a) => (Some(a.as_ref()), a.tolerance.as_ref()),
        Step::Ref { name, tolerance } => (e.find_referenced(name), tolerance.as_ref()),
    };
    if let Some(a) = activity {
        out.add(times, place, a, values);
    }
    if let Some(Tolerance::Probe(p)) = tolerance {
        out.add(times, &format!("{place}.tolerance"), p, values);
    }
}

/// One activity: its pauses plus its provider's declared bound.
pub fn activity_bound(a: &Activity, values: &Map<String, Value>) -> Bound {
    let mut known = 0.0;
    let mut why = Vec::new();
    for (name, pause) in [("before", &a.pause_before), ("after", &a.pause_after)] {
        match pause.as_ref().map(|p| seconds(p, values)) {
            None => {}
            Some(Some(s)) => known += s,
            Some(None) => why.push(format!(
                "pause {name} {} is not a known number",
                text(pause)
            )),
        }
    }
    match provider_bound(&a.provider, values) {
        Ok(s) => known += s,
        Err(reason) => why.push(reason),
    }
    if why.is_empty() {
        Bound::Known(known)
    } else {
        Bound::Partly(known, why.join("; "))
    }
}

fn text(v: &Option<Value>) -> String {
    v.as_ref().map(Value::to_string).unwrap_or_default()
}

/// Seconds a provider may take, or why that is not declared.
pub fn provider_bound(p: &Provider, values: &Map<String, Value>) -> Result<f64, String> {
    match p {
        Provider::Process(p) => p
            .timeout
            .ok_or_else(|| format!("process `{}` has no timeout", p.path)),
        Provider::Http(h) => {
            let t = resolve(&h.timeout, values);
            let per_try = match &t {
                Value::Array(pair) if pair.len() == 2 => {
                    match (seconds(&pair[0], values), seconds(&pair[1], values)) {
                        (Some(c), Some(r)) => Some(c + r),
                        _ => None,
                    }
                }
                // one number bounds connecting and reading
                other => seconds(other, values).map(|s| 2.0 * s),
            };
            per_try
                .map(|s| s * f64::from(h.max_retries.saturating_add(1)))
                .ok_or_else(|| format!("http timeout {} does not bound the call", h.timeout))
        }
        Provider::Python(py) => match py.module.as_str() {
            EC2_FAULTS => fault_seconds(&py.func, &py.arguments, values)
                .unwrap_or_else(|| Err(format!("`{}` declares no duration", py.key()))),
            _ => Err(format!("`{}` declares no duration", py.key())),
        },
    }
}

/// An EC2 fault's seconds: every stage's duration, at most `max_duration` (a longer fault is
/// refused before it acts). `None` when `func` is not a fault of the table.
pub fn fault_seconds(
    func: &str,
    args: &Map<String, Value>,
    values: &Map<String, Value>,
) -> Option<Result<f64, String>> {
    let &(_, default, ladder, others) = FAULT_DURATIONS.iter().find(|f| f.0 == func)?;
    let prefix = if ladder {
        format!("{func}_")
    } else {
        String::new()
    };
    let ours = format!("{prefix}duration");
    let duration_of = |v: &Value| {
        let v = match v {
            Value::Array(one) if one.len() == 1 => &one[0],
            other => other,
        };
        whole_seconds(&resolve(v, values))
            .ok_or_else(|| format!("`{func}` duration {v} is not a known whole number of seconds"))
    };
    // the duration under any of its names
    fn given<'m>(m: &'m Map<String, Value>, ours: &str, others: &[&str]) -> Option<&'m Value> {
        std::iter::once(ours)
            .chain(others.iter().copied())
            .find_map(|n| m.get(n).filter(|v| !v.is_null()))
    }
    let base = match given(args, &ours, others) {
        Some(v) => duration_of(v),
        None => Ok(default),
    };
    let entries: Vec<&Value> = match args
        .get(&format!("{prefix}parameter_map"))
        .filter(|_| ladder)
    {
        Some(Value::Array(entries)) => entries.iter().collect(),
        Some(Value::Object(levels)) => levels.values().collect(),
        _ => Vec::new(),
    };
    let stages = if entries.is_empty() {
        base.map(|b| vec![b])
    } else {
        entries
            .into_iter()
            .map(|entry| {
                let own = entry
                    .as_object()
                    .and_then(|m| m.get("duration").or_else(|| given(m, &ours, others)));
                match own {
                    Some(v) => duration_of(v),
                    None => base.clone(),
                }
            })
            .collect::<Result<Vec<u64>, String>>()
    };
    let total = match stages {
        Ok(s) => s.iter().fold(0u64, |t, s| t.saturating_add(*s)),
        Err(e) => return Some(Err(e)),
    };
    let max = match args.get("max_duration").filter(|_| ladder) {
        Some(v) => whole_seconds(&resolve(v, values)),
        None if ladder => Some(DEFAULT_MAX_DURATION),
        None => None,
    };
    Some(Ok(max.map_or(total, |m| total.min(m)) as f64))
}

/// `"${name}"` → its value, when `values` has it; anything else as it is.
fn resolve(v: &Value, values: &Map<String, Value>) -> Value {
    match v
        .as_str()
        .and_then(|s| s.strip_prefix("${")?.strip_suffix('}'))
    {
        Some(name) => values.get(name).cloned().unwrap_or_else(|| v.clone()),
        None => v.clone(),
    }
}

/// A non-negative, finite number of seconds (a number, or a string of one).
fn seconds(v: &Value, values: &Map<String, Value>) -> Option<f64> {
    let s = match resolve(v, values) {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (s.is_finite() && s >= 0.0).then_some(s)
}

fn whole_seconds(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `Ok` when what `estimate` knows fits in `limit` less `LEASE_MARGIN`; otherwise why not, for
/// `source` (the experiment file or key).
pub fn fits(source: &str, estimate: &Estimate, limit: Duration) -> Result<(), String> {
    let room = limit.saturating_sub(LEASE_MARGIN).as_secs_f64();
    if estimate.known <= room {
        return Ok(());
    }
    let unknown = match estimate.unknown.len() {
        0 => String::new(),
        n => format!(
            "; {n} more activit{} declare{} no bound and {} not counted",
            if n == 1 { "y" } else { "ies" },
            if n == 1 { "s" } else { "" },
            if n == 1 { "is" } else { "are" },
        ),
    };
    Err(format!(
        "{source}: declares {} ({:.0} s of pauses, timeouts and fault durations{unknown}), more \
         than a job may run on this queue: its lease cannot be extended past {} from the first \
         receive, and {} of that is kept for receiving, reporting and acking the job \
         (at most {:.0} s); shorten the experiment or split it into several",
        human(estimate.known),
        estimate.known,
        human(limit.as_secs_f64()),
        human(LEASE_MARGIN.as_secs_f64()),
        room,
    ))
}

/// `12 h`, `11 h 45 min`, `50 s`.
fn human(secs: f64) -> String {
    let s = secs.ceil() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s} s"),
        (0, m, 0) => format!("{m} min"),
        (0, m, s) => format!("{m} min {s} s"),
        (h, 0, 0) => format!("{h} h"),
        (h, m, _) => format!("{h} h {m} min"),
    }
}

#[cfg(test)]
#[path = "duration_tests.rs"]
mod tests;
