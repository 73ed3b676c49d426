//! The fault library: native activities on AWS, registered under the Python names experiments
//! already use, so they run with no Python and no `chaosaws` installed. The read-only probes
//! (`ec2::probes`, `cloudwatch`) feed steady-state hypotheses; the fault-injecting actions
//! (`ec2::actions`, `ec2::host_faults`, `ssm::send_command`) come with the safety controls they
//! need (target selection, opt-in tag, locks, kill switch, stop conditions). The families that
//! change AWS resources (`ec2::iam_role`, `az`, `ebs`, `fis`) also put their way back on record
//! first (`reverts`), undone when a run stops mid-action and on a dead worker's redelivery.
//!
//! Everything the activities share lives in one [`FaultContext`], built once by the binary and
//! captured by every activity `register` adds: there are no process-wide globals.
//!
//! Region: the activity's `region` argument where it has one, else the experiment's
//! `configuration.aws_region` (as `chaosaws` reads it), else the standard AWS chain.

pub mod az;
pub mod cloudwatch;
pub mod context;
pub mod ebs;
pub mod ec2;
mod family_args;
pub mod fis;
pub mod k8s;
pub mod network;
mod plan;
pub mod reverts;
pub mod safety;
pub mod ssm;
pub mod stop_conditions;
pub mod target_locks;

pub use context::FaultContext;

use shared::providers::registry::{LazyRegistry, Registry};
use std::sync::Arc;

/// A registry holding every native activity the binaries offer, acting within `ctx`: the
/// fault library's, and the load generator and probes (`shared::providers::load`, no AWS).
pub fn registry(ctx: Arc<FaultContext>) -> Registry {
    let mut registry = Registry::new();
    shared::providers::load::register(&mut registry);
    register(&mut registry, ctx);
    registry
}

/// `registry(ctx)`, built on its first read: what the binaries hand their `Providers`, so that a
/// run naming no native activity never builds it (`LazyRegistry`).
pub fn lazy_registry(ctx: Arc<FaultContext>) -> LazyRegistry {
    LazyRegistry::new(move || registry(ctx))
}

/// Register every native AWS activity; each captures `ctx`.
pub fn register(registry: &mut Registry, ctx: Arc<FaultContext>) {
    ec2::probes::register(registry, &ctx);
    cloudwatch::register(registry, &ctx);
    ec2::host_faults::register(registry, &ctx);
    ec2::actions::register(registry, &ctx);
    ssm::send_command::register(registry, &ctx);
    ssm::orphans::register(registry, &ctx);
    network::register(registry, &ctx);
    k8s::register(registry, &ctx);
    ec2::iam_role::register(registry, &ctx);
    az::register(registry, &ctx);
    ebs::register(registry, &ctx);
    fis::register(registry, &ctx);
}
