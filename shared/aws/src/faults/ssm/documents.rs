//! The SSM command documents the fault actions send, and the parameters each one takes.
//!
//! This list is the single source of the names: the host faults (`ec2::fault_table`) refer to
//! documents only through it, and `shared/aws/tests/ssm_documents.rs` checks that
//! `ssm-documents/<name>.yaml` exists for every entry (and nothing else is there), with exactly
//! these parameters. Every document takes `duration` (seconds) and schedules its own revert
//! before it injects, so a fault ends even when the command is cancelled or the fleet is gone.

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
    parameters: &["duration", "interface", "loss"],
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
