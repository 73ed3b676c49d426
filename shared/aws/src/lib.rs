//! AWS adapters for the broker's ports (SQS job queue, S3 store, EventBridge bus), the SDK
//! configuration they share, the enums that dispatch a port to the embedded or the AWS adapter
//! (`backend`; which one a binary uses is the binaries' choice, in the `cli` crate), and the fault
//! library (`faults`: native `chaosaws`/seed activities on EC2, SSM and CloudWatch).
//!
//! This crate is separate from `shared` so the engine and the embedded adapters build and test
//! without the AWS SDK (minutes to compile on two cores); only the binaries and this crate's
//! own tests pay for it.

pub mod backend;
pub mod eventbridge_bus;
pub mod faults;
pub mod provision;
pub mod s3_store;
pub mod sdk;
pub mod sqs_queue;

pub use backend::{AwsSettings, Backend, Bus, Queue, Role, Store};
pub use eventbridge_bus::EventBridgeBus;
pub use s3_store::S3Store;
pub use sqs_queue::SqsQueue;
