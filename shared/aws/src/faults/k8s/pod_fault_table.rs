//! The seed library's node-side pod faults as a table: each row is a function under
//! `experimentvr.k8s.actions`, the pod document that injects it (`ssm::documents`), and how
//! the seed's arguments (names and defaults as in its `k8s/actions.py`) become the document's
//! parameters; and the parameters the reference's signature check accepts for each.

use crate::faults::ec2::fault_table::{MAX_STAGE_SECONDS, MODE};
use crate::faults::ssm::documents::{self, Document};
use shared::providers::registry::{ArgKind, Param};

/// How an experiment value becomes the document's parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convert {
    /// The text as given.
    Text,
    /// Lower case (the seed's `BOTH` is the documents' `both`).
    Lower,
    /// A bare number is kbit per second, as the seed's `tc ... rate <n>kbit`.
    Kbit,
}

/// One argument of a pod fault.
#[derive(Debug, Clone, Copy)]
pub struct PodArg {
    pub name: &'static str,
    pub parameter: &'static str,
    /// Sent when the experiment does not give it; `None`: the experiment must.
    pub default: Option<&'static str>,
    pub convert: Convert,
}

const fn arg(name: &'static str, parameter: &'static str, default: &'static str) -> PodArg {
    PodArg {
        name,
        parameter,
        default: Some(default),
        convert: Convert::Text,
    }
}

const fn conv(
    name: &'static str,
    parameter: &'static str,
    default: &'static str,
    convert: Convert,
) -> PodArg {
    PodArg {
        name,
        parameter,
        default: Some(default),
        convert,
    }
}

const fn required(name: &'static str, parameter: &'static str) -> PodArg {
    PodArg {
        name,
        parameter,
        default: None,
        convert: Convert::Text,
    }
}

/// A node-side pod fault.
#[derive(Debug, Clone, Copy)]
pub struct PodFault {
    pub func: &'static str,
    pub document: Document,
    pub args: &'static [PodArg],
    /// The document acts on one container (`containerId`), not the whole pod.
    pub container: bool,
    /// Parameters sent whatever the experiment says.
    pub fixed: &'static [(&'static str, &'static str)],
    /// The seed's `*_parameter_map` and `*_failure_mode` arguments of this function (the
    /// seed's `pod_stress_cpu` takes `pod_stress_memory_*`).
    pub ladder: &'static str,
    /// `pod_blackhole_by_name`: the argument naming the pods whose addresses are blackholed.
    pub addresses_of: Option<&'static str>,
}

/// Every node-side pod fault.
pub const POD_FAULTS: &[PodFault] = &[
    PodFault {
        func: "pod_stress_cpu",
        document: documents::POD_STRESS_CPU,
        args: &[
            arg("pod_stress_cpu_duration", "duration", "60"),
            arg("pod_stress_cpu_percentage", "load", "50"),
        ],
        container: true,
        fixed: &[],
        ladder: "pod_stress_memory",
        addresses_of: None,
    },
    PodFault {
        func: "pod_stress_memory",
        document: documents::POD_STRESS_MEMORY,
        args: &[
            arg("pod_stress_memory_duration", "duration", "60"),
            arg("pod_stress_memory_percent_per_worker", "percent", "50"),
            arg("pod_stress_memory_number_of_workers", "workers", "1"),
        ],
        container: true,
        fixed: &[],
        ladder: "pod_stress_memory",
        addresses_of: None,
    },
    PodFault {
        func: "pod_exhaust_root_vol",
        document: documents::POD_DISK_FILL,
        args: &[arg("duration", "duration", "60")],
        container: true,
        fixed: &[],
        ladder: "pod_exhaust_root_vol",
        addresses_of: None,
    },
    PodFault {
        func: "pod_stress_packet_loss",
        document: documents::POD_PACKET_LOSS,
        args: &[
            arg("duration", "duration", "60"),
            arg("loss", "loss", "90"),
            arg("interface", "interface", "eth0"),
        ],
        container: false,
        fixed: &[],
        ladder: "pod_stress_packet_loss",
        addresses_of: None,
    },
    PodFault {
        func: "pod_stress_network_latency",
        document: documents::POD_NETWORK_LATENCY,
        args: &[
            arg("duration", "duration", "60"),
            arg("network_delay", "delay", "100"),
            arg("interface", "interface", "eth0"),
        ],
        container: false,
        fixed: &[],
        ladder: "pod_stress_network_latency",
        addresses_of: None,
    },
    PodFault {
        func: "pod_stress_network_utilization",
        document: documents::POD_BANDWIDTH_LIMIT,
        args: &[
            arg("duration", "duration", "60"),
            conv("network_rate", "rate", "100", Convert::Kbit),
            arg("interface", "interface", "eth0"),
        ],
        container: false,
        fixed: &[],
        ladder: "pod_stress_network_utilization",
        addresses_of: None,
    },
    PodFault {
        func: "pod_blackhole_by_port",
        document: documents::POD_BLACKHOLE_PORT,
        args: &[
            arg("pod_blackhole_by_port_duration", "duration", "60"),
            arg("pod_blackhole_by_port_protocol", "protocol", "tcp udp"),
            arg("pod_blackhole_by_port_source_ports", "sourcePorts", ""),
            arg(
                "pod_blackhole_by_port_destination_ports",
                "destinationPorts",
                "",
            ),
            conv(
                "pod_blackhole_by_port_direction",
                "direction",
                "BOTH",
                Convert::Lower,
            ),
        ],
        container: false,
        fixed: &[],
        ladder: "pod_blackhole_by_port",
        addresses_of: None,
    },
    PodFault {
        func: "pod_blackhole_by_ip",
        document: documents::POD_BLACKHOLE_IP,
        args: &[
            required("pod_blackhole_ip", "ip"),
            arg("pod_blackhole_by_ip_duration", "duration", "60"),
            arg("pod_blackhole_by_ip_port_protocol", "protocol", "tcp udp"),
            conv(
                "pod_blackhole_by_ip_direction",
                "direction",
                "BOTH",
                Convert::Lower,
            ),
        ],
        container: false,
        fixed: &[],
        ladder: "pod_blackhole_by_ip",
        addresses_of: None,
    },
    PodFault {
        func: "pod_blackhole_by_name",
        document: documents::POD_BLACKHOLE_IP,
        args: &[
            arg("pod_blackhole_by_name_duration", "duration", "60"),
            arg("pod_blackhole_by_name_protocol", "protocol", "tcp udp"),
            conv(
                "pod_blackhole_by_name_direction",
                "direction",
                "BOTH",
                Convert::Lower,
            ),
        ],
        container: false,
        fixed: &[],
        ladder: "pod_blackhole_by_name",
        addresses_of: Some("blacklist_pod_name_pattern"),
    },
    PodFault {
        func: "pod_termination_crash",
        document: documents::POD_TERMINATION_CRASH,
        args: &[],
        container: true,
        // waits up to 30 s for the main process to exit (the seed's kill -9 does not wait)
        fixed: &[("duration", "30")],
        ladder: "pod_termination_crash",
        addresses_of: None,
    },
    PodFault {
        func: "pod_kill_process_in_container",
        document: documents::POD_KILL_PROCESS,
        args: &[
            required("pod_kill_process_name", "name"),
            arg("pod_kill_process_signal", "signal", "SIGKILL"),
        ],
        container: true,
        fixed: &[("duration", "0")],
        ladder: "pod_kill_process_in_container",
        addresses_of: None,
    },
];

/// The arguments the seed's node-side pod functions share (instance selection, the container
/// name pattern, the count), and ours to name the cluster and the pods through the API.
pub const SHARED: [Param; 15] = [
    Param::required("container_name_pattern").of(ArgKind::Scalar),
    Param::optional("targets").of(ArgKind::StringOrList),
    Param::optional("test_target_type").of(MODE),
    Param::optional("tag_key").of(ArgKind::Scalar),
    Param::optional("tag_value").of(ArgKind::Scalar),
    Param::optional("num_containers_to_target").of(ArgKind::Scalar),
    Param::optional("region").of(ArgKind::Scalar),
    Param::optional("max_duration").of(ArgKind::Seconds { max: u64::MAX }),
    Param::optional("cluster_name").of(ArgKind::Scalar),
    Param::optional("name_space").of(ArgKind::Scalar),
    Param::optional("namespace").of(ArgKind::Scalar),
    Param::optional("pod_name_pattern").of(ArgKind::Scalar),
    Param::optional("label_selector").of(ArgKind::Scalar),
    Param::optional("kubeconfig").of(ArgKind::Scalar),
    Param::optional("kube_context").of(ArgKind::Scalar),
];

/// The seed's network functions' port filter: accepted, and only `port_number` 0 (every port).
pub const PORT_ARGS: [&str; 2] = ["port_type", "port_number"];

impl PodFault {
    pub fn map_arg(&self) -> String {
        format!("{}_parameter_map", self.ladder)
    }

    pub fn failure_mode_arg(&self) -> String {
        format!("{}_failure_mode", self.ladder)
    }

    /// Whether the seed's function takes `port_type`/`port_number`.
    pub fn port_filter(&self) -> bool {
        self.func.starts_with("pod_stress_network") || self.func == "pod_stress_packet_loss"
    }

    /// The parameters the reference's signature check accepts.
    pub fn params(&self) -> Vec<Param> {
        let leak = |n: String| -> &'static str { Box::leak(n.into_boxed_str()) };
        let mut params = SHARED.to_vec();
        for a in self.args {
            let param = match a.default {
                None => Param::required(a.name),
                Some(_) => Param::optional(a.name),
            };
            params.push(param.of(if a.parameter == "duration" {
                ArgKind::Seconds {
                    max: MAX_STAGE_SECONDS,
                }
            } else {
                ArgKind::Scalar
            }));
        }
        if self.port_filter() {
            params.extend(PORT_ARGS.map(|n| Param::optional(n).of(ArgKind::Scalar)));
        }
        if let Some(name) = self.addresses_of {
            params.push(Param::required(name).of(ArgKind::Scalar));
        }
        params.push(Param::optional(leak(self.map_arg())));
        params.push(Param::optional(leak(self.failure_mode_arg())).of(ArgKind::Scalar));
        params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pod_fault_sends_a_pod_document_with_only_its_parameters() {
        for f in POD_FAULTS {
            assert!(documents::DOCUMENTS.contains(&f.document), "{}", f.func);
            assert!(f.document.parameters.contains(&"podUid"), "{}", f.func);
            assert_eq!(
                f.container,
                f.document.parameters.contains(&"containerId"),
                "{}: a container document gets the container",
                f.func
            );
            for p in f
                .args
                .iter()
                .map(|a| a.parameter)
                .chain(f.fixed.iter().map(|(p, _)| *p))
            {
                assert!(f.document.parameters.contains(&p), "{}: {p}", f.func);
            }
            let durations = f
                .args
                .iter()
                .map(|a| a.parameter)
                .chain(f.fixed.iter().map(|(p, _)| *p))
                .filter(|p| *p == "duration")
                .count();
            assert_eq!(durations, 1, "{} sends one duration", f.func);
        }
        let mut funcs: Vec<&str> = POD_FAULTS.iter().map(|f| f.func).collect();
        funcs.sort();
        funcs.dedup();
        assert_eq!(funcs.len(), POD_FAULTS.len(), "one row per function");
    }

    #[test]
    fn the_seeds_signatures_pass_the_signature_check() {
        use shared::providers::registry::NativeActivity;
        let common = [
            "container_name_pattern",
            "targets",
            "test_target_type",
            "tag_key",
            "tag_value",
            "num_containers_to_target",
            "region",
        ];
        // every argument of the seed's k8s/actions.py functions (the later pod_stress_cpu)
        let seed: [(&str, &[&str]); 11] = [
            (
                "pod_stress_cpu",
                &[
                    "pod_stress_cpu_duration",
                    "max_duration",
                    "pod_stress_cpu_percentage",
                    "pod_stress_memory_parameter_map",
                    "pod_stress_memory_failure_mode",
                ],
            ),
            (
                "pod_stress_memory",
                &[
                    "pod_stress_memory_duration",
                    "max_duration",
                    "pod_stress_memory_percent_per_worker",
                    "pod_stress_memory_number_of_workers",
                    "pod_stress_memory_parameter_map",
                    "pod_stress_memory_failure_mode",
                ],
            ),
            (
                "pod_exhaust_root_vol",
                &[
                    "duration",
                    "max_duration",
                    "pod_exhaust_root_vol_parameter_map",
                    "pod_exhaust_root_vol_failure_mode",
                ],
            ),
            (
                "pod_stress_packet_loss",
                &[
                    "port_type",
                    "port_number",
                    "loss",
                    "duration",
                    "interface",
                    "max_duration",
                    "pod_stress_packet_loss_parameter_map",
                    "pod_stress_packet_loss_failure_mode",
                ],
            ),
            (
                "pod_stress_network_latency",
                &[
                    "port_type",
                    "port_number",
                    "network_delay",
                    "duration",
                    "interface",
                    "max_duration",
                    "pod_stress_network_latency_parameter_map",
                    "pod_stress_network_latency_failure_mode",
                ],
            ),
            (
                "pod_stress_network_utilization",
                &[
                    "port_type",
                    "port_number",
                    "network_rate",
                    "duration",
                    "interface",
                    "max_duration",
                    "pod_stress_network_utilization_parameter_map",
                    "pod_stress_network_utilization_failure_mode",
                ],
            ),
            (
                "pod_blackhole_by_port",
                &[
                    "pod_blackhole_by_port_protocol",
                    "pod_blackhole_by_port_source_ports",
                    "pod_blackhole_by_port_destination_ports",
                    "pod_blackhole_by_port_direction",
                    "pod_blackhole_by_port_duration",
                    "max_duration",
                    "pod_blackhole_by_port_parameter_map",
                    "pod_blackhole_by_port_failure_mode",
                ],
            ),
            (
                "pod_blackhole_by_ip",
                &[
                    "pod_blackhole_ip",
                    "pod_blackhole_by_ip_port_protocol",
                    "pod_blackhole_by_ip_direction",
                    "pod_blackhole_by_ip_duration",
                    "max_duration",
                    "pod_blackhole_by_ip_parameter_map",
                    "pod_blackhole_by_ip_failure_mode",
                ],
            ),
            (
                "pod_blackhole_by_name",
                &[
                    "cluster_name",
                    "blacklist_pod_name_pattern",
                    "pod_blackhole_by_name_protocol",
                    "pod_blackhole_by_name_direction",
                    "pod_blackhole_by_name_duration",
                    "max_duration",
                    "pod_blackhole_by_name_parameter_map",
                    "pod_blackhole_by_name_failure_mode",
                ],
            ),
            (
                "pod_termination_crash",
                &[
                    "pod_termination_crash_parameter_map",
                    "pod_termination_crash_failure_mode",
                ],
            ),
            (
                "pod_kill_process_in_container",
                &["pod_kill_process_name", "pod_kill_process_signal"],
            ),
        ];
        assert_eq!(seed.len(), POD_FAULTS.len());
        for (func, own) in seed {
            let f = POD_FAULTS.iter().find(|f| f.func == func).unwrap();
            let activity =
                NativeActivity::new(f.params(), |_| async { Ok(serde_json::Value::Null) });
            let mut given: Vec<String> = common.iter().chain(own).map(|s| s.to_string()).collect();
            given.push("name_space".into());
            assert_eq!(
                activity.check_arguments(&given),
                Vec::<String>::new(),
                "{func}"
            );
            given.push(format!("{func}_durration"));
            assert_eq!(
                activity.check_arguments(&given).len(),
                1,
                "{func}: a misspelt argument"
            );
        }
    }
}
