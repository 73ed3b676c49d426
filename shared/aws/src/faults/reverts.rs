//! The way back for the faults that change AWS resources rather than run a document on a host
//! (an instance profile taken off, subnets swapped onto a deny-all NACL, a volume detached, a FIS
//! experiment started): each puts what undoes it on record (`kind: revert`) before it acts; a run
//! stopped mid-action undoes it from the process's `Cleanup` (the drop of [`Armed`]); and the
//! fleet's redelivery stopper (`ssm::orphans`, `experiment_broker.redelivery.stop_recorded`)
//! undoes every one a dead worker left on record without its `kind: reverted`.
//!
//! A record names its family; [`undo`] sends it to that family's revert, which reads the state it
//! finds before it changes anything, so undoing twice (the owner's revert, then a redelivery's)
//! does no harm.

use super::FaultContext;
use super::target_locks::{Held, LockSet};
use serde_json::{Map, Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::NativeCall;
use std::sync::Arc;

/// The record kind of a way back, and of its having been taken.
pub const KIND: &str = "revert";
pub const DONE: &str = "reverted";
/// A way back tried and failed (still pending).
pub const FAILED: &str = "revert_failed";

/// A fault on record and not yet undone. Dropped while armed (the run stopped mid-action), it
/// undoes the fault from the process's `Cleanup`, then lets go of its share of the locks.
pub struct Armed {
    ctx: Arc<FaultContext>,
    record: Value,
    locks: Option<Arc<LockSet>>,
    armed: bool,
}

/// A call in `region` with no other argument: what a family's revert builds its clients from.
pub fn call_in(region: Option<&str>) -> NativeCall {
    let mut arguments = Map::new();
    if let Some(r) = region {
        arguments.insert("region".into(), json!(r));
    }
    NativeCall {
        arguments,
        ..NativeCall::default()
    }
}

/// Put the way back for `family` (`undo`, the family's own description) on record, before the
/// fault acts; a record that cannot be written means nothing is done.
pub async fn on_record(
    ctx: &Arc<FaultContext>,
    call: &NativeCall,
    family: &str,
    undo: Value,
    locks: Option<&Held>,
) -> Result<Armed, ActivityError> {
    let record = json!({
        "kind": KIND,
        "family": family,
        "activity": call.activity,
        "at": shared::clock::now_iso(),
        "revert_id": shared::ids::random_id(),
        "region": super::context::region(call),
        "undo": undo,
    });
    call.recorder.record(record.clone()).await.map_err(|e| {
        ActivityError::Failed(format!(
            "the way back could not be put on record, so nothing was done: {e}"
        ))
    })?;
    Ok(Armed {
        ctx: ctx.clone(),
        record,
        locks: locks.and_then(Held::share),
        armed: true,
    })
}

impl Armed {
    /// The id the record and its `reverted` share.
    pub fn id(&self) -> &str {
        self.record["revert_id"].as_str().unwrap_or_default()
    }

    /// What the record says undoes the fault.
    pub fn undo(&self) -> &Value {
        &self.record["undo"]
    }

    /// Complete the way back once more is known (e.g. the id of what was started), on record
    /// again under the same id; the last record of an id is the one a redelivery reads.
    pub async fn update(&mut self, call: &NativeCall, undo: Value) -> Result<(), String> {
        self.record["undo"] = undo;
        self.record["at"] = json!(shared::clock::now_iso());
        call.recorder.record(self.record.clone()).await
    }

    /// Undo the fault now and put that on record.
    pub async fn revert(mut self, call: &NativeCall) -> Result<Value, ActivityError> {
        // armed until the undo has returned: a run stopped during it (a detach still settling,
        // a profile association retried) still undoes it from the clean-up; twice is harmless
        let outcome = undo(&self.ctx, &self.record).await;
        self.armed = false;
        // a failed revert is on record as such, not as done: a redelivery tries it again
        let mut done = json!({
            "kind": if outcome.is_ok() { DONE } else { FAILED },
            "activity": call.activity,
            "at": shared::clock::now_iso(),
            "revert_id": self.id(),
        });
        match &outcome {
            Ok(v) => done["outcome"] = v.clone(),
            Err(e) => done["error"] = json!(e),
        }
        if let Err(e) = call.recorder.record(done).await {
            tracing::error!("the revert {} is done but not on record: {e}", self.id());
        }
        outcome.map_err(ActivityError::Failed)
    }

    /// The fault stays on after the action returns (a later action or a redelivery undoes
    /// it): no revert on drop.
    pub fn leave_on(mut self) {
        self.armed = false;
    }
}

impl Drop for Armed {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (ctx, record, locks) = (self.ctx.clone(), self.record.clone(), self.locks.take());
        let what = format!(
            "revert {} ({})",
            record["family"].as_str().unwrap_or("?"),
            record["activity"].as_str().unwrap_or("?")
        );
        tracing::warn!("the run stopped mid-fault: {what}");
        let cleanup = ctx.cleanup().clone();
        cleanup.spawn(&what, async move {
            if let Err(e) = undo(&ctx, &record).await {
                tracing::error!("{e}");
            }
            drop(locks);
        });
    }
}

/// Put on record that the way back `id` was taken by `call` (an action that undoes another's
/// fault, such as `reenable_az`).
pub async fn mark_reverted(call: &NativeCall, id: &str, outcome: &Value) {
    let done = json!({
        "kind": DONE,
        "activity": call.activity,
        "at": shared::clock::now_iso(),
        "revert_id": id,
        "outcome": outcome,
    });
    if let Err(e) = call.recorder.record(done).await {
        tracing::error!("the revert {id} is done but not on record: {e}");
    }
}

/// The ways back among `records` not yet taken: per id the last `revert` record, unless a
/// `reverted` one names the id; in record order.
pub fn pending(records: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for r in records {
        let Some(id) = r["revert_id"].as_str() else {
            continue;
        };
        if r["kind"] == KIND {
            match out.iter_mut().find(|p| p["revert_id"] == id) {
                Some(p) => *p = r.clone(),
                None => out.push(r.clone()),
            }
        } else if r["kind"] == DONE {
            out.retain(|p| p["revert_id"] != id);
        }
    }
    out
}

/// Undo every fault `records` leave on (a dead worker's); what each revert did, for the journal.
pub async fn undo_recorded(ctx: &FaultContext, records: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for record in pending(records) {
        tracing::warn!(
            "{} ({}) was on a dead worker's record: undoing it before the rollbacks",
            record["family"],
            record["activity"]
        );
        let mut said = json!({"revert_id": record["revert_id"], "family": record["family"]});
        match undo(ctx, &record).await {
            Ok(v) => said["outcome"] = v,
            Err(e) => said["error"] = json!(e),
        }
        out.push(said);
    }
    out
}

/// Undo what one `revert` record describes, through its family.
pub async fn undo(ctx: &FaultContext, record: &Value) -> Result<Value, String> {
    let region = record["region"].as_str();
    let mut undo = record["undo"].clone();
    undo["revert_id"] = record["revert_id"].clone();
    let undo = &undo;
    match record["family"].as_str().unwrap_or_default() {
        super::ec2::iam_role::FAMILY => super::ec2::iam_role::undo(ctx, region, undo).await,
        super::az::FAMILY => super::az::undo(ctx, region, undo).await,
        super::ebs::FAMILY => super::ebs::undo(ctx, region, undo).await,
        super::fis::FAMILY => super::fis::undo(ctx, region, undo).await,
        other => Err(format!(
            "a revert record of an unknown family {other:?}: nothing was undone"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_way_back_is_pending_until_its_reverted_record_and_the_last_record_of_an_id_counts() {
        let records = [
            json!({"kind": "targets"}),
            json!({"kind": KIND, "revert_id": "a", "undo": {"n": 1}}),
            json!({"kind": KIND, "revert_id": "b", "undo": {"n": 1}}),
            json!({"kind": KIND, "revert_id": "a", "undo": {"n": 2}}),
            json!({"kind": DONE, "revert_id": "b"}),
            json!({"kind": KIND, "revert_id": "c", "undo": {}}),
            // a failed revert leaves it pending: a redelivery tries again
            json!({"kind": FAILED, "revert_id": "c"}),
            json!({"kind": "ssm_command", "revert_id": "c"}),
        ];
        let ids: Vec<(String, Value)> = pending(&records)
            .iter()
            .map(|r| (r["revert_id"].as_str().unwrap().into(), r["undo"].clone()))
            .collect();
        assert_eq!(
            ids,
            [("a".into(), json!({"n": 2})), ("c".into(), json!({}))]
        );
        assert!(pending(&[]).is_empty());
    }
}
