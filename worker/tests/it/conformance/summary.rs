//! The compared shape of a journal and the comparison with `expected.json`: kept apart from the
//! process plumbing so that both are small pure functions, tested below. The recorder
//! (`scripts/record-conformance.sh`, `summarise()`) extracts exactly these fields from the
//! reference's journals.

use serde_json::{Map, Value, json};

/// Keys of an `expected.json` case that describe the case rather than an outcome.
const META_KEYS: [&str; 3] = ["valid", "reference_message", "checks"];

/// The deterministic part of an activity's output: process → `{status, stdout, stderr}`,
/// http → `{status, body}` (headers vary), anything else as is; `null` when it failed.
pub fn output_of(entry: &Value) -> Value {
    let out = &entry["output"];
    let has = |keys: &[&str]| keys.iter().all(|k| out.get(k).is_some());
    if out.is_object() && has(&["status", "stdout", "stderr"]) {
        json!({"status": out["status"], "stdout": out["stdout"], "stderr": out["stderr"]})
    } else if out.is_object() && has(&["status", "headers", "body"]) {
        json!({"status": out["status"], "body": out["body"]})
    } else {
        out.clone()
    }
}

fn name_of(entry: &Value) -> Value {
    let activity = &entry["activity"];
    match activity.get("name").filter(|n| !n.is_null()) {
        Some(name) => name.clone(),
        None => activity.get("ref").cloned().unwrap_or(Value::Null),
    }
}

fn runs(list: &Value) -> Value {
    let entries = list.as_array().map(Vec::as_slice).unwrap_or_default();
    entries
        .iter()
        .map(|r| json!([name_of(r), r["status"], output_of(r)]))
        .collect()
}

/// Summary of a journal without timestamps, durations, paths, pids or headers.
pub fn summarise(journal: &Value) -> Map<String, Value> {
    let states = &journal["steady_states"];
    let met = |phase: &str| match &states[phase] {
        Value::Object(s) => s.get("steady_state_met").cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let probes = |phase: &str| match &states[phase] {
        Value::Object(s) => s
            .get("probes")
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| json!([name_of(p), p["status"], p["tolerance_met"]]))
                    .collect()
            })
            .unwrap_or_else(|| json!([])),
        _ => Value::Null,
    };
    let summary = json!({
        "title": journal["experiment"]["title"],
        "status": journal["status"],
        "deviated": journal["deviated"],
        "before_met": met("before"),
        "after_met": met("after"),
        "before_probes": probes("before"),
        "after_probes": probes("after"),
        "run": runs(&journal["run"]),
        "rollbacks": runs(&journal["rollbacks"]),
    });
    match summary {
        Value::Object(m) => m,
        _ => unreachable!("built as an object"),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 160 {
        s
    } else {
        format!("{}...", s.chars().take(157).collect::<String>())
    }
}

fn sorted(v: &Value) -> Value {
    let mut items: Vec<Value> = v.as_array().cloned().unwrap_or_default();
    items.sort_by_key(|x| x.to_string());
    Value::Array(items)
}

/// Every difference between the expected outcome of a case and ours, one readable line each.
/// `actual` holds `validate_exit`, `run_exit`, `journal` and, with a journal, its summary and
/// `duration` / `during` (the number of `steady_states.during` entries) for the bounds in
/// `checks`.
pub fn differences(expected: &Map<String, Value>, actual: &Map<String, Value>) -> Vec<String> {
    let checks = expected.get("checks").cloned().unwrap_or_else(|| json!({}));
    let unordered: Vec<&str> = checks["unordered"]
        .as_array()
        .map(|u| u.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut diffs = Vec::new();
    let journal_expected = expected.get("journal") == Some(&Value::Bool(true));
    for (key, want) in expected {
        if META_KEYS.contains(&key.as_str()) {
            continue;
        }
        let got = actual.get(key).cloned().unwrap_or(json!("<missing>"));
        if !journal_expected && !["validate_exit", "run_exit", "journal"].contains(&key.as_str()) {
            continue;
        }
        let (want, got) = if unordered.contains(&key.as_str()) {
            (sorted(want), sorted(&got))
        } else {
            (want.clone(), got)
        };
        if want == got {
            continue;
        }
        match (want.as_array(), got.as_array()) {
            (Some(w), Some(g)) if w.len() == g.len() => {
                for (i, (w, g)) in w.iter().zip(g).enumerate().filter(|(_, (w, g))| w != g) {
                    diffs.push(format!(
                        "{key}[{i}]: expected {}, got {}",
                        short(w),
                        short(g)
                    ));
                }
            }
            _ => diffs.push(format!(
                "{key}: expected {}, got {}",
                short(&want),
                short(&got)
            )),
        }
    }
    if journal_expected && actual.get("journal") == Some(&Value::Bool(true)) {
        let duration = actual.get("duration").and_then(Value::as_f64);
        if let Some(min) = checks["min_duration"].as_f64()
            && duration.is_none_or(|d| d < min)
        {
            diffs.push(format!("duration: expected >= {min}s, got {duration:?}"));
        }
        if let Some(max) = checks["max_duration"].as_f64()
            && duration.is_none_or(|d| d > max)
        {
            diffs.push(format!("duration: expected <= {max}s, got {duration:?}"));
        }
        if let Some(min) = checks["min_during"].as_u64() {
            let during = actual.get("during").and_then(Value::as_u64).unwrap_or(0);
            if during < min {
                diffs.push(format!(
                    "steady_states.during: expected >= {min} entries, got {during}"
                ));
            }
        }
    }
    diffs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn outputs_keep_only_their_deterministic_part() {
        let cases = [
            (
                json!({"output": {"status": 0, "stdout": "a", "stderr": "", "duration": 1}}),
                json!({"status": 0, "stdout": "a", "stderr": ""}),
            ),
            (
                json!({"output": {"status": 404, "headers": {"Date": "x"}, "body": "no"}}),
                json!({"status": 404, "body": "no"}),
            ),
            (json!({"output": [1, 2]}), json!([1, 2])),
            (
                json!({"status": "failed", "exception": ["boom"]}),
                Value::Null,
            ),
        ];
        for (entry, want) in cases {
            assert_eq!(output_of(&entry), want, "{entry}");
        }
    }

    #[test]
    fn a_journal_summary_names_refs_and_leaves_skipped_phases_null() {
        let journal = json!({
            "experiment": {"title": "T"}, "status": "completed", "deviated": false,
            "steady_states": {"before": {"steady_state_met": true, "probes": [
                {"activity": {"name": "p"}, "status": "succeeded", "tolerance_met": true}]},
                "after": null},
            "run": [{"activity": {"ref": "r"}, "status": "succeeded", "output": 3}],
            "rollbacks": [],
        });
        let s = summarise(&journal);
        assert_eq!(s["before_probes"], json!([["p", "succeeded", true]]));
        assert_eq!(s["after_met"], Value::Null);
        assert_eq!(s["after_probes"], Value::Null);
        assert_eq!(s["run"], json!([["r", "succeeded", 3]]));
    }

    #[test]
    fn differences_name_each_field_entry_and_bound() {
        let expected = obj(json!({
            "valid": true, "validate_exit": 0, "run_exit": 0, "journal": true,
            "status": "completed", "run": [["a", "succeeded", 1], ["b", "succeeded", 2]],
            "checks": {"min_duration": 1.0, "unordered": ["rollbacks"]},
            "rollbacks": [["x", "succeeded", null], ["y", "succeeded", null]],
        }));
        let actual = obj(json!({
            "validate_exit": 0, "run_exit": 1, "journal": true, "status": "completed",
            "run": [["a", "succeeded", 1], ["b", "failed", null]], "duration": 0.2,
            "rollbacks": [["y", "succeeded", null], ["x", "succeeded", null]],
        }));
        assert_eq!(
            differences(&expected, &actual),
            vec![
                "run_exit: expected 0, got 1".to_string(),
                "run[1]: expected [\"b\",\"succeeded\",2], got [\"b\",\"failed\",null]".into(),
                "duration: expected >= 1s, got Some(0.2)".into(),
            ]
        );
    }

    #[test]
    fn a_rejected_case_compares_exit_codes_and_journal_only() {
        let expected = obj(json!({"valid": false, "validate_exit": 1, "run_exit": 1,
            "journal": false, "reference_message": "bad"}));
        let same = obj(json!({"validate_exit": 1, "run_exit": 1, "journal": false}));
        assert!(differences(&expected, &same).is_empty());
        let wrote = obj(json!({"validate_exit": 0, "run_exit": 0, "journal": true,
            "status": "completed"}));
        assert_eq!(differences(&expected, &wrote).len(), 3);
    }
}
