//! The one pipeline every network blackhole runs, the host faults' (`ec2::host_faults`) with
//! one stage: resolve the targets under the limits and put them on record, return the plan
//! under a dry run, lock the targets, send the document once and wait for it, release. Also the
//! arguments the blackholes share (pure): the seed's selection, `duration`, and lists of
//! addresses or names.

use crate::faults::FaultContext;
use crate::faults::ec2::instances::{experimentvr_selector, resolve, server_filters};
use crate::faults::plan::stops_here;
use crate::faults::ssm::command::{Command, one_value_each};
use crate::faults::ssm::documents::{self, Document};
use crate::faults::ssm::run;
use crate::faults::target_locks;
use serde_json::{Map, Value, json};
use shared::fleet::safety::targets::Selector;
use shared::providers::ActivityError;
use shared::providers::registry::NativeCall;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long past the fault's own duration to wait for the command to end.
const COMMAND_MARGIN: Duration = Duration::from_secs(300);

/// The most entries one command blackholes (the document's `allowedPattern` says the same).
pub const MAX_ENTRIES: usize = 512;

/// The longest fault the documents accept, in seconds (a day).
pub const MAX_SECONDS: u64 = 86_400;

/// What one blackhole sends: the document, its parameters (`duration` among them) and what
/// the plan and the journal show besides (where the addresses came from).
pub struct Injection {
    pub document: Document,
    pub parameters: BTreeMap<String, String>,
    pub seconds: u64,
    pub detail: Map<String, Value>,
}

/// Resolve the targets `selector` chooses, then (unless a dry run or an allowed empty
/// selection) lock them, send `injection` and wait for it. Returns the plan, with the
/// command's result when it ran.
pub async fn inject(
    ctx: &FaultContext,
    call: &NativeCall,
    selector: Selector,
    injection: Injection,
) -> Result<Value, ActivityError> {
    let filters = server_filters(&selector);
    let selection = resolve(ctx, call, selector, filters).await?;
    let document = documents::registered_name(ctx.settings(), &injection.document);
    let mut plan = json!({
        "document": document,
        "targets": selection.chosen,
        "matched": selection.matched,
        "seed": selection.seed,
        "total_duration": injection.seconds,
        "parameters": injection.parameters,
    });
    for (k, v) in injection.detail {
        plan[k] = v;
    }
    if stops_here(call, &selection) {
        plan["dry_run"] = json!(call.plan_only);
        return Ok(plan);
    }
    let wait = Duration::from_secs(injection.seconds) + COMMAND_MARGIN;
    let held = target_locks::lock(ctx, call, &selection.chosen, wait).await?;
    let command = Command {
        document: document.clone(),
        instance_ids: selection.chosen.clone(),
        parameters: one_value_each(&injection.parameters),
        wait,
    };
    tracing::info!(
        "  {document} for {}s on {}",
        injection.seconds,
        selection.chosen.join(", ")
    );
    let result = run::run(ctx, call, &command, Some(&held)).await;
    held.release().await;
    plan["results"] = json!([match &result {
        Ok(r) => json!({"stage": 0, "status": "succeeded", "command": r}),
        Err(e) => json!({"stage": 0, "status": "failed", "error": e.to_string()}),
    }]);
    result.map(|_| plan)
}

/// The seed's selection (`targets`, `test_target_type`, `tag_key`, `tag_value`) of running
/// instances.
pub fn seed_selector(args: &Map<String, Value>) -> Result<Selector, ActivityError> {
    experimentvr_selector(args, "running").map_err(ActivityError::Failed)
}

/// `duration` in seconds (1 to a day), else `default`.
pub fn seconds(args: &Map<String, Value>, name: &str, default: u64) -> Result<u64, String> {
    let text = match args.get(name) {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(default),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(v) => {
            return Err(format!(
                "{name}: expected a whole number of seconds, got {v}"
            ));
        }
    };
    match text.parse::<u64>() {
        Ok(s) if (1..=MAX_SECONDS).contains(&s) => Ok(s),
        _ => Err(format!(
            "{name}: {text:?} is not a whole number of seconds from 1 to {MAX_SECONDS}"
        )),
    }
}

/// A list argument: a list of strings, or one string of entries separated by spaces or
/// commas (the seed passes `urls` as one space-separated string). Empty entries are dropped.
pub fn entries(args: &Map<String, Value>, name: &str) -> Result<Vec<String>, String> {
    let split = |s: &str| -> Vec<String> {
        s.split([' ', ',', '\n', '\t'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    match args.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(split(s)),
        Some(Value::Array(items)) => {
            let mut out = Vec::new();
            for (i, v) in items.iter().enumerate() {
                match v {
                    Value::String(s) => out.extend(split(s)),
                    other => {
                        return Err(format!("{name}[{i}]: expected a string, got {other}"));
                    }
                }
            }
            Ok(out)
        }
        Some(v) => Err(format!(
            "{name}: expected a string or a list of strings, got {v}"
        )),
    }
}

/// `entries` joined with commas for a document, refused when there is none or too many.
pub fn joined(what: &str, entries: &[String]) -> Result<String, String> {
    match entries.len() {
        0 => Err(format!("{what}: nothing to blackhole")),
        n if n > MAX_ENTRIES => Err(format!(
            "{what}: {n} entries, more than the {MAX_ENTRIES} one command takes"
        )),
        _ => Ok(entries.join(",")),
    }
}

/// A host name as the documents take it (letters, digits, `-`, `_`, dots; not only digits
/// and dots, which would be read as an address). Pure.
pub fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').enumerate().all(|(i, label)| {
            (label.is_empty() && i > 0 && s.ends_with('.'))
                || (!label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    && !label.starts_with('-'))
        })
        && !s.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// An IPv4 or IPv6 address or CIDR. Pure.
pub fn is_address(s: &str) -> bool {
    let (address, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    match address.parse::<std::net::IpAddr>() {
        Ok(ip) => match prefix {
            None => true,
            Some(p) => p
                .parse::<u8>()
                .is_ok_and(|p| p <= if ip.is_ipv4() { 32 } else { 128 }),
        },
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn lists_come_as_strings_or_lists_and_durations_as_seconds() {
        let a = args(
            json!({"urls": "https://a.example.com/x  b.example.org:8443",
            "list": ["x, y", "z"], "bad": [1], "d": "90", "n": 30, "zero": 0, "word": "soon"}),
        );
        assert_eq!(
            entries(&a, "urls").unwrap(),
            ["https://a.example.com/x", "b.example.org:8443"]
        );
        assert_eq!(entries(&a, "list").unwrap(), ["x", "y", "z"]);
        assert!(entries(&a, "missing").unwrap().is_empty());
        assert_eq!(
            entries(&a, "bad").unwrap_err(),
            "bad[0]: expected a string, got 1"
        );
        assert_eq!(seconds(&a, "d", 60).unwrap(), 90);
        assert_eq!(seconds(&a, "n", 60).unwrap(), 30);
        assert_eq!(seconds(&a, "missing", 180).unwrap(), 180);
        assert!(
            seconds(&a, "zero", 60)
                .unwrap_err()
                .contains("from 1 to 86400")
        );
        assert!(seconds(&a, "word", 60).unwrap_err().contains("\"soon\""));
        assert_eq!(joined("x", &["a".into(), "b".into()]).unwrap(), "a,b");
        assert!(
            joined("x", &[])
                .unwrap_err()
                .contains("nothing to blackhole")
        );
        let many: Vec<String> = (0..513)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        assert!(joined("x", &many).unwrap_err().contains("513 entries"));
    }

    #[test]
    fn names_and_addresses_are_told_apart() {
        for name in [
            "b-1.c.kafka.us-east-1.amazonaws.com",
            "localhost",
            "db_1.internal.",
        ] {
            assert!(is_host_name(name), "{name}");
            assert!(!is_address(name), "{name}");
        }
        for bad in ["", "1.2.3.4", "10", "-x.com", "a b", "a/b", "x..y", "ä.com"] {
            assert!(!is_host_name(bad), "{bad}");
        }
        for ok in ["10.0.0.1", "52.94.0.0/22", "::1", "2600:1f18::/33"] {
            assert!(is_address(ok), "{ok}");
        }
        for bad in ["10.0.0.256", "10.0.0.0/33", "::/129", "10.0.0", "x"] {
            assert!(!is_address(bad), "{bad}");
        }
    }
}
