//! A pod fault's document parameters from the seed's arguments (pure): names, defaults and
//! conversions of `pod_fault_table`, the seed's per-worker memory percent made a total, and
//! what the pod faults cannot do (a severity ladder, a port filter) refused, naming the
//! argument.

use super::pod_fault_table::{Convert, PodFault};
use crate::faults::ssm::documents;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An experiment value as document text: strings as they are, numbers and booleans written out.
pub fn value_text(name: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.trim().to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "{name}: expected a string or a number, got {other}"
        )),
    }
}

/// The document's parameters from the experiment's arguments (or the seed's defaults), pod
/// and container left out. Pure.
pub fn parameters(
    fault: &PodFault,
    args: &Map<String, Value>,
) -> Result<BTreeMap<String, String>, String> {
    let given = |name: &str| args.get(name).filter(|v| !v.is_null());
    if let Some(map) = given(&fault.map_arg())
        && !(map.as_object().is_some_and(Map::is_empty)
            || map.as_array().is_some_and(Vec::is_empty))
    {
        return Err(format!(
            "{}: severity ladders are not supported for the pod faults yet; run one stage per \
             activity with the arguments instead",
            fault.map_arg()
        ));
    }
    if let Some(mode) = given(&fault.failure_mode_arg()) {
        let mode = value_text(&fault.failure_mode_arg(), mode)?;
        if !["failfast", "continue", "true", "false"].contains(&mode.to_ascii_lowercase().as_str())
        {
            return Err(format!(
                "{}: expected FailFast or Continue, got {mode:?}",
                fault.failure_mode_arg()
            ));
        }
    }
    if fault.port_filter()
        && let Some(port) = given("port_number")
        && value_text("port_number", port)? != "0"
    {
        return Err(format!(
            "port_number {port}: {} acts on every port (0); a port filter is not supported",
            fault.func
        ));
    }
    let mut out = BTreeMap::new();
    for a in fault.args {
        let text = match given(a.name) {
            Some(v) => value_text(a.name, v)?,
            None => match a.default {
                Some(d) => d.to_string(),
                None => return Err(format!("{} is required", a.name)),
            },
        };
        if text.is_empty() && a.default.is_none() {
            return Err(format!("{} is required (it is empty)", a.name));
        }
        let text = match a.convert {
            Convert::Text => text,
            Convert::Lower => text.to_ascii_lowercase(),
            Convert::Kbit if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                format!("{text}kbit")
            }
            Convert::Kbit => text,
        };
        if !text.is_empty() {
            out.insert(a.parameter.to_string(), text);
        }
    }
    for (p, v) in fault.fixed {
        out.insert(p.to_string(), v.to_string());
    }
    // the seed's memory percent is per worker (stress-ng --vm-bytes P% each); ours is in all
    if fault.document == documents::POD_STRESS_MEMORY {
        let number = |p: &str| -> Result<u64, String> {
            let v = out.get(p).map(String::as_str).unwrap_or("1");
            v.parse()
                .map_err(|_| format!("{p} {v:?}: expected a whole number"))
        };
        let total = number("percent")?.saturating_mul(number("workers")?.max(1));
        out.insert("percent".into(), total.clamp(1, 100).to_string());
    }
    if fault.func == "pod_blackhole_by_port"
        && !out.contains_key("sourcePorts")
        && !out.contains_key("destinationPorts")
    {
        return Err(
            "pod_blackhole_by_port: give pod_blackhole_by_port_source_ports or \
             pod_blackhole_by_port_destination_ports (comma-separated ports)"
                .into(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::pod_fault_table::POD_FAULTS;
    use super::*;
    use serde_json::json;

    fn params(func: &str, args: Value) -> Result<BTreeMap<String, String>, String> {
        let fault = POD_FAULTS.iter().find(|f| f.func == func).unwrap();
        parameters(fault, args.as_object().unwrap())
    }

    #[test]
    fn the_seeds_arguments_and_defaults_become_the_documents_parameters() {
        let p = params("pod_stress_cpu", json!({"container_name_pattern": "web"})).unwrap();
        assert_eq!(p["duration"], "60");
        assert_eq!(p["load"], "50");
        let p = params(
            "pod_stress_memory",
            json!({"pod_stress_memory_percent_per_worker": "30", "pod_stress_memory_number_of_workers": 2}),
        )
        .unwrap();
        assert_eq!((p["percent"].as_str(), p["workers"].as_str()), ("60", "2"));
        let p = params("pod_stress_network_utilization", json!({})).unwrap();
        assert_eq!(p["rate"], "100kbit", "the seed's rate is kbit");
        assert_eq!(p["interface"], "eth0");
        let p = params(
            "pod_blackhole_by_port",
            json!({"pod_blackhole_by_port_destination_ports": "53"}),
        )
        .unwrap();
        assert_eq!(p["direction"], "both");
        assert_eq!(p["protocol"], "tcp udp");
        assert!(
            !p.contains_key("sourcePorts"),
            "empty: the document's default"
        );
        let p = params("pod_termination_crash", json!({})).unwrap();
        assert_eq!(p["duration"], "30");
    }

    #[test]
    fn what_the_pod_faults_cannot_do_is_refused_naming_the_argument() {
        for (func, args, needle) in [
            (
                "pod_blackhole_by_ip",
                json!({}),
                "pod_blackhole_ip is required",
            ),
            (
                "pod_kill_process_in_container",
                json!({"pod_kill_process_name": ""}),
                "pod_kill_process_name is required",
            ),
            ("pod_blackhole_by_port", json!({}), "destination_ports"),
            (
                "pod_stress_packet_loss",
                json!({"port_number": "443"}),
                "port_number",
            ),
            (
                "pod_stress_cpu",
                json!({"pod_stress_memory_parameter_map": {"a": {"duration": ["5"]}}}),
                "pod_stress_memory_parameter_map",
            ),
            (
                "pod_stress_cpu",
                json!({"pod_stress_memory_failure_mode": "Sometimes"}),
                "FailFast or Continue",
            ),
        ] {
            let e = params(func, args.clone()).unwrap_err();
            assert!(e.contains(needle), "{func} {args}: {e}");
        }
    }
}
