//! Which instances `chaosaws`'s EC2 actions act on, read from their arguments (pure):
//! `instance_ids`/`instance_id`, `az` and `filters` become a `targets::Selector` and the
//! filters `DescribeInstances` is called with.
//!
//! As in `chaosaws`: ids → exactly those; otherwise every instance matching `filters` and `az`
//! (the plural actions act on *all* of them, the single ones on one chosen at random); nothing
//! at all is refused. Unlike `chaosaws`, ids given together with `filters`/`az` must also match
//! them (`chaosaws` ignores the filters then), and candidates must be in a state the action
//! makes sense for.

use super::instances::id_list;
use super::probes;
use aws_sdk_ec2::types::Filter;
use serde_json::{Map, Value};
use shared::fleet::safety::targets::{Mode, Selector};

/// The states an instance to stop or terminate may be in.
pub const RUNNING: &[&str] = &["running", "pending"];

/// A selection: the selector applied to the candidates, and the filters `DescribeInstances`
/// is called with (which only narrow the candidates; the selector decides).
#[derive(Debug, Clone)]
pub struct Targeting {
    pub selector: Selector,
    pub server_filters: Vec<Filter>,
}

pub fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

/// An optional non-empty string argument.
pub fn text(
    args: &Map<String, Value>,
    name: &str,
    example: &str,
) -> Result<Option<String>, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(v) => Err(format!(
            "{name}: expected a string such as {example}, got {v}"
        )),
    }
}

/// The selector's state filter and the matching server filter.
pub fn in_states(states: &[&str]) -> ((String, Vec<String>), Filter) {
    let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
    (
        ("state".into(), states.clone()),
        filter("instance-state-name", &states),
    )
}

/// The targets `chaosaws`'s `instance_ids`/`instance_id`, `az` and `filters` describe, for an
/// action that needs its candidates in one of `states`. Pure.
///
/// EC2 filters go to `DescribeInstances` as given; those the candidates carry
/// (`tag:<k>` with one value, `instance-state-name`, `availability-zone`, `instance-type`)
/// are also checked by the selector and shown in the journal.
pub fn chaosaws_targeting(
    args: &Map<String, Value>,
    func: &str,
    ids_arg: &str,
    single: bool,
    states: &[&str],
) -> Result<Targeting, String> {
    let ids = id_list(args.get(ids_arg), ids_arg)?;
    if single && ids.len() > 1 {
        return Err(format!(
            "{ids_arg}: {func} acts on one instance, {} are given (use {func}s)",
            ids.len()
        ));
    }
    let az = text(args, "az", "\"us-east-1a\"")?;
    let filters = probes::filters(args.get("filters"))?;
    if ids.is_empty() && az.is_none() && filters.is_empty() {
        return Err(format!(
            "{func} needs {ids_arg}, az or filters to say which instances: refusing to act on \
             every instance of the region"
        ));
    }
    let (state, state_filter) = in_states(states);
    let mut selector = Selector {
        tags: Vec::new(),
        filters: vec![state],
        mode: if !ids.is_empty() {
            Mode::Ids(ids.clone())
        } else if single {
            Mode::Random
        } else {
            Mode::All
        },
        within: Vec::new(),
        allow_empty: false,
    };
    for f in &filters {
        let name = f.name().unwrap_or_default();
        let values = f.values().to_vec();
        if let Some(key) = name.strip_prefix("tag:") {
            if let [value] = values.as_slice() {
                selector.tags.push((key.to_string(), value.clone()));
            }
        } else if let Some(attribute) = match name {
            "instance-state-name" => Some("state"),
            "availability-zone" | "instance-type" => Some(name),
            _ => None,
        } {
            selector.filters.push((attribute.to_string(), values));
        }
    }
    let mut server_filters = filters;
    if let Some(az) = az {
        let az = vec![az];
        selector
            .filters
            .push(("availability-zone".into(), az.clone()));
        server_filters.push(filter("availability-zone", &az));
    }
    if !ids.is_empty() {
        server_filters.push(filter("instance-id", &ids));
    }
    server_filters.push(state_filter);
    Ok(Targeting {
        selector,
        server_filters,
    })
}

/// `force`: a boolean (default false).
pub fn force(args: &Map<String, Value>) -> Result<bool, String> {
    match args.get("force") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(format!("force: expected true or false, got {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn stop(v: Value) -> Result<Targeting, String> {
        chaosaws_targeting(&args(v), "stop_instances", "instance_ids", false, RUNNING)
    }

    /// Server filters as (name, values).
    fn server(t: &Targeting) -> Vec<(String, Vec<String>)> {
        t.server_filters
            .iter()
            .map(|f| (f.name().unwrap().to_string(), f.values().to_vec()))
            .collect()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn instance_ids_are_exactly_those_in_a_state_the_action_fits() {
        let t = stop(json!({"instance_ids": ["i-1", "i-2"]})).unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-1", "i-2"])));
        assert!(t.selector.tags.is_empty());
        assert_eq!(
            t.selector.filters,
            vec![("state".into(), strings(&["running", "pending"]))]
        );
        assert!(!t.selector.allow_empty);
        assert_eq!(
            server(&t),
            vec![
                ("instance-id".into(), strings(&["i-1", "i-2"])),
                (
                    "instance-state-name".into(),
                    strings(&["running", "pending"])
                ),
            ]
        );
        let t = chaosaws_targeting(
            &args(json!({"instance_ids": "i-3"})),
            "start_instances",
            "instance_ids",
            false,
            &["stopped"],
        )
        .unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-3"])));
        assert_eq!(
            t.selector.filters,
            vec![("state".into(), strings(&["stopped"]))]
        );
    }

    #[test]
    fn filters_and_az_select_every_match_and_are_checked_on_the_candidates() {
        let t = stop(json!({"filters": [
            {"Name": "tag:team", "Values": ["web"]},
            {"Name": "tag:tier", "Values": ["a", "b"]},
            {"Name": "instance-type", "Values": ["t3.micro"]},
            {"Name": "vpc-id", "Values": ["vpc-1"]}], "az": "us-east-1a"}))
        .unwrap();
        assert_eq!(t.selector.mode, Mode::All);
        assert_eq!(t.selector.tags, vec![("team".into(), "web".into())]);
        assert_eq!(
            t.selector.filters,
            vec![
                ("state".into(), strings(&["running", "pending"])),
                ("instance-type".into(), strings(&["t3.micro"])),
                ("availability-zone".into(), strings(&["us-east-1a"])),
            ]
        );
        let names: Vec<String> = server(&t).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            strings(&[
                "tag:team",
                "tag:tier",
                "instance-type",
                "vpc-id",
                "availability-zone",
                "instance-state-name"
            ])
        );

        // only an AZ: every instance in it (the plural actions), one at random (the single)
        let t = stop(json!({"az": "eu-west-1b"})).unwrap();
        assert_eq!(t.selector.mode, Mode::All);
        let t = chaosaws_targeting(
            &args(json!({"az": "eu-west-1b", "instance_id": null})),
            "stop_instance",
            "instance_id",
            true,
            RUNNING,
        )
        .unwrap();
        assert_eq!(t.selector.mode, Mode::Random);
        let t = chaosaws_targeting(
            &args(json!({"instance_id": "i-9"})),
            "terminate_instance",
            "instance_id",
            true,
            RUNNING,
        )
        .unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-9"])));

        // ids with filters: the ids, and they must match the filters too
        let t = stop(json!({"instance_ids": ["i-1"], "filters": [{"Name": "instance-state-name", "Values": ["running"]}]}))
            .unwrap();
        assert_eq!(t.selector.mode, Mode::Ids(strings(&["i-1"])));
        assert!(
            t.selector
                .filters
                .contains(&("state".into(), strings(&["running"])))
        );
    }

    #[test]
    fn bad_ec2_selection_arguments_are_named() {
        for (bad, needle) in [
            (
                json!({}),
                "stop_instances needs instance_ids, az or filters",
            ),
            (
                json!({"instance_ids": [], "filters": [], "az": ""}),
                "stop_instances needs instance_ids, az or filters",
            ),
            (
                json!({"instance_ids": [1]}),
                "instance_ids: expected a list of ids",
            ),
            (
                json!({"instance_ids": {"a": 1}}),
                "instance_ids: expected a list of ids",
            ),
            (json!({"az": 3}), "az: expected a string"),
            (json!({"filters": {"Name": "x"}}), "filters must be a list"),
            (json!({"filters": [{"Values": ["a"]}]}), "filters[0].Name"),
            (
                json!({"filters": [{"Name": "a", "Values": "b"}]}),
                "filters[0].Values",
            ),
        ] {
            let e = stop(bad.clone()).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let e = chaosaws_targeting(
            &args(json!({"instance_id": ["i-1", "i-2"]})),
            "stop_instance",
            "instance_id",
            true,
            RUNNING,
        )
        .unwrap_err();
        assert!(
            e.contains("instance_id: stop_instance acts on one instance"),
            "{e}"
        );
        assert!(!force(&args(json!({}))).unwrap());
        assert!(force(&args(json!({"force": true}))).unwrap());
        assert!(
            force(&args(json!({"force": "yes"})))
                .unwrap_err()
                .contains("force: expected true or false")
        );
    }
}
