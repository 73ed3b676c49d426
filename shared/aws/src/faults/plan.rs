//! What a fault action returns when it does not act (a dry run, or an empty selection the
//! experiment allows): the plan; and how long an action that calls AWS once holds its locks.

use serde_json::{Value, json};
use shared::fleet::safety::targets::Selection;
use shared::providers::registry::NativeCall;
use std::time::Duration;

/// The plan a dry run (or an allowed empty selection) returns.
pub fn plan(call: &NativeCall, action: &str, selection: &Selection) -> Value {
    json!({
        "action": action,
        "targets": selection.chosen,
        "matched": selection.matched,
        "seed": selection.seed,
        "dry_run": call.plan_only,
    })
}

/// Nothing to do: a dry run, or an empty selection the experiment allows.
pub fn stops_here(call: &NativeCall, selection: &Selection) -> bool {
    if selection.chosen.is_empty() && !call.plan_only {
        tracing::warn!(
            "{}: no target selected (allowed to be empty): nothing to do",
            call.activity
        );
    }
    call.plan_only || selection.chosen.is_empty()
}

/// How long an EC2 action holds its targets' locks at most (it releases them as soon as the
/// call returns).
pub const LOCK_TTL: Duration = Duration::from_secs(300);
