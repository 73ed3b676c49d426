//! `chaosaws`'s most used AWS actions, natively, with the fault library's safety: every one
//! reads its arguments into a `targets::Selector` (pure, below), resolves its targets with
//! `instances::resolve` (deployment limits, opt-in tag, the choice put in the journal before
//! anything acts), returns the plan under a dry run, and only then calls AWS on exactly the
//! chosen instances.
//!
//! - `chaosaws.ec2.actions`: `stop_instances(instance_ids=None, az=None, filters=None,
//!   force=False)`, `start_instances(instance_ids=None, az=None, filters=None)`,
//!   `restart_instances(...)`, `terminate_instances(...)` (same three), and the single-instance
//!   `stop_instance(instance_id=None, az=None, force=False, filters=None)` and
//!   `terminate_instance(instance_id=None, az=None, filters=None)`.
//!   As in `chaosaws`: ids → exactly those; otherwise every instance matching `filters` and
//!   `az` (the plural actions act on *all* of them, the single ones on one chosen at random);
//!   nothing at all is refused. Unlike `chaosaws`, ids given together with `filters`/`az` must
//!   also match them (`chaosaws` ignores the filters then), and candidates must be in a state
//!   the action makes sense for: `running`/`pending` to stop or terminate, `running` to
//!   restart, `stopped` to start. Spot instances are not special-cased (`chaosaws` cancels
//!   their requests and terminates them on stop).
//!   Results are boto3's: stop → `[{"StoppingInstances": [change]}]`, terminate →
//!   `[{"TerminatingInstances": [change]}]`, start → `[change]`, restart → `[]` (as
//!   `chaosaws`), a change being `{"InstanceId", "CurrentState": {"Code", "Name"},
//!   "PreviousState": {...}}`.
//! - `chaosaws.ssm.actions.send_command(document_name, targets=None, document_version=None,
//!   parameters=None, timeout_seconds=None, max_concurrency=None, max_errors=None,
//!   region=None)`: `targets` of the forms `{"Key": "InstanceIds", "Values": [...]}`,
//!   `{"Key": "tag:<k>", "Values": [...]}` and `{"Key": "tag-key", "Values": [...]}` (all
//!   given must hold) are resolved to running instances here, so the limits and the opt-in tag
//!   apply, and the command is sent with `InstanceIds` and waited for (which `chaosaws` does
//!   not do). `max_concurrency` sends in batches, one command each, one batch after the other;
//!   a failed batch stops the rest (stricter than any `max_errors`). `timeout_seconds` is how
//!   long to wait for a batch before cancelling it (default 3600). Only the document's default
//!   version runs. Returns `{"Command": {"CommandId", "DocumentName", "InstanceIds",
//!   "Parameters", "Status"}, "commands": [...], "targets", "matched", "seed"}`.
//! - `experimentvr.ec2.actions.terminate_instance(targets, test_target_type, tag_key,
//!   tag_value, region)`: the seed library's, selection as its other faults.
//!
//! Like the fault library's actions, each one locks its targets (`target_locks.rs`) while it
//! acts, so it never stacks on a host another fault holds.

use super::clients::{ec2, failed};
use super::ec2_probes;
use super::instances::{experimentvr_selector, id_list, resolve};
use super::ssm_command::{self, Command};
use super::target_locks;
use aws_sdk_ec2::types::{Filter, InstanceStateChange};
use serde_json::{Map, Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use shared::targets::{Mode, Selection, Selector};
use std::collections::BTreeMap;
use std::time::Duration;

const EC2_MODULE: &str = "chaosaws.ec2.actions";
const SSM_MODULE: &str = "chaosaws.ssm.actions";
const SEED_MODULE: &str = "experimentvr.ec2.actions";

/// What an EC2 action does to its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Stop,
    Start,
    Restart,
    Terminate,
}

/// One `chaosaws.ec2.actions` function.
#[derive(Debug, Clone, Copy)]
struct Ec2Action {
    func: &'static str,
    op: Op,
    /// `instance_ids` (plural actions) or `instance_id` (single ones).
    ids_arg: &'static str,
    /// One target at random instead of every match.
    single: bool,
    /// The states a candidate must be in.
    states: &'static [&'static str],
    /// Takes `force`.
    force: bool,
}

const RUNNING: &[&str] = &["running", "pending"];

const EC2_ACTIONS: &[Ec2Action] = &[
    Ec2Action {
        func: "stop_instances",
        op: Op::Stop,
        ids_arg: "instance_ids",
        single: false,
        states: RUNNING,
        force: true,
    },
    Ec2Action {
        func: "stop_instance",
        op: Op::Stop,
        ids_arg: "instance_id",
        single: true,
        states: RUNNING,
        force: true,
    },
    Ec2Action {
        func: "start_instances",
        op: Op::Start,
        ids_arg: "instance_ids",
        single: false,
        states: &["stopped"],
        force: false,
    },
    Ec2Action {
        func: "restart_instances",
        op: Op::Restart,
        ids_arg: "instance_ids",
        single: false,
        states: &["running"],
        force: false,
    },
    Ec2Action {
        func: "terminate_instances",
        op: Op::Terminate,
        ids_arg: "instance_ids",
        single: false,
        states: RUNNING,
        force: false,
    },
    Ec2Action {
        func: "terminate_instance",
        op: Op::Terminate,
        ids_arg: "instance_id",
        single: true,
        states: RUNNING,
        force: false,
    },
];

impl Ec2Action {
    fn params(&self) -> Vec<Param> {
        let mut p = vec![
            Param::optional(self.ids_arg),
            Param::optional("az"),
            Param::optional("filters"),
        ];
        if self.force {
            p.push(Param::optional("force"));
        }
        p
    }
}

/// A selection: the selector applied to the candidates, and the filters `DescribeInstances`
/// is called with (which only narrow the candidates; the selector decides).
#[derive(Debug, Clone)]
pub struct Targeting {
    pub selector: Selector,
    pub server_filters: Vec<Filter>,
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

/// An optional non-empty string argument.
fn text(args: &Map<String, Value>, name: &str, example: &str) -> Result<Option<String>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(v) => Err(format!(
            "{name}: expected a string such as {example}, got {v}"
        )),
    }
}

/// The selector's state filter and the matching server filter.
fn in_states(states: &[&str]) -> ((String, Vec<String>), Filter) {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    (
        ("state".into(), states.clone()),
        filter("instance-state-name", &states),
    )
}

/// The targets `chaosaws`'s `instance_ids`/`instance_id`, `az` and `filters` describe, for an
/// action that needs its candidates in one of `states`. Pure.
///
/// EC2 filters go to `DescribeInstances` as given; those the candidates carry
/// (`tag:<k>` with one value, `instance-state-name`, `availability-zone`, `instance-type`)
/// are also checked by the selector and shown in the journal.
pub fn chaosaws_targeting(
    args: &Map<String, Value>,
    func: &str,
    ids_arg: &str,
    single: bool,
    states: &[&str],
) -> Result<Targeting, String> {
    let ids = id_list(args.get(ids_arg), ids_arg)?;
    if single && ids.len() > 1 {
        return Err(format!(
            "{ids_arg}: {func} acts on one instance, {} are given (use {func}s)",
            ids.len()
        ));
    }
    let az = text(args, "az", "\"us-east-1a\"")?;
    let filters = ec2_probes::filters(args.get("filters"))?;
    if ids.is_empty() && az.is_none() && filters.is_empty() {
        return Err(format!(
            "{func} needs {ids_arg}, az or filters to say which instances: refusing to act on \
             every instance of the region"
        ));
    }
    let (state, state_filter) = in_states(states);
    let mut selector = Selector {
        tags: Vec::new(),
        filters: vec![state],
        mode: if !ids.is_empty() {
            Mode::Ids(ids.clone())
        } else if single {
            Mode::Random
        } else {
            Mode::All
        },
        within: Vec::new(),
        allow_empty: false,
    };
    for f in &filters {
        let name = f.name().unwrap_or_default();
        let values = f.values().to_vec();
        if let Some(key) = name.strip_prefix("tag:") {
            if let [value] = values.as_slice() {
                selector.tags.push((key.to_string(), value.clone()));
            }
        } else if let Some(attribute) = match name {
            "instance-state-name" => Some("state"),
            "availability-zone" | "instance-type" => Some(name),
            _ => None,
        } {
            selector.filters.push((attribute.to_string(), values));
        }
    }
    let mut server_filters = filters;
    if let Some(az) = az {
        let az = vec![az];
        selector
            .filters
            .push(("availability-zone".into(), az.clone()));
        server_filters.push(filter("availability-zone", &az));
    }
    if !ids.is_empty() {
        server_filters.push(filter("instance-id", &ids));
    }
    server_filters.push(state_filter);
    Ok(Targeting {
        selector,
        server_filters,
    })
}

/// `force`: a boolean (default false).
fn force(args: &Map<String, Value>) -> Result<bool, String> {
    match args.get("force") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("force: expected true or false, got {v}")),
    }
}

/// The targets of SSM `targets` (`InstanceIds`, `tag:<k>`, `tag-key`; every entry must hold):
/// running instances. Pure.
pub fn ssm_targeting(targets: Option<&Value>) -> Result<Targeting, String> {
    let entries = match targets {
        None | Some(Value::Null) => {
            return Err(
                "targets is required: e.g. [{\"Key\": \"tag:Role\", \"Values\": [\"web\"]}] or \
                 [{\"Key\": \"InstanceIds\", \"Values\": [\"i-...\"]}]"
                    .into(),
            );
        }
        Some(Value::Array(entries)) if !entries.is_empty() => entries,
        Some(v) => {
            return Err(format!(
                "targets: expected a non-empty list of {{\"Key\": ..., \"Values\": [...]}}, got {v}"
            ));
        }
    };
    let (state, state_filter) = in_states(&["running"]);
    let mut selector = Selector {
        tags: Vec::new(),
        filters: vec![state],
        mode: Mode::All,
        within: Vec::new(),
        allow_empty: false,
    };
    let mut server_filters = Vec::new();
    let mut ids: Option<Vec<String>> = None;
    for (i, entry) in entries.iter().enumerate() {
        let key = entry["Key"]
            .as_str()
            .ok_or_else(|| format!("targets[{i}].Key: expected a string such as tag:Role"))?;
        let values: Vec<String> = entry["Values"]
            .as_array()
            .filter(|v| !v.is_empty())
            .and_then(|v| {
                v.iter()
                    .map(|s| s.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| format!("targets[{i}].Values: expected a non-empty list of strings"))?;
        match key {
            "InstanceIds" => {
                if ids.is_some() {
                    return Err(format!("targets[{i}]: InstanceIds is given twice"));
                }
                server_filters.push(filter("instance-id", &values));
                ids = Some(values);
            }
            "tag-key" => {
                if let [k] = values.as_slice() {
                    selector.tags.push((k.clone(), "*".into()));
                }
                server_filters.push(filter("tag-key", &values));
            }
            k if k.starts_with("tag:") && k.len() > 4 => {
                if let [v] = values.as_slice() {
                    selector.tags.push((k[4..].to_string(), v.clone()));
                }
                server_filters.push(filter(k, &values));
            }
            other => {
                return Err(format!(
                    "targets[{i}].Key {other:?}: only InstanceIds, tag:<key> and tag-key are \
                     supported (resource groups are not)"
                ));
            }
        }
    }
    if let Some(ids) = ids {
        selector.mode = Mode::Ids(ids);
    }
    server_filters.push(state_filter);
    Ok(Targeting {
        selector,
        server_filters,
    })
}

/// SSM `parameters`: name → list of strings (a single string, number or boolean is one value).
pub fn ssm_parameters(value: Option<&Value>) -> Result<BTreeMap<String, Vec<String>>, String> {
    let one = |name: &str, v: &Value| -> Result<String, String> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!(
                "parameters.{name}: expected a string or a list of strings, got {other}"
            )),
        }
    };
    match value {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(name, v)| {
                let values = match v {
                    Value::Array(items) => items
                        .iter()
                        .map(|i| one(name, i))
                        .collect::<Result<Vec<_>, _>>()?,
                    v => vec![one(name, v)?],
                };
                Ok((name.clone(), values))
            })
            .collect(),
        Some(v) => Err(format!(
            "parameters: expected a mapping of parameter name to values, got {v}"
        )),
    }
}

/// A whole number argument, or a string of one.
fn whole(args: &Map<String, Value>, name: &str) -> Result<Option<u64>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => Ok(n.as_u64()),
        Some(Value::String(s)) if s.trim().parse::<u64>().is_ok_and(|n| n > 0) => {
            Ok(s.trim().parse().ok())
        }
        Some(v) => Err(format!("{name}: expected a whole number above 0, got {v}")),
    }
}

/// How many instances one command goes to: `max_concurrency` as SSM writes it (`"10"` or
/// `"25%"`, at least one instance), else SSM's default of 50. Pure.
pub fn batch_size(max_concurrency: Option<&Value>, targets: usize) -> Result<usize, String> {
    let text = match max_concurrency {
        None | Some(Value::Null) => return Ok(50),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(v) => {
            return Err(format!(
                "max_concurrency: expected \"10\" or \"25%\", got {v}"
            ));
        }
    };
    let bad = || {
        format!(
            "max_concurrency {text:?}: expected a number such as \"10\" or a percentage such as \"25%\", above 0"
        )
    };
    let size = match text.strip_suffix('%') {
        Some(p) => {
            let p: usize = p.trim().parse().map_err(|_| bad())?;
            if p == 0 || p > 100 {
                return Err(bad());
            }
            (targets * p).div_ceil(100)
        }
        None => text.parse::<usize>().map_err(|_| bad())?,
    };
    if size == 0 && targets > 0 {
        return Err(bad());
    }
    Ok(size.max(1))
}

/// `document_version`: only the default version runs natively.
fn check_document_version(args: &Map<String, Value>) -> Result<(), String> {
    match args.get("document_version") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if s.is_empty() || s == "$DEFAULT" => Ok(()),
        Some(v) => Err(format!(
            "document_version {v}: only the document's default version ($DEFAULT) can be sent \
             natively; make that version the default or leave document_version out"
        )),
    }
}

/// The plan a dry run (or an allowed empty selection) returns.
fn plan(call: &NativeCall, action: &str, selection: &Selection) -> Value {
    json!({
        "action": action,
        "targets": selection.chosen,
        "matched": selection.matched,
        "seed": selection.seed,
        "dry_run": call.plan_only,
    })
}

/// Nothing to do: a dry run, or an empty selection the experiment allows.
fn stops_here(call: &NativeCall, selection: &Selection) -> bool {
    if selection.chosen.is_empty() && !call.plan_only {
        tracing::warn!(
            "{}: no target selected (allowed to be empty): nothing to do",
            call.activity
        );
    }
    call.plan_only || selection.chosen.is_empty()
}

fn state_change(c: &InstanceStateChange) -> Value {
    let state = |s: Option<&aws_sdk_ec2::types::InstanceState>| {
        json!({
            "Code": s.and_then(|s| s.code()),
            "Name": s.and_then(|s| s.name()).map(|n| n.as_str()),
        })
    };
    json!({
        "InstanceId": c.instance_id(),
        "CurrentState": state(c.current_state()),
        "PreviousState": state(c.previous_state()),
    })
}

fn changes(list: &[InstanceStateChange]) -> Vec<Value> {
    list.iter().map(state_change).collect()
}

/// Call EC2 for `op` on `ids`; the result as `chaosaws` returns it.
async fn act(
    call: &NativeCall,
    op: Op,
    ids: Vec<String>,
    force: bool,
) -> Result<Value, ActivityError> {
    let client = ec2(call).await;
    let what = ids.join(", ");
    match op {
        Op::Stop => {
            let out = client
                .stop_instances()
                .set_instance_ids(Some(ids))
                .force(force)
                .send()
                .await
                .map_err(|e| failed("StopInstances", &what, &e))?;
            Ok(json!([{"StoppingInstances": changes(out.stopping_instances())}]))
        }
        Op::Start => {
            let out = client
                .start_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await
                .map_err(|e| failed("StartInstances", &what, &e))?;
            Ok(json!(changes(out.starting_instances())))
        }
        Op::Restart => {
            client
                .reboot_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await
                .map_err(|e| failed("RebootInstances", &what, &e))?;
            Ok(json!([]))
        }
        Op::Terminate => {
            let out = client
                .terminate_instances()
                .set_instance_ids(Some(ids))
                .send()
                .await
                .map_err(|e| failed("TerminateInstances", &what, &e))?;
            Ok(json!([{"TerminatingInstances": changes(out.terminating_instances())}]))
        }
    }
}

async fn ec2_action(action: &Ec2Action, call: NativeCall) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let targeting = chaosaws_targeting(
        &call.arguments,
        action.func,
        action.ids_arg,
        action.single,
        action.states,
    )
    .map_err(fail)?;
    let force = if action.force {
        force(&call.arguments).map_err(fail)?
    } else {
        false
    };
    let undoes_a_fault = matches!(action.op, Op::Start);
    let selection = super::instances::resolve_as(
        &call,
        targeting.selector,
        targeting.server_filters,
        undoes_a_fault,
    )
    .await?;
    if stops_here(&call, &selection) {
        return Ok(plan(&call, action.func, &selection));
    }
    tracing::info!(
        "  {}: {:?} {}",
        call.activity,
        action.op,
        selection.chosen.join(", ")
    );
    let held = target_locks::lock(&call, &selection.chosen, LOCK_TTL).await?;
    let result = act(&call, action.op, selection.chosen, force).await;
    held.release().await;
    result
}

/// How long an EC2 action holds its targets' locks at most (it releases them as soon as the
/// call returns).
const LOCK_TTL: Duration = Duration::from_secs(300);

/// The longest `timeout_seconds` honoured (a day, as the documents' longest fault).
const MAX_WAIT_SECONDS: u64 = 86_400;

/// How long to wait for a command when `timeout_seconds` is not given (SSM's own default).
const DEFAULT_WAIT: Duration = Duration::from_secs(3600);

async fn send_command(call: NativeCall) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let args = &call.arguments;
    let document = text(args, "document_name", "\"AWS-RunShellScript\"")
        .map_err(fail)?
        .ok_or_else(|| fail("document_name is required: the SSM document to run".into()))?;
    let targeting = ssm_targeting(args.get("targets")).map_err(fail)?;
    check_document_version(args).map_err(fail)?;
    let parameters = ssm_parameters(args.get("parameters")).map_err(fail)?;
    let wait = whole(args, "timeout_seconds")
        .map_err(fail)?
        .map_or(DEFAULT_WAIT, |s| {
            Duration::from_secs(s.min(MAX_WAIT_SECONDS))
        });
    match args.get("max_errors") {
        None | Some(Value::Null) | Some(Value::String(_)) | Some(Value::Number(_)) => {}
        Some(v) => {
            return Err(fail(format!(
                "max_errors: expected \"0\", a number or a percentage, got {v}"
            )));
        }
    }
    batch_size(args.get("max_concurrency"), 1).map_err(fail)?;
    let selection = resolve(&call, targeting.selector, targeting.server_filters).await?;
    let mut out = plan(&call, "send_command", &selection);
    out["document"] = json!(document);
    out["parameters"] = json!(parameters);
    if stops_here(&call, &selection) {
        return Ok(out);
    }
    let size = batch_size(args.get("max_concurrency"), selection.chosen.len()).map_err(fail)?;
    let batches: Vec<&[String]> = selection.chosen.chunks(size).collect();
    let ttl = (wait + LOCK_TTL) * batches.len() as u32;
    let held = target_locks::lock(&call, &selection.chosen, ttl).await?;
    let mut commands = Vec::new();
    let mut failure = None;
    for (i, batch) in batches.iter().enumerate() {
        let command = Command {
            document: document.clone(),
            instance_ids: batch.to_vec(),
            parameters: parameters.clone(),
            wait,
        };
        tracing::info!(
            "  {}: {document} on {} (batch {}/{})",
            call.activity,
            batch.join(", "),
            i + 1,
            batches.len()
        );
        match ssm_command::run(&call, &command, Some(&held)).await {
            Ok(r) => commands.push(r),
            Err(e) => {
                let untouched: Vec<&String> =
                    batches[i + 1..].iter().flat_map(|b| b.iter()).collect();
                let rest = if untouched.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; not sent to {} (a failed batch stops the rest)",
                        untouched
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                failure = Some(match e {
                    ActivityError::Failed(m) => ActivityError::Failed(format!("{m}{rest}")),
                    ActivityError::Timeout(m) => ActivityError::Timeout(format!("{m}{rest}")),
                    other => other,
                });
                break;
            }
        }
    }
    held.release().await;
    if let Some(e) = failure {
        return Err(e);
    }
    out["Command"] = json!({
        "CommandId": commands.first().map(|c| c["command_id"].clone()),
        "DocumentName": document,
        "InstanceIds": selection.chosen,
        "Parameters": parameters,
        "Status": "Success",
    });
    out["commands"] = json!(commands);
    Ok(out)
}

/// The seed library's `terminate_instance`.
async fn seed_terminate(call: NativeCall) -> Result<Value, ActivityError> {
    let selector =
        experimentvr_selector(&call.arguments, "running").map_err(ActivityError::Failed)?;
    let filters = super::instances::server_filters(&selector);
    let selection = resolve(&call, selector, filters).await?;
    let mut out = plan(&call, "terminate_instance", &selection);
    if stops_here(&call, &selection) {
        return Ok(out);
    }
    let held = target_locks::lock(&call, &selection.chosen, LOCK_TTL).await?;
    let result = act(&call, Op::Terminate, selection.chosen, false).await;
    held.release().await;
    let result = result?;
    out["TerminatingInstances"] = result[0]["TerminatingInstances"].clone();
    Ok(out)
}

pub fn register(registry: &mut Registry) {
    for action in EC2_ACTIONS {
        let a = *action;
        registry.register(
            EC2_MODULE,
            a.func,
            NativeActivity::new(
                a.params(),
                move |call| async move { ec2_action(&a, call).await },
            )
            .fault(),
        );
    }
    registry.register(
        SSM_MODULE,
        "send_command",
        NativeActivity::new(
            vec![
                Param::required("document_name"),
                Param::optional("targets"),
                Param::optional("document_version"),
                Param::optional("parameters"),
                Param::optional("timeout_seconds"),
                Param::optional("max_concurrency"),
                Param::optional("max_errors"),
                Param::optional("region"),
            ],
            send_command,
        )
        .fault(),
    );
    registry.register(
        SEED_MODULE,
        "terminate_instance",
        NativeActivity::new(
            [
                "targets",
                "test_target_type",
                "tag_key",
                "tag_value",
                "region",
            ]
            .into_iter()
            .map(Param::optional)
            .collect(),
            seed_terminate,
        )
        .fault(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn stop(v: Value) -> Result<Targeting, String> {
        chaosaws_targeting(&args(v), "stop_instances", "instance_ids", false, RUNNING)
    }

    /// Server filters as (name, values).
    fn server(t: &Targeting) -> Vec<(String, Vec<String>)> {
        t.server_filters
            .iter()
            .map(|f| (f.name().unwrap().to_string(), f.values().to_vec()))
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn instance_ids_are_exactly_those_in_a_state_the_action_fits() {
        let t = stop(json!({"instance_ids": ["i-1", "i-2"]})).unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-1", "i-2"])));
        assert!(t.selector.tags.is_empty());
        assert_eq!(
            t.selector.filters,
            vec![("state".into(), strings(&["running", "pending"]))]
        );
        assert!(!t.selector.allow_empty);
        assert_eq!(
            server(&t),
            vec![
                ("instance-id".into(), strings(&["i-1", "i-2"])),
                (
                    "instance-state-name".into(),
                    strings(&["running", "pending"])
                ),
            ]
        );
        let t = chaosaws_targeting(
            &args(json!({"instance_ids": "i-3"})),
            "start_instances",
            "instance_ids",
            false,
            &["stopped"],
        )
        .unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-3"])));
        assert_eq!(
            t.selector.filters,
            vec![("state".into(), strings(&["stopped"]))]
        );
    }

    #[test]
    fn filters_and_az_select_every_match_and_are_checked_on_the_candidates() {
        let t = stop(json!({"filters": [
            {"Name": "tag:team", "Values": ["web"]},
            {"Name": "tag:tier", "Values": ["a", "b"]},
            {"Name": "instance-type", "Values": ["t3.micro"]},
            {"Name": "vpc-id", "Values": ["vpc-1"]}], "az": "us-east-1a"}))
        .unwrap();
        assert_eq!(t.selector.mode, Mode::All);
        assert_eq!(t.selector.tags, vec![("team".into(), "web".into())]);
        assert_eq!(
            t.selector.filters,
            vec![
                ("state".into(), strings(&["running", "pending"])),
                ("instance-type".into(), strings(&["t3.micro"])),
                ("availability-zone".into(), strings(&["us-east-1a"])),
            ]
        );
        let names: Vec<String> = server(&t).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            strings(&[
                "tag:team",
                "tag:tier",
                "instance-type",
                "vpc-id",
                "availability-zone",
                "instance-state-name"
            ])
        );

        // only an AZ: every instance in it (the plural actions), one at random (the single)
        let t = stop(json!({"az": "eu-west-1b"})).unwrap();
        assert_eq!(t.selector.mode, Mode::All);
        let t = chaosaws_targeting(
            &args(json!({"az": "eu-west-1b", "instance_id": null})),
            "stop_instance",
            "instance_id",
            true,
            RUNNING,
        )
        .unwrap();
        assert_eq!(t.selector.mode, Mode::Random);
        let t = chaosaws_targeting(
            &args(json!({"instance_id": "i-9"})),
            "terminate_instance",
            "instance_id",
            true,
            RUNNING,
        )
        .unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-9"])));

        // ids with filters: the ids, and they must match the filters too
        let t = stop(json!({"instance_ids": ["i-1"], "filters": [{"Name": "instance-state-name", "Values": ["running"]}]}))
            .unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-1"])));
        assert!(
            t.selector
                .filters
                .contains(&("state".into(), strings(&["running"])))
        );
    }

    #[test]
    fn bad_ec2_selection_arguments_are_named() {
        for (bad, needle) in [
            (
                json!({}),
                "stop_instances needs instance_ids, az or filters",
            ),
            (
                json!({"instance_ids": [], "filters": [], "az": ""}),
                "stop_instances needs instance_ids, az or filters",
            ),
            (
                json!({"instance_ids": [1]}),
                "instance_ids: expected a list of ids",
            ),
            (
                json!({"instance_ids": {"a": 1}}),
                "instance_ids: expected a list of ids",
            ),
            (json!({"az": 3}), "az: expected a string"),
            (json!({"filters": {"Name": "x"}}), "filters must be a list"),
            (json!({"filters": [{"Values": ["a"]}]}), "filters[0].Name"),
            (
                json!({"filters": [{"Name": "a", "Values": "b"}]}),
                "filters[0].Values",
            ),
        ] {
            let e = stop(bad.clone()).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let e = chaosaws_targeting(
            &args(json!({"instance_id": ["i-1", "i-2"]})),
            "stop_instance",
            "instance_id",
            true,
            RUNNING,
        )
        .unwrap_err();
        assert!(
            e.contains("instance_id: stop_instance acts on one instance"),
            "{e}"
        );
        assert!(!force(&args(json!({}))).unwrap());
        assert!(force(&args(json!({"force": true}))).unwrap());
        assert!(
            force(&args(json!({"force": "yes"})))
                .unwrap_err()
                .contains("force: expected true or false")
        );
    }

    #[test]
    fn every_ec2_action_has_chaosaws_parameter_names() {
        let names = |f: &str| -> Vec<&str> {
            EC2_ACTIONS
                .iter()
                .find(|a| a.func == f)
                .unwrap()
                .params()
                .iter()
                .map(|p| p.name)
                .collect()
        };
        assert_eq!(
            names("stop_instances"),
            ["instance_ids", "az", "filters", "force"]
        );
        for f in [
            "start_instances",
            "restart_instances",
            "terminate_instances",
        ] {
            assert_eq!(names(f), ["instance_ids", "az", "filters"], "{f}");
        }
        assert_eq!(
            names("stop_instance"),
            ["instance_id", "az", "filters", "force"]
        );
        assert_eq!(
            names("terminate_instance"),
            ["instance_id", "az", "filters"]
        );
        assert!(
            EC2_ACTIONS
                .iter()
                .all(|a| a.params().iter().all(|p| !p.required))
        );
    }

    #[test]
    fn ssm_targets_resolve_ids_and_tags() {
        let t = ssm_targeting(Some(&json!([{"Key": "tag:Role", "Values": ["web"]}]))).unwrap();
        assert_eq!(t.selector.mode, Mode::All);
        assert_eq!(t.selector.tags, vec![("Role".into(), "web".into())]);
        assert_eq!(
            t.selector.filters,
            vec![("state".into(), strings(&["running"]))]
        );
        assert_eq!(
            server(&t),
            vec![
                ("tag:Role".into(), strings(&["web"])),
                ("instance-state-name".into(), strings(&["running"])),
            ]
        );

        let t = ssm_targeting(Some(
            &json!([{"Key": "InstanceIds", "Values": ["i-1", "i-2"]}]),
        ))
        .unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-1", "i-2"])));
        assert_eq!(
            server(&t)[0],
            ("instance-id".into(), strings(&["i-1", "i-2"]))
        );

        // every entry must hold; several values of one tag are any of them
        let t = ssm_targeting(Some(&json!([
            {"Key": "InstanceIds", "Values": ["i-1"]},
            {"Key": "tag:Role", "Values": ["web", "api"]},
            {"Key": "tag-key", "Values": ["team"]}])))
        .unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-1"])));
        assert_eq!(t.selector.tags, vec![("team".into(), "*".into())]);
        let names: Vec<String> = server(&t).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            strings(&["instance-id", "tag:Role", "tag-key", "instance-state-name"])
        );
    }

    #[test]
    fn bad_ssm_arguments_are_named() {
        for (bad, needle) in [
            (Value::Null, "targets is required"),
            (json!([]), "targets: expected a non-empty list"),
            (
                json!({"Key": "tag:a"}),
                "targets: expected a non-empty list",
            ),
            (json!([{"Values": ["a"]}]), "targets[0].Key"),
            (json!([{"Key": "tag:a", "Values": []}]), "targets[0].Values"),
            (
                json!([{"Key": "tag:a", "Values": "b"}]),
                "targets[0].Values",
            ),
            (
                json!([{"Key": "tag:a", "Values": [1]}]),
                "targets[0].Values",
            ),
            (
                json!([{"Key": "resource-groups:Name", "Values": ["g"]}]),
                "targets[0].Key \"resource-groups:Name\": only InstanceIds",
            ),
            (
                json!([{"Key": "tag:", "Values": ["g"]}]),
                "targets[0].Key \"tag:\"",
            ),
            (
                json!([{"Key": "InstanceIds", "Values": ["i-1"]}, {"Key": "InstanceIds", "Values": ["i-2"]}]),
                "targets[1]: InstanceIds is given twice",
            ),
        ] {
            let e = ssm_targeting(Some(&bad)).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        assert!(
            ssm_targeting(None)
                .unwrap_err()
                .contains("targets is required")
        );
    }

    #[test]
    fn ssm_parameters_are_lists_of_strings() {
        let p = ssm_parameters(Some(
            &json!({"name": "nginx", "duration": 0, "flags": ["a", 1, true]}),
        ))
        .unwrap();
        assert_eq!(p["name"], strings(&["nginx"]));
        assert_eq!(p["duration"], strings(&["0"]));
        assert_eq!(p["flags"], strings(&["a", "1", "true"]));
        assert!(ssm_parameters(None).unwrap().is_empty());
        assert!(
            ssm_parameters(Some(&json!(["a"])))
                .unwrap_err()
                .contains("parameters: expected a mapping")
        );
        assert!(
            ssm_parameters(Some(&json!({"name": {"x": 1}})))
                .unwrap_err()
                .contains("parameters.name: expected a string")
        );
        assert!(
            ssm_parameters(Some(&json!({"name": [[1]]})))
                .unwrap_err()
                .contains("parameters.name")
        );
    }

    #[test]
    fn max_concurrency_makes_batches_and_other_ssm_arguments_are_checked() {
        assert_eq!(batch_size(None, 120).unwrap(), 50);
        assert_eq!(batch_size(Some(&json!("10")), 4).unwrap(), 10);
        assert_eq!(batch_size(Some(&json!(1)), 4).unwrap(), 1);
        assert_eq!(batch_size(Some(&json!("25%")), 5).unwrap(), 2);
        assert_eq!(batch_size(Some(&json!("1%")), 3).unwrap(), 1);
        for bad in [
            json!("0"),
            json!("0%"),
            json!("150%"),
            json!("many"),
            json!([1]),
        ] {
            let e = batch_size(Some(&bad), 4).unwrap_err();
            assert!(e.contains("max_concurrency"), "{bad}: {e}");
        }
        assert_eq!(
            whole(&args(json!({"timeout_seconds": "90"})), "timeout_seconds").unwrap(),
            Some(90)
        );
        assert_eq!(whole(&args(json!({})), "timeout_seconds").unwrap(), None);
        for bad in [json!(0), json!(-1), json!("soon"), json!(1.5)] {
            let e = whole(&args(json!({"timeout_seconds": bad})), "timeout_seconds").unwrap_err();
            assert!(
                e.contains("timeout_seconds: expected a whole number"),
                "{e}"
            );
        }
        assert!(check_document_version(&args(json!({"document_version": "$DEFAULT"}))).is_ok());
        assert!(check_document_version(&args(json!({}))).is_ok());
        assert!(
            check_document_version(&args(json!({"document_version": "3"})))
                .unwrap_err()
                .contains("document_version \"3\": only the document's default version")
        );
    }
}
