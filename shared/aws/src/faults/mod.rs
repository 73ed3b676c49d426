//! Native activities on AWS, registered under the Python names experiments already use, so
//! they run with no Python and no `chaosaws` installed. This first set is read-only: the
//! `chaosaws.ec2.probes` used in steady-state hypotheses. The fault-injecting actions come with
//! the safety controls they need (target selection, opt-in tag, locks, kill switch), and the
//! CloudWatch alarm probes with a way to test them (the current `aws-sdk-cloudwatch` speaks
//! the RPC v2 CBOR protocol, which the moto emulator does not serve).
//!
//! Region: the activity's `region` argument where it has one, else the experiment's
//! `configuration.aws_region` (as `chaosaws` reads it), else the standard AWS chain.

pub mod chaosaws_actions;
mod clients;
pub mod cloudwatch;
pub mod documents;
pub mod ec2_actions;
pub mod ec2_probes;
pub mod instances;
pub mod safety;
pub mod ssm_command;
pub mod ssm_send;
pub mod stop_conditions;
pub mod target_locks;

use shared::providers::registry::Registry;

/// A registry holding every native activity the binaries offer.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    register(&mut registry);
    registry
}

/// Register every native AWS activity.
pub fn register(registry: &mut Registry) {
    ec2_probes::register(registry);
    cloudwatch::register(registry);
    ec2_actions::register(registry);
    chaosaws_actions::register(registry);
    ssm_command::register(registry);
}
