//! `experimentvr.kafka.actions.blackhole_kafka`: the MSK cluster's broker endpoints (`ListNodes`,
//! as the seed reads them) blackholed on the instances the seed's `node_key`/`node_values` (an
//! SSM target: `tag:<key>` or `InstanceIds`) or the usual selection arguments name, through the
//! same pipeline as the other blackholes. The endpoints are host names: each target resolves
//! them itself (`BlackholeAddresses`), so private VPC names work.

use super::actions::{addresses_injection, fault};
use super::inject::{entries, inject, is_host_name, seconds, seed_selector};
use crate::faults::FaultContext;
use crate::faults::context::region;
use crate::faults::ec2::fault_table::SELECTION;
use serde_json::{Map, Value, json};
use shared::fleet::safety::targets::{Mode, Selector};
use shared::providers::ActivityError;
use shared::providers::registry::{ArgKind, NativeCall, Param, Registry};
use std::sync::Arc;

pub const MODULE: &str = "experimentvr.kafka.actions";

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let mut params = SELECTION.to_vec();
    params.extend([
        Param::optional("msk_cluster").of(ArgKind::Scalar),
        Param::optional("node_key").of(ArgKind::Scalar),
        Param::optional("node_values").of(ArgKind::StringOrList),
        Param::optional("duration").of(ArgKind::Seconds { max: 86_400 }),
    ]);
    fault(
        registry,
        ctx,
        MODULE,
        "blackhole_kafka",
        params,
        |ctx, call| async move { blackhole_kafka(&ctx, call).await },
    );
}

/// The instances the seed's SSM target names: `InstanceIds` → those ids; `tag:<key>` (or a
/// bare key) with one value → that tag, every running match; without `node_key`, the seed's
/// selection arguments. Several tag values are one selector each: refused, say which. Pure.
pub fn kafka_selector(args: &Map<String, Value>) -> Result<Selector, ActivityError> {
    let failed = |e: String| ActivityError::Failed(e);
    let key = match args.get("node_key") {
        None | Some(Value::Null) => return seed_selector(args),
        Some(Value::String(k)) if !k.trim().is_empty() => k.trim().to_string(),
        Some(v) => {
            return Err(failed(format!(
                "node_key: expected a string such as tag:Name, got {v}"
            )));
        }
    };
    let values = entries(args, "node_values").map_err(failed)?;
    if values.is_empty() {
        return Err(failed("node_values is missing (node_key is given)".into()));
    }
    let (tags, mode) = if key == "InstanceIds" {
        (Vec::new(), Mode::Ids(values))
    } else {
        let tag = key.strip_prefix("tag:").unwrap_or(&key).to_string();
        match values.as_slice() {
            [value] => (vec![(tag, value.clone())], Mode::All),
            _ => {
                return Err(failed(format!(
                    "node_values: {} values for {key}; give one (a pattern with * matches several) \
                     or use targets",
                    values.len()
                )));
            }
        }
    };
    Ok(Selector {
        tags,
        filters: vec![("state".into(), vec!["running".into()])],
        mode,
        within: Vec::new(),
        allow_empty: false,
    })
}

async fn blackhole_kafka(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let seconds = seconds(args, "duration", 60).map_err(ActivityError::Failed)?;
    let cluster = match args.get("msk_cluster") {
        Some(Value::String(arn)) if !arn.trim().is_empty() => arn.trim().to_string(),
        _ => {
            return Err(ActivityError::Failed(
                "msk_cluster is required: the MSK cluster's ARN".into(),
            ));
        }
    };
    let selector = kafka_selector(args)?;
    let endpoints = broker_endpoints(ctx, &call, &cluster).await?;
    let injection = addresses_injection(seconds, &endpoints, json!({"msk_cluster": cluster}))?;
    inject(ctx, &call, selector, injection).await
}

/// Every endpoint of every broker of the cluster, sorted, once each.
async fn broker_endpoints(
    ctx: &FaultContext,
    call: &NativeCall,
    cluster: &str,
) -> Result<Vec<String>, ActivityError> {
    let mut conf = aws_sdk_kafka::config::Builder::from(ctx.sdk().await);
    if let Some(r) = region(call) {
        conf = conf.region(aws_config::Region::new(r));
    }
    let client = aws_sdk_kafka::Client::from_conf(conf.build());
    let mut pages = client
        .list_nodes()
        .cluster_arn(cluster)
        .into_paginator()
        .send();
    let mut endpoints = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            ActivityError::Failed(crate::sdk::explain(
                "ListNodes",
                cluster,
                "the MSK cluster ARN (msk_cluster) and kafka:ListNodes permission",
                &e,
            ))
        })?;
        for node in page.node_info_list() {
            if let Some(broker) = node.broker_node_info() {
                endpoints.extend(broker.endpoints().iter().cloned());
            }
        }
    }
    endpoints.sort();
    endpoints.dedup();
    if let Some(bad) = endpoints.iter().find(|e| !is_host_name(e)) {
        return Err(ActivityError::Failed(format!(
            "MSK cluster {cluster}: broker endpoint {bad:?} is not a host name"
        )));
    }
    if endpoints.is_empty() {
        return Err(ActivityError::Failed(format!(
            "MSK cluster {cluster} lists no broker endpoint: nothing to blackhole"
        )));
    }
    Ok(endpoints)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(v: Value) -> Result<Selector, String> {
        kafka_selector(v.as_object().unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seed_s_ssm_target_becomes_a_selector() {
        let s = selector(json!({"node_key": "tag:Name", "node_values": ["kafka-client"]})).unwrap();
        assert_eq!(
            s.tags,
            vec![("Name".to_string(), "kafka-client".to_string())]
        );
        assert_eq!(s.mode, Mode::All);
        let s = selector(json!({"node_key": "InstanceIds", "node_values": "i-1 i-2"})).unwrap();
        assert_eq!(s.mode, Mode::Ids(vec!["i-1".into(), "i-2".into()]));
        let s = selector(
            json!({"test_target_type": "RANDOM", "tag_key": "tag:team", "tag_value": "a"}),
        )
        .unwrap();
        assert_eq!(s.mode, Mode::Random);
        for (bad, needle) in [
            (json!({"node_key": "tag:Name"}), "node_values is missing"),
            (
                json!({"node_key": "tag:Name", "node_values": ["a", "b"]}),
                "2 values for tag:Name",
            ),
            (
                json!({"node_key": 3, "node_values": ["a"]}),
                "node_key: expected a string",
            ),
            (json!({}), "test_target_type is missing"),
        ] {
            let e = selector(bad.clone()).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
