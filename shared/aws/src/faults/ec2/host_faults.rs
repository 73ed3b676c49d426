//! `experimentvr.ec2.actions`: the seed library's EC2 host faults, run as SSM command documents
//! on the instances target selection chose, with the seed's argument names so its experiments
//! run unchanged.
//!
//! Every fault is one row of `FAULTS`: the function name, the document (from the shared list in
//! `documents.rs`) and how its experiment arguments map to the document's parameters. The
//! action then runs the same steps for all of them:
//! 1. read the arguments into a selector and severity stages (pure: `stages`);
//! 2. refuse a total duration over `max_duration`;
//! 3. resolve the targets under the deployment's limits and put them on record;
//! 4. under a dry run, stop here and return the plan;
//! 5. lock the targets (`target_locks.rs`), so no other fault stacks on them;
//! 6. run each stage's command on the targets and wait for it; a failed stage ends the ladder
//!    (`FailFast`, the default) or the next stage still runs (`Continue`; the action then fails
//!    at the end, listing the failed stages); then release the locks.

use super::documents::{self, Document};
use super::instances::{experimentvr_selector, resolve, server_filters};
use super::ssm_command::{self, Command};
use super::target_locks;
use serde_json::{Map, Value, json};
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use shared::providers::{ActivityError, Refusal};
use std::collections::BTreeMap;
use std::time::Duration;

const MODULE: &str = "experimentvr.ec2.actions";

/// One argument of a fault: `<func>_<suffix>` in the experiment (the seed's `stress_memory`:
/// `<suffix>`), `parameter` in the document.
#[derive(Debug, Clone, Copy)]
struct Arg {
    suffix: &'static str,
    parameter: &'static str,
    /// Sent when the experiment does not give it; `None` means the experiment must.
    default: Option<&'static str>,
}

const fn arg(suffix: &'static str, parameter: &'static str, default: &'static str) -> Arg {
    Arg {
        suffix,
        parameter,
        default: Some(default),
    }
}

const fn required(suffix: &'static str, parameter: &'static str) -> Arg {
    Arg {
        suffix,
        parameter,
        default: None,
    }
}

/// A fault action and the document that injects it.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub func: &'static str,
    pub document: Document,
    args: &'static [Arg],
    /// Arguments are named after the action (`<func>_<suffix>`), and it takes
    /// `<func>_parameter_map`, `<func>_failure_mode` and `max_duration`.
    ladder: bool,
}

/// Every SSM fault, the seed's `stress_memory` first.
pub const FAULTS: &[Fault] = &[
    Fault {
        func: "stress_memory",
        document: documents::STRESS_MEMORY,
        args: &[
            arg("duration", "duration", "60"),
            arg("number_of_workers", "workers", "1"),
            arg("memory_percentage_per_worker", "percent", "80"),
        ],
        ladder: false,
    },
    ladder(
        "ec2_stress_cpu",
        documents::STRESS_CPU,
        &[
            arg("duration", "duration", "60"),
            arg("workers", "workers", "0"),
            arg("load", "load", "100"),
        ],
    ),
    ladder(
        "ec2_stress_memory",
        documents::STRESS_MEMORY,
        &[
            arg("duration", "duration", "60"),
            arg("workers", "workers", "1"),
            arg("percent", "percent", "80"),
        ],
    ),
    ladder(
        "ec2_stress_io",
        documents::STRESS_IO,
        &[
            arg("duration", "duration", "60"),
            arg("workers", "workers", "1"),
            arg("percent", "percent", "50"),
        ],
    ),
    ladder(
        "ec2_exhaust_root_vol",
        documents::DISK_FILL,
        &[
            arg("duration", "duration", "60"),
            arg("percent", "percent", "95"),
            arg("path", "path", "/"),
        ],
    ),
    ladder(
        "ec2_stress_network_latency",
        documents::NETWORK_LATENCY,
        &[
            arg("duration", "duration", "60"),
            arg("network_delay", "delay", "200"),
            arg("network_jitter", "jitter", "0"),
            arg("interface", "interface", ""),
        ],
    ),
    ladder(
        "ec2_stress_packet_loss",
        documents::PACKET_LOSS,
        &[
            arg("duration", "duration", "60"),
            arg("loss_percent", "loss", "10"),
            arg("interface", "interface", ""),
        ],
    ),
    ladder(
        "ec2_stress_network_utilization",
        documents::BANDWIDTH_LIMIT,
        &[
            arg("duration", "duration", "60"),
            arg("bandwidth", "rate", "1mbit"),
            arg("interface", "interface", ""),
        ],
    ),
    ladder(
        "ec2_blackhole_by_port",
        documents::BLACKHOLE_PORT,
        &[
            arg("duration", "duration", "60"),
            required("port", "port"),
            arg("protocol", "protocol", "tcp"),
            arg("direction", "direction", "egress"),
        ],
    ),
    ladder(
        "ec2_blackhole_by_ip",
        documents::BLACKHOLE_IP,
        &[
            arg("duration", "duration", "60"),
            required("ip", "ip"),
            arg("direction", "direction", "egress"),
        ],
    ),
    ladder(
        "ec2_kill_process",
        documents::KILL_PROCESS,
        &[
            arg("duration", "duration", "0"),
            required("pid", "pid"),
            arg("signal", "signal", "SIGKILL"),
        ],
    ),
    ladder(
        "ec2_kill_process_by_name",
        documents::KILL_PROCESS_BY_NAME,
        &[
            arg("duration", "duration", "0"),
            required("name", "name"),
            arg("signal", "signal", "SIGKILL"),
        ],
    ),
];

const fn ladder(func: &'static str, document: Document, args: &'static [Arg]) -> Fault {
    Fault {
        func,
        document,
        args,
        ladder: true,
    }
}

/// The selection arguments every fault shares.
const SELECTION: [&str; 5] = [
    "targets",
    "test_target_type",
    "tag_key",
    "tag_value",
    "region",
];

impl Fault {
    /// `<func>_` for the `ec2_*` faults, nothing for the seed's `stress_memory`.
    fn prefix(&self) -> String {
        if self.ladder {
            format!("{}_", self.func)
        } else {
            String::new()
        }
    }

    fn arg_name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix())
    }

    /// The parameters the reference's signature check accepts.
    pub fn params(&self) -> Vec<Param> {
        let mut names: Vec<String> = SELECTION.iter().map(|s| s.to_string()).collect();
        names.extend(self.args.iter().map(|a| self.arg_name(a.suffix)));
        if self.ladder {
            names.push("max_duration".into());
            names.push(self.arg_name("parameter_map"));
            names.push(self.arg_name("failure_mode"));
        }
        names
            .into_iter()
            .map(|n| {
                let required = self
                    .args
                    .iter()
                    .any(|a| a.default.is_none() && self.arg_name(a.suffix) == n);
                let n: &'static str = Box::leak(n.into_boxed_str());
                if required {
                    Param::required(n)
                } else {
                    Param::optional(n)
                }
            })
            .collect()
    }
}

/// One stage of a fault: the document's parameters.
pub type Stage = BTreeMap<String, String>;

/// A document parameter from an experiment value: strings as they are, numbers and booleans
/// written out; anything else is refused, naming the argument.
fn parameter_text(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "{name}: expected a string or a number, got {other}"
        )),
    }
}

/// The stages a fault runs: the arguments (or defaults) as the first and only stage, or, with a
/// `parameter_map`, one stage per entry, each overriding the arguments (entries may name
/// arguments in full, `ec2_stress_cpu_load`, or by suffix, `load`). Pure.
pub fn stages(fault: &Fault, args: &Map<String, Value>) -> Result<Vec<Stage>, String> {
    let mut base = Stage::new();
    for a in fault.args {
        let name = fault.arg_name(a.suffix);
        match args.get(&name).filter(|v| !v.is_null()) {
            Some(v) => {
                base.insert(a.parameter.into(), parameter_text(&name, v)?);
            }
            None => match a.default {
                Some("") => {}
                Some(d) => {
                    base.insert(a.parameter.into(), d.into());
                }
                None => return Err(format!("{name} is required")),
            },
        }
    }
    let map_name = fault.arg_name("parameter_map");
    let entries = match args.get(&map_name).filter(|_| fault.ladder) {
        None | Some(Value::Null) => return Ok(vec![base]),
        Some(Value::Array(entries)) if !entries.is_empty() => entries,
        Some(_) => {
            return Err(format!(
                "{map_name}: expected a non-empty list of parameter overrides, one per stage"
            ));
        }
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let entry = entry.as_object().ok_or_else(|| {
                format!("{map_name}[{i}]: expected a mapping of argument to value")
            })?;
            let mut stage = base.clone();
            for (key, value) in entry {
                let suffix = key.strip_prefix(&fault.prefix()).unwrap_or(key);
                let a = fault
                    .args
                    .iter()
                    .find(|a| a.suffix == suffix)
                    .ok_or_else(|| {
                        let known: Vec<String> = fault
                            .args
                            .iter()
                            .map(|a| fault.arg_name(a.suffix))
                            .collect();
                        format!(
                            "{map_name}[{i}].{key}: not an argument of {} (expected one of {})",
                            fault.func,
                            known.join(", ")
                        )
                    })?;
                stage.insert(
                    a.parameter.into(),
                    parameter_text(&format!("{map_name}[{i}].{key}"), value)?,
                );
            }
            Ok(stage)
        })
        .collect()
}

/// Seconds a stage lasts (its `duration`).
fn stage_seconds(stage: &Stage) -> Result<u64, String> {
    let d = stage.get("duration").map(String::as_str).unwrap_or("0");
    let secs = d
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("duration {d:?}: expected a whole number of seconds"))?;
    if secs > MAX_STAGE_SECONDS {
        return Err(format!(
            "duration {secs}: at most {MAX_STAGE_SECONDS} seconds (a day), as the documents take"
        ));
    }
    Ok(secs)
}

/// The longest stage the documents accept.
const MAX_STAGE_SECONDS: u64 = 86_400;

/// The total duration of the stages, refused when over `max_duration`. Pure.
pub fn check_duration(stages: &[Stage], max: Option<&Value>) -> Result<u64, String> {
    let total = total_seconds(stages)?;
    match over_max(total, max_seconds(max)?, stages.len()) {
        Some(refusal) => Err(refusal),
        None => Ok(total),
    }
}

/// The stages' durations added up; a stage whose duration is not valid is an error. Pure.
fn total_seconds(stages: &[Stage]) -> Result<u64, String> {
    let mut total = 0u64;
    for s in stages {
        total = total.saturating_add(stage_seconds(s)?);
    }
    Ok(total)
}

/// `max_duration` as seconds, if given. Pure.
fn max_seconds(max: Option<&Value>) -> Result<Option<u64>, String> {
    match max {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parameter_text("max_duration", v)?
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("max_duration {v}: expected a whole number of seconds")),
    }
}

/// Why a total over `max_duration` is refused, or `None` within it. Pure.
fn over_max(total: u64, max: Option<u64>, stages: usize) -> Option<String> {
    let max = max?;
    (total > max).then(|| {
        format!(
            "the fault would last {total}s in all ({stages} stage{}), more than max_duration {max}s",
            if stages == 1 { "" } else { "s" }
        )
    })
}

/// `FailFast` (default) or `Continue`.
fn keeps_going(fault: &Fault, args: &Map<String, Value>) -> Result<bool, String> {
    let name = fault.arg_name("failure_mode");
    match args.get(&name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("failfast") => Ok(false),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("continue") => Ok(true),
        Some(v) => Err(format!("{name}: expected FailFast or Continue, got {v}")),
    }
}

pub fn register(registry: &mut Registry) {
    for fault in FAULTS {
        let f = *fault;
        registry.register(
            MODULE,
            f.func,
            NativeActivity::new(
                f.params(),
                move |call| async move { inject(&f, call).await },
            )
            .fault(),
        );
    }
}

/// How long past the fault's own duration to wait for the command to end.
const COMMAND_MARGIN: Duration = Duration::from_secs(300);

async fn inject(fault: &Fault, call: NativeCall) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let stages = stages(fault, &call.arguments).map_err(fail)?;
    let total = total_seconds(&stages).map_err(fail)?;
    let max = max_seconds(call.arguments.get("max_duration")).map_err(fail)?;
    if let Some(message) = over_max(total, max, stages.len()) {
        return Err(ActivityError::Refused(Refusal::new(
            "max_duration",
            message,
        )));
    }
    let keep_going = keeps_going(fault, &call.arguments).map_err(fail)?;
    let selector = experimentvr_selector(&call.arguments, "running").map_err(fail)?;
    let filters = server_filters(&selector);
    let selection = resolve(&call, selector, filters).await?;
    let document = documents::registered_name(&fault.document);
    let mut plan = json!({
        "document": document,
        "targets": selection.chosen,
        "matched": selection.matched,
        "seed": selection.seed,
        "total_duration": total,
        "stages": stages,
    });
    if call.plan_only || selection.chosen.is_empty() {
        if selection.chosen.is_empty() {
            tracing::warn!(
                "{}: no target selected (allowed to be empty): nothing to do",
                call.activity
            );
        }
        plan["dry_run"] = json!(call.plan_only);
        return Ok(plan);
    }
    // the locks last as long as the fault may: every stage, each with its margin
    let ttl = Duration::from_secs(total)
        .saturating_add(COMMAND_MARGIN.saturating_mul(stages.len().min(1000) as u32));
    let held = target_locks::lock(&call, &selection.chosen, ttl).await?;
    let mut results = Vec::new();
    let mut failed_stages = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        let command = Command {
            document: document.clone(),
            instance_ids: selection.chosen.clone(),
            parameters: stage
                .iter()
                .map(|(k, v)| (k.clone(), vec![v.clone()]))
                .collect(),
            wait: Duration::from_secs(stage_seconds(stage).unwrap_or(0)) + COMMAND_MARGIN,
        };
        tracing::info!(
            "  {}: stage {}/{} on {}",
            document,
            i + 1,
            stages.len(),
            selection.chosen.join(", ")
        );
        match ssm_command::run(&call, &command, Some(&held)).await {
            Ok(r) => results.push(json!({"stage": i, "status": "succeeded", "command": r})),
            Err(e) => {
                results.push(json!({"stage": i, "status": "failed", "error": e.to_string()}));
                failed_stages.push(format!("stage {}: {e}", i + 1));
                if !keep_going {
                    break;
                }
            }
        }
    }
    held.release().await;
    plan["results"] = json!(results);
    if failed_stages.is_empty() {
        Ok(plan)
    } else {
        Err(ActivityError::Failed(failed_stages.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(func: &str) -> &'static Fault {
        FAULTS.iter().find(|f| f.func == func).unwrap()
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_fault_sends_a_listed_document_with_only_its_parameters() {
        for f in FAULTS {
            assert!(documents::DOCUMENTS.contains(&f.document), "{}", f.func);
            for a in f.args {
                assert!(
                    f.document.parameters.contains(&a.parameter),
                    "{}: {}",
                    f.func,
                    a.parameter
                );
            }
            assert!(
                f.args.iter().any(|a| a.parameter == "duration"),
                "{} takes a duration",
                f.func
            );
        }
        let mut funcs: Vec<&str> = FAULTS.iter().map(|f| f.func).collect();
        funcs.sort();
        funcs.dedup();
        assert_eq!(funcs.len(), FAULTS.len(), "one row per function");
    }

    #[test]
    fn the_seed_stress_memory_arguments_map_to_the_document() {
        let a = args(
            json!({"targets": null, "test_target_type": "RANDOM", "tag_key": "tag:Name",
            "tag_value": "*", "region": "us-east-1", "duration": "300", "number_of_workers": "1",
            "memory_percentage_per_worker": "99"}),
        );
        let s = stages(fault("stress_memory"), &a).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0]["duration"], "300");
        assert_eq!(s[0]["workers"], "1");
        assert_eq!(s[0]["percent"], "99");
        let names: Vec<&str> = fault("stress_memory")
            .params()
            .iter()
            .map(|p| p.name)
            .collect();
        for n in a.keys() {
            assert!(names.contains(&n.as_str()), "{n} is a parameter");
        }
        assert!(
            !names.contains(&"max_duration"),
            "the seed's signature has no max_duration"
        );
    }

    #[test]
    fn a_parameter_map_is_a_ladder_of_stages_over_the_arguments() {
        let f = fault("ec2_stress_network_latency");
        let a = args(json!({"ec2_stress_network_latency_duration": 30,
            "ec2_stress_network_latency_network_delay": 100,
            "ec2_stress_network_latency_parameter_map": [
                {"network_delay": 200}, {"ec2_stress_network_latency_network_delay": "400", "duration": 60}]}));
        let s = stages(f, &a).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0]["delay"].as_str(), s[0]["duration"].as_str()),
            ("200", "30")
        );
        assert_eq!(
            (s[1]["delay"].as_str(), s[1]["duration"].as_str()),
            ("400", "60")
        );
        assert!(
            !s[0].contains_key("interface"),
            "an empty default leaves the document's own"
        );
        assert_eq!(check_duration(&s, None).unwrap(), 90);
        assert_eq!(check_duration(&s, Some(&json!("90"))).unwrap(), 90);
        let e = check_duration(&s, Some(&json!(89))).unwrap_err();
        assert!(
            e.contains("90s in all (2 stages), more than max_duration 89s"),
            "{e}"
        );
    }

    #[test]
    fn the_submit_time_estimate_agrees_with_every_fault_s_own_duration() {
        use shared::model::duration::{FAULT_DURATIONS, fault_seconds};
        let mut listed: Vec<&str> = FAULT_DURATIONS.iter().map(|f| f.0).collect();
        let mut ours: Vec<&str> = FAULTS.iter().map(|f| f.func).collect();
        listed.sort();
        ours.sort();
        assert_eq!(
            listed, ours,
            "model::duration::FAULT_DURATIONS lists every fault"
        );
        for f in FAULTS {
            let required: Map<String, Value> = f
                .args
                .iter()
                .filter(|a| a.default.is_none())
                .map(|a| (f.arg_name(a.suffix), json!("x")))
                .collect();
            let mut cases = vec![required.clone()];
            let mut given = required.clone();
            given.insert(f.arg_name("duration"), json!("45"));
            cases.push(given.clone());
            if f.ladder {
                given.insert(
                    f.arg_name("parameter_map"),
                    json!([{"duration": 10}, {f.arg_name("duration"): "20"}, {}]),
                );
                cases.push(given.clone());
            }
            for args in cases {
                let s = stages(f, &args).unwrap();
                let total = check_duration(&s, None).unwrap();
                assert_eq!(
                    fault_seconds(f.func, &args, &Map::new()),
                    Some(Ok(total as f64)),
                    "{}: {args:?}",
                    f.func
                );
            }
        }
    }

    #[test]
    fn bad_fault_arguments_are_named() {
        let f = fault("ec2_blackhole_by_port");
        for (bad, needle) in [
            (json!({}), "ec2_blackhole_by_port_port is required"),
            (
                json!({"ec2_blackhole_by_port_port": [1]}),
                "ec2_blackhole_by_port_port: expected a string or a number",
            ),
            (
                json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_parameter_map": []}),
                "non-empty list",
            ),
            (
                json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_parameter_map": [3]}),
                "parameter_map[0]: expected a mapping",
            ),
            (
                json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_parameter_map": [{"speed": 1}]}),
                "parameter_map[0].speed: not an argument of ec2_blackhole_by_port",
            ),
        ] {
            let e = stages(f, &args(bad.clone())).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let s = stages(
            f,
            &args(
                json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_duration": "soon"}),
            ),
        )
        .unwrap();
        assert!(
            check_duration(&s, None)
                .unwrap_err()
                .contains("whole number of seconds")
        );
        let s = stages(f, &args(json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_duration": u64::MAX}))).unwrap();
        assert!(
            check_duration(&s, None)
                .unwrap_err()
                .contains("at most 86400 seconds")
        );
        assert!(
            keeps_going(
                f,
                &args(json!({"ec2_blackhole_by_port_failure_mode": "Continue"}))
            )
            .unwrap()
        );
        assert!(!keeps_going(f, &args(json!({}))).unwrap());
        assert!(
            keeps_going(
                f,
                &args(json!({"ec2_blackhole_by_port_failure_mode": "maybe"}))
            )
            .is_err()
        );
    }
}
