//! Kubernetes (EKS) in the fault library: a thin API client (`client`, `objects`) that
//! authenticates the EKS way or from a kubeconfig (`auth`, `kubeconfig`, `connect`), pod
//! targeting under the guard rails (`targets`, also used by the pod faults run on nodes),
//! and the seed library's `experimentvr.k8s.actions` (`actions`, `image`, `stress`) and
//! `experimentvr.k8s.probes` (`probes`).

pub mod actions;
pub mod args;
pub mod auth;
pub mod client;
pub mod connect;
pub mod image;
pub mod kubeconfig;
pub mod objects;
pub mod pod_fault_table;
pub mod pod_faults;
pub mod pod_parameters;
pub mod probes;
pub mod stress;
pub mod targets;

use super::FaultContext;
use shared::providers::registry::Registry;
use std::sync::Arc;

/// Register the Kubernetes actions and probes.
pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    actions::register(registry, ctx);
    pod_faults::register(registry, ctx);
    probes::register(registry, ctx);
}
