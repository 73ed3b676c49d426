//! Which EC2 instances an action acts on: the experiment's arguments read into a
//! `targets::Selector` (pure), the candidates from `DescribeInstances`, the choice made by
//! `shared::fleet::safety::targets::select` under the deployment's limits, and the choice put on record in
//! the journal before anything acts.
//!
//! Two argument styles are read:
//! - the seed library's (`experimentvr`): `targets` (ids), `test_target_type`
//!   (`RANDOM` | `ALL` | `NAMED_LIST`, and also `COUNT(n)` / `PERCENT(n)`), `tag_key` (an EC2
//!   filter name such as `tag:Name`, or a bare tag key) and `tag_value` (with `*`/`?`);
//! - `chaosaws`'s: `instance_ids`, `filters` (EC2 filters) and `az`.

use crate::faults::FaultContext;
use crate::faults::context::failed;
use crate::faults::safety;
use serde_json::{Value, json};
use shared::fleet::safety::targets::{Candidate, Mode, Selection, Selector, select};
use shared::providers::ActivityError;
use shared::providers::registry::NativeCall;
use std::collections::BTreeMap;

/// The selector the seed library's arguments describe. Instances must be in `state`. Ids in
/// `targets` are the targets under `NAMED_LIST`; under any other mode they narrow the
/// candidates (the mode chooses among them), so no declared id is ever ignored.
pub fn experimentvr_selector(
    args: &serde_json::Map<String, Value>,
    state: &str,
) -> Result<Selector, String> {
    let ids = id_list(args.get("targets"), "targets")?;
    let kind = match args.get("test_target_type") {
        None | Some(Value::Null) => {
            if ids.is_empty() {
                return Err(
                    "test_target_type is missing: expected RANDOM, ALL, NAMED_LIST, COUNT(n) or PERCENT(n)"
                        .into(),
                );
            }
            "NAMED_LIST".to_string()
        }
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(format!("test_target_type: expected a string, got {v}")),
    };
    let mode = Mode::parse(&kind, &ids).map_err(|e| format!("test_target_type: {e}"))?;
    let key = text(args, "tag_key")?;
    let value = text(args, "tag_value")?;
    let tags = match (key, value) {
        (Some(k), Some(v)) => {
            let k = k.strip_prefix("tag:").unwrap_or(&k).to_string();
            if k.is_empty() {
                return Err("tag_key: expected a tag key such as tag:Name".into());
            }
            vec![(k, v)]
        }
        (None, None) => Vec::new(),
        (Some(_), None) => return Err("tag_value is missing (tag_key is given)".into()),
        (None, Some(_)) => return Err("tag_key is missing (tag_value is given)".into()),
    };
    let within = if matches!(mode, Mode::Ids(_)) {
        Vec::new()
    } else if tags.is_empty() && ids.is_empty() {
        return Err(format!(
            "test_target_type {kind} needs tag_key and tag_value (or targets) to say which instances are candidates"
        ));
    } else {
        // ids with RANDOM/ALL/COUNT/PERCENT narrow the candidates: choose among these only
        ids
    };
    Ok(Selector {
        tags,
        filters: vec![("state".to_string(), vec![state.to_string()])],
        mode,
        within,
        allow_empty: false,
    })
}

fn text(args: &serde_json::Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(format!("{name}: expected a string, got {v}")),
    }
}

/// A list of ids: a list of strings, or one string of comma-separated ids.
pub fn id_list(value: Option<&Value>, name: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{name}: expected a list of ids, found {v}"))
            })
            .collect(),
        Some(v) => Err(format!("{name}: expected a list of ids, got {v}")),
    }
}

/// The EC2 filters that make `DescribeInstances` return only what `selector` could choose:
/// its tags, and its `within` ids (so naming ids never lists a whole region). The selector
/// still applies exactly to what comes back.
pub fn server_filters(selector: &Selector) -> Vec<aws_sdk_ec2::types::Filter> {
    let mut filters: Vec<aws_sdk_ec2::types::Filter> = selector
        .tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_ec2::types::Filter::builder()
                .name(format!("tag:{k}"))
                .values(v)
                .build()
        })
        .collect();
    let ids = match &selector.mode {
        Mode::Ids(ids) => ids,
        _ => &selector.within,
    };
    if !ids.is_empty() {
        filters.push(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .set_values(Some(ids.clone()))
                .build(),
        );
    }
    filters
}

/// Every instance `DescribeInstances` returns for `filters`, as candidates.
pub async fn candidates(
    ctx: &FaultContext,
    call: &NativeCall,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<Candidate>, ActivityError> {
    let client = ctx.ec2(call).await;
    let mut pages = client
        .describe_instances()
        .set_filters((!filters.is_empty()).then_some(filters))
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| failed("DescribeInstances", "EC2", &e))?;
        for i in page.reservations().iter().flat_map(|r| r.instances()) {
            let Some(id) = i.instance_id() else { continue };
            let tags: BTreeMap<String, String> = i
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect();
            let mut attributes = BTreeMap::new();
            if let Some(s) = i.state().and_then(|s| s.name()) {
                attributes.insert("state".into(), s.as_str().to_string());
            }
            if let Some(az) = i.placement().and_then(|p| p.availability_zone()) {
                attributes.insert("availability-zone".into(), az.to_string());
            }
            if let Some(t) = i.instance_type() {
                attributes.insert("instance-type".into(), t.as_str().to_string());
            }
            out.push(Candidate {
                id: id.to_string(),
                tags,
                attributes,
            });
        }
    }
    Ok(out)
}

/// The seed of a random choice: the extension's `seed` (to replay a recorded run), else fresh.
pub fn seed(call: &NativeCall) -> Result<u64, ActivityError> {
    match call.extension.get("seed") {
        None | Some(Value::Null) => {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default(),
            );
            Ok(h.finish())
        }
        Some(v) => v.as_u64().ok_or_else(|| {
            ActivityError::Failed(format!(
                "extensions[experiment-broker].seed: expected a whole number, got {v}"
            ))
        }),
    }
}

/// Describe, select under the limits, and put the choice on record. Refusals (empty, too
/// many, not opted in) fail the activity before anything acts, naming the target and rule.
pub async fn resolve(
    ctx: &FaultContext,
    call: &NativeCall,
    selector: Selector,
    server_filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Selection, ActivityError> {
    resolve_as(ctx, call, selector, server_filters, false).await
}

/// `resolve` for an action that undoes a fault (starting stopped instances): the opt-in tag
/// still applies, the blast-radius caps do not (a rollback that starts 1 of 1 stopped hosts
/// must not be refused as "100%").
pub async fn resolve_as(
    ctx: &FaultContext,
    call: &NativeCall,
    selector: Selector,
    server_filters: Vec<aws_sdk_ec2::types::Filter>,
    undoes_a_fault: bool,
) -> Result<Selection, ActivityError> {
    let found = candidates(ctx, call, server_filters).await?;
    choose(ctx, call, selector, &found, undoes_a_fault).await
}

/// Select among `found` under the limits and put the choice on record (the part of
/// [`resolve_as`] after the describe; the fault families whose candidates are not instances,
/// such as subnets or volumes, describe their own and choose here).
pub async fn choose(
    ctx: &FaultContext,
    call: &NativeCall,
    mut selector: Selector,
    found: &[Candidate],
    undoes_a_fault: bool,
) -> Result<Selection, ActivityError> {
    let (mut limits, allow_empty) = safety::limits(ctx.settings(), &call.extension, &call.activity)
        .map_err(ActivityError::Failed)?;
    if undoes_a_fault {
        limits.max_targets = None;
        limits.max_percent = None;
    }
    selector.allow_empty |= allow_empty;
    let seed = seed(call)?;
    let outcome = select(found, &selector, &limits, seed);
    let mut record = json!({
        "kind": "targets",
        "activity": call.activity,
        "at": shared::clock::now_iso(),
        "mode": format!("{:?}", selector.mode),
        "within": selector.within,
        "tags": selector.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "filters": selector.filters.iter().map(|(k, v)| json!({"name": k, "values": v})).collect::<Vec<_>>(),
        "candidates": found.len(),
        "seed": seed,
        "limits": {
            "max_targets": limits.max_targets,
            "max_percent": limits.max_percent,
            "opt_in": limits.opt_in.as_ref().map(|(k, v)| format!("{k}={v}")),
        },
        "dry_run": call.plan_only,
    });
    match &outcome {
        Ok(s) => {
            record["matched"] = json!(s.matched);
            record["chosen"] = json!(s.chosen);
        }
        Err(refusal) => record["refused"] = json!(refusal.to_string()),
    }
    if let Err(e) = call.recorder.record(record).await {
        return Err(ActivityError::Failed(match &outcome {
            Ok(_) => {
                format!("the chosen targets could not be put on record, so nothing was done: {e}")
            }
            Err(r) => format!(
                "target selection refused: {r} (and the refusal could not be put on record: {e})"
            ),
        }));
    }
    outcome.map_err(|r| {
        let refusal =
            shared::providers::Refusal::new(r.rule(), format!("target selection refused: {r}"));
        ActivityError::Refused(match r.target() {
            Some(id) => refusal.on(id),
            None => refusal,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_seed_librarys_arguments_become_a_selector() {
        let s = experimentvr_selector(
            &args(json!({"targets": null, "test_target_type": "RANDOM", "tag_key": "tag:Name", "tag_value": "*.resiliency.local"})),
            "running",
        )
        .unwrap();
        assert_eq!(s.mode, Mode::Random);
        assert_eq!(
            s.tags,
            vec![("Name".to_string(), "*.resiliency.local".to_string())]
        );
        assert_eq!(
            s.filters,
            vec![("state".to_string(), vec!["running".to_string()])]
        );

        let s =
            experimentvr_selector(&args(json!({"targets": ["i-1", "i-2"]})), "running").unwrap();
        assert_eq!(s.mode, Mode::Ids(vec!["i-1".into(), "i-2".into()]));
        assert!(s.tags.is_empty());
        let s = experimentvr_selector(
            &args(json!({"targets": "i-1, i-2", "test_target_type": "named_list"})),
            "running",
        )
        .unwrap();
        assert_eq!(s.mode, Mode::Ids(vec!["i-1".into(), "i-2".into()]));
        let s = experimentvr_selector(
            &args(json!({"test_target_type": "COUNT(2)", "tag_key": "team", "tag_value": "a"})),
            "stopped",
        )
        .unwrap();
        assert_eq!((s.mode, s.tags[0].0.as_str()), (Mode::Count(2), "team"));
    }

    #[test]
    fn ids_under_a_choosing_mode_narrow_the_candidates_instead_of_being_ignored() {
        use shared::fleet::safety::targets::{Candidate, Limits, select};
        let candidate = |id: &str, team: &str| Candidate {
            id: id.into(),
            tags: [("team".to_string(), team.to_string())].into(),
            attributes: [("state".to_string(), "running".to_string())].into(),
        };
        let fleet = [
            candidate("i-1", "a"),
            candidate("i-2", "a"),
            candidate("i-3", "a"),
            candidate("i-4", "b"),
        ];
        let chosen = |a: Value| {
            let s = experimentvr_selector(&args(a), "running").unwrap();
            let mut all = std::collections::BTreeSet::new();
            for seed in 0..50 {
                all.extend(select(&fleet, &s, &Limits::default(), seed).unwrap().chosen);
            }
            all.into_iter().collect::<Vec<_>>()
        };
        // RANDOM among the listed ids only, with or without tags
        assert_eq!(
            chosen(json!({"targets": ["i-2", "i-4"], "test_target_type": "RANDOM"})),
            ["i-2", "i-4"]
        );
        // with tags too, every listed id must match them
        assert_eq!(
            chosen(
                json!({"targets": ["i-2", "i-3"], "test_target_type": "ALL", "tag_key": "tag:team", "tag_value": "a"})
            ),
            ["i-2", "i-3"]
        );
        // a listed id that is not a matching candidate (other team, missing, a pattern) refuses,
        // as under NAMED_LIST: no declared id is dropped silently
        for (a, id) in [
            (
                json!({"targets": ["i-2", "i-4"], "test_target_type": "ALL", "tag_key": "tag:team", "tag_value": "a"}),
                "i-4",
            ),
            (
                json!({"targets": ["i-2", "i-9"], "test_target_type": "RANDOM"}),
                "i-9",
            ),
            (json!({"targets": "i-*", "test_target_type": "ALL"}), "i-*"),
        ] {
            let s = experimentvr_selector(&args(a.clone()), "running").unwrap();
            let refusal = select(&fleet, &s, &Limits::default(), 1).unwrap_err();
            assert_eq!(
                refusal,
                shared::fleet::safety::targets::Refusal::Unknown { id: id.into() },
                "{a}"
            );
        }
        assert_eq!(
            chosen(json!({"targets": "i-1,i-3", "test_target_type": "ALL"})),
            ["i-1", "i-3"]
        );
        let s = experimentvr_selector(
            &args(json!({"targets": ["i-1", "i-2", "i-3"], "test_target_type": "COUNT(2)"})),
            "running",
        )
        .unwrap();
        let picked = select(&fleet, &s, &Limits::default(), 7).unwrap();
        assert_eq!((picked.chosen.len(), picked.matched), (2, 3));
        // without ids, tags are what make candidates
        assert_eq!(
            chosen(json!({"test_target_type": "ALL", "tag_key": "team", "tag_value": "a"})),
            ["i-1", "i-2", "i-3"]
        );
    }

    #[test]
    fn describe_instances_is_narrowed_to_the_named_ids_and_tags() {
        let names = |a: Value| {
            let s = experimentvr_selector(&args(a), "running").unwrap();
            server_filters(&s)
                .iter()
                .map(|f| format!("{}={}", f.name().unwrap(), f.values().join(",")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(json!({"targets": ["i-1", "i-2"], "test_target_type": "RANDOM"})),
            ["instance-id=i-1,i-2"]
        );
        assert_eq!(
            names(json!({"targets": ["i-1"]})),
            ["instance-id=i-1"],
            "NAMED_LIST too"
        );
        assert_eq!(
            names(json!({"test_target_type": "ALL", "tag_key": "tag:Name", "tag_value": "web-*"})),
            ["tag:Name=web-*"]
        );
    }

    #[test]
    fn incomplete_or_wrong_selection_arguments_are_named() {
        for (bad, needle) in [
            (json!({}), "test_target_type is missing"),
            (
                json!({"test_target_type": "SOME", "tag_key": "k", "tag_value": "v"}),
                "unknown selection mode",
            ),
            (
                json!({"test_target_type": "ALL"}),
                "needs tag_key and tag_value",
            ),
            (
                json!({"test_target_type": "ALL", "tag_key": "tag:Name"}),
                "tag_value is missing",
            ),
            (
                json!({"test_target_type": "NAMED_LIST"}),
                "NAMED_LIST names no target",
            ),
            (
                json!({"test_target_type": 3}),
                "test_target_type: expected a string",
            ),
            (
                json!({"targets": [1], "test_target_type": "NAMED_LIST"}),
                "targets: expected a list of ids",
            ),
            (
                json!({"test_target_type": "ALL", "tag_key": "tag:", "tag_value": "x"}),
                "tag_key",
            ),
        ] {
            let e = experimentvr_selector(&args(bad.clone()), "running").unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
