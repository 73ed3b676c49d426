//! `experimentvr.ec2.actions`: the seed library's EC2 host faults, run as SSM command documents
//! on the instances target selection chose, with the seed's argument names so its experiments
//! run unchanged.
//!
//! Every fault is one row of `FAULTS` (`fault_table`): the function name, the document (from
//! the shared list in `ssm::documents`) and how its experiment arguments map to the document's parameters. The
//! action then runs the same steps for all of them:
//! 1. read the arguments into a selector and severity stages (pure: `stages.rs`);
//! 2. refuse a total duration over `max_duration` (the library's default: 900 s; the library
//!    compares only the first stage with it, we the sum of all of them);
//! 3. resolve the targets under the deployment's limits and put them on record;
//! 4. under a dry run, stop here and return the plan;
//! 5. lock the targets (`target_locks.rs`), so no other fault stacks on them;
//! 6. run each stage's command on the targets and wait for it; a failed stage ends the ladder
//!    (`FailFast`, the default) or the next stage still runs (`Continue`; the action then fails
//!    at the end, listing the failed stages); then release the locks.

use super::fault_table::{FAULTS, Fault};
use super::instances::{experimentvr_selector, resolve, server_filters};
use super::stages::{Stage, keeps_going, ladder, max_for, over_max, stage_seconds, total_seconds};
use crate::faults::FaultContext;
use crate::faults::ssm::command::{Command, one_value_each};
use crate::faults::ssm::{documents, run};
use crate::faults::target_locks;
use serde_json::{Value, json};
use shared::providers::registry::{NativeActivity, NativeCall, Registry};
use shared::providers::{ActivityError, Refusal};
use std::sync::Arc;
use std::time::Duration;

const MODULE: &str = "experimentvr.ec2.actions";

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    for fault in FAULTS {
        let f = *fault;
        let c = ctx.clone();
        registry.register(
            MODULE,
            f.func,
            NativeActivity::new(f.params(), move |call| {
                let ctx = c.clone();
                async move { inject(&ctx, &f, call).await }
            })
            .fault(),
        );
    }
}

/// How long past the fault's own duration to wait for the command to end.
const COMMAND_MARGIN: Duration = Duration::from_secs(300);

async fn inject(
    ctx: &FaultContext,
    fault: &Fault,
    call: NativeCall,
) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let (levels, stages): (Vec<String>, Vec<Stage>) = ladder(fault, &call.arguments)
        .map_err(fail)?
        .into_iter()
        .unzip();
    let total = total_seconds(&stages).map_err(fail)?;
    let max = max_for(fault, &call.arguments).map_err(fail)?;
    if let Some(message) = over_max(total, max, stages.len()) {
        return Err(ActivityError::Refused(Refusal::new(
            "max_duration",
            message,
        )));
    }
    let keep_going = keeps_going(fault, &call.arguments).map_err(fail)?;
    let selector = experimentvr_selector(&call.arguments, "running").map_err(fail)?;
    let filters = server_filters(&selector);
    let selection = resolve(ctx, &call, selector, filters).await?;
    let document = documents::registered_name(ctx.settings(), &fault.document);
    let mut plan = json!({
        "document": document,
        "targets": selection.chosen,
        "matched": selection.matched,
        "seed": selection.seed,
        "total_duration": total,
        "stages": stages,
        "levels": levels,
    });
    if call.plan_only || selection.chosen.is_empty() {
        if selection.chosen.is_empty() {
            tracing::warn!(
                "{}: no target selected (allowed to be empty): nothing to do",
                call.activity
            );
        }
        plan["dry_run"] = json!(call.plan_only);
        return Ok(plan);
    }
    // the locks last as long as the fault may: every stage, each with its margin
    let ttl = Duration::from_secs(total)
        .saturating_add(COMMAND_MARGIN.saturating_mul(stages.len().min(1000) as u32));
    let held = target_locks::lock(ctx, &call, &selection.chosen, ttl).await?;
    let mut results = Vec::new();
    let mut failed_stages = Vec::new();
    for (i, stage) in stages.iter().enumerate() {
        let command = Command {
            document: document.clone(),
            instance_ids: selection.chosen.clone(),
            parameters: one_value_each(stage),
            wait: Duration::from_secs(stage_seconds(stage).unwrap_or(0)) + COMMAND_MARGIN,
        };
        tracing::info!(
            "  {}: stage {}/{} on {}",
            document,
            i + 1,
            stages.len(),
            selection.chosen.join(", ")
        );
        match run::run(ctx, &call, &command, Some(&held)).await {
            Ok(r) => results
                .push(json!({"stage": i, "level": levels[i], "status": "succeeded", "command": r})),
            Err(e) => {
                results.push(json!({"stage": i, "level": levels[i], "status": "failed", "error": e.to_string()}));
                failed_stages.push(format!("stage {}: {e}", i + 1));
                if !keep_going {
                    break;
                }
            }
        }
    }
    held.release().await;
    plan["results"] = json!(results);
    if failed_stages.is_empty() {
        Ok(plan)
    } else {
        Err(ActivityError::Failed(failed_stages.join("; ")))
    }
}
