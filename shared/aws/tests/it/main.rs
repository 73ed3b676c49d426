//! The AWS adapters' integration tests, against the moto server (`BROKER_TEST_AWS_ENDPOINT`),
//! one binary. Each module is one former test file; `util` is their shared harness.

mod contract_moto;
mod s3_versions;
mod ssm_documents;
mod ssm_send_once;
mod util;
