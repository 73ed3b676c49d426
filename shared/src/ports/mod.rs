//! Ports: the traits the broker talks to, designed from SQS, S3 and EventBridge semantics so
//! the AWS adapters and the embedded ones (SQLite, a directory) drop in behind the same calls.
//!
//! One port per file; each trait's doc lists its promises, and `crate::contract` has one test
//! per promise that every adapter must pass. SDK and SQL types never cross this boundary.

pub mod bus;
pub mod queue;
pub mod store;

pub use bus::{BusError, Event, EventBus};
pub use queue::{DeadLetter, JobQueue, Message, QueueError};
pub use store::{ObjectStore, StoreError};
