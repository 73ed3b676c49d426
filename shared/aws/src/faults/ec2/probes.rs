//! `chaosaws.ec2.probes`: `describe_instances(filters)`, `count_instances(filters)`,
//! `instance_state(state, instance_ids=None, filters=None)`, with `chaosaws`'s argument names
//! and return values. Filters are EC2's: `[{"Name": "tag:Name", "Values": ["web-*"]}]`.
//!
//! `describe_instances` returns the fields of boto3's response that experiments read
//! (`Reservations[].Instances[]` with `InstanceId`, `InstanceType`, `State`, `Placement`,
//! `PrivateIpAddress`, `Tags`), not every field of the full response.
//!
//! And the seed's `experimentvr.ec2.probes.assert_instance_rebuilt(tag_value, region,
//! tag_key="tag:Name")`: whether as many instances matching the tag are `pending` as are
//! `terminated` (every terminated one has a replacement coming up), as the seed counts them.

use crate::faults::FaultContext;
use crate::faults::context::failed;
use serde_json::{Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use std::sync::Arc;

const MODULE: &str = "chaosaws.ec2.probes";

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let c = ctx.clone();
    registry.register(
        MODULE,
        "describe_instances",
        NativeActivity::new(vec![Param::required("filters")], move |call| {
            let ctx = c.clone();
            async move {
                let reservations = describe(&ctx, &call, None).await?;
                Ok(json!({ "Reservations": reservations }))
            }
        }),
    );
    let c = ctx.clone();
    registry.register(
        MODULE,
        "count_instances",
        NativeActivity::new(vec![Param::required("filters")], move |call| {
            let ctx = c.clone();
            async move {
                let reservations = describe(&ctx, &call, None).await?;
                Ok(json!(instances(&reservations).count()))
            }
        }),
    );
    let c = ctx.clone();
    registry.register(
        MODULE,
        "instance_state",
        NativeActivity::new(
            vec![
                Param::required("state"),
                Param::optional("instance_ids"),
                Param::optional("filters"),
            ],
            move |call| {
                let ctx = c.clone();
                async move { instance_state(&ctx, call).await }
            },
        ),
    );
    let c = ctx.clone();
    registry.register(
        "experimentvr.ec2.probes",
        "assert_instance_rebuilt",
        NativeActivity::new(
            vec![
                Param::required("tag_value"),
                Param::optional("region"),
                Param::optional("tag_key"),
            ],
            move |call| {
                let ctx = c.clone();
                async move { assert_instance_rebuilt(&ctx, call).await }
            },
        ),
    );
}

/// `assert_instance_rebuilt`: the instances whose `tag_key` (an EC2 filter name, default
/// `tag:Name`) matches `tag_value`, counted as the seed counts them.
async fn assert_instance_rebuilt(
    ctx: &FaultContext,
    mut call: NativeCall,
) -> Result<Value, ActivityError> {
    let text = |name: &str, default: Option<&str>| -> Result<String, ActivityError> {
        match call.arguments.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            None | Some(Value::Null) if default.is_some() => Ok(default.unwrap_or_default().into()),
            other => Err(ActivityError::Failed(format!(
                "{name}: expected a string, got {}",
                other.unwrap_or(&Value::Null)
            ))),
        }
    };
    let key = text("tag_key", Some("tag:Name"))?;
    let value = text("tag_value", None)?;
    call.arguments
        .insert("filters".into(), json!([{"Name": key, "Values": [value]}]));
    let reservations = describe(ctx, &call, None).await?;
    let states: Vec<&str> = instances(&reservations)
        .filter_map(|i| i["State"]["Name"].as_str())
        .collect();
    Ok(json!(rebuilt(&states)))
}

/// The seed's verdict: as many `pending` instances as `terminated` ones.
fn rebuilt(states: &[&str]) -> bool {
    let count = |s: &str| states.iter().filter(|x| **x == s).count();
    count("terminated") == count("pending")
}

/// `instance_state`: whether every instance the ids or filters name is in `state`.
async fn instance_state(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let state = call
        .arguments
        .get("state")
        .and_then(Value::as_str)
        .ok_or_else(|| ActivityError::Failed("state must be a string such as \"running\"".into()))?
        .to_string();
    let ids = string_list(&call, "instance_ids")?;
    if ids.is_none() && !call.arguments.contains_key("filters") {
        return Err(ActivityError::Failed(
            "instance_state needs instance_ids or filters".into(),
        ));
    }
    let reservations = describe(ctx, &call, ids).await?;
    let all: Vec<&Value> = instances(&reservations).collect();
    if all.is_empty() {
        return Err(ActivityError::Failed(
            "no instance matches instance_ids/filters".into(),
        ));
    }
    Ok(json!(
        all.iter().all(|i| i["State"]["Name"] == state.as_str())
    ))
}

fn instances(reservations: &[Value]) -> impl Iterator<Item = &Value> {
    reservations
        .iter()
        .flat_map(|r| r["Instances"].as_array().into_iter().flatten())
}

fn string_list(call: &NativeCall, name: &str) -> Result<Option<Vec<String>>, ActivityError> {
    match call.arguments.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ActivityError::Failed(format!("{name} must be a list of strings"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(ActivityError::Failed(format!(
            "{name} must be a list of strings"
        ))),
    }
}

/// EC2 filters from the `filters` argument.
pub fn filters(value: Option<&Value>) -> Result<Vec<aws_sdk_ec2::types::Filter>, String> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or("filters must be a list of {\"Name\": ..., \"Values\": [...]}")?;
    items
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = f["Name"]
                .as_str()
                .ok_or_else(|| format!("filters[{i}].Name must be a string"))?;
            let values = f["Values"]
                .as_array()
                .ok_or_else(|| format!("filters[{i}].Values must be a list of strings"))?
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("filters[{i}].Values must be a list of strings"))?;
            Ok(aws_sdk_ec2::types::Filter::builder()
                .name(name)
                .set_values(Some(values))
                .build())
        })
        .collect()
}

/// DescribeInstances (every page), as boto3-shaped reservations.
async fn describe(
    ctx: &FaultContext,
    call: &NativeCall,
    ids: Option<Vec<String>>,
) -> Result<Vec<Value>, ActivityError> {
    let filters = filters(call.arguments.get("filters")).map_err(ActivityError::Failed)?;
    let client = ctx.ec2(call).await;
    let mut pages = client
        .describe_instances()
        .set_filters((!filters.is_empty()).then_some(filters))
        .set_instance_ids(ids)
        .into_paginator()
        .send();
    let mut reservations = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| failed("DescribeInstances", "EC2", &e))?;
        for r in page.reservations() {
            let instances: Vec<Value> = r
                .instances()
                .iter()
                .map(|i| {
                    let tags: Vec<Value> = i
                        .tags()
                        .iter()
                        .map(|t| json!({"Key": t.key(), "Value": t.value()}))
                        .collect();
                    json!({
                        "InstanceId": i.instance_id(),
                        "InstanceType": i.instance_type().map(|t| t.as_str()),
                        "State": {
                            "Name": i.state().and_then(|s| s.name()).map(|n| n.as_str()),
                            "Code": i.state().and_then(|s| s.code()),
                        },
                        "Placement": {"AvailabilityZone": i.placement().and_then(|p| p.availability_zone())},
                        "PrivateIpAddress": i.private_ip_address(),
                        "Tags": tags,
                    })
                })
                .collect();
            reservations.push(json!({"ReservationId": r.reservation_id(), "Instances": instances}));
        }
    }
    Ok(reservations)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_is_rebuilt_when_as_many_are_pending_as_are_terminated() {
        assert!(rebuilt(&["running", "terminated", "pending"]));
        assert!(rebuilt(&["running"]), "nothing terminated, nothing pending");
        assert!(!rebuilt(&["terminated", "running"]));
        assert!(!rebuilt(&["pending", "running"]));
        assert!(rebuilt(&["terminated", "terminated", "pending", "pending"]));
    }

    #[test]
    fn filters_are_read_as_ec2_takes_them_and_bad_ones_are_named() {
        let ok = json!([{"Name": "tag:Name", "Values": ["web-*", "db"]}, {"Name": "instance-state-name", "Values": ["running"]}]);
        let got = filters(Some(&ok)).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].name(), Some("tag:Name"));
        assert_eq!(got[0].values(), ["web-*", "db"]);
        assert!(filters(None).unwrap().is_empty());
        assert!(filters(Some(&Value::Null)).unwrap().is_empty());
        for (bad, needle) in [
            (json!({"Name": "x"}), "must be a list"),
            (json!([{"Values": ["a"]}]), "filters[0].Name"),
            (json!([{"Name": "a", "Values": "b"}]), "filters[0].Values"),
            (json!([{"Name": "a", "Values": [1]}]), "filters[0].Values"),
        ] {
            assert!(filters(Some(&bad)).unwrap_err().contains(needle), "{bad}");
        }
    }
}
