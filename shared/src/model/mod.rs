//! Data types shared by the loader, the engine and (later) the broker: no I/O here.

pub mod control;
pub mod duration;
pub mod experiment;
pub mod journal;
pub mod suite;

pub use experiment::*;
pub use journal::*;
