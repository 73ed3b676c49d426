//! AWS adapters for the broker's ports (SQS job queue, S3 store, EventBridge bus), the SDK
//! configuration they share, the choice between them and the embedded defaults, and the fault
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
pub mod settings;
pub mod sqs_queue;

pub use backend::{AwsSettings, Backend, Bus, Queue, Store};
pub use eventbridge_bus::EventBridgeBus;
pub use s3_store::S3Store;
pub use settings::{BackendArgs, BackendKind, Role};
pub use sqs_queue::SqsQueue;
