//! `experimentvr.ec2.actions.remove_iam_role(region, name_space, instance_tag_value,
//! profile_tag_value, sleep_length=10)`: an instance loses its IAM role for `sleep_length`
//! seconds. The seed removed the role from the instance profile (every instance using the
//! profile lost it); here the profile is disassociated from the chosen instance only
//! (`DisassociateIamInstanceProfile`), then associated again (`AssociateIamInstanceProfile`).
//!
//! The instance: running, tagged `Name` = `instance_tag_value`, one at random (`targets` and
//! `test_target_type` narrow or widen it as for the other seed faults); opt-in tag and caps as
//! every fault. `profile_tag_value`, when given, names (by `Name` tag) instances whose profile
//! must be the one removed, as the seed found the profile; a chosen instance with another
//! profile, or none, fails before anything is sent. `name_space` is accepted and unused (as in
//! the seed). Which profile goes back on which instance is on record (`reverts`) before the
//! first disassociation.

use super::instances::{experimentvr_selector, resolve, server_filters};
use crate::faults::context::failed;
use crate::faults::family_args::{seconds, text};
use crate::faults::plan::{LOCK_TTL, plan, stops_here};
use crate::faults::{FaultContext, reverts, target_locks};
use aws_sdk_ec2::types::Filter;
use serde_json::{Map, Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{ArgKind, NativeActivity, NativeCall, Param, Registry};
use std::sync::Arc;
use std::time::Duration;

/// The family name on a revert record.
pub const FAMILY: &str = "iam_role";

fn params() -> Vec<Param> {
    vec![
        Param::optional("region").of(ArgKind::Scalar),
        Param::optional("name_space"),
        Param::optional("instance_tag_value").of(ArgKind::Scalar),
        Param::optional("profile_tag_value").of(ArgKind::Scalar),
        Param::optional("sleep_length").of(ArgKind::Seconds { max: 86_400 }),
        Param::optional("targets").of(ArgKind::StringOrList),
        Param::optional("test_target_type").of(super::fault_table::MODE),
    ]
}

/// The seed faults' selection arguments this function's arguments amount to.
fn selection_args(args: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    if let Some(t) = args.get("targets") {
        out.insert("targets".into(), t.clone());
    }
    let has_targets = !super::instances::id_list(args.get("targets"), "targets")?.is_empty();
    let mode = match args.get("test_target_type") {
        None | Some(Value::Null) if has_targets => json!("NAMED_LIST"),
        None | Some(Value::Null) => json!("RANDOM"),
        Some(v) => v.clone(),
    };
    out.insert("test_target_type".into(), mode);
    if let Some(name) = text(args, "instance_tag_value")? {
        out.insert("tag_key".into(), json!("tag:Name"));
        out.insert("tag_value".into(), json!(name));
    } else if !has_targets {
        return Err(
            "instance_tag_value is missing: expected the Name tag of the instances to take the role from (or targets)"
                .into(),
        );
    }
    Ok(out)
}

/// The profile associated with each of `instances`: (instance, association id, profile ARN).
async fn associations(
    client: &aws_sdk_ec2::Client,
    instances: &[String],
) -> Result<Vec<(String, String, String)>, ActivityError> {
    let out = client
        .describe_iam_instance_profile_associations()
        .filters(
            Filter::builder()
                .name("instance-id")
                .set_values(Some(instances.to_vec()))
                .build(),
        )
        .filters(
            Filter::builder()
                .name("state")
                .values("associated")
                .values("associating")
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            failed(
                "DescribeIamInstanceProfileAssociations",
                &instances.join(", "),
                &e,
            )
        })?;
    Ok(out
        .iam_instance_profile_associations()
        .iter()
        .filter_map(|a| {
            Some((
                a.instance_id()?.to_string(),
                a.association_id()?.to_string(),
                a.iam_instance_profile()?.arn()?.to_string(),
            ))
        })
        .collect())
}

/// The profile ARNs of the instances tagged `Name` = `name`.
async fn profiles_named(
    client: &aws_sdk_ec2::Client,
    name: &str,
) -> Result<Vec<String>, ActivityError> {
    let out = client
        .describe_instances()
        .filters(Filter::builder().name("tag:Name").values(name).build())
        .send()
        .await
        .map_err(|e| failed("DescribeInstances", name, &e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| Some(i.iam_instance_profile()?.arn()?.to_string()))
        .collect())
}

async fn remove_iam_role(
    ctx: &Arc<FaultContext>,
    call: NativeCall,
) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let sleep = seconds(&call.arguments, "sleep_length", 10).map_err(fail)?;
    let profile_name = text(&call.arguments, "profile_tag_value").map_err(fail)?;
    let selector =
        experimentvr_selector(&selection_args(&call.arguments).map_err(fail)?, "running")
            .map_err(fail)?;
    let filters = server_filters(&selector);
    let selection = resolve(ctx, &call, selector, filters).await?;
    let mut out = plan(&call, "remove_iam_role", &selection);
    out["sleep_length"] = json!(sleep);
    if stops_here(&call, &selection) {
        return Ok(out);
    }
    let client = ctx.ec2(&call).await;
    let current = associations(&client, &selection.chosen).await?;
    let wanted = match &profile_name {
        Some(name) => Some(profiles_named(&client, name).await?),
        None => None,
    };
    for id in &selection.chosen {
        let Some((_, _, arn)) = current.iter().find(|(i, _, _)| i == id) else {
            return Err(ActivityError::Failed(format!(
                "{id} has no IAM instance profile associated: there is no role to remove, nothing was done"
            )));
        };
        if let Some(wanted) = &wanted
            && !wanted.contains(arn)
        {
            return Err(ActivityError::Failed(format!(
                "{id}'s instance profile {arn} is not the one profile_tag_value {:?} names ({}): nothing was done",
                profile_name.as_deref().unwrap_or_default(),
                wanted.join(", ")
            )));
        }
    }
    let taken: Vec<&(String, String, String)> = current
        .iter()
        .filter(|(i, _, _)| selection.chosen.contains(i))
        .collect();
    let ttl = Duration::from_secs(sleep) + LOCK_TTL;
    let held = target_locks::lock(ctx, &call, &selection.chosen, ttl).await?;
    let undo = json!({"associations": taken.iter().map(|(i, _, arn)| json!({"instance_id": i, "profile_arn": arn})).collect::<Vec<_>>()});
    let armed = reverts::on_record(ctx, &call, FAMILY, undo, Some(&held)).await?;
    tracing::info!(
        "  {}: instance profile off {} for {sleep}s",
        call.activity,
        selection.chosen.join(", ")
    );
    let mut removed = Vec::new();
    for (instance, association, arn) in &taken {
        let r = client
            .disassociate_iam_instance_profile()
            .association_id(association)
            .send()
            .await;
        if let Err(e) = r {
            let error = failed("DisassociateIamInstanceProfile", instance, &e);
            let restored = armed.revert(&call).await;
            held.release().await;
            tracing::info!("  restored after a failed removal: {restored:?}");
            return Err(error);
        }
        removed.push(json!({"instance_id": instance, "profile_arn": arn}));
    }
    tokio::time::sleep(Duration::from_secs(sleep)).await;
    let restored = armed.revert(&call).await;
    held.release().await;
    out["removed"] = json!(removed);
    out["restored"] = restored?;
    Ok(out)
}

/// Put each recorded profile back on its instance, unless it is there already (or another
/// profile is, which is left as found and said).
pub async fn undo(ctx: &FaultContext, region: Option<&str>, undo: &Value) -> Result<Value, String> {
    let client = ctx.ec2(&reverts::call_in(region)).await;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for a in undo["associations"].as_array().into_iter().flatten() {
        let (Some(instance), Some(arn)) = (a["instance_id"].as_str(), a["profile_arn"].as_str())
        else {
            continue;
        };
        let now = associations(&client, &[instance.to_string()])
            .await
            .map_err(|e| e.to_string())?;
        let said = match now.first() {
            Some((_, _, a)) if a == arn => "already associated".to_string(),
            Some((_, _, other)) => {
                format!("another profile ({other}) is associated: left as found")
            }
            None => match associate(&client, instance, arn).await {
                Ok(()) => "associated".to_string(),
                Err(e) => {
                    errors.push(format!("{instance}: {e}"));
                    format!("failed: {e}")
                }
            },
        };
        out.push(json!({"instance_id": instance, "profile_arn": arn, "restored": said}));
    }
    if errors.is_empty() {
        Ok(json!(out))
    } else {
        Err(format!(
            "the instance profile could not be put back on {}",
            errors.join("; ")
        ))
    }
}

/// Associate `arn` with `instance`, waiting (up to 30 s) while a disassociation still runs.
async fn associate(client: &aws_sdk_ec2::Client, instance: &str, arn: &str) -> Result<(), String> {
    let mut tries = 0;
    loop {
        let r = client
            .associate_iam_instance_profile()
            .instance_id(instance)
            .iam_instance_profile(
                aws_sdk_ec2::types::IamInstanceProfileSpecification::builder()
                    .arn(arn)
                    .build(),
            )
            .send()
            .await;
        match r {
            Ok(_) => return Ok(()),
            Err(e) => {
                let busy = e
                    .as_service_error()
                    .and_then(aws_sdk_ec2::error::ProvideErrorMetadata::code)
                    .is_some_and(|c| c.contains("IncorrectState"));
                tries += 1;
                if !busy || tries >= 15 {
                    return Err(failed("AssociateIamInstanceProfile", instance, &e).to_string());
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let c = ctx.clone();
    registry.register(
        "experimentvr.ec2.actions",
        "remove_iam_role",
        NativeActivity::new(params(), move |call| {
            let ctx = c.clone();
            async move { remove_iam_role(&ctx, call).await }
        })
        .fault(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_seeds_arguments_choose_one_instance_by_name() {
        let a = selection_args(&args(
            json!({"instance_tag_value": "web", "profile_tag_value": "p"}),
        ))
        .unwrap();
        assert_eq!(
            Value::Object(a),
            json!({"test_target_type": "RANDOM", "tag_key": "tag:Name", "tag_value": "web"})
        );
        let a = selection_args(&args(json!({"targets": ["i-1"]}))).unwrap();
        assert_eq!(a["test_target_type"], "NAMED_LIST");
        let e = selection_args(&args(json!({"profile_tag_value": "p"}))).unwrap_err();
        assert!(e.contains("instance_tag_value is missing"), "{e}");
        let names: Vec<&str> = params().iter().map(|p| p.name).collect();
        assert_eq!(
            &names[..5],
            [
                "region",
                "name_space",
                "instance_tag_value",
                "profile_tag_value",
                "sleep_length"
            ]
        );
    }
}
