//! The experiment engine: plain async Rust that runs a validated `Experiment` against
//! `Providers` and returns a `Journal`.
//!
//! It knows nothing of queues, stores, buses or AWS accounts (a test in `tests/tidy.rs` keeps
//! it so): the broker wraps it, the `worker run` command calls it directly.

pub mod activity;
mod continuous;
pub mod controls;
pub mod hypothesis;
mod report;
pub mod run;
mod start;
mod steps;
pub mod strategy;
pub mod tolerance;

pub use run::{Observer, RunOptions, run_experiment};

/// The `tracing` target of the events a trace keeps as span events (a fault on record, a
/// tripwire that stopped a run): the OpenTelemetry export takes these and no other event, so
/// no log line (which may quote an activity's output) goes into a trace.
pub const TRACE_EVENT: &str = "broker::trace";
