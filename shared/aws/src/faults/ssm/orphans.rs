//! The fleet's stopper for a dead worker's SSM commands (`shared::fleet::safety::orphans`): the worker
//! that reverts a job cancels every `ssm_command` on the dead owner's record and waits for its
//! invocations to end before the rollbacks play; it also puts back the images a dead owner's
//! `eks_update_image_tag` recorded (`k8s::image::restore_recorded`).

use super::run::stop;
use crate::faults::FaultContext;
use serde_json::{Value, json};
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use std::sync::Arc;

/// A command on a dead owner's record: its id, instances and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub command_id: String,
    pub instance_ids: Vec<String>,
    pub region: Option<String>,
}

/// The `ssm_command` records among `records`, each command once, in record order. Records of
/// other kinds are not commands; one without a command id names nothing to cancel.
pub fn recorded_commands(records: &[Value]) -> Vec<Recorded> {
    let mut out: Vec<Recorded> = Vec::new();
    for r in records {
        if r["kind"] != "ssm_command" {
            continue;
        }
        let Some(id) = r["command_id"].as_str().filter(|id| !id.is_empty()) else {
            continue;
        };
        if out.iter().any(|c| c.command_id == id) {
            continue;
        }
        out.push(Recorded {
            command_id: id.to_string(),
            instance_ids: r["instance_ids"]
                .as_array()
                .map(|ids| {
                    ids.iter()
                        .filter_map(|i| i.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            region: r["region"].as_str().map(str::to_string),
        });
    }
    out
}

/// Offer the fleet's stopper (`shared::fleet::safety::orphans`): cancel every recorded command, wait
/// for its invocations to end, and say so per command.
pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    use shared::fleet::safety::orphans::{FUNC, MODULE};
    let ctx = ctx.clone();
    registry.register(
        MODULE,
        FUNC,
        NativeActivity::new(vec![Param::required("records")], move |call| {
            let ctx = ctx.clone();
            async move {
            let records = call.arguments["records"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut stopped = Vec::new();
            for command in recorded_commands(&records) {
                let mut args = serde_json::Map::new();
                if let Some(region) = &command.region {
                    args.insert("region".into(), json!(region));
                }
                let client = ctx
                    .ssm(&NativeCall {
                        arguments: args,
                        ..NativeCall::default()
                    })
                    .await;
                tracing::warn!(
                    "SSM command {} was on a dead worker's record: cancelling it before the rollbacks",
                    command.command_id
                );
                let (cancel_error, still) =
                    stop(&client, &command.command_id, &command.instance_ids).await;
                stopped.push(json!({
                    "command_id": command.command_id,
                    "cancel": cancel_error.unwrap_or_else(|| "sent".into()),
                    "not_ended_on": still,
                }));
            }
            stopped.extend(crate::faults::k8s::image::restore_recorded(&ctx, &records).await);
            Ok(Value::Array(stopped))
            }
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_recorded_command_once_and_nothing_else() {
        let records = [
            json!({"kind": "targets", "chosen": ["i-1"]}),
            json!({"kind": "locks", "targets": ["i-1"]}),
            json!({"kind": "ssm_command", "command_id": "c-1", "instance_ids": ["i-1", "i-2"], "region": "eu-west-1"}),
            json!({"kind": "ssm_command", "command_id": "c-2", "instance_ids": ["i-3"]}),
            json!({"kind": "ssm_command", "command_id": "c-1", "instance_ids": ["i-1", "i-2"]}),
            json!({"kind": "ssm_command", "command_id": ""}),
            json!({"kind": "ssm_command"}),
            json!({"kind": "orphans_stopped", "command_id": "c-9"}),
        ];
        assert_eq!(
            recorded_commands(&records),
            vec![
                Recorded {
                    command_id: "c-1".into(),
                    instance_ids: vec!["i-1".into(), "i-2".into()],
                    region: Some("eu-west-1".into()),
                },
                Recorded {
                    command_id: "c-2".into(),
                    instance_ids: vec!["i-3".into()],
                    region: None,
                },
            ]
        );
        assert!(recorded_commands(&[]).is_empty());
    }
}
