//! The SSM command documents the fault actions send, and the parameters each one takes.
//!
//! This list is the single source of the names: the host faults (`ec2::fault_table`) refer to
//! documents only through it, and `shared/aws/tests/ssm_documents.rs` checks that
//! `ssm-documents/<name>.yaml` exists for every entry (and nothing else is there), with exactly
//! these parameters. Every document takes `duration` (seconds) and schedules its own revert
//! before it injects, so a fault ends even when the command is cancelled or the fleet is gone.

use crate::faults::ec2::fault_args::{
    Convert, every_port, kbit, lower, no_source_ports, one_address, one_port, port_filter,
    port_side, port_type, protocols, same, whole,
};
use crate::faults::safety::FaultSettings;

/// One SSM command document: its name and its parameters (all SSM `String`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Document {
    pub name: &'static str,
    pub parameters: &'static [&'static str],
}

pub const STRESS_CPU: Document = Document {
    name: "StressCPU",
    parameters: &["duration", "workers", "load"],
};
pub const STRESS_MEMORY: Document = Document {
    name: "StressMemory",
    parameters: &["duration", "workers", "percent"],
};
pub const STRESS_IO: Document = Document {
    name: "StressIO",
    parameters: &["duration", "workers", "percent"],
};
pub const DISK_FILL: Document = Document {
    name: "DiskFill",
    parameters: &["duration", "percent", "path"],
};
pub const NETWORK_LATENCY: Document = Document {
    name: "NetworkLatency",
    parameters: &["duration", "interface", "delay", "jitter"],
};
pub const PACKET_LOSS: Document = Document {
    name: "PacketLoss",
    parameters: &["duration", "interface", "loss", "port", "portType"],
};
pub const BANDWIDTH_LIMIT: Document = Document {
    name: "BandwidthLimit",
    parameters: &["duration", "interface", "rate"],
};
pub const BLACKHOLE_PORT: Document = Document {
    name: "BlackholePort",
    parameters: &["duration", "port", "protocol", "direction"],
};
pub const BLACKHOLE_IP: Document = Document {
    name: "BlackholeIP",
    parameters: &["duration", "ip", "direction"],
};
pub const KILL_PROCESS: Document = Document {
    name: "KillProcess",
    parameters: &["duration", "pid", "signal"],
};
pub const KILL_PROCESS_BY_NAME: Document = Document {
    name: "KillProcessByName",
    parameters: &["duration", "name", "signal"],
};
pub const BLACKHOLE_ADDRESSES: Document = Document {
    name: "BlackholeAddresses",
    parameters: &["duration", "addresses"],
};
pub const POINT_INACTIVE_DNS: Document = Document {
    name: "PointInactiveDNS",
    parameters: &["duration", "names", "address"],
};
pub const DROP_NEW_CONNECTIONS: Document = Document {
    name: "DropNewConnections",
    parameters: &["duration"],
};
pub const BLOCK_ALL_TRAFFIC: Document = Document {
    name: "BlockAllTraffic",
    parameters: &["duration", "interface"],
};
pub const INTERFACE_DOWN: Document = Document {
    name: "InterfaceDown",
    parameters: &["duration", "interface"],
};

pub const UNMOUNT_VOLUME: Document = Document {
    name: "UnmountVolume",
    parameters: &["duration", "device", "volume"],
};

// The pod documents: the same faults inside one pod on the node (found by its UID), for
// `experimentvr.k8s.actions` (`faults/k8s/pod_faults.rs`).
pub const POD_STRESS_CPU: Document = Document {
    name: "PodStressCPU",
    parameters: &["duration", "podUid", "containerId", "workers", "load"],
};
pub const POD_STRESS_MEMORY: Document = Document {
    name: "PodStressMemory",
    parameters: &["duration", "podUid", "containerId", "workers", "percent"],
};
pub const POD_DISK_FILL: Document = Document {
    name: "PodDiskFill",
    parameters: &["duration", "podUid", "containerId", "percent", "path"],
};
pub const POD_NETWORK_LATENCY: Document = Document {
    name: "PodNetworkLatency",
    parameters: &["duration", "podUid", "interface", "delay", "jitter"],
};
pub const POD_PACKET_LOSS: Document = Document {
    name: "PodPacketLoss",
    parameters: &["duration", "podUid", "interface", "loss"],
};
pub const POD_BANDWIDTH_LIMIT: Document = Document {
    name: "PodBandwidthLimit",
    parameters: &["duration", "podUid", "interface", "rate"],
};
pub const POD_BLACKHOLE_PORT: Document = Document {
    name: "PodBlackholePort",
    parameters: &[
        "duration",
        "podUid",
        "sourcePorts",
        "destinationPorts",
        "protocol",
        "direction",
    ],
};
pub const POD_BLACKHOLE_IP: Document = Document {
    name: "PodBlackholeIP",
    parameters: &["duration", "podUid", "ip", "protocol", "direction"],
};
pub const POD_TERMINATION_CRASH: Document = Document {
    name: "PodTerminationCrash",
    parameters: &["duration", "podUid", "containerId", "signal"],
};
pub const POD_KILL_PROCESS: Document = Document {
    name: "PodKillProcess",
    parameters: &["duration", "podUid", "containerId", "name", "signal"],
};

/// Every document, in the order the README lists them.
pub const DOCUMENTS: &[Document] = &[
    STRESS_CPU,
    STRESS_MEMORY,
    STRESS_IO,
    DISK_FILL,
    NETWORK_LATENCY,
    PACKET_LOSS,
    BANDWIDTH_LIMIT,
    BLACKHOLE_PORT,
    BLACKHOLE_IP,
    KILL_PROCESS,
    KILL_PROCESS_BY_NAME,
    BLACKHOLE_ADDRESSES,
    POINT_INACTIVE_DNS,
    DROP_NEW_CONNECTIONS,
    BLOCK_ALL_TRAFFIC,
    INTERFACE_DOWN,
    UNMOUNT_VOLUME,
    POD_STRESS_CPU,
    POD_STRESS_MEMORY,
    POD_DISK_FILL,
    POD_NETWORK_LATENCY,
    POD_PACKET_LOSS,
    POD_BANDWIDTH_LIMIT,
    POD_BLACKHOLE_PORT,
    POD_BLACKHOLE_IP,
    POD_TERMINATION_CRASH,
    POD_KILL_PROCESS,
];

/// The name a deployment registered `document` under: `--ssm-document-prefix`
/// (`BROKER_SSM_DOCUMENT_PREFIX`; the template sets it to `<stack name>-`, so two stacks in one
/// account do not collide) followed by the document's name.
pub fn registered_name(settings: &FaultSettings, document: &Document) -> String {
    format!("{}{}", settings.document_prefix, document.name)
}

/// What a seed document name stands for here.
#[derive(Debug, Clone, Copy)]
pub enum Stands {
    /// Our document, sent in its place.
    For(Document),
    /// Not an SSM document of ours: why, and what to use instead.
    Not(&'static str),
}

/// One of the seed's SSM document names (`cdk/lambda_infra/ssm/`, and the names its library
/// sends): our document in its place, how the seed's parameters become ours (a parameter
/// mapped to `""` is checked and not sent), and the values ours needs that the seed's
/// document fixes.
#[derive(Debug, Clone, Copy)]
pub struct SeedName {
    pub seed: &'static str,
    pub stands: Stands,
    pub parameters: &'static [(&'static str, &'static str, Convert)],
    pub fixed: &'static [(&'static str, &'static str)],
}

const fn seed(
    seed: &'static str,
    ours: Document,
    parameters: &'static [(&'static str, &'static str, Convert)],
    fixed: &'static [(&'static str, &'static str)],
) -> SeedName {
    SeedName {
        seed,
        stands: Stands::For(ours),
        parameters,
        fixed,
    }
}

const fn not(seed: &'static str, why: &'static str) -> SeedName {
    SeedName {
        seed,
        stands: Stands::Not(why),
        parameters: &[],
        fixed: &[],
    }
}

const DURATION: (&str, &str, Convert) = ("duration", "duration", same);
const INTERFACE: (&str, &str, Convert) = ("interface", "interface", same);
const PORT_TYPE: (&str, &str, Convert) = ("portType", "", port_type);
const DEPENDENCIES: (&str, &str, Convert) = ("installDependencies", "", same);
const SEE_K8S: &str = "a Kubernetes fault: see experimentvr.k8s (docs/faults.md)";

/// The seed's document names, one row each: the one mapping from its names to ours
/// (`ssm-documents/README.md` shows it; a test checks the two agree).
#[rustfmt::skip]
pub const SEED_NAMES: &[SeedName] = &[
    seed("StressCPU", STRESS_CPU, &[DURATION, ("cpu", "workers", same), DEPENDENCIES], &[]),
    seed("StressMemory", STRESS_MEMORY, &[DURATION, ("workers", "workers", same), ("percent", "percent", same), ("numberOfWorkers", "workers", same), ("memoryPercentagePerWorker", "percent", same), DEPENDENCIES], &[]),
    seed("StressIO", STRESS_IO, &[DURATION, ("iomix", "workers", same), ("percent", "percent", same), DEPENDENCIES], &[]),
    seed("DiskVolumeExhaustion", DISK_FILL, &[DURATION, ("workers", "", whole), ("filesize", "", whole), DEPENDENCIES], &[]),
    seed("StressNetworkLatency", NETWORK_LATENCY, &[DURATION, INTERFACE, ("delay", "delay", same), ("ports", "", every_port), PORT_TYPE, DEPENDENCIES], &[]),
    seed("StressPacketLoss", PACKET_LOSS, &[DURATION, INTERFACE, ("loss", "loss", same), ("portNumber", "port", port_filter), ("portType", "portType", port_side), DEPENDENCIES], &[]),
    seed("StressNetworkUtilization", BANDWIDTH_LIMIT, &[DURATION, INTERFACE, ("rate", "rate", kbit), ("portNumber", "", every_port), PORT_TYPE, DEPENDENCIES], &[]),
    seed("BlackHoleByPort", BLACKHOLE_PORT, &[DURATION, ("protocol", "protocol", protocols), ("destinationPorts", "port", one_port), ("sourcePorts", "", no_source_ports), DEPENDENCIES], &[("direction", "both"), ("protocol", "tcp")]),
    seed("BlackholeByPort", BLACKHOLE_PORT, &[DURATION, ("protocol", "protocol", protocols), ("destinationPorts", "port", one_port), ("sourcePorts", "", no_source_ports), ("direction", "direction", lower)], &[("direction", "both"), ("protocol", "tcp udp")]),
    seed("BlackHoleByIPAddress", BLACKHOLE_IP, &[DURATION, ("ipAddresses", "ip", one_address), DEPENDENCIES], &[("direction", "egress")]),
    seed("BlackholeByIP", BLACKHOLE_IP, &[DURATION, ("destinationIP", "ip", same), ("sourceIP", "", same), ("protocol", "", protocols), ("direction", "direction", lower)], &[("direction", "both")]),
    seed("KillProcess", KILL_PROCESS, &[("processId", "pid", same), ("signal", "signal", same)], &[("duration", "0"), ("signal", "SIGTERM")]),
    seed("KillProcessByName", KILL_PROCESS_BY_NAME, &[("processName", "name", same), ("signal", "signal", same)], &[("duration", "0"), ("signal", "SIGTERM")]),
    seed("StressAllNetworkIO", DROP_NEW_CONNECTIONS, &[DURATION, DEPENDENCIES], &[]),
    seed("BlockNetworkTrafficOnInstance", BLOCK_ALL_TRAFFIC, &[DURATION, DEPENDENCIES], &[]),
    seed("ShutDownNetworkInterfaceOnInstance", INTERFACE_DOWN, &[DURATION, DEPENDENCIES], &[]),
    not("InstallStressNG", "refused: our stress documents install stress-ng themselves when it is missing"),
    not("DetachVolume", "an EBS fault: see experimentvr.ebs.actions.detach_volume"),
    not("BlackHoleKafka", "see experimentvr.kafka.actions.blackhole_kafka"),
    not("gpnBlackHoleByURL", "see experimentvr.network.actions.blackhole_by_url"),
    not("DeletePod", SEE_K8S),
    not("PodBlackholeByPort", SEE_K8S),
    not("PodHealthCheck", SEE_K8S),
    not("PodStressAllNetworkIO", SEE_K8S),
    not("PodStressCPU", SEE_K8S),
    not("PodStressIO", SEE_K8S),
    not("PodStressMemory", SEE_K8S),
    not("PodStressNetworkUtilization", SEE_K8S),
    not("PodTerminationCrash", SEE_K8S),
    not("PodKillProcessInContainer", SEE_K8S),
];

/// The row for a seed document name, if `name` is one.
pub fn seed_name(name: &str) -> Option<&'static SeedName> {
    SEED_NAMES.iter().find(|s| s.seed == name)
}

impl SeedName {
    /// The seed document's parameters (SSM's lists of strings) as ours: renamed, translated,
    /// with the values its document fixes; a parameter ours has no counterpart for is an error
    /// naming it. Under a name both use, parameters that are all ours pass unchanged.
    pub fn parameters(
        &self,
        given: &std::collections::BTreeMap<String, Vec<String>>,
    ) -> Result<std::collections::BTreeMap<String, Vec<String>>, String> {
        let ours = match self.stands {
            Stands::For(d) => d,
            Stands::Not(why) => return Err(format!("{}: {why}", self.seed)),
        };
        // the seed's name is also ours (`StressCPU`, `KillProcess`...): our own parameters
        // are ours, sent as they are
        if ours.name == self.seed && given.keys().all(|k| ours.parameters.contains(&k.as_str())) {
            return Ok(given.clone());
        }
        let mut out = std::collections::BTreeMap::new();
        for (name, value) in self.fixed {
            out.insert(name.to_string(), vec![value.to_string()]);
        }
        for (name, values) in given {
            let Some((_, to, convert)) = self.parameters.iter().find(|p| p.0 == name) else {
                let known: Vec<&str> = self.parameters.iter().map(|p| p.0).collect();
                return Err(format!(
                    "parameter {name} of the seed's {} has no counterpart in our {} (expected \
                     one of {})",
                    self.seed,
                    ours.name,
                    known.join(", ")
                ));
            };
            let [value] = &values[..] else {
                return Err(format!(
                    "parameter {name}: expected one value, got {values:?}"
                ));
            };
            let converted =
                convert(value).map_err(|e| format!("parameter {name} of {}: {e}", self.seed))?;
            if let (Some(v), false) = (converted, to.is_empty()) {
                out.insert(to.to_string(), vec![v]);
            }
        }
        Ok(out)
    }
}
