//! The worker's integration tests, one binary (each test binary links the AWS SDK: one link,
//! not eleven). Each module is one former test file; `util` is their shared harness.

mod aws_alarms;
mod aws_chaosaws;
mod aws_families;
mod aws_faults;
mod aws_metrics;
mod aws_network_faults;
mod aws_probes;
mod aws_redelivery;
mod aws_seed_names;
mod chaos_report;
mod cli;
mod conformance;
mod hostile;
mod k8s_api;
mod k8s_eks;
mod k8s_pod_faults;
mod load_run;
mod report;
mod run;
mod seed_shapes;
mod serve;
mod serve_blocking;
mod serve_uploaded;
mod util;
mod validate;
mod warnings;
