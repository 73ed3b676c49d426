//! SSM in the fault library: the command documents the host faults send (`documents`), what a
//! send is (`command`), sending it exactly once (`send`), following it to its end and stopping
//! it when the run stops (`run`), the fleet's stopper for a dead worker's commands (`orphans`),
//! and `chaosaws.ssm.actions.send_command` (`send_command`).
//!
//! Dependencies point one way: `command` below `send` below `run`.

pub mod command;
pub mod documents;
pub mod orphans;
pub mod run;
pub mod send;
pub mod send_command;
