//! Property tests for the loaders of untrusted text (experiments, suites, job and trigger
//! messages): arbitrary bytes, arbitrary strings and random nestings of YAML/JSON fragments
//! never panic, never overflow the stack, and never build a value past the depth cap.
//!
//! The same inputs drive the cargo-fuzz targets in `fuzz/`. A short run is part of
//! `cargo test`; `PROPTEST_CASES=100000 cargo test -p shared --test it -- hostile_inputs`
//! runs a long one.

use crate::inputs;

use proptest::prelude::*;

/// 64 cases by default (a second or two), more with `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces of YAML and JSON syntax, including the ones that nest, alias and merge.
const FRAGMENTS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ": ",
    "- ",
    "-",
    "? ",
    "\n",
    "  ",
    "    ",
    "\t",
    "x",
    "1",
    "0x1f",
    "1.5e+3",
    "~",
    "yes",
    "null",
    "'s'",
    "\"q\"",
    "\"\\u00e4\"",
    "\"\\",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: ",
    "<<: *a",
    "---",
    "...",
    "!!str ",
    "!!int ",
    "!custom ",
    "#c",
    "|",
    ">",
    "%YAML 1.1\n",
    "title: ",
    "method: ",
    "waves: ",
    "experiments: ",
    "provider: ",
    "type: action",
    "name: n",
    "\"version\": 1",
    "\"suite\": ",
    "\"Records\": ",
    "\u{feff}",
    "\u{0}",
    "é",
    "\r\n",
];

/// A random sequence of fragments, with a run of openers somewhere (deep nesting near and
/// past the cap).
fn fragments() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..300),
        proptest::sample::select(&["[", "{", "- ", "{a: ", "[{\"k\": ", "a:\n "][..]),
        0usize..300,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(pieces, opener, depth, at)| {
            let mut text: String = pieces.concat();
            let cut = if text.is_empty() {
                0
            } else {
                at.index(text.len())
            };
            let cut = (0..=cut)
                .rev()
                .find(|&i| text.is_char_boundary(i))
                .unwrap_or(0);
            text.insert_str(cut, &opener.repeat(depth));
            text
        })
}

fn strings() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..2000).prop_map(String::from_iter)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..4096)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_crash_a_loader(b in bytes()) {
        inputs::experiment(&b);
        inputs::suite(&b);
        inputs::message(&b);
    }

    #[test]
    fn arbitrary_strings_never_crash_a_loader(s in strings()) {
        inputs::experiment(s.as_bytes());
        inputs::suite(s.as_bytes());
        inputs::message(s.as_bytes());
    }

    #[test]
    fn random_yaml_and_json_nestings_never_crash_a_loader(s in fragments()) {
        inputs::experiment(s.as_bytes());
        inputs::suite(s.as_bytes());
        inputs::message(s.as_bytes());
    }
}
