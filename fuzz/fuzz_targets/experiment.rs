//! Fuzz target: an experiment file (both formats), validated and located. The harness is shared with the proptest tests.
#![no_main]

#[path = "../../shared/tests/it/inputs/mod.rs"]
mod inputs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| inputs::experiment(data));
