//! The broker: the job lifecycle and wave gating around the engine, generic over the ports.
//! Decisions are small pure functions (`gate.rs`); `serve.rs` is the worker's job lifecycle.

pub mod checkpoints;
pub mod gate;
pub mod guard;
pub mod lease_fit;
pub mod locks;
pub mod orphans;
pub mod producer;
pub mod serve;
pub mod triggers;
