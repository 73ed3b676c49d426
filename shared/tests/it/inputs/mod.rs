//! The loaders that read untrusted text, each driven from raw bytes the way a file, an S3
//! object or a queue message reaches them. Shared by the proptest tests (`hostile_inputs.rs`)
//! and the cargo-fuzz targets (`fuzz/`), so both exercise exactly the same entry points.
//! Each function panics only on a broken guarantee; any refusal is a normal outcome.
#![allow(dead_code)]

use serde_json::Value;
use shared::broker::triggers::parse_trigger;
use shared::load::document::{self, Format, MAX_DEPTH};
use shared::load::suite::load_suite_text;
use shared::load::{Vars, validate};
use shared::model::suite::Job;

/// An experiment file: bytes → text → document (both formats) → validation → locations.
pub fn experiment(bytes: &[u8]) {
    let Ok(text) = document::text_from_bytes(bytes.to_vec()) else {
        return;
    };
    let vars = Vars::default();
    for format in [Format::Json, Format::Yaml] {
        let Ok(mut doc) = document::parse(&text, format) else {
            continue;
        };
        assert_within_depth(&doc.value);
        let checks = validate::Checks {
            vars: &vars,
            check_executables: false,
        };
        if let Err(problems) = validate::validate(&doc.value, &checks) {
            doc.ensure_spans();
            for p in problems {
                let _ = doc.locate(&p.field);
            }
        }
    }
}

/// A suite file, in both formats.
pub fn suite(bytes: &[u8]) {
    let Ok(text) = document::text_from_bytes(bytes.to_vec()) else {
        return;
    };
    for format in [Format::Json, Format::Yaml] {
        let _ = load_suite_text(&text, format, None, "fuzz");
    }
}

/// A queue message, read as a job and as a trigger.
pub fn message(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = Job::from_message(&text);
    let _ = parse_trigger(&text, Some("broker-bucket"));
}

/// No value built from a document nests deeper than the cap (dropping one recurses per level).
pub fn assert_within_depth(value: &Value) {
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            Value::Object(map) => map.values().collect(),
            _ => continue,
        };
        assert!(depth < MAX_DEPTH, "a value nests {} deep", depth + 1);
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
}
