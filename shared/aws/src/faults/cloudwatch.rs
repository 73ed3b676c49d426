//! CloudWatch alarm states: the probes experiments use
//! (`experimentvr.cloudwatch.probes.probe_alarm_state(alarm_name, alarm_state)`,
//! `chaosaws.cloudwatch.probes.get_alarm_state_value(alarm_name)`), and [`alarm_states`] for
//! the stop-condition poller. Both probes take the region from `configuration.aws_region` (the
//! Python originals have no `region` argument), else the standard AWS chain.
//!
//! - `probe_alarm_state` returns what the original returns, `{"match": bool, "alarm_state":
//!   "OK"}` (so a tolerance reads `$.match`), but from the alarm's real state: the original
//!   picked a random one. `alarm_state` must be `OK`, `ALARM` or `INSUFFICIENT_DATA`.
//! - `get_alarm_state_value` returns the state string, as `chaosaws` does; it also finds
//!   composite alarms, where `chaosaws` only looks at metric alarms.
//! - An alarm that does not exist is a failed activity (an `Err`) naming it.
//!
//! Protocol: `aws-sdk-cloudwatch` is pinned to 1.99.0, the last release that speaks CloudWatch's
//! awsQuery protocol (form-encoded POST, XML answer). From 1.100.0 on it speaks Smithy RPC v2
//! CBOR, which the moto emulator the tests run against answers with 404, so nothing here could
//! be tested. CloudWatch itself still serves awsQuery (it is what boto3 uses), and the pinned
//! client takes the same shared SDK configuration as the other clients (credential chain,
//! region, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_CLOUDWATCH`, retries, timeouts), so the pin
//! costs nothing against real AWS; the alternative, signing Query requests ourselves with
//! `aws-sigv4` over reqwest, would have duplicated the SDK's endpoint, credential and retry
//! handling. Lift the pin once moto serves RPC v2 CBOR for CloudWatch.
//!
//! The metric probes (`get_metric_statistics`, `get_metric_data`) are in [`metrics`].

pub mod metrics;

use super::FaultContext;
use super::context::cloudwatch_in;
use aws_config::SdkConfig;
use aws_sdk_cloudwatch::types::AlarmType;
use serde_json::{Map, Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use std::collections::HashMap;
use std::sync::Arc;

const EXPERIMENTVR: &str = "experimentvr.cloudwatch.probes";
const CHAOSAWS: &str = "chaosaws.cloudwatch.probes";

/// The states an alarm can be in.
pub const STATES: [&str; 3] = ["OK", "ALARM", "INSUFFICIENT_DATA"];

/// `DescribeAlarms` takes at most 100 names at a time.
const NAMES_PER_CALL: usize = 100;

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    metrics::register(registry, ctx);
    let c = ctx.clone();
    registry.register(
        EXPERIMENTVR,
        "probe_alarm_state",
        NativeActivity::new(
            vec![
                Param::required("alarm_name"),
                Param::required("alarm_state"),
            ],
            move |call| {
                let ctx = c.clone();
                async move {
                    let name = string_arg(&call.arguments, "alarm_name")?;
                    let expected = expected_state(call.arguments.get("alarm_state"))
                        .map_err(ActivityError::Failed)?;
                    let state = state_of(&ctx, &call, name).await?;
                    Ok(json!({"match": state == expected, "alarm_state": state}))
                }
            },
        ),
    );
    let c = ctx.clone();
    registry.register(
        CHAOSAWS,
        "get_alarm_state_value",
        NativeActivity::new(vec![Param::required("alarm_name")], move |call| {
            let ctx = c.clone();
            async move {
                let name = string_arg(&call.arguments, "alarm_name")?;
                Ok(json!(state_of(&ctx, &call, name).await?))
            }
        }),
    );
}

/// The state of each named alarm (metric or composite), in the order of `names`, in `region`
/// (else the configuration's), with the context's SDK configuration. An alarm that does not
/// exist is an `Err` naming it (all of them, when several are missing).
pub async fn alarm_states(
    ctx: &FaultContext,
    region: Option<String>,
    names: &[String],
) -> Result<Vec<(String, String)>, String> {
    alarm_states_with(ctx.sdk().await, region, names).await
}

/// [`alarm_states`] with a given SDK configuration (an emulator's, in tests).
pub async fn alarm_states_with(
    sdk: &SdkConfig,
    region: Option<String>,
    names: &[String],
) -> Result<Vec<(String, String)>, String> {
    describe_states(&cloudwatch_in(sdk, region.as_deref()), names).await
}

/// The state of one alarm, for an activity.
async fn state_of(
    ctx: &FaultContext,
    call: &NativeCall,
    name: String,
) -> Result<String, ActivityError> {
    let client = ctx.cloudwatch(call).await;
    let mut states = describe_states(&client, &[name])
        .await
        .map_err(ActivityError::Failed)?;
    // describe_states answers one entry per name asked for
    Ok(states.pop().map(|(_, state)| state).unwrap_or_default())
}

/// `DescribeAlarms` by name (every page, 100 names per call), metric and composite alarms.
async fn describe_states(
    client: &aws_sdk_cloudwatch::Client,
    names: &[String],
) -> Result<Vec<(String, String)>, String> {
    if names.iter().any(String::is_empty) {
        return Err("an alarm name is empty".into());
    }
    let mut unique: Vec<String> = Vec::new();
    for n in names {
        if !unique.contains(n) {
            unique.push(n.clone());
        }
    }
    let mut found: HashMap<String, String> = HashMap::new();
    for chunk in unique.chunks(NAMES_PER_CALL) {
        // without AlarmTypes, CloudWatch returns metric alarms only
        let mut pages = client
            .describe_alarms()
            .set_alarm_names(Some(chunk.to_vec()))
            .alarm_types(AlarmType::MetricAlarm)
            .alarm_types(AlarmType::CompositeAlarm)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                crate::sdk::explain(
                    "DescribeAlarms",
                    "CloudWatch",
                    "the alarm names, the region and the AWS credentials",
                    &e,
                )
            })?;
            let metric = page
                .metric_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value()));
            let composite = page
                .composite_alarms()
                .iter()
                .map(|a| (a.alarm_name(), a.state_value()));
            for (name, state) in metric.chain(composite) {
                if let (Some(name), Some(state)) = (name, state) {
                    found.insert(name.to_string(), state.as_str().to_string());
                }
            }
        }
    }
    let missing: Vec<&str> = unique
        .iter()
        .filter(|n| !found.contains_key(n.as_str()))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        let region = client
            .config()
            .region()
            .map(|r| format!(" in region {r}"))
            .unwrap_or_default();
        let (noun, verb) = if missing.len() == 1 {
            ("alarm", "does")
        } else {
            ("alarms", "do")
        };
        return Err(format!(
            "CloudWatch {noun} {} {verb} not exist{region}",
            missing
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(names
        .iter()
        .map(|n| (n.clone(), found[n.as_str()].clone()))
        .collect())
}

fn string_arg(arguments: &Map<String, Value>, name: &str) -> Result<String, ActivityError> {
    match arguments.get(name).and_then(Value::as_str) {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(ActivityError::Failed(format!(
            "{name} must be a non-empty string (the alarm's name)"
        ))),
    }
}

/// The `alarm_state` argument: one of [`STATES`], exactly as CloudWatch spells it.
fn expected_state(value: Option<&Value>) -> Result<String, String> {
    match value.and_then(Value::as_str) {
        Some(s) if STATES.contains(&s) => Ok(s.to_string()),
        _ => Err(format!(
            "alarm_state must be one of {}, not {}",
            STATES.join(", "),
            value.map_or_else(|| "nothing".to_string(), Value::to_string)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_state_is_one_of_cloudwatchs_states_and_a_bad_one_is_named() {
        for s in STATES {
            assert_eq!(expected_state(Some(&json!(s))).unwrap(), s);
        }
        for (bad, shown) in [
            (Some(json!("alarm")), "\"alarm\""),
            (Some(json!("FIRING")), "\"FIRING\""),
            (Some(json!(1)), "1"),
            (Some(Value::Null), "null"),
            (None, "nothing"),
        ] {
            let err = expected_state(bad.as_ref()).unwrap_err();
            assert!(
                err.contains("OK, ALARM, INSUFFICIENT_DATA") && err.ends_with(shown),
                "{err}"
            );
        }
    }

    #[test]
    fn alarm_name_must_be_a_non_empty_string() {
        let args = |v: Value| json!({ "alarm_name": v }).as_object().unwrap().clone();
        assert_eq!(
            string_arg(&args(json!("cpu")), "alarm_name").unwrap(),
            "cpu"
        );
        for bad in [json!(""), json!(3), Value::Null] {
            assert!(string_arg(&args(bad), "alarm_name").is_err());
        }
        assert!(string_arg(&Map::new(), "alarm_name").is_err());
    }
}
