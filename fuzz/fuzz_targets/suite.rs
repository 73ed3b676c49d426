//! Fuzz target: a suite file (both formats). The harness is shared with the proptest tests.
#![no_main]

#[path = "../../shared/tests/it/inputs/mod.rs"]
mod inputs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| inputs::suite(data));
