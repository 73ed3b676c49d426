//! The seed library's EC2 host faults as a table: each row is a function name under
//! `experimentvr.ec2.actions`, the SSM document that injects it (from `ssm::documents`) and how
//! its experiment arguments map to the document's parameters; and the parameters the
//! reference's signature check accepts for each.

use crate::faults::ssm::documents::{self, Document};
use shared::fleet::safety::targets::Mode;
use shared::providers::registry::{ArgKind, Param};

/// One argument of a fault: `<func>_<suffix>` in the experiment (the seed's `stress_memory`:
/// `<suffix>`), `parameter` in the document.
#[derive(Debug, Clone, Copy)]
pub struct Arg {
    pub suffix: &'static str,
    pub parameter: &'static str,
    /// Sent when the experiment does not give it; `None` means the experiment must.
    pub default: Option<&'static str>,
}

const fn arg(suffix: &'static str, parameter: &'static str, default: &'static str) -> Arg {
    Arg {
        suffix,
        parameter,
        default: Some(default),
    }
}

const fn required(suffix: &'static str, parameter: &'static str) -> Arg {
    Arg {
        suffix,
        parameter,
        default: None,
    }
}

/// A fault action and the document that injects it.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub func: &'static str,
    pub document: Document,
    pub args: &'static [Arg],
    /// Arguments are named after the action (`<func>_<suffix>`), and it takes
    /// `<func>_parameter_map`, `<func>_failure_mode` and `max_duration`.
    pub ladder: bool,
}

/// Every SSM fault, the seed's `stress_memory` first.
pub const FAULTS: &[Fault] = &[
    Fault {
        func: "stress_memory",
        document: documents::STRESS_MEMORY,
        args: &[
            arg("duration", "duration", "60"),
            arg("number_of_workers", "workers", "1"),
            arg("memory_percentage_per_worker", "percent", "80"),
        ],
        ladder: false,
    },
    ladder(
        "ec2_stress_cpu",
        documents::STRESS_CPU,
        &[
            arg("duration", "duration", "60"),
            arg("workers", "workers", "0"),
            arg("load", "load", "100"),
        ],
    ),
    ladder(
        "ec2_stress_memory",
        documents::STRESS_MEMORY,
        &[
            arg("duration", "duration", "60"),
            arg("workers", "workers", "1"),
            arg("percent", "percent", "80"),
        ],
    ),
    ladder(
        "ec2_stress_io",
        documents::STRESS_IO,
        &[
            arg("duration", "duration", "60"),
            arg("workers", "workers", "1"),
            arg("percent", "percent", "50"),
        ],
    ),
    ladder(
        "ec2_exhaust_root_vol",
        documents::DISK_FILL,
        &[
            arg("duration", "duration", "60"),
            arg("percent", "percent", "95"),
            arg("path", "path", "/"),
        ],
    ),
    ladder(
        "ec2_stress_network_latency",
        documents::NETWORK_LATENCY,
        &[
            arg("duration", "duration", "60"),
            arg("network_delay", "delay", "200"),
            arg("network_jitter", "jitter", "0"),
            arg("interface", "interface", ""),
        ],
    ),
    ladder(
        "ec2_stress_packet_loss",
        documents::PACKET_LOSS,
        &[
            arg("duration", "duration", "60"),
            arg("loss_percent", "loss", "10"),
            arg("interface", "interface", ""),
        ],
    ),
    ladder(
        "ec2_stress_network_utilization",
        documents::BANDWIDTH_LIMIT,
        &[
            arg("duration", "duration", "60"),
            arg("bandwidth", "rate", "1mbit"),
            arg("interface", "interface", ""),
        ],
    ),
    ladder(
        "ec2_blackhole_by_port",
        documents::BLACKHOLE_PORT,
        &[
            arg("duration", "duration", "60"),
            required("port", "port"),
            arg("protocol", "protocol", "tcp"),
            arg("direction", "direction", "egress"),
        ],
    ),
    ladder(
        "ec2_blackhole_by_ip",
        documents::BLACKHOLE_IP,
        &[
            arg("duration", "duration", "60"),
            required("ip", "ip"),
            arg("direction", "direction", "egress"),
        ],
    ),
    ladder(
        "ec2_kill_process",
        documents::KILL_PROCESS,
        &[
            arg("duration", "duration", "0"),
            required("pid", "pid"),
            arg("signal", "signal", "SIGKILL"),
        ],
    ),
    ladder(
        "ec2_kill_process_by_name",
        documents::KILL_PROCESS_BY_NAME,
        &[
            arg("duration", "duration", "0"),
            required("name", "name"),
            arg("signal", "signal", "SIGKILL"),
        ],
    ),
];

const fn ladder(func: &'static str, document: Document, args: &'static [Arg]) -> Fault {
    Fault {
        func,
        document,
        args,
        ladder: true,
    }
}

/// The selection arguments every seed fault shares, and what each value must be: the table
/// validation checks them against (`ArgKind`), before anything runs.
pub const SELECTION: [Param; 5] = [
    Param::optional("targets").of(ArgKind::StringOrList),
    Param::optional("test_target_type").of(MODE),
    Param::optional("tag_key").of(ArgKind::Scalar),
    Param::optional("tag_value").of(ArgKind::Scalar),
    Param::optional("region").of(ArgKind::Scalar),
];

/// A selection mode, as `Mode::parse` reads it.
pub const MODE: ArgKind = ArgKind::Parsed {
    expected: "RANDOM, ALL, NAMED_LIST, COUNT(n) or PERCENT(n)",
    parse: parse_mode,
};

fn parse_mode(text: &str) -> Result<(), String> {
    // the ids only matter to NAMED_LIST, whose targets are checked when it runs
    Mode::parse(text, &["named".to_string()])
        .map(drop)
        .map_err(|e| {
            // the expectation is said once, by the parameter's kind
            let message = e.to_string();
            match message.split_once(" (expected") {
                Some((said, _)) => said.to_string(),
                None => message,
            }
        })
}

/// The longest stage the SSM documents accept, in seconds (a day).
pub const MAX_STAGE_SECONDS: u64 = 86_400;

impl Fault {
    /// `<func>_` for the `ec2_*` faults, nothing for the seed's `stress_memory`.
    pub fn prefix(&self) -> String {
        if self.ladder {
            format!("{}_", self.func)
        } else {
            String::new()
        }
    }

    pub fn arg_name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix())
    }

    /// The parameters the reference's signature check accepts, each with the kind of value
    /// it takes (a `duration` is seconds, every other document parameter one value).
    pub fn params(&self) -> Vec<Param> {
        let leak = |n: String| -> &'static str { Box::leak(n.into_boxed_str()) };
        let mut params = SELECTION.to_vec();
        for a in self.args {
            let name = leak(self.arg_name(a.suffix));
            let param = match a.default {
                None => Param::required(name),
                Some(_) => Param::optional(name),
            };
            params.push(param.of(if a.suffix == "duration" {
                ArgKind::Seconds {
                    max: MAX_STAGE_SECONDS,
                }
            } else {
                ArgKind::Scalar
            }));
        }
        if self.ladder {
            params.push(Param::optional("max_duration").of(ArgKind::Seconds { max: u64::MAX }));
            params.push(Param::optional(leak(self.arg_name("parameter_map"))));
            params.push(Param::optional(leak(self.arg_name("failure_mode"))).of(ArgKind::Scalar));
        }
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_arguments_are_checked_at_validation_by_the_kinds_of_the_table() {
        use shared::providers::registry::NativeActivity;
        let cpu = FAULTS.iter().find(|f| f.func == "ec2_stress_cpu").unwrap();
        let activity = NativeActivity::new(cpu.params(), |_| async { Ok(serde_json::Value::Null) });
        let given = serde_json::json!({
            "targets": "i-1", "test_target_type": "SOME", "tag_key": ["tag:Name"],
            "ec2_stress_cpu_duration": "-5", "ec2_stress_cpu_load": 50, "max_duration": "soon",
            "ec2_stress_cpu_parameter_map": [{"load": 10}]});
        let found: Vec<String> = activity
            .value_problems(given.as_object().unwrap())
            .into_iter()
            .map(|(argument, message, _)| format!("{argument}: {message}"))
            .collect();
        assert_eq!(
            found,
            [
                "test_target_type: unknown selection mode \"SOME\"",
                "tag_key: is a list",
                "ec2_stress_cpu_duration: is \"-5\": a duration cannot be negative",
                "max_duration: is \"soon\", not a whole number",
            ]
        );
        let fine = serde_json::json!({"test_target_type": "COUNT(2)", "ec2_stress_cpu_duration": 60,
            "targets": ["i-1", "i-2"], "max_duration": "${limit}"});
        assert!(
            activity
                .value_problems(fine.as_object().unwrap())
                .is_empty()
        );
    }

    #[test]
    fn every_fault_sends_a_listed_document_with_only_its_parameters() {
        for f in FAULTS {
            assert!(documents::DOCUMENTS.contains(&f.document), "{}", f.func);
            for a in f.args {
                assert!(
                    f.document.parameters.contains(&a.parameter),
                    "{}: {}",
                    f.func,
                    a.parameter
                );
            }
            assert!(
                f.args.iter().any(|a| a.parameter == "duration"),
                "{} takes a duration",
                f.func
            );
        }
        let mut funcs: Vec<&str> = FAULTS.iter().map(|f| f.func).collect();
        funcs.sort();
        funcs.dedup();
        assert_eq!(funcs.len(), FAULTS.len(), "one row per function");
    }
}
