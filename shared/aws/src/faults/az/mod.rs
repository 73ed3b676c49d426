//! `experimentvr.az.actions.disable_az(availability_zone, state_file_name="disable_az.json")`
//! and `reenable_az(state_file_name="disable_az.json")`: an availability zone cut off by a
//! deny-all network ACL swapped onto its subnets, and put back.
//!
//! Unlike the seed (every VPC of the account), only the AZ's subnets that carry the opt-in tag,
//! or whose VPC carries it, are candidates; the others are left alone (listed in the output), and
//! an AZ with none opted in is refused (`opt_in`). The caps apply to the subnets chosen. Before
//! anything changes, the previous association of each subnet and the token our NACLs will be
//! tagged with are on record (`reverts`) and saved in the store under `faults/az/<state_file_name>`;
//! then one deny-all NACL per VPC is created and swapped onto the subnets. The fault stays on
//! after the action: `reenable_az` (reading the store), or the redelivery of a dead worker's job
//! (reading its record), moves every subnet back to its previous NACL and deletes ours. A failure
//! midway reverts at once; a run stopped midway reverts from the process's `Cleanup`.

mod nacl;

use super::ec2::instances::choose;
use super::family_args::text;
use super::plan::{LOCK_TTL, stops_here};
use super::{FaultContext, reverts, target_locks};
use serde_json::{Value, json};
use shared::fleet::safety::targets::{Mode, Selector};
use shared::ports::ObjectStore;
use shared::providers::registry::{ArgKind, NativeActivity, NativeCall, Param, Registry};
use shared::providers::{ActivityError, Refusal};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The family name on a revert record.
pub const FAMILY: &str = "az";
const MODULE: &str = "experimentvr.az.actions";
const DEFAULT_STATE: &str = "disable_az.json";

/// The store key of a state file; its name must be a plain file name.
fn state_key(args: &serde_json::Map<String, Value>) -> Result<String, String> {
    let name = text(args, "state_file_name")?.unwrap_or_else(|| DEFAULT_STATE.into());
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !name.starts_with('.');
    if !plain {
        return Err(format!(
            "state_file_name {name:?}: expected a file name of letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(format!("faults/az/{name}"))
}

async fn disable_az(ctx: &Arc<FaultContext>, call: NativeCall) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let az = super::family_args::required(&call.arguments, "availability_zone").map_err(fail)?;
    let key = state_key(&call.arguments).map_err(fail)?;
    let client = ctx.ec2(&call).await;
    let opt_in = ctx.settings().opt_in.clone();
    let found = nacl::subnets(&client, &az, opt_in.as_ref()).await?;
    let opted = |c: &&shared::fleet::safety::targets::Candidate| {
        opt_in
            .as_ref()
            .is_none_or(|(k, v)| c.tags.get(k) == Some(v))
    };
    let left_alone: Vec<String> = found
        .iter()
        .filter(|c| !opted(c))
        .map(|c| c.id.clone())
        .collect();
    let none_opted = !found.is_empty() && left_alone.len() == found.len();
    let selector = Selector {
        // an AZ with no opted-in subnet is refused on its first subnet (`opt_in`)
        tags: match &opt_in {
            Some(t) if !none_opted => vec![t.clone()],
            _ => Vec::new(),
        },
        filters: vec![("availability-zone".into(), vec![az.clone()])],
        mode: Mode::All,
        within: Vec::new(),
        allow_empty: false,
    };
    let candidates: Vec<_> = found
        .iter()
        .cloned()
        .map(|mut c| {
            c.attributes.insert("availability-zone".into(), az.clone());
            c
        })
        .collect();
    let selection = choose(ctx, &call, selector, &candidates, false).await?;
    let vpc_of: BTreeMap<&str, &str> = found
        .iter()
        .map(|c| (c.id.as_str(), c.attributes["vpc-id"].as_str()))
        .collect();
    let mut out = json!({
        "action": "disable_az",
        "availability_zone": az,
        "subnets": selection.chosen,
        "left_alone": left_alone,
        "state": key,
        "dry_run": call.plan_only,
    });
    if stops_here(&call, &selection) {
        return Ok(out);
    }
    let store = ctx.lock_store();
    if let Some(bytes) = store.get(&key).await.map_err(|e| fail(e.to_string()))? {
        let saved: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        return Err(fail(format!(
            "{key} already holds a disabled AZ ({} by {}): run reenable_az with that state_file_name first; nothing was done",
            saved["undo"]["availability_zone"], saved["activity"]
        )));
    }
    let held = target_locks::lock(ctx, &call, &selection.chosen, LOCK_TTL).await?;
    // the locks end with the action, the fault does not: a subnet already on one of our deny-all
    // NACLs belongs to another `disable_az` (another state file) until its `reenable_az`
    let disabled = nacl::already_disabled(&client, &selection.chosen).await?;
    if let Some(first) = disabled.first() {
        held.release().await;
        return Err(ActivityError::Refused(
            Refusal::new(
                "target_locked",
                format!(
                    "subnet(s) {} of {az} are already disabled by another disable_az (on a network \
                     ACL tagged {}): run its reenable_az first; nothing was done",
                    disabled.join(", "),
                    nacl::OURS
                ),
            )
            .on(first.clone()),
        ));
    }
    let previous = nacl::associations(&client, &selection.chosen).await?;
    if let Some(s) = selection.chosen.iter().find(|s| !previous.contains_key(*s)) {
        return Err(fail(format!(
            "subnet {s} has no network ACL association to swap: nothing was done"
        )));
    }
    let token = shared::ids::random_id();
    let mut vpcs: Vec<String> = selection
        .chosen
        .iter()
        .map(|s| vpc_of[s.as_str()].to_string())
        .collect();
    vpcs.sort();
    vpcs.dedup();
    let subnets: Vec<Value> = selection
        .chosen
        .iter()
        .map(|s| json!({"subnet_id": s, "vpc_id": vpc_of[s.as_str()], "network_acl_id": previous[s].1}))
        .collect();
    let mut undo = json!({
        "availability_zone": az,
        "state_key": key,
        "token": token,
        "vpcs": vpcs,
        "subnets": subnets,
        "blackhole_nacl_ids": [],
    });
    let mut armed = reverts::on_record(ctx, &call, FAMILY, undo.clone(), Some(&held)).await?;
    // the first save creates the state only if no other run's is there (two runs may have found
    // the key free); the next one completes it
    let save = |armed: &reverts::Armed, first: bool| {
        let state = json!({"revert_id": armed.id(), "activity": call.activity, "region": super::context::region(&call), "undo": armed.undo()});
        let bytes = serde_json::to_vec(&state).unwrap_or_default();
        let key = key.clone();
        async move {
            let saved = if first {
                store.put_if_absent(&key, &bytes).await
            } else {
                store.put(&key, &bytes).await
            };
            saved.map_err(|e| format!("the state {key} could not be saved: {e}"))
        }
    };
    if let Err(e) = save(&armed, true).await {
        let _ = armed.revert(&call).await;
        held.release().await;
        return Err(fail(format!("{e}; nothing was done")));
    }
    let swapped = async {
        let mut ours = BTreeMap::new();
        for vpc in &vpcs {
            let id = nacl::create_deny_all(&client, vpc, &token)
                .await
                .map_err(|e| e.to_string())?;
            ours.insert(vpc.clone(), id);
        }
        undo["blackhole_nacl_ids"] = json!(ours.values().collect::<Vec<_>>());
        armed.update(&call, undo.clone()).await?;
        save(&armed, false).await?;
        for s in &selection.chosen {
            nacl::replace(&client, &previous[s].0, &ours[vpc_of[s.as_str()]]).await?;
        }
        Ok::<_, String>(ours)
    }
    .await;
    match swapped {
        Ok(ours) => {
            armed.leave_on();
            held.release().await;
            out["blackhole_nacl_ids"] = json!(ours.values().collect::<Vec<_>>());
            Ok(out)
        }
        Err(e) => {
            let reverted = armed.revert(&call).await;
            held.release().await;
            Err(fail(format!(
                "disabling {az} failed ({e}); what was done is reverted: {reverted:?}"
            )))
        }
    }
}

async fn reenable_az(ctx: &Arc<FaultContext>, call: NativeCall) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let key = state_key(&call.arguments).map_err(fail)?;
    let Some(bytes) = ctx
        .lock_store()
        .get(&key)
        .await
        .map_err(|e| fail(e.to_string()))?
    else {
        tracing::warn!(
            "{}: no saved state at {key}: nothing to re-enable",
            call.activity
        );
        return Ok(json!({"action": "reenable_az", "state": key, "reenabled": false}));
    };
    let saved: Value = serde_json::from_slice(&bytes)
        .map_err(|e| fail(format!("the state {key} is not what disable_az saves: {e}")))?;
    let mut out = json!({"action": "reenable_az", "state": key, "availability_zone": saved["undo"]["availability_zone"], "dry_run": call.plan_only});
    if call.plan_only {
        out["would_restore"] = saved["undo"]["subnets"].clone();
        return Ok(out);
    }
    let region = saved["region"]
        .as_str()
        .map(str::to_string)
        .or_else(|| super::context::region(&call));
    let restored = undo(ctx, region.as_deref(), &saved["undo"])
        .await
        .map_err(fail)?;
    if let Some(id) = saved["revert_id"].as_str() {
        reverts::mark_reverted(&call, id, &restored).await;
    }
    out["reenabled"] = json!(true);
    out["restored"] = restored;
    Ok(out)
}

/// Move every recorded subnet still on one of our NACLs back to its previous one, delete our
/// NACLs, and drop the saved state if it is this one's.
pub async fn undo(ctx: &FaultContext, region: Option<&str>, undo: &Value) -> Result<Value, String> {
    let client = ctx.ec2(&reverts::call_in(region)).await;
    let token = undo["token"].as_str().unwrap_or_default();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let vpcs = strings(&undo["vpcs"]);
    let mut ours: Vec<String> = strings(&undo["blackhole_nacl_ids"]);
    if !token.is_empty() && !vpcs.is_empty() {
        for (id, _) in nacl::ours(&client, &vpcs, token).await? {
            if !ours.contains(&id) {
                ours.push(id);
            }
        }
    }
    let subnets: Vec<(String, String)> = undo["subnets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            Some((
                s["subnet_id"].as_str()?.to_string(),
                s["network_acl_id"].as_str()?.to_string(),
            ))
        })
        .collect();
    let ids: Vec<String> = subnets.iter().map(|(s, _)| s.clone()).collect();
    let now = if ids.is_empty() {
        BTreeMap::new()
    } else {
        nacl::associations(&client, &ids)
            .await
            .map_err(|e| e.to_string())?
    };
    let mut said = Vec::new();
    let mut errors = Vec::new();
    for (subnet, previous) in &subnets {
        let what = match now.get(subnet) {
            Some((_, acl)) if acl == previous => "already on its previous NACL".to_string(),
            Some((association, acl)) if ours.contains(acl) => {
                match nacl::replace(&client, association, previous).await {
                    Ok(()) => "restored".to_string(),
                    Err(e) => {
                        errors.push(e.clone());
                        format!("failed: {e}")
                    }
                }
            }
            Some((_, acl)) => format!("on {acl}, not ours: left as found"),
            None => "no association found: left as found".to_string(),
        };
        said.push(json!({"subnet_id": subnet, "network_acl_id": previous, "restored": what}));
    }
    let mut deleted = Vec::new();
    if errors.is_empty() {
        for acl in &ours {
            match nacl::delete(&client, acl).await {
                Ok(()) => deleted.push(acl.clone()),
                Err(e) if e.contains("NotFound") => {}
                Err(e) => errors.push(e),
            }
        }
    }
    if let Some(key) = undo["state_key"].as_str() {
        let store = ctx.lock_store();
        if let Ok(Some(bytes)) = store.get(key).await {
            let saved: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if errors.is_empty()
                && saved["undo"]["token"] == token
                && let Err(e) = store.delete(key).await
            {
                errors.push(format!("the state {key} could not be deleted: {e}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(json!({"subnets": said, "deleted_nacls": deleted}))
    } else {
        Err(format!(
            "the AZ could not be fully re-enabled ({}); the record and the state are kept: {}",
            errors.join("; "),
            json!(said)
        ))
    }
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let c = ctx.clone();
    registry.register(
        MODULE,
        "disable_az",
        NativeActivity::new(
            vec![
                Param::required("availability_zone").of(ArgKind::Scalar),
                Param::optional("state_file_name").of(ArgKind::Scalar),
                Param::optional("region").of(ArgKind::Scalar),
            ],
            move |call| {
                let ctx = c.clone();
                async move { disable_az(&ctx, call).await }
            },
        )
        .fault(),
    );
    let c = ctx.clone();
    registry.register(
        MODULE,
        "reenable_az",
        NativeActivity::new(
            vec![
                Param::optional("state_file_name").of(ArgKind::Scalar),
                Param::optional("region").of(ArgKind::Scalar),
            ],
            move |call| {
                let ctx = c.clone();
                async move { reenable_az(&ctx, call).await }
            },
        )
        .fault(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_file_is_a_plain_name_under_faults_az() {
        let args = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            state_key(&args(json!({}))).unwrap(),
            "faults/az/disable_az.json"
        );
        assert_eq!(
            state_key(&args(json!({"state_file_name": "mine-1.json"}))).unwrap(),
            "faults/az/mine-1.json"
        );
        for bad in ["../x", "a/b", ".hidden", "a b"] {
            let e = state_key(&args(json!({"state_file_name": bad}))).unwrap_err();
            assert!(e.contains("state_file_name"), "{bad}: {e}");
        }
    }
}
