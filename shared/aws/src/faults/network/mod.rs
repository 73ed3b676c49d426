//! The network blackholes of the seed library (issue 15): AWS services' published ranges
//! (`actions`, from `ip_ranges`), a URL's host and inactive DNS (`actions`), an MSK cluster's
//! brokers (`kafka`), each sent as one of our SSM documents (`BlackholeAddresses`,
//! `PointInactiveDNS`) through the host faults' guard rails (`inject`).

pub mod actions;
pub mod inject;
pub mod ip_ranges;
pub mod kafka;

use crate::faults::FaultContext;
use shared::providers::registry::Registry;
use std::sync::Arc;

/// Register every network blackhole; each captures `ctx`.
pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    actions::register(registry, ctx);
    kafka::register(registry, ctx);
}
