//! The seed library's EC2 host faults as a table: each row is a function name under
//! `experimentvr.ec2.actions`, the SSM document that injects it (from `ssm::documents`) and its
//! arguments (`fault_args`: the library's names and defaults, our aliases, the document
//! parameter each becomes); and the parameters the reference's signature check accepts for each.

use super::fault_args::{
    Arg, any_protocol, arg, every_port, kbit, lower, no_source_ports, one_port, port_filter,
    port_side, port_type, protocols, required, whole,
};
use crate::faults::ssm::documents::{self, Document};
use shared::fleet::safety::targets::Mode;
use shared::providers::registry::{ArgKind, Param};

/// A fault action and the document that injects it.
#[derive(Debug, Clone, Copy)]
pub struct Fault {
    pub func: &'static str,
    pub document: Document,
    pub args: &'static [Arg],
    /// Our argument names are `<func>_<suffix>`, and it takes `<func>_parameter_map`,
    /// `<func>_failure_mode` and `max_duration`.
    pub ladder: bool,
}

const PORT_TYPE: Arg = arg("port_type", "", "sport").value(port_type);
const PORT_NUMBER: Arg = arg("port_number", "", "0").value(every_port);

/// Every SSM fault: the seed's `stress_memory` and `root_vol_exhaustion` (older names its
/// experiments call), then the library's `ec2_*` functions with its argument names and
/// defaults (our earlier names stay accepted), then the faults the library has only as
/// documents, named in its style. The library's `interface` default `eth0` is sent as empty
/// (the default route's interface: `eth0` on the images the library was written for, `ens5`
/// on Nitro instances).
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
    // the seed's experiments (tc-028-2): a root volume fill sized in workers x filesize GB;
    // ours fills the filesystem to `percent` (95 %) instead, whatever its size
    Fault {
        func: "root_vol_exhaustion",
        document: documents::DISK_FILL,
        args: &[
            arg("duration", "duration", "60"),
            arg("workers", "", "4").value(whole),
            arg("filesize", "", "1").value(whole),
            arg("percent", "percent", "95"),
            arg("path", "path", "/"),
        ],
        ladder: false,
    },
    // the library defines `ec2_stress_cpu` twice; Python keeps the later one
    // (`ec2_stress_cpu_duration`, `stress_cpu_percent`), which we follow; the earlier one's
    // `ec2_cpu_duration`, `ec2_cpu_percent` are aliases
    ladder(
        "ec2_stress_cpu",
        documents::STRESS_CPU,
        &[
            arg("duration", "duration", "60").aliases(&["ec2_cpu_duration"]),
            arg("load", "load", "50")
                .library("stress_cpu_percent")
                .aliases(&["ec2_cpu_percent"])
                .keys(&["cpu"]),
            arg("workers", "workers", "0"),
        ],
    ),
    ladder(
        "ec2_stress_memory",
        documents::STRESS_MEMORY,
        &[
            arg("duration", "duration", "60"),
            arg("percent", "percent", "50")
                .library("ec2_stress_memory_percent_per_worker")
                .keys(&["memoryPercentagePerWorker"]),
            arg("workers", "workers", "1")
                .library("ec2_stress_memory_number_of_workers")
                .keys(&["numberOfWorkers"]),
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
            arg("network_delay", "delay", "100").keys(&["delay"]),
            arg("network_jitter", "jitter", "0"),
            arg("interface", "interface", ""),
            PORT_TYPE.keys(&["portType"]),
            PORT_NUMBER.keys(&["ports"]),
        ],
    ),
    ladder(
        "ec2_stress_packet_loss",
        documents::PACKET_LOSS,
        &[
            arg("duration", "duration", "60").library("ec2_stress_packet_duration"),
            arg("loss_percent", "loss", "90")
                .library("ec2_stress_packet_loss_percent")
                .keys(&["loss"]),
            arg("interface", "interface", "").library("ec2_stress_packet_interface"),
            // our PacketLoss filters on a port, as the library's document does
            arg("port_type", "portType", "sport")
                .library("ec2_stress_packet_port_type")
                .value(port_side),
            arg("port_number", "port", "0")
                .library("ec2_stress_packet_port_number")
                .keys(&["portNumber"])
                .value(port_filter),
        ],
    ),
    ladder(
        "ec2_stress_network_utilization",
        documents::BANDWIDTH_LIMIT,
        &[
            arg("duration", "duration", "60"),
            arg("bandwidth", "rate", "100")
                .library("ec2_stress_network_utilization_network_rate")
                .keys(&["rate"])
                .value(kbit),
            arg("interface", "interface", ""),
            PORT_TYPE.keys(&["portType"]),
            PORT_NUMBER.keys(&["portNumber"]),
        ],
    ),
    ladder(
        "ec2_blackhole_by_port",
        documents::BLACKHOLE_PORT,
        &[
            arg("duration", "duration", "60"),
            required("port", "port")
                .library("ec2_blackhole_by_port_destination_ports")
                .keys(&["destinationPorts"])
                .value(one_port),
            arg("source_ports", "", "")
                .keys(&["sourcePorts"])
                .value(no_source_ports),
            arg("protocol", "protocol", "tcp udp").value(protocols),
            arg("direction", "direction", "BOTH").value(lower),
        ],
    ),
    ladder(
        "ec2_blackhole_by_ip",
        documents::BLACKHOLE_IP,
        &[
            arg("duration", "duration", "60"),
            required("ip", "ip")
                .library("ec2_blackhole_ip")
                .keys(&["sourceIP", "destinationIP"]),
            arg("port_protocol", "", "tcp udp")
                .keys(&["protocol"])
                .value(any_protocol),
            arg("direction", "direction", "BOTH").value(lower),
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
    // the seed's documents without a library function: `StressAllNetworkIO`,
    // `BlockNetworkTrafficOnInstance`, `ShutDownNetworkInterfaceOnInstance`
    ladder(
        "ec2_stress_all_network_io",
        documents::DROP_NEW_CONNECTIONS,
        &[arg("duration", "duration", "60")],
    ),
    ladder(
        "ec2_block_all_network_traffic",
        documents::BLOCK_ALL_TRAFFIC,
        &[
            arg("duration", "duration", "60"),
            arg("interface", "interface", ""),
        ],
    ),
    ladder(
        "ec2_shutdown_network_interface",
        documents::INTERFACE_DOWN,
        &[
            arg("duration", "duration", "60"),
            arg("interface", "interface", ""),
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

/// The `max_duration` a ladder fault has when the experiment gives none (the library's
/// default). Unlike the library, which compares only the first stage with it, the sum of every
/// stage must fit.
pub const DEFAULT_MAX_DURATION: u64 = 900;

impl Fault {
    /// `<func>_` for a ladder fault, nothing for the seed's older functions.
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

    /// The name docs and plans use for `a`: the library's, else ours.
    pub fn name(&self, a: &Arg) -> String {
        a.library
            .map_or_else(|| self.arg_name(a.suffix), str::to_string)
    }

    /// Every name an experiment may give `a`, its main name first.
    pub fn names(&self, a: &Arg) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let all = [self.name(a), self.arg_name(a.suffix)]
            .into_iter()
            .chain(a.aliases.iter().map(|n| n.to_string()));
        for n in all {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names
    }

    /// Whether `key` names `a` in a `parameter_map` stage: any of its names, our suffix, or
    /// the seed document's parameter.
    pub fn is_key(&self, a: &Arg, key: &str) -> bool {
        key == a.suffix || a.keys.contains(&key) || self.names(a).iter().any(|n| n == key)
    }

    /// The argument that becomes the document's `duration`.
    pub fn duration(&self) -> &Arg {
        self.args
            .iter()
            .find(|a| a.parameter == "duration")
            .expect("every fault takes a duration")
    }

    /// The parameters the reference's signature check accepts, each with the kind of value
    /// it takes (a `duration` is seconds, every other argument one value). A required
    /// argument is required under its main name or any other.
    pub fn params(&self) -> Vec<Param> {
        let leak = |n: String| -> &'static str { Box::leak(n.into_boxed_str()) };
        let mut params = SELECTION.to_vec();
        for a in self.args {
            let kind = if a.parameter == "duration" {
                ArgKind::Seconds {
                    max: MAX_STAGE_SECONDS,
                }
            } else {
                ArgKind::Scalar
            };
            let names = self.names(a);
            let others: Vec<&'static str> = names[1..].iter().map(|n| leak(n.clone())).collect();
            let main = match a.default {
                None => Param::required(leak(names[0].clone()))
                    .or(Box::leak(others.clone().into_boxed_slice())),
                Some(_) => Param::optional(leak(names[0].clone())),
            };
            params.push(main.of(kind));
            for name in others {
                params.push(Param::optional(name).of(kind));
            }
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
            for a in f.args.iter().filter(|a| a.sent()) {
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
        for f in FAULTS {
            let names: Vec<&str> = f.params().iter().map(|p| p.name).collect();
            let mut unique = names.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                names.len(),
                "{}: a name names one argument",
                f.func
            );
        }
        let mut funcs: Vec<&str> = FAULTS.iter().map(|f| f.func).collect();
        funcs.sort();
        funcs.dedup();
        assert_eq!(funcs.len(), FAULTS.len(), "one row per function");
    }

    fn names(func: &str) -> Vec<&'static str> {
        let f = FAULTS.iter().find(|f| f.func == func).unwrap();
        f.params().iter().map(|p| p.name).collect()
    }

    #[test]
    fn the_library_s_signatures_are_accepted_with_our_names_as_aliases() {
        let selection = [
            "targets",
            "test_target_type",
            "tag_key",
            "tag_value",
            "region",
        ];
        let ladder = ["max_duration"];
        for (func, library, ours) in [
            (
                "ec2_stress_packet_loss",
                &[
                    "ec2_stress_packet_port_type",
                    "ec2_stress_packet_port_number",
                    "ec2_stress_packet_loss_percent",
                    "ec2_stress_packet_duration",
                    "ec2_stress_packet_interface",
                    "ec2_stress_packet_loss_parameter_map",
                    "ec2_stress_packet_loss_failure_mode",
                ][..],
                &[
                    "ec2_stress_packet_loss_duration",
                    "ec2_stress_packet_loss_loss_percent",
                    "ec2_stress_packet_loss_interface",
                ][..],
            ),
            (
                "ec2_stress_cpu",
                &["ec2_stress_cpu_duration", "stress_cpu_percent"][..],
                &["ec2_stress_cpu_load", "ec2_cpu_duration", "ec2_cpu_percent"][..],
            ),
            (
                "ec2_stress_memory",
                &[
                    "ec2_stress_memory_duration",
                    "ec2_stress_memory_percent_per_worker",
                    "ec2_stress_memory_number_of_workers",
                ][..],
                &["ec2_stress_memory_percent", "ec2_stress_memory_workers"][..],
            ),
            (
                "ec2_stress_network_utilization",
                &[
                    "ec2_stress_network_utilization_port_type",
                    "ec2_stress_network_utilization_port_number",
                    "ec2_stress_network_utilization_network_rate",
                    "ec2_stress_network_utilization_interface",
                ][..],
                &["ec2_stress_network_utilization_bandwidth"][..],
            ),
            (
                "ec2_blackhole_by_port",
                &[
                    "ec2_blackhole_by_port_protocol",
                    "ec2_blackhole_by_port_source_ports",
                    "ec2_blackhole_by_port_destination_ports",
                    "ec2_blackhole_by_port_direction",
                ][..],
                &["ec2_blackhole_by_port_port"][..],
            ),
            (
                "ec2_blackhole_by_ip",
                &["ec2_blackhole_ip", "ec2_blackhole_by_ip_port_protocol"][..],
                &["ec2_blackhole_by_ip_ip"][..],
            ),
        ] {
            let accepted = names(func);
            for n in selection.iter().chain(&ladder).chain(library).chain(ours) {
                assert!(accepted.contains(n), "{func} accepts {n}");
            }
        }
        let root = names("root_vol_exhaustion");
        for n in ["workers", "filesize", "duration", "targets", "tag_key"] {
            assert!(root.contains(&n), "{n}");
        }
        assert!(!root.contains(&"max_duration"));
    }
}
