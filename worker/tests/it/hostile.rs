//! `worker validate` on hostile files: each is refused (or read) in bounded time and memory,
//! with a located message, and never crashes the process (issue 11, point 3).
//!
//! The binary is `BROKER_WORKER_BIN` when set, so these tests also measure a release build.

use crate::util;
use crate::util::hostile;

use hostile::Measured;
use util::Sandbox;

/// `worker validate NAME` on `bytes`, measured.
fn validate(sb: &Sandbox, name: &str, bytes: &[u8], env: &[(&str, &str)]) -> Measured {
    std::fs::write(sb.path(name), bytes).unwrap();
    validate_file(sb, name, env)
}

/// `worker validate NAME` on the file already in the sandbox, measured.
fn validate_file(sb: &Sandbox, name: &str, env: &[(&str, &str)]) -> Measured {
    let path = sb.path(name);
    let mut command = sb.command(&["validate", path.to_str().unwrap()]);
    command.env_remove("BROKER_MAX_DOCUMENT_BYTES");
    for (k, v) in env {
        command.env(k, v);
    }
    let measured = hostile::measure(command);
    eprintln!(
        "{name} ({} bytes): code {:?}, {:.2} s, {:.0} MiB",
        std::fs::metadata(&path).unwrap().len(),
        measured.code,
        measured.seconds,
        measured.max_rss_mib
    );
    measured
}

#[test]
fn deeply_nested_block_sequences_are_refused_where_the_depth_cap_is_crossed() {
    let sb = Sandbox::new();
    // the top mapping is level 1; one list a line from line 4: the 100th list (level 101)
    // opens on line 103, after 101 spaces
    let m = validate(&sb, "block.yaml", &hostile::deep_block(1_000), &[]);
    m.assert_refused("block.yaml:103:102: the document nests deeper than 100 levels (expected at most 100 nested lists and mappings)",
    );
    // the issue's 40 KB and 200 KB files (20 000 and 100 000 levels), which used to abort
    for depth in [20_000, 100_000] {
        let m = validate(
            &sb,
            "compact.yaml",
            &hostile::deep_compact_block(depth),
            &[],
        );
        m.assert_refused("compact.yaml:1:201: the document nests deeper than 100 levels");
    }
}

#[test]
fn deeply_nested_flow_sequences_are_refused_as_too_deep() {
    let sb = Sandbox::new();
    let m = validate(&sb, "flow.yaml", &hostile::deep_flow(100_000), &[]);
    // the YAML scanner looks ahead, so the place is where it stopped, inside the deep part
    m.assert_refused("flow.yaml:3:");
    assert!(
        m.stderr
            .contains("the document nests deeper than 100 levels"),
        "{}",
        m.stderr
    );
}

#[test]
fn deeply_nested_json_is_refused_where_the_depth_cap_is_crossed() {
    let sb = Sandbox::new();
    let m = validate(&sb, "deep.json", &hostile::deep_json(100_000), &[]);
    // `{"title": "t", "description": "d", "method": ` is 45 characters, the root is level 1
    m.assert_refused("deep.json:1:145: the document nests deeper than 100 levels");
}

#[test]
fn an_alias_bomb_is_refused_at_the_alias_that_crosses_the_value_cap() {
    let sb = Sandbox::new();
    let m = validate(&sb, "bomb.yaml", &hostile::alias_bomb(), &[]);
    m.assert_refused("bomb.yaml:7:45: the document holds more than 100000 values (aliases count every value they repeat)",
    );
}

#[test]
fn a_20_mb_experiment_is_refused_by_the_size_cap_which_names_its_setting() {
    let sb = Sandbox::new();
    let size = hostile::write_big_experiment(&sb.path("big.yaml"), 20 * 1024 * 1024);
    let m = validate_file(&sb, "big.yaml", &[]);
    m.assert_refused(&format!(
            "the document is {size} bytes, over the 10485760 byte limit (expected at most 10485760 bytes (set BROKER_MAX_DOCUMENT_BYTES to allow more))"
        ),
    );
    // located where the limit is crossed, deep in the file
    assert!(!m.stderr.contains("big.yaml:1:"), "{}", m.stderr);
}

#[test]
fn a_larger_size_cap_from_the_environment_lets_a_large_valid_file_through() {
    let sb = Sandbox::new();
    hostile::write_big_json_experiment(&sb.path("big.json"), 12 * 1024 * 1024);
    let m = validate_file(&sb, "big.json", &[]);
    m.assert_refused("big.json:1:");
    let m = validate_file(
        &sb,
        "big.json",
        &[("BROKER_MAX_DOCUMENT_BYTES", "16777216")],
    );
    m.assert_bounded();
    assert_eq!(m.code, Some(0), "{}", m.stderr);
}

#[test]
fn garbage_bytes_are_refused_naming_the_first_byte_that_is_not_utf8() {
    let sb = Sandbox::new();
    let bytes = hostile::garbage(1024 * 1024);
    let m = validate(&sb, "garbage.yaml", &bytes, &[]);
    let bad = std::str::from_utf8(&bytes).unwrap_err().valid_up_to();
    m.assert_refused("is not valid UTF-8 (expected UTF-8 text)");
    assert!(
        m.stderr.contains(&format!("byte 0x{:02X}", bytes[bad])),
        "{}",
        m.stderr
    );
}

#[test]
fn utf16_files_are_refused_naming_the_encoding() {
    let sb = Sandbox::new();
    let m = validate(&sb, "wide.yaml", &hostile::utf16(), &[]);
    m.assert_refused("wide.yaml:1:1: the file is UTF-16 text (expected UTF-8 text");
}

#[test]
fn a_size_cap_that_is_not_a_size_stops_the_worker_at_start_naming_the_setting() {
    let sb = Sandbox::new();
    std::fs::write(
        sb.path("ok.json"),
        r#"{"title": "t", "description": "d", "method": [{"type": "action", "name": "a", "provider": {"type": "process", "path": "/bin/true"}}]}"#,
    )
    .unwrap();
    let m = validate_file(&sb, "ok.json", &[("BROKER_MAX_DOCUMENT_BYTES", "lots")]);
    // exit 2 (a setting, not the experiment, is wrong), said once, before any file is read
    assert_eq!(m.code, Some(2), "{}", m.stderr);
    assert!(
        m.stderr
            .contains("error: BROKER_MAX_DOCUMENT_BYTES is `lots`, which is not a size"),
        "{}",
        m.stderr
    );
    assert!(!m.stdout.contains("valid experiment"), "{}", m.stdout);
}
