//! EC2 in the fault library: the `chaosaws.ec2.probes` (`probes`), which instances an action
//! acts on (`instances`, `targeting`), the `chaosaws.ec2.actions` and the seed's
//! `terminate_instance` (`actions`), and the seed library's host faults run as SSM documents
//! (`host_faults`, their table in `fault_table`, their severity ladder in `stages`), and the
//! seed's `remove_iam_role` (`iam_role`, an instance profile taken off and put back).

pub mod actions;
pub mod fault_args;
pub mod fault_table;
pub mod host_faults;
pub mod iam_role;
pub mod instances;
pub mod probes;
pub mod stages;
pub mod targeting;
