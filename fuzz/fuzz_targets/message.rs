//! Fuzz target: a queue message, read as a job and as a trigger. The harness is shared with the proptest tests.
#![no_main]

#[path = "../../shared/tests/it/inputs/mod.rs"]
mod inputs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| inputs::message(data));
