//! `chaosaws.ssm.actions.send_command(document_name, targets=None, document_version=None,
//! parameters=None, timeout_seconds=None, max_concurrency=None, max_errors=None,
//! region=None)`, natively, with the fault library's safety: `targets` of the forms
//! `{"Key": "InstanceIds", "Values": [...]}`, `{"Key": "tag:<k>", "Values": [...]}` and
//! `{"Key": "tag-key", "Values": [...]}` (all given must hold) are resolved to running instances
//! here, so the limits and the opt-in tag apply, and the command is sent with `InstanceIds` and
//! waited for (which `chaosaws` does not do). `max_concurrency` sends in batches, one command
//! each, one batch after the other; a failed batch stops the rest (stricter than any
//! `max_errors`). `timeout_seconds` is how long to wait for a batch before cancelling it
//! (default 3600). Only the document's default version runs. Returns `{"Command": {"CommandId",
//! "DocumentName", "InstanceIds", "Parameters", "Status"}, "commands": [...], "targets",
//! "matched", "seed"}`. A seed document name (`StressPacketLoss`, `BlackHoleByPort`...) sends our
//! document in its place, its parameters renamed (`documents::SEED_NAMES`).
//!
//! Like every fault action, it locks its targets (`target_locks.rs`) while it acts.

use super::command::Command;
use super::documents;
use super::run::run;
use crate::faults::FaultContext;
use crate::faults::ec2::instances::resolve;
use crate::faults::ec2::targeting::{Targeting, filter, in_states, text};
use crate::faults::plan::{LOCK_TTL, plan, stops_here};
use crate::faults::target_locks;
use serde_json::{Map, Value, json};
use shared::fleet::safety::targets::{Mode, Selector};
use shared::providers::ActivityError;
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

const SSM_MODULE: &str = "chaosaws.ssm.actions";

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

/// A seed document name (`documents::SEED_NAMES`): our document's registered name and the
/// seed's parameters as ours; a name that stands for no document of ours is refused, saying why.
fn ours_for_seed(
    ctx: &FaultContext,
    row: &documents::SeedName,
    parameters: &BTreeMap<String, Vec<String>>,
) -> Result<(String, BTreeMap<String, Vec<String>>), String> {
    match row.stands {
        documents::Stands::For(ours) => Ok((
            documents::registered_name(ctx.settings(), &ours),
            row.parameters(parameters)?,
        )),
        documents::Stands::Not(why) => Err(format!("document_name {}: {why}", row.seed)),
    }
}

/// The longest `timeout_seconds` honoured (a day, as the documents' longest fault).
const MAX_WAIT_SECONDS: u64 = 86_400;

/// How long to wait for a command when `timeout_seconds` is not given (SSM's own default).
const DEFAULT_WAIT: Duration = Duration::from_secs(3600);

async fn send_command(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let args = &call.arguments;
    let document = text(args, "document_name", "\"AWS-RunShellScript\"")
        .map_err(fail)?
        .ok_or_else(|| fail("document_name is required: the SSM document to run".into()))?;
    let targeting = ssm_targeting(args.get("targets")).map_err(fail)?;
    check_document_version(args).map_err(fail)?;
    let parameters = ssm_parameters(args.get("parameters")).map_err(fail)?;
    let seed_document = documents::seed_name(&document);
    let (document, parameters) = match seed_document {
        Some(row) => ours_for_seed(ctx, row, &parameters).map_err(fail)?,
        None => (document, parameters),
    };
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
    let selection = resolve(ctx, &call, targeting.selector, targeting.server_filters).await?;
    let mut out = plan(&call, "send_command", &selection);
    out["document"] = json!(document);
    if let Some(row) = seed_document {
        out["seed_document"] = json!(row.seed);
    }
    out["parameters"] = json!(parameters);
    if stops_here(&call, &selection) {
        return Ok(out);
    }
    let size = batch_size(args.get("max_concurrency"), selection.chosen.len()).map_err(fail)?;
    let batches: Vec<&[String]> = selection.chosen.chunks(size).collect();
    let ttl = (wait + LOCK_TTL) * batches.len() as u32;
    let held = target_locks::lock(ctx, &call, &selection.chosen, ttl).await?;
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
        match run(ctx, &call, &command, Some(&held)).await {
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

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let c = ctx.clone();
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
            move |call| {
                let ctx = c.clone();
                async move { send_command(&ctx, call).await }
            },
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
