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

pub const UNMOUNT_VOLUME: Document = Document {
    name: "UnmountVolume",
    parameters: &["duration", "device", "volume"],
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
    UNMOUNT_VOLUME,
];

/// The name a deployment registered `document` under: `--ssm-document-prefix`
/// (`BROKER_SSM_DOCUMENT_PREFIX`; the template sets it to `<stack name>-`, so two stacks in one
/// account do not collide) followed by the document's name.
pub fn registered_name(settings: &FaultSettings, document: &Document) -> String {
    format!("{}{}", settings.document_prefix, document.name)
}
