//! Messages on the triggers queue, and what each asks the producer to do.
//!
//! Three senders share the queue:
//! - **S3 upload notifications** for keys under `suites/`: `{"Records": [{"eventSource":
//!   "aws:s3", "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name"}, "object": {"key"}}}]}`.
//!   Keys arrive URL-encoded the way HTML forms are (`+` for a space, `%XX` for the rest), so
//!   `suites/my suite.yaml` arrives as `suites/my+suite.yaml`. S3 also sends one
//!   `{"Event": "s3:TestEvent"}` when the notification is configured: it runs nothing.
//! - **The nightly schedule** (EventBridge Scheduler), and **pipelines** that post themselves:
//!   `{"version": 1, "suite": "suites/nightly.yaml"}`, a key in the broker's bucket or an
//!   `s3://bucket/key` URI. Documented in `docs/job-message.md`.
//!
//! Parsing is pure; the producer fetches and submits (`ProducerPorts::on_trigger`).

use serde_json::Value;

/// Where a suite (or a lone experiment) to run is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SuiteLocation {
    /// A key in the broker's own store (bucket).
    Store { key: String },
    /// An object in another bucket.
    S3 { bucket: String, key: String },
}

impl std::fmt::Display for SuiteLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SuiteLocation::Store { key } => write!(f, "store:{key}"),
            SuiteLocation::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// What one trigger message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Submit each of these (an S3 notification may carry several records).
    Run(Vec<SuiteLocation>),
    /// S3's test event, or records that are not object creations: nothing to run.
    Nothing(String),
}

/// The version of the broker's own trigger message.
pub const TRIGGER_VERSION: u64 = 1;

/// Why a trigger message is refused (its suite run is then recorded as rejected, saying so).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TriggerError {
    /// The body is not JSON, or is past a reader's limit: the reader's message.
    #[error("{0}")]
    Unreadable(String),
    #[error("not a JSON object (expected an S3 notification or {{\"suite\": …}})")]
    NotAnObject,
    #[error("neither an S3 notification (Records) nor a trigger message (suite)")]
    Unknown,
    #[error("Records is not a list")]
    RecordsNotAList,
    #[error("Records is empty")]
    NoRecords,
    #[error("Records[{index}] has no s3.bucket.name or s3.object.key")]
    NoObject { index: usize },
    /// Record `index`'s object key cannot be decoded.
    #[error("Records[{index}].s3.object.key {raw:?}: {source}")]
    Key {
        index: usize,
        raw: String,
        #[source]
        source: KeyError,
    },
    #[error("unknown field {field:?} (expected version and suite)")]
    UnknownField { field: String },
    #[error("version {version} is not supported (expected {TRIGGER_VERSION})")]
    Version { version: Value },
    #[error(
        "suite is not a non-empty string (expected a key such as suites/nightly.yaml or s3://bucket/key)"
    )]
    NoSuite,
    #[error("{suite:?} is not s3://bucket/key")]
    NotS3Url { suite: String },
}

impl TriggerError {
    /// Whether `text` is in the message (tests and callers that only look).
    pub fn contains(&self, text: &str) -> bool {
        self.to_string().contains(text)
    }
}

/// Why an S3 notification's object key cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a % escape is cut short")]
    CutShort,
    #[error("a % escape is not two hex digits")]
    NotHex,
    #[error("the decoded key is not UTF-8")]
    NotUtf8,
}

/// Parse a trigger message. `bucket` is the broker's bucket: objects in it are store keys.
pub fn parse_trigger(body: &str, bucket: Option<&str>) -> Result<Trigger, TriggerError> {
    let value = crate::load::document::parse_json_message(body).map_err(|e| {
        TriggerError::Unreadable(if e.starts_with("not JSON") {
            format!("{e} (expected an S3 notification or {{\"suite\": \"suites/…\"}})")
        } else {
            // past a limit: the error already says what was expected
            e
        })
    })?;
    let Value::Object(root) = &value else {
        return Err(TriggerError::NotAnObject);
    };
    if root.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let b = root.get("Bucket").and_then(Value::as_str).unwrap_or("?");
        return Ok(Trigger::Nothing(format!("S3 test event for bucket {b}")));
    }
    if let Some(records) = root.get("Records") {
        return s3_records(records, bucket);
    }
    if root.contains_key("suite") {
        return broker_message(root, bucket);
    }
    Err(TriggerError::Unknown)
}

fn s3_records(records: &Value, bucket: Option<&str>) -> Result<Trigger, TriggerError> {
    let Value::Array(records) = records else {
        return Err(TriggerError::RecordsNotAList);
    };
    if records.is_empty() {
        return Err(TriggerError::NoRecords);
    }
    let mut run = Vec::new();
    let mut skipped = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let event = r["eventName"].as_str().unwrap_or("");
        if r["eventSource"].as_str() != Some("aws:s3") || !event.starts_with("ObjectCreated:") {
            skipped.push(format!("Records[{i}] is {event:?}, not an object creation"));
            continue;
        }
        let (Some(b), Some(raw_key)) = (
            r["s3"]["bucket"]["name"].as_str(),
            r["s3"]["object"]["key"].as_str(),
        ) else {
            return Err(TriggerError::NoObject { index: i });
        };
        let key = decode_key(raw_key).map_err(|source| TriggerError::Key {
            index: i,
            raw: raw_key.to_string(),
            source,
        })?;
        run.push(locate(b, key, bucket));
    }
    if run.is_empty() {
        Ok(Trigger::Nothing(skipped.join("; ")))
    } else {
        Ok(Trigger::Run(run))
    }
}

fn broker_message(
    root: &serde_json::Map<String, Value>,
    bucket: Option<&str>,
) -> Result<Trigger, TriggerError> {
    for key in root.keys() {
        if !matches!(key.as_str(), "version" | "suite") {
            return Err(TriggerError::UnknownField { field: key.clone() });
        }
    }
    match root.get("version") {
        None => {}
        Some(v) if v.as_u64() == Some(TRIGGER_VERSION) => {}
        Some(v) => {
            return Err(TriggerError::Version { version: v.clone() });
        }
    }
    let Some(suite) = root["suite"].as_str().filter(|s| !s.trim().is_empty()) else {
        return Err(TriggerError::NoSuite);
    };
    let location = match suite.strip_prefix("s3://") {
        Some(rest) => {
            let (b, key) = rest
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .ok_or_else(|| TriggerError::NotS3Url {
                    suite: suite.to_string(),
                })?;
            locate(b, key.to_string(), bucket)
        }
        None => SuiteLocation::Store {
            key: suite.trim_start_matches('/').to_string(),
        },
    };
    Ok(Trigger::Run(vec![location]))
}

fn locate(object_bucket: &str, key: String, ours: Option<&str>) -> SuiteLocation {
    if ours == Some(object_bucket) {
        SuiteLocation::Store { key }
    } else {
        SuiteLocation::S3 {
            bucket: object_bucket.to_string(),
            key,
        }
    }
}

/// Decode an S3 notification key: `+` is a space, `%XX` a byte; the result must be UTF-8.
pub fn decode_key(raw: &str) -> Result<String, KeyError> {
    let mut bytes = Vec::with_capacity(raw.len());
    let mut it = raw.bytes();
    while let Some(b) = it.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex = [it.next(), it.next()];
                let [Some(h), Some(l)] = hex else {
                    return Err(KeyError::CutShort);
                };
                let digit = |c: u8| (c as char).to_digit(16);
                let (Some(h), Some(l)) = (digit(h), digit(l)) else {
                    return Err(KeyError::NotHex);
                };
                bytes.push((h * 16 + l) as u8);
            }
            _ => bytes.push(b),
        }
    }
    String::from_utf8(bytes).map_err(|_| KeyError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: &str, bucket: &str, key: &str) -> Value {
        serde_json::json!({"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": event,
            "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 10}}})
    }

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        for (raw, key) in [
            ("suites/nightly.yaml", "suites/nightly.yaml"),
            ("suites/my+suite.yaml", "suites/my suite.yaml"),
            ("suites%2Fa%2Bb%21.yaml", "suites/a+b!.yaml"),
            ("suites/caf%C3%A9.yaml", "suites/café.yaml"),
            ("suites/100%25.yaml", "suites/100%.yaml"),
        ] {
            assert_eq!(decode_key(raw).as_deref(), Ok(key), "{raw}");
        }
        for bad in ["suites/%", "suites/%2", "suites/%zz", "suites/%ff.yaml"] {
            assert!(decode_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_upload_notification_runs_every_created_object() {
        let body = serde_json::json!({"Records": [
            record("ObjectCreated:Put", "broker", "suites/my+suite.yaml"),
            record("ObjectCreated:CompleteMultipartUpload", "other", "suites/x.json"),
        ]})
        .to_string();
        assert_eq!(
            parse_trigger(&body, Some("broker")),
            Ok(Trigger::Run(vec![
                SuiteLocation::Store {
                    key: "suites/my suite.yaml".into()
                },
                SuiteLocation::S3 {
                    bucket: "other".into(),
                    key: "suites/x.json".into()
                },
            ]))
        );
    }

    #[test]
    fn the_test_event_and_removals_run_nothing() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-25T00:00:00Z","Bucket":"broker"}"#;
        assert!(matches!(
            parse_trigger(test, Some("broker")),
            Ok(Trigger::Nothing(_))
        ));
        let removed = serde_json::json!({"Records": [record("ObjectRemoved:Delete", "broker", "suites/a.yaml")]}).to_string();
        assert!(matches!(
            parse_trigger(&removed, Some("broker")),
            Ok(Trigger::Nothing(_))
        ));
    }

    #[test]
    fn the_schedule_and_pipeline_message() {
        for (body, expected) in [
            (
                r#"{"version": 1, "suite": "suites/nightly.yaml"}"#,
                SuiteLocation::Store {
                    key: "suites/nightly.yaml".into(),
                },
            ),
            (
                r#"{"suite": "s3://broker/suites/a.yaml"}"#,
                SuiteLocation::Store {
                    key: "suites/a.yaml".into(),
                },
            ),
            (
                r#"{"suite": "s3://elsewhere/team/a.yaml"}"#,
                SuiteLocation::S3 {
                    bucket: "elsewhere".into(),
                    key: "team/a.yaml".into(),
                },
            ),
        ] {
            assert_eq!(
                parse_trigger(body, Some("broker")),
                Ok(Trigger::Run(vec![expected])),
                "{body}"
            );
        }
    }

    #[test]
    fn bad_messages_say_what_was_expected() {
        for (body, needle) in [
            ("nightly", "not JSON"),
            ("[1]", "not a JSON object"),
            ("{}", "neither"),
            (r#"{"suite": ""}"#, "non-empty string"),
            (r#"{"suite": 3}"#, "non-empty string"),
            (r#"{"suite": "s3://bucket-only"}"#, "not s3://bucket/key"),
            (r#"{"version": 2, "suite": "a.yaml"}"#, "version 2"),
            (
                r#"{"suite": "a.yaml", "wait": true}"#,
                "unknown field \"wait\"",
            ),
            (r#"{"Records": {}}"#, "not a list"),
            (r#"{"Records": []}"#, "Records is empty"),
            (
                r#"{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}"#,
                "no s3.bucket.name",
            ),
        ] {
            let err = parse_trigger(body, Some("broker")).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[test]
    fn deeply_nested_trigger_messages_are_refused_where_the_cap_is_crossed() {
        let body = format!(
            "{{\"Records\": {}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let err = parse_trigger(&body, Some("broker")).unwrap_err();
        assert!(
            err.contains("deeper than 100 levels at line 1 column 112"),
            "{err}"
        );
    }
}
