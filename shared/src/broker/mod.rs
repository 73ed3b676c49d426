//! The broker: the job lifecycle and wave gating around the engine, generic over the ports.
//! Decisions are small pure functions (`gate.rs`); the I/O around them comes with the fleet.

pub mod gate;
