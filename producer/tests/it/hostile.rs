//! `producer validate` on hostile suites (and a suite naming a hostile experiment): each is
//! refused in bounded time and memory with a located message, never a crash (issue 11).

use crate::util::hostile;

use hostile::Measured;
use std::path::Path;
use std::process::Command;

/// `producer validate NAME` in `dir`, measured.
fn validate(dir: &Path, name: &str) -> Measured {
    let mut command = Command::new(env!("CARGO_BIN_EXE_producer"));
    command
        .args(["validate", name])
        .current_dir(dir)
        .env_remove("BROKER_MAX_DOCUMENT_BYTES");
    let m = hostile::measure(command);
    eprintln!(
        "{name}: code {:?}, {:.2} s, {:.0} MiB",
        m.code, m.seconds, m.max_rss_mib
    );
    m
}

#[test]
fn hostile_suites_are_refused_with_a_location_in_bounded_time_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let deep = format!(
        "name: s\nwaves: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let compact = format!("name: s\nwaves:\n  {}x\n", "- ".repeat(100_000));
    let cases: [(&str, Vec<u8>, &str); 6] = [
        (
            "flow.yaml",
            deep.into_bytes(),
            "the document nests deeper than 100 levels",
        ),
        (
            "block.yaml",
            compact.into_bytes(),
            "block.yaml:3:201: the document nests deeper than 100 levels",
        ),
        (
            "deep.json",
            hostile::deep_json(100_000),
            "deep.json:1:145: the document nests deeper than 100 levels",
        ),
        (
            "bomb.yaml",
            hostile::alias_bomb(),
            "bomb.yaml:7:45: the document holds more than 100000 values",
        ),
        (
            "garbage.yaml",
            hostile::garbage(64 * 1024),
            "is not valid UTF-8",
        ),
        (
            "wide.yaml",
            hostile::utf16(),
            "wide.yaml:1:1: the file is UTF-16 text",
        ),
    ];
    for (name, bytes, located) in cases {
        std::fs::write(dir.path().join(name), bytes).unwrap();
        let m = validate(dir.path(), name);
        m.assert_refused(located);
    }
}

#[test]
fn a_20_mb_suite_is_refused_by_the_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let size = hostile::write_big_experiment(&dir.path().join("big.yaml"), 20 * 1024 * 1024);
    let m = validate(dir.path(), "big.yaml");
    m.assert_refused(&format!(
        "the document is {size} bytes, over the 10485760 byte limit"
    ));
}

#[test]
fn a_suite_naming_a_hostile_experiment_is_refused_at_the_experiment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("deep.yaml"),
        hostile::deep_compact_block(100_000),
    )
    .unwrap();
    std::fs::write(dir.path().join("bomb.yaml"), hostile::alias_bomb()).unwrap();
    std::fs::write(
        dir.path().join("suite.yaml"),
        "name: s\nwaves:\n  - experiments: [deep.yaml, bomb.yaml]\n",
    )
    .unwrap();
    let m = validate(dir.path(), "suite.yaml");
    m.assert_refused("deep.yaml:1:201: the document nests deeper than 100 levels");
    assert!(
        m.stderr
            .contains("bomb.yaml:7:45: the document holds more than 100000 values"),
        "{}",
        m.stderr
    );
}
