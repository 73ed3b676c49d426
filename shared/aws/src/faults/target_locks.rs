//! The per-target locks fault actions take (`shared::fleet::safety::locks`), in the store their
//! `FaultContext` names: the fleet's store for `worker serve` and `producer run`, and for a
//! lone `worker run` the embedded store under `BROKER_STATE_DIR` (default `.broker`,
//! [`lone_store`]), so two runs on one machine still never stack faults on a host.

use super::FaultContext;
use crate::Store;
use shared::cleanup::Cleanup;
use shared::fleet::safety::locks::{self, OnConflict};
use shared::providers::ActivityError;
use shared::providers::registry::NativeCall;
use std::sync::Arc;
use std::time::Duration;

/// The store a lone `worker run` locks in: the embedded one under `BROKER_STATE_DIR` (default
/// `.broker`), where its kill switch is too.
pub fn lone_store() -> Store {
    let dir = std::env::var_os("BROKER_STATE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| shared::config::DEFAULT_STATE_DIR.into());
    Store::Dir(shared::adapters::embedded::DirStore::new(dir.join("store")))
}

/// Locks held by one action on its targets; released when dropped (a run stopped mid-fault
/// releases them too, from the process's `Cleanup`, which the binaries wait for before they exit;
/// if even that fails the locks expire). A running command's guard holds a share of them
/// (`share`): a stopped command is cancelled and seen to end before the last share goes and
/// the targets are unlocked, so no second fault lands on a host still being reverted.
pub struct Held(Option<Arc<LockSet>>);

/// The locks themselves; whoever drops the last share releases them.
pub struct LockSet {
    targets: Vec<String>,
    owner: String,
    store: Store,
    cleanup: Cleanup,
}

/// Lock every target for `ttl`, as the experiment's `locks` policy says.
pub async fn lock(
    ctx: &FaultContext,
    call: &NativeCall,
    targets: &[String],
    ttl: Duration,
) -> Result<Held, ActivityError> {
    let on_conflict: OnConflict =
        locks::policy(&call.extension).map_err(|e| ActivityError::Failed(e.to_string()))?;
    // unique to this holding (host, process, a random number), as `locks::acquire` needs: a
    // lock found naming this owner is one of our own writes that landed
    let owner = format!(
        "{}-{}-{:x}",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .unwrap_or_default()
            .trim(),
        std::process::id(),
        super::ec2::instances::seed(&NativeCall::default()).unwrap_or_default()
    );
    locks::acquire(
        ctx.lock_store(),
        targets,
        &owner,
        &call.activity,
        ttl,
        on_conflict,
    )
    .await
    .map_err(|e| match e {
        locks::LockError::Held { target, message } => ActivityError::Refused(
            shared::providers::Refusal::new("target_locked", message).on(target),
        ),
        e @ locks::LockError::Store { .. } => ActivityError::Failed(e.to_string()),
    })?;
    let held = Held(Some(Arc::new(LockSet {
        targets: targets.to_vec(),
        owner: owner.clone(),
        store: ctx.lock_store().clone(),
        cleanup: ctx.cleanup().clone(),
    })));
    // not on record: refuse to act (dropping `held` releases the locks)
    call.recorder
        .record(serde_json::json!({
            "kind": "locks",
            "activity": call.activity,
            "at": shared::clock::now_iso(),
            "owner": owner,
            "targets": targets,
            "expires_in": ttl.as_secs(),
        }))
        .await
        .map_err(|e| {
            ActivityError::Failed(format!(
                "the locks could not be put on record, so nothing was done: {e}"
            ))
        })?;
    Ok(held)
}

impl Held {
    /// Release now (after the fault's revert), or, if a stopped command's clean-up still holds
    /// a share, as soon as it is done.
    pub async fn release(mut self) {
        let Some(set) = self.0.take() else { return };
        if let Ok(mut set) = Arc::try_unwrap(set) {
            let targets = std::mem::take(&mut set.targets);
            locks::release(&set.store, &targets, &set.owner).await;
        }
    }

    /// A share for a command's guard: the locks stay held while it lives.
    pub fn share(&self) -> Option<Arc<LockSet>> {
        self.0.clone()
    }
}

impl Drop for LockSet {
    fn drop(&mut self) {
        if self.targets.is_empty() {
            return;
        }
        let (targets, owner) = (std::mem::take(&mut self.targets), self.owner.clone());
        let store = self.store.clone();
        let what = format!("release the locks on {}", targets.join(", "));
        self.cleanup.spawn(&what, async move {
            locks::release(&store, &targets, &owner).await
        });
    }
}
