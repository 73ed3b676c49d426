//! The fault library: native activities on AWS, registered under the Python names experiments
//! already use, so they run with no Python and no `chaosaws` installed. The read-only probes
//! (`ec2::probes`, `cloudwatch`) feed steady-state hypotheses; the fault-injecting actions
//! (`ec2::actions`, `ec2::host_faults`, `ssm::send_command`) come with the safety controls they
//! need (target selection, opt-in tag, locks, kill switch, stop conditions).
//!
//! Everything the activities share lives in one [`FaultContext`], built once by the binary and
//! captured by every activity `register` adds: there are no process-wide globals.
//!
//! Region: the activity's `region` argument where it has one, else the experiment's
//! `configuration.aws_region` (as `chaosaws` reads it), else the standard AWS chain.

pub mod cloudwatch;
pub mod context;
pub mod ec2;
pub mod k8s;
mod plan;
pub mod safety;
pub mod ssm;
pub mod stop_conditions;
pub mod target_locks;

pub use context::FaultContext;

use shared::providers::registry::Registry;
use std::sync::Arc;

/// A registry holding every native activity the binaries offer, acting within `ctx`.
pub fn registry(ctx: Arc<FaultContext>) -> Registry {
    let mut registry = Registry::new();
    register(&mut registry, ctx);
    registry
}

/// Register every native AWS activity; each captures `ctx`.
pub fn register(registry: &mut Registry, ctx: Arc<FaultContext>) {
    ec2::probes::register(registry, &ctx);
    cloudwatch::register(registry, &ctx);
    ec2::host_faults::register(registry, &ctx);
    ec2::actions::register(registry, &ctx);
    ssm::send_command::register(registry, &ctx);
    ssm::orphans::register(registry, &ctx);
    k8s::register(registry, &ctx);
}
