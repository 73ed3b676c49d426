//! A host fault's severity ladder, read from its arguments (pure): the stages it runs (the
//! arguments, or one stage per `parameter_map` entry over them: the library's dict by severity
//! level, or our list), their total duration against
//! `max_duration`, and whether a failed stage ends the ladder (`failure_mode`).

use super::fault_args::Arg;
use super::fault_table::{DEFAULT_MAX_DURATION, Fault, MAX_STAGE_SECONDS};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One stage of a fault: the document's parameters.
pub type Stage = BTreeMap<String, String>;

/// A document parameter from an experiment value: strings as they are, numbers and booleans
/// written out; anything else is refused, naming the argument.
fn parameter_text(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "{name}: expected a string or a number, got {other}"
        )),
    }
}

/// An argument's value for the document: translated by its `Convert`, the error naming it.
fn converted(a: &Arg, name: &str, value: &Value) -> Result<Option<String>, String> {
    let text = parameter_text(name, value)?;
    (a.value)(&text).map_err(|e| format!("{name}: {e}"))
}

/// A `parameter_map` stage's value: one value, or the seed's one-element list (`["60"]`).
fn stage_value(value: &Value) -> &Value {
    match value {
        Value::Array(one) if one.len() == 1 => &one[0],
        other => other,
    }
}

/// The stages a fault runs: the arguments (or defaults) as the first and only stage, or, with a
/// `parameter_map`, one stage per entry, each overriding the arguments. The map is the
/// library's dict keyed by severity level (stages in its order) or our list; an entry names
/// arguments by any of their names (`ec2_stress_packet_loss_percent`), our suffix (`loss_percent`)
/// or the seed document's parameter (`loss`). Pure.
pub fn stages(fault: &Fault, args: &Map<String, Value>) -> Result<Vec<Stage>, String> {
    Ok(ladder(fault, args)?.into_iter().map(|(_, s)| s).collect())
}

/// As `stages`, each with its label: the severity level, or `stage <n>` (from 1).
pub fn ladder(fault: &Fault, args: &Map<String, Value>) -> Result<Vec<(String, Stage)>, String> {
    let mut base = Stage::new();
    for a in fault.args {
        let names = fault.names(a);
        let given: Vec<(&String, &Value)> = names
            .iter()
            .filter_map(|n| Some((n, args.get(n).filter(|v| !v.is_null())?)))
            .collect();
        let value = match given[..] {
            [] => match a.default {
                None => return Err(format!("{} is required", names[0])),
                Some("") => None,
                Some(d) => (a.value)(d).map_err(|e| format!("{} default: {e}", names[0]))?,
            },
            [(name, v)] => converted(a, name, v)?,
            _ => {
                let both: Vec<&str> = given.iter().map(|(n, _)| n.as_str()).collect();
                return Err(format!(
                    "{} name the same argument: give one of them",
                    both.join(" and ")
                ));
            }
        };
        if let (true, Some(v)) = (a.sent(), value) {
            base.insert(a.parameter.into(), v);
        }
    }
    let map_name = fault.arg_name("parameter_map");
    let entries: Vec<(String, &Value)> = match args.get(&map_name).filter(|_| fault.ladder) {
        // `{}` is the library's default: no ladder
        None | Some(Value::Null) => return Ok(vec![("stage 1".into(), base)]),
        Some(Value::Object(levels)) if levels.is_empty() => {
            return Ok(vec![("stage 1".into(), base)]);
        }
        Some(Value::Object(levels)) if !levels.is_empty() => {
            levels.iter().map(|(k, v)| (k.clone(), v)).collect()
        }
        Some(Value::Array(entries)) if !entries.is_empty() => entries
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("stage {}", i + 1), v))
            .collect(),
        Some(_) => {
            return Err(format!(
                "{map_name}: expected parameter overrides per stage: a mapping of severity level \
                 to overrides (the library's), or a non-empty list of them"
            ));
        }
    };
    let dict = matches!(args.get(&map_name), Some(Value::Object(_)));
    entries
        .into_iter()
        .enumerate()
        .map(|(i, (label, entry))| {
            let place = if dict {
                format!("{map_name}.{label}")
            } else {
                format!("{map_name}[{i}]")
            };
            let entry = entry
                .as_object()
                .ok_or_else(|| format!("{place}: expected a mapping of argument to value"))?;
            let mut stage = base.clone();
            for (key, value) in entry {
                let a = fault
                    .args
                    .iter()
                    .find(|a| fault.is_key(a, key))
                    .ok_or_else(|| {
                        let known: Vec<String> = fault.args.iter().map(|a| fault.name(a)).collect();
                        format!(
                            "{place}.{key}: not an argument of {} (expected one of {})",
                            fault.func,
                            known.join(", ")
                        )
                    })?;
                let value = converted(a, &format!("{place}.{key}"), stage_value(value))?;
                if a.sent() {
                    match value {
                        Some(v) => stage.insert(a.parameter.into(), v),
                        None => stage.remove(a.parameter),
                    };
                }
            }
            Ok((label, stage))
        })
        .collect()
}

/// Seconds a stage lasts (its `duration`).
pub fn stage_seconds(stage: &Stage) -> Result<u64, String> {
    let d = stage.get("duration").map(String::as_str).unwrap_or("0");
    let secs = d
        .trim()
        .parse::<u64>()
        .map_err(|_| format!("duration {d:?}: expected a whole number of seconds"))?;
    if secs > MAX_STAGE_SECONDS {
        return Err(format!(
            "duration {secs}: at most {MAX_STAGE_SECONDS} seconds (a day), as the documents take"
        ));
    }
    Ok(secs)
}

/// The total duration of the stages, refused when over `max_duration`. Pure.
pub fn check_duration(stages: &[Stage], max: Option<&Value>) -> Result<u64, String> {
    let total = total_seconds(stages)?;
    match over_max(total, max_seconds(max)?, stages.len()) {
        Some(refusal) => Err(refusal),
        None => Ok(total),
    }
}

/// The stages' durations added up; a stage whose duration is not valid is an error. Pure.
pub fn total_seconds(stages: &[Stage]) -> Result<u64, String> {
    let mut total = 0u64;
    for s in stages {
        total = total.saturating_add(stage_seconds(s)?);
    }
    Ok(total)
}

/// `max_duration` as seconds, if given. Pure.
pub fn max_seconds(max: Option<&Value>) -> Result<Option<u64>, String> {
    match max {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parameter_text("max_duration", v)?
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("max_duration {v}: expected a whole number of seconds")),
    }
}

/// The `max_duration` a fault runs under: the one given, else the library's default for a
/// ladder fault (the seed's older functions take none). Pure.
pub fn max_for(fault: &Fault, args: &Map<String, Value>) -> Result<Option<u64>, String> {
    let given = max_seconds(args.get("max_duration"))?;
    Ok(if fault.ladder {
        given.or(Some(DEFAULT_MAX_DURATION))
    } else {
        given
    })
}

/// Why a total over `max_duration` is refused, or `None` within it. Pure.
pub fn over_max(total: u64, max: Option<u64>, stages: usize) -> Option<String> {
    let max = max?;
    (total > max).then(|| {
        format!(
            "the fault would last {total}s in all ({stages} stage{}), more than max_duration {max}s",
            if stages == 1 { "" } else { "s" }
        )
    })
}

/// `FailFast` (default) or `Continue`.
pub fn keeps_going(fault: &Fault, args: &Map<String, Value>) -> Result<bool, String> {
    let name = fault.arg_name("failure_mode");
    match args.get(&name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("failfast") => Ok(false),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("continue") => Ok(true),
        Some(v) => Err(format!("{name}: expected FailFast or Continue, got {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::ec2::fault_table::FAULTS;
    use serde_json::json;

    fn fault(func: &str) -> &'static Fault {
        FAULTS.iter().find(|f| f.func == func).unwrap()
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_seed_stress_memory_arguments_map_to_the_document() {
        let a = args(
            json!({"targets": null, "test_target_type": "RANDOM", "tag_key": "tag:Name",
            "tag_value": "*", "region": "us-east-1", "duration": "300", "number_of_workers": "1",
            "memory_percentage_per_worker": "99"}),
        );
        let s = stages(fault("stress_memory"), &a).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0]["duration"], "300");
        assert_eq!(s[0]["workers"], "1");
        assert_eq!(s[0]["percent"], "99");
        let names: Vec<&str> = fault("stress_memory")
            .params()
            .iter()
            .map(|p| p.name)
            .collect();
        for n in a.keys() {
            assert!(names.contains(&n.as_str()), "{n} is a parameter");
        }
        assert!(
            !names.contains(&"max_duration"),
            "the seed's signature has no max_duration"
        );
    }

    #[test]
    fn a_parameter_map_is_a_ladder_of_stages_over_the_arguments() {
        let f = fault("ec2_stress_network_latency");
        let a = args(json!({"ec2_stress_network_latency_duration": 30,
            "ec2_stress_network_latency_network_delay": 100,
            "ec2_stress_network_latency_parameter_map": [
                {"network_delay": 200}, {"ec2_stress_network_latency_network_delay": "400", "duration": 60}]}));
        let s = stages(f, &a).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0]["delay"].as_str(), s[0]["duration"].as_str()),
            ("200", "30")
        );
        assert_eq!(
            (s[1]["delay"].as_str(), s[1]["duration"].as_str()),
            ("400", "60")
        );
        assert!(
            !s[0].contains_key("interface"),
            "an empty default leaves the document's own"
        );
        assert_eq!(check_duration(&s, None).unwrap(), 90);
        assert_eq!(check_duration(&s, Some(&json!("90"))).unwrap(), 90);
        let e = check_duration(&s, Some(&json!(89))).unwrap_err();
        assert!(
            e.contains("90s in all (2 stages), more than max_duration 89s"),
            "{e}"
        );
    }

    #[test]
    fn the_submit_time_estimate_agrees_with_every_fault_s_own_duration() {
        use shared::model::duration::{FAULT_DURATIONS, fault_seconds};
        let mut listed: Vec<&str> = FAULT_DURATIONS.iter().map(|f| f.0).collect();
        let mut ours: Vec<&str> = FAULTS.iter().map(|f| f.func).collect();
        listed.sort();
        ours.sort();
        assert_eq!(
            listed, ours,
            "model::duration::FAULT_DURATIONS lists every fault"
        );
        for f in FAULTS {
            let required: Map<String, Value> = f
                .args
                .iter()
                .filter(|a| a.default.is_none())
                .map(|a| (f.arg_name(a.suffix), json!("x")))
                .collect();
            let mut cases = vec![required.clone()];
            let mut given = required.clone();
            given.insert(f.arg_name("duration"), json!("45"));
            cases.push(given.clone());
            let mut library = required.clone();
            library.insert(f.name(f.duration()), json!(35));
            cases.push(library);
            if f.ladder {
                given.insert(
                    f.arg_name("parameter_map"),
                    json!([{"duration": 10}, {f.arg_name("duration"): "20"}, {}]),
                );
                cases.push(given.clone());
                given.insert(
                    f.arg_name("parameter_map"),
                    json!({"low": {"duration": ["10"]}, "high": {f.name(f.duration()): "20"}, "same": {}}),
                );
                cases.push(given.clone());
            }
            for args in cases {
                let s = stages(f, &args).unwrap();
                let total = check_duration(&s, None).unwrap();
                assert_eq!(
                    fault_seconds(f.func, &args, &Map::new()),
                    Some(Ok(total as f64)),
                    "{}: {args:?}",
                    f.func
                );
            }
        }
    }

    #[test]
    fn bad_fault_arguments_are_named() {
        let f = fault("ec2_blackhole_by_port");
        for (bad, needle) in [
            (
                json!({}),
                "ec2_blackhole_by_port_destination_ports is required",
            ),
            (
                json!({"ec2_blackhole_by_port_port": [1]}),
                "ec2_blackhole_by_port_port: expected a string or a number",
            ),
            (
                json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_parameter_map": []}),
                "non-empty list",
            ),
            (
                json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_parameter_map": [3]}),
                "parameter_map[0]: expected a mapping",
            ),
            (
                json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_parameter_map": [{"speed": 1}]}),
                "parameter_map[0].speed: not an argument of ec2_blackhole_by_port",
            ),
        ] {
            let e = stages(f, &args(bad.clone())).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
        let s = stages(
            f,
            &args(
                json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_duration": "soon"}),
            ),
        )
        .unwrap();
        assert!(
            check_duration(&s, None)
                .unwrap_err()
                .contains("whole number of seconds")
        );
        let s = stages(f, &args(json!({"ec2_blackhole_by_port_port": 80, "ec2_blackhole_by_port_duration": u64::MAX}))).unwrap();
        assert!(
            check_duration(&s, None)
                .unwrap_err()
                .contains("at most 86400 seconds")
        );
        assert!(
            keeps_going(
                f,
                &args(json!({"ec2_blackhole_by_port_failure_mode": "Continue"}))
            )
            .unwrap()
        );
        assert!(!keeps_going(f, &args(json!({}))).unwrap());
        assert!(
            keeps_going(
                f,
                &args(json!({"ec2_blackhole_by_port_failure_mode": "maybe"}))
            )
            .is_err()
        );
    }

    #[test]
    fn the_library_s_dict_parameter_map_runs_its_levels_in_order_over_its_defaults() {
        let f = fault("ec2_stress_packet_loss");
        let a = args(json!({"ec2_stress_packet_duration": "20",
            "ec2_stress_packet_loss_parameter_map": {
                "loss_80_percent": {"ec2_stress_packet_loss_percent": "80"},
                "loss_20_percent": {"ec2_stress_packet_loss_percent": "20", "duration": ["5"]},
                "eth1": {"ec2_stress_packet_interface": "eth1", "loss": 3}}}));
        let l = ladder(f, &a).unwrap();
        let levels: Vec<&str> = l.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            levels,
            ["loss_80_percent", "loss_20_percent", "eth1"],
            "the dict's order"
        );
        let got: Vec<(&str, &str, Option<&str>)> = l
            .iter()
            .map(|(_, s)| {
                (
                    s["loss"].as_str(),
                    s["duration"].as_str(),
                    s.get("interface").map(String::as_str),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("80", "20", None),
                ("20", "5", None),
                ("3", "20", Some("eth1"))
            ]
        );
        // the library's defaults: 90 % for 60 s on every port (0 is the document's default)
        let s = stages(f, &args(json!({}))).unwrap();
        assert_eq!(
            s[0],
            Stage::from([
                ("duration".into(), "60".into()),
                ("loss".into(), "90".into()),
                ("portType".into(), "sport".into())
            ])
        );
        let s = stages(
            f,
            &args(json!({"ec2_stress_packet_port_number": "443",
                "ec2_stress_packet_port_type": "dport"})),
        )
        .unwrap();
        assert_eq!(
            (s[0]["port"].as_str(), s[0]["portType"].as_str()),
            ("443", "dport")
        );
        let e = stages(f, &args(json!({"ec2_stress_packet_port_number": "http"}))).unwrap_err();
        assert!(
            e.starts_with("ec2_stress_packet_port_number: is \"http\""),
            "{e}"
        );
        let e = stages(
            f,
            &args(json!({"ec2_stress_packet_duration": 5, "ec2_stress_packet_loss_duration": 6})),
        )
        .unwrap_err();
        assert!(e.contains("name the same argument"), "{e}");
    }

    #[test]
    fn an_alias_sends_the_same_as_the_library_s_name() {
        for (func, library, alias, value) in [
            (
                "ec2_stress_cpu",
                "stress_cpu_percent",
                "ec2_stress_cpu_load",
                "70",
            ),
            (
                "ec2_stress_cpu",
                "ec2_stress_cpu_duration",
                "ec2_cpu_duration",
                "30",
            ),
            (
                "ec2_stress_memory",
                "ec2_stress_memory_percent_per_worker",
                "ec2_stress_memory_percent",
                "40",
            ),
            (
                "ec2_stress_network_utilization",
                "ec2_stress_network_utilization_network_rate",
                "ec2_stress_network_utilization_bandwidth",
                "300",
            ),
            (
                "ec2_blackhole_by_ip",
                "ec2_blackhole_ip",
                "ec2_blackhole_by_ip_ip",
                "10.0.0.1",
            ),
        ] {
            let f = fault(func);
            let mut base = Map::new();
            for a in f.args.iter().filter(|a| a.default.is_none()) {
                if f.name(a) != library {
                    base.insert(f.name(a), json!("1"));
                }
            }
            let mut by_library = base.clone();
            by_library.insert(library.into(), json!(value));
            let mut by_alias = base.clone();
            by_alias.insert(alias.into(), json!(value));
            assert_eq!(
                stages(f, &by_library).unwrap(),
                stages(f, &by_alias).unwrap(),
                "{func}: {alias}"
            );
        }
        let port = stages(
            fault("ec2_blackhole_by_port"),
            &args(json!({"ec2_blackhole_by_port_destination_ports": 443})),
        )
        .unwrap();
        assert_eq!(
            port[0],
            Stage::from([
                ("direction".into(), "both".into()),
                ("duration".into(), "60".into()),
                ("port".into(), "443".into()),
                ("protocol".into(), "tcp udp".into())
            ]),
            "the library's defaults, as our document takes them"
        );
        let rate = stages(fault("ec2_stress_network_utilization"), &args(json!({}))).unwrap();
        assert_eq!(rate[0]["rate"], "100kbit");
    }

    #[test]
    fn a_ladder_fault_runs_under_the_library_s_max_duration_unless_given_one() {
        let f = fault("ec2_stress_cpu");
        assert_eq!(max_for(f, &args(json!({}))).unwrap(), Some(900));
        assert_eq!(
            max_for(f, &args(json!({"max_duration": "1800"}))).unwrap(),
            Some(1800)
        );
        let s = stages(
            f,
            &args(json!({"ec2_stress_cpu_parameter_map": {
            "a": {"duration": 600}, "b": {"duration": 600}}})),
        )
        .unwrap();
        // the library compares only the first stage (600 <= 900); the sum is refused here
        let e = over_max(
            total_seconds(&s).unwrap(),
            max_for(f, &args(json!({}))).unwrap(),
            s.len(),
        );
        assert!(
            e.unwrap()
                .contains("1200s in all (2 stages), more than max_duration 900s")
        );
        assert_eq!(
            max_for(fault("stress_memory"), &args(json!({}))).unwrap(),
            None
        );
    }
}
