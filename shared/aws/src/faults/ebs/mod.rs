//! `experimentvr.ebs.actions.detach_volume(region, name_space, pod_name_pattern, tag_key_1,
//! tag_value_1, tag_key_2, tag_value_2, duration=60)`: an attached EBS volume, found by the
//! seed's two tag pairs (EC2 filter names such as `tag:Name`, or bare tag keys), is unmounted on
//! its instance, detached, and after `duration` seconds (our addition: the seed never put it
//! back) attached again on the same device.
//!
//! The volume: one at random among the attached volumes matching both pairs; it is a target
//! only when its instance carries the opt-in tag (the instance is what the fault acts on; the
//! volume's own tags only select it); caps as every fault. Then: the
//! volume and its instance locked; the way back (volume, instance, device) on record
//! (`reverts`); the `UnmountVolume` document sent to the instance through the fault library's
//! SSM sending (it schedules the remount, at `duration` + 30 s, before it unmounts);
//! `DetachVolume`; the wait; `AttachVolume`. A run stopped during the wait re-attaches from the
//! process's `Cleanup`, a redelivery from the record. `name_space` and `pod_name_pattern` are
//! accepted and unused, as in the seed.

use super::ec2::instances::choose;
use super::family_args::{seconds, text};
use super::plan::{LOCK_TTL, stops_here};
use super::ssm::command::Command;
use super::ssm::{documents, run};
use super::{FaultContext, reverts, target_locks};
use crate::faults::context::failed;
use aws_sdk_ec2::types::{Filter, VolumeAttachmentState};
use serde_json::{Map, Value, json};
use shared::fleet::safety::targets::{Candidate, Mode, Selector};
use shared::providers::ActivityError;
use shared::providers::registry::{ArgKind, NativeActivity, NativeCall, Param, Registry};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The family name on a revert record.
pub const FAMILY: &str = "ebs";

fn params() -> Vec<Param> {
    let mut p = vec![
        Param::optional("region").of(ArgKind::Scalar),
        Param::optional("name_space"),
        Param::optional("pod_name_pattern"),
    ];
    for name in ["tag_key_1", "tag_value_1", "tag_key_2", "tag_value_2"] {
        p.push(Param::optional(name).of(ArgKind::Scalar));
    }
    p.push(Param::optional("duration").of(ArgKind::Seconds { max: 86_400 }));
    p
}

/// The two tag pairs as EC2 filters (a bare key becomes `tag:<key>`).
fn tag_filters(args: &Map<String, Value>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for i in [1, 2] {
        let key = text(args, &format!("tag_key_{i}"))?
            .ok_or_else(|| format!("tag_key_{i} is missing: expected a tag such as tag:Name"))?;
        let value = text(args, &format!("tag_value_{i}"))?
            .ok_or_else(|| format!("tag_value_{i} is missing"))?;
        let key = if key.starts_with("tag:") {
            key
        } else {
            format!("tag:{key}")
        };
        out.push((key, value));
    }
    Ok(out)
}

fn tags_of(list: &[aws_sdk_ec2::types::Tag]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect()
}

/// An attached volume: id, instance, device.
#[derive(Debug, Clone)]
struct Attached {
    volume: String,
    instance: String,
    device: String,
}

/// The attached volumes matching `filters`, as candidates opted in by their instance's tags
/// only.
async fn candidates(
    client: &aws_sdk_ec2::Client,
    filters: &[(String, String)],
    opt_in: Option<&(String, String)>,
) -> Result<(Vec<Candidate>, Vec<Attached>), ActivityError> {
    let mut req = client.describe_volumes();
    for (k, v) in filters {
        req = req.filters(Filter::builder().name(k).values(v).build());
    }
    let out = req
        .filters(
            Filter::builder()
                .name("attachment.status")
                .values("attached")
                .build(),
        )
        .send()
        .await
        .map_err(|e| failed("DescribeVolumes", "EBS", &e))?;
    let mut found = Vec::new();
    let mut attached = Vec::new();
    for v in out.volumes() {
        let Some(id) = v.volume_id() else { continue };
        let Some(a) = v
            .attachments()
            .iter()
            .find(|a| a.state() == Some(&VolumeAttachmentState::Attached))
        else {
            continue;
        };
        let (Some(instance), Some(device)) = (a.instance_id(), a.device()) else {
            continue;
        };
        found.push(Candidate {
            id: id.to_string(),
            tags: tags_of(v.tags()),
            attributes: [("instance-id".to_string(), instance.to_string())].into(),
        });
        attached.push(Attached {
            volume: id.to_string(),
            instance: instance.to_string(),
            device: device.to_string(),
        });
    }
    if let (Some((key, value)), false) = (opt_in, attached.is_empty()) {
        let ids: Vec<String> = attached.iter().map(|a| a.instance.clone()).collect();
        let out = client
            .describe_instances()
            .set_instance_ids(Some(ids.clone()))
            .send()
            .await
            .map_err(|e| failed("DescribeInstances", &ids.join(", "), &e))?;
        let opted: Vec<String> = out
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter(|i| tags_of(i.tags()).get(key) == Some(value))
            .filter_map(|i| i.instance_id().map(str::to_string))
            .collect();
        // the instance is what the fault acts on (the document runs there, the volume leaves
        // it): it alone decides, whatever the volume's own tags say
        for c in &mut found {
            c.tags.remove(key);
            if opted.contains(&c.attributes["instance-id"]) {
                c.tags.insert(key.clone(), value.clone());
            }
        }
    }
    Ok((found, attached))
}

async fn detach_volume(ctx: &Arc<FaultContext>, call: NativeCall) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let filters = tag_filters(&call.arguments).map_err(fail)?;
    let duration = seconds(&call.arguments, "duration", 60).map_err(fail)?;
    let client = ctx.ec2(&call).await;
    let (found, attached) = candidates(&client, &filters, ctx.settings().opt_in.as_ref()).await?;
    let selector = Selector {
        tags: Vec::new(),
        filters: Vec::new(),
        mode: Mode::Random,
        within: Vec::new(),
        allow_empty: false,
    };
    let selection = choose(ctx, &call, selector, &found, false).await?;
    let document = documents::registered_name(ctx.settings(), &documents::UNMOUNT_VOLUME);
    let chosen: Vec<&Attached> = attached
        .iter()
        .filter(|a| selection.chosen.contains(&a.volume))
        .collect();
    let mut out = json!({
        "action": "detach_volume",
        "targets": selection.chosen,
        "matched": selection.matched,
        "seed": selection.seed,
        "volumes": chosen.iter().map(|a| json!({"volume_id": a.volume, "instance_id": a.instance, "device": a.device})).collect::<Vec<_>>(),
        "document": document,
        "duration": duration,
        "dry_run": call.plan_only,
    });
    if stops_here(&call, &selection) {
        return Ok(out);
    }
    let Some(a) = chosen.first().map(|a| (*a).clone()) else {
        return Ok(out);
    };
    let ttl = Duration::from_secs(duration) + LOCK_TTL.saturating_mul(2);
    let held = target_locks::lock(ctx, &call, &[a.volume.clone(), a.instance.clone()], ttl).await?;
    let undo = json!({"volume_id": a.volume, "instance_id": a.instance, "device": a.device});
    let armed = reverts::on_record(ctx, &call, FAMILY, undo, Some(&held)).await?;
    let command = Command {
        document,
        instance_ids: vec![a.instance.clone()],
        parameters: BTreeMap::from([
            ("device".to_string(), vec![a.device.clone()]),
            ("volume".to_string(), vec![a.volume.clone()]),
            ("duration".to_string(), vec![duration.max(1).to_string()]),
        ]),
        wait: LOCK_TTL,
    };
    let unmounted = match run::run(ctx, &call, &command, Some(&held)).await {
        Ok(r) => r,
        Err(e) => {
            // nothing detached yet: the revert finds the volume attached and says so
            let _ = armed.revert(&call).await;
            held.release().await;
            return Err(e);
        }
    };
    out["unmount"] = unmounted;
    let detached = client
        .detach_volume()
        .volume_id(&a.volume)
        .instance_id(&a.instance)
        .send()
        .await;
    if let Err(e) = detached {
        let error = failed("DetachVolume", &a.volume, &e);
        let _ = armed.revert(&call).await;
        held.release().await;
        return Err(error);
    }
    tracing::info!(
        "  {}: {} detached from {} for {duration}s",
        call.activity,
        a.volume,
        a.instance
    );
    tokio::time::sleep(Duration::from_secs(duration)).await;
    let restored = armed.revert(&call).await;
    held.release().await;
    out["restored"] = restored?;
    Ok(out)
}

/// Attach the recorded volume to its instance on its device again, once it is detached;
/// left as found when it is attached already (or elsewhere, which is said).
pub async fn undo(ctx: &FaultContext, region: Option<&str>, undo: &Value) -> Result<Value, String> {
    let client = ctx.ec2(&reverts::call_in(region)).await;
    let (Some(volume), Some(instance), Some(device)) = (
        undo["volume_id"].as_str(),
        undo["instance_id"].as_str(),
        undo["device"].as_str(),
    ) else {
        return Err(format!(
            "a revert record without volume, instance and device: {undo}"
        ));
    };
    // a detach takes a moment on AWS: wait (up to 60 s) until the volume is available
    for _ in 0..30 {
        let out = client
            .describe_volumes()
            .volume_ids(volume)
            .send()
            .await
            .map_err(|e| failed("DescribeVolumes", volume, &e).to_string())?;
        let Some(v) = out.volumes().first() else {
            return Err(format!(
                "volume {volume} is gone: it cannot be attached again"
            ));
        };
        if let Some(a) = v.attachments().first() {
            let on = a.instance_id().unwrap_or_default();
            match a.state() {
                Some(VolumeAttachmentState::Attached | VolumeAttachmentState::Attaching)
                    if on == instance =>
                {
                    return Ok(json!({"volume_id": volume, "restored": "already attached"}));
                }
                Some(VolumeAttachmentState::Attached | VolumeAttachmentState::Attaching) => {
                    return Ok(
                        json!({"volume_id": volume, "restored": format!("attached to {on}: left as found")}),
                    );
                }
                _ => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            }
        }
        client
            .attach_volume()
            .volume_id(volume)
            .instance_id(instance)
            .device(device)
            .send()
            .await
            .map_err(|e| failed("AttachVolume", volume, &e).to_string())?;
        return Ok(
            json!({"volume_id": volume, "instance_id": instance, "device": device, "restored": "attached"}),
        );
    }
    Err(format!(
        "volume {volume} was still detaching after 60 s: attach it to {instance} as {device} by hand"
    ))
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let c = ctx.clone();
    registry.register(
        "experimentvr.ebs.actions",
        "detach_volume",
        NativeActivity::new(params(), move |call| {
            let ctx = c.clone();
            async move { detach_volume(&ctx, call).await }
        })
        .fault(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_tag_pairs_become_ec2_filters() {
        let args = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            tag_filters(&args(json!({"tag_key_1": "tag:Name", "tag_value_1": "db", "tag_key_2": "team", "tag_value_2": "a"}))).unwrap(),
            [("tag:Name".to_string(), "db".to_string()), ("tag:team".to_string(), "a".to_string())]
        );
        let e = tag_filters(&args(json!({"tag_key_1": "a", "tag_value_1": "b"}))).unwrap_err();
        assert!(e.contains("tag_key_2 is missing"), "{e}");
        let names: Vec<&str> = params().iter().map(|p| p.name).collect();
        assert_eq!(
            names,
            [
                "region",
                "name_space",
                "pod_name_pattern",
                "tag_key_1",
                "tag_value_1",
                "tag_key_2",
                "tag_value_2",
                "duration"
            ]
        );
    }
}
