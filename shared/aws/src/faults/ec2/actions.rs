//! `chaosaws`'s most used EC2 actions, natively, with the fault library's safety: every one
//! reads its arguments into a `targets::Selector` (pure, `targeting.rs`), resolves its targets
//! with `instances::resolve` (deployment limits, opt-in tag, the choice put in the journal
//! before anything acts), returns the plan under a dry run, and only then calls AWS on exactly
//! the chosen instances.
//!
//! - `chaosaws.ec2.actions`: `stop_instances(instance_ids=None, az=None, filters=None,
//!   force=False)`, `start_instances(instance_ids=None, az=None, filters=None)`,
//!   `restart_instances(...)`, `terminate_instances(...)` (same three), and the single-instance
//!   `stop_instance(instance_id=None, az=None, force=False, filters=None)` and
//!   `terminate_instance(instance_id=None, az=None, filters=None)`. Candidates must be in a
//!   state the action makes sense for: `running`/`pending` to stop or terminate, `running` to
//!   restart, `stopped` to start. Spot instances are not special-cased (`chaosaws` cancels
//!   their requests and terminates them on stop).
//!   Results are boto3's: stop → `[{"StoppingInstances": [change]}]`, terminate →
//!   `[{"TerminatingInstances": [change]}]`, start → `[change]`, restart → `[]` (as
//!   `chaosaws`), a change being `{"InstanceId", "CurrentState": {"Code", "Name"},
//!   "PreviousState": {...}}`.
//! - `experimentvr.ec2.actions.terminate_instance(targets, test_target_type, tag_key,
//!   tag_value, region)`: the seed library's, selection as its other faults.
//!
//! Like the fault library's other actions, each one locks its targets (`target_locks.rs`)
//! while it acts, so it never stacks on a host another fault holds.

use super::instances::{experimentvr_selector, resolve, resolve_as, server_filters};
use super::targeting::{RUNNING, chaosaws_targeting, force};
use crate::faults::FaultContext;
use crate::faults::context::failed;
use crate::faults::plan::{LOCK_TTL, plan, stops_here};
use crate::faults::target_locks;
use aws_sdk_ec2::types::InstanceStateChange;
use serde_json::{Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use std::sync::Arc;

const EC2_MODULE: &str = "chaosaws.ec2.actions";
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
    ctx: &FaultContext,
    call: &NativeCall,
    op: Op,
    ids: Vec<String>,
    force: bool,
) -> Result<Value, ActivityError> {
    let client = ctx.ec2(call).await;
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

async fn ec2_action(
    ctx: &FaultContext,
    action: &Ec2Action,
    call: NativeCall,
) -> Result<Value, ActivityError> {
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
    let selection = resolve_as(
        ctx,
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
    let held = target_locks::lock(ctx, &call, &selection.chosen, LOCK_TTL).await?;
    let result = act(ctx, &call, action.op, selection.chosen, force).await;
    held.release().await;
    result
}

/// The seed library's `terminate_instance`.
async fn seed_terminate(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let selector =
        experimentvr_selector(&call.arguments, "running").map_err(ActivityError::Failed)?;
    let filters = server_filters(&selector);
    let selection = resolve(ctx, &call, selector, filters).await?;
    let mut out = plan(&call, "terminate_instance", &selection);
    if stops_here(&call, &selection) {
        return Ok(out);
    }
    let held = target_locks::lock(ctx, &call, &selection.chosen, LOCK_TTL).await?;
    let result = act(ctx, &call, Op::Terminate, selection.chosen, false).await;
    held.release().await;
    let result = result?;
    out["TerminatingInstances"] = result[0]["TerminatingInstances"].clone();
    Ok(out)
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    for action in EC2_ACTIONS {
        let a = *action;
        let c = ctx.clone();
        registry.register(
            EC2_MODULE,
            a.func,
            NativeActivity::new(a.params(), move |call| {
                let ctx = c.clone();
                async move { ec2_action(&ctx, &a, call).await }
            })
            .fault(),
        );
    }
    let c = ctx.clone();
    registry.register(
        SEED_MODULE,
        "terminate_instance",
        NativeActivity::new(super::fault_table::SELECTION.to_vec(), move |call| {
            let ctx = c.clone();
            async move { seed_terminate(&ctx, call).await }
        })
        .fault(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
