//! The producer's integration tests, one binary (each test binary links the AWS SDK: one link,
//! not seven). Each module is one former test file; `util` is their shared harness.

mod aws_fleet;
mod cli;
mod fleet;
mod halt;
mod hostile;
mod infra;
mod infra_documents;
mod progress;
mod report;
mod telemetry;
mod util;
mod validate;
