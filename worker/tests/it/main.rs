//! The worker's integration tests, one binary (each test binary links the AWS SDK: one link,
//! not eleven). Each module is one former test file; `util` is their shared harness.

mod aws_alarms;
mod aws_chaosaws;
mod aws_faults;
mod aws_probes;
mod aws_redelivery;
mod chaos_report;
mod cli;
mod conformance;
mod hostile;
mod k8s_api;
mod k8s_eks;
mod k8s_pod_faults;
mod report;
mod run;
mod serve;
mod serve_blocking;
mod util;
mod validate;
mod warnings;
