//! The seed library's Kubernetes arguments read into a `PodSelector` (pure): the namespace
//! (`name_space`, or `namespace`), the pod name pattern, how many pods (`num_pods_to_kill`)
//! and `test_target_type`, with the seed's defaults; and the small typed readers the actions
//! and probes share.

use super::connect::ClusterRef;
use super::targets::PodSelector;
use serde_json::{Map, Value};
use shared::fleet::safety::targets::Mode;
use shared::providers::registry::NativeCall;

/// An optional non-empty string argument (the reader the AWS-resource families use too).
pub use crate::faults::family_args::text;

/// A required non-empty string argument.
pub fn required(args: &Map<String, Value>, name: &str, example: &str) -> Result<String, String> {
    text(args, name)?
        .ok_or_else(|| format!("{name} is missing: expected a string such as {example}"))
}

/// A whole number given as a number or a string of digits (the seed passes `"1"`), or `default`.
pub fn whole(args: &Map<String, Value>, name: &str, default: u64) -> Result<u64, String> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("{name}: expected a whole number, got {n}")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(default),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("{name}: expected a whole number, got {s:?}")),
        Some(v) => Err(format!("{name}: expected a whole number, got {v}")),
    }
}

/// The namespace: `name_space` (the seed's actions) or `namespace` (its probes).
pub fn namespace(args: &Map<String, Value>) -> Result<String, String> {
    match text(args, "name_space")? {
        Some(ns) => Ok(ns),
        None => required(args, "namespace", "\"default\"").map_err(|_| {
            "name_space is missing: expected the pods' namespace, e.g. \"default\"".into()
        }),
    }
}

/// The mode `test_target_type` and a count make: `RANDOM` takes `count` pods at random (one
/// by default), `ALL` every match, and `COUNT(n)`, `PERCENT(n)`, `NAMED_LIST` (with `names`)
/// as the EC2 faults read them.
pub fn mode(kind: &str, count: u64, names: &[String]) -> Result<Mode, String> {
    let upper = kind.trim().to_ascii_uppercase();
    if upper == "RANDOM" {
        return Ok(match count {
            0 => return Err("num_pods_to_kill: 0 pods is nothing to do".into()),
            1 => Mode::Random,
            n => Mode::Count(
                u32::try_from(n).map_err(|_| format!("num_pods_to_kill: {n} is too many"))?,
            ),
        });
    }
    Mode::parse(kind, names).map_err(|e| format!("test_target_type: {e}"))
}

/// The `PodSelector` of the seed's pod arguments: `cluster_name`/`kubeconfig`, the namespace,
/// `pod_name_pattern` (a Python regular expression searched in pod names; required unless
/// `label_selector` is given), `label_selector`, `test_target_type` (default `RANDOM`) and
/// `count_arg` (e.g. `num_pods_to_kill`, default 1).
pub fn pod_selector(
    call: &NativeCall,
    count_arg: &str,
    on_node: bool,
) -> Result<PodSelector, String> {
    let args = &call.arguments;
    let cluster = ClusterRef::from_call(call)?;
    let namespace = namespace(args)?;
    let name_pattern = text(args, "pod_name_pattern")?;
    let label_selector = text(args, "label_selector")?;
    if name_pattern.is_none() && label_selector.is_none() {
        return Err(
            "pod_name_pattern is missing: say which pods (a pattern such as \"web-\", or label_selector)"
                .into(),
        );
    }
    let count = whole(args, count_arg, 1)?;
    let kind = text(args, "test_target_type")?.unwrap_or_else(|| "RANDOM".into());
    let names: Vec<String> = text(args, "pod_names")?
        .map(|s| {
            s.split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(PodSelector {
        cluster,
        namespace,
        name_pattern,
        label_selector,
        mode: mode(&kind, count, &names)?,
        on_node,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(args: Value) -> NativeCall {
        NativeCall {
            arguments: args.as_object().unwrap().clone(),
            ..NativeCall::default()
        }
    }

    #[test]
    fn the_seeds_kill_pods_arguments_become_a_selector() {
        let s = pod_selector(
            &call(json!({"cluster_name": "eks", "name_space": "shop", "pod_name_pattern": "web-", "num_pods_to_kill": "2"})),
            "num_pods_to_kill",
            false,
        )
        .unwrap();
        assert_eq!(s.cluster.cluster_name.as_deref(), Some("eks"));
        assert_eq!(
            (s.namespace.as_str(), s.name_pattern.as_deref()),
            ("shop", Some("web-"))
        );
        assert_eq!(s.mode, Mode::Count(2));
        let s = pod_selector(
            &call(json!({"cluster_name": "eks", "namespace": "shop", "pod_name_pattern": "web", "test_target_type": "ALL"})),
            "num_pods_to_kill",
            true,
        )
        .unwrap();
        assert_eq!((s.mode, s.on_node), (Mode::All, true));
        let s = pod_selector(
            &call(json!({"cluster_name": "eks", "name_space": "a", "label_selector": "app=web"})),
            "n",
            false,
        )
        .unwrap();
        assert_eq!(
            (s.mode, s.label_selector.as_deref()),
            (Mode::Random, Some("app=web"))
        );
    }

    #[test]
    fn wrong_pod_arguments_are_named() {
        for (bad, needle) in [
            (
                json!({"cluster_name": "e", "pod_name_pattern": "w"}),
                "name_space is missing",
            ),
            (
                json!({"cluster_name": "e", "name_space": "a"}),
                "pod_name_pattern is missing",
            ),
            (
                json!({"cluster_name": "e", "name_space": "a", "pod_name_pattern": "w", "num_pods_to_kill": "two"}),
                "num_pods_to_kill: expected a whole number",
            ),
            (
                json!({"cluster_name": "e", "name_space": "a", "pod_name_pattern": "w", "num_pods_to_kill": 0}),
                "0 pods",
            ),
            (
                json!({"cluster_name": "e", "name_space": "a", "pod_name_pattern": "w", "test_target_type": "SOME"}),
                "test_target_type: unknown selection mode",
            ),
            (
                json!({"cluster_name": "e", "name_space": 3, "pod_name_pattern": "w"}),
                "name_space: expected a string",
            ),
        ] {
            let e = pod_selector(&call(bad.clone()), "num_pods_to_kill", false).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }
}
