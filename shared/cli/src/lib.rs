//! The one shell `worker` and `producer` run in: what happens at a binary's edge, written once
//! so both behave alike.
//!
//! - [`shell`]: start-up (logging, the document size caps, the async runtime), running a
//!   command, the clean-up wait after it, and the exit code.
//! - [`signals`]: SIGINT/SIGTERM: the first stops the command (rollbacks and clean-up still
//!   run), a second abandons the clean-up wait.
//! - [`exit`]: the exit codes, the same for every command of both binaries.
//! - [`logging`]: `tracing` to stderr (`RUST_LOG`, `NO_COLOR`, `--log-format text|json`).
//! - [`telemetry`]: OpenTelemetry traces over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! - [`backend_args`]: the choice of adapters (`--backend`, the AWS resources, `--config`),
//!   resolved and opened.
//! - [`fault_args`]: the fault library's guard-rail settings (`--opt-in-tag`, `--max-targets`…).
//! - [`help`]: the rule every command line follows (every argument has help).
//! - [`VERSION`]: what `--version` prints: the version and the git commit.

pub mod backend_args;
pub mod exit;
pub mod fault_args;
pub mod help;
pub mod logging;
pub mod shell;
pub mod signals;
pub mod telemetry;

pub use backend_args::{BackendArgs, BackendKind};
pub use exit::Exit;
pub use fault_args::FaultArgs;
pub use logging::LogArgs;
pub use shell::Shell;
pub use signals::Signals;

/// `--version`: the workspace version and the commit it was built from (`unknown` when built
/// outside a git checkout without `BROKER_GIT_COMMIT` set; see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BROKER_GIT_COMMIT"),
    ")"
);
