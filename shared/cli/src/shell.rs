//! A binary's life around its command: start-up (logging, the document size caps, the async
//! runtime), the command, the wait for clean-up it left behind, and the exit code. Both
//! binaries' `main` is: parse the command line, `Shell::start`, `Shell::run` the command.

use crate::logging::LogArgs;
use crate::telemetry::Telemetry;
use crate::{Exit, Signals};
use std::future::Future;
use std::process::ExitCode;
use tracing::level_filters::LevelFilter;

/// The started process: logging set up, settings checked, the runtime ready.
pub struct Shell {
    runtime: tokio::runtime::Runtime,
    /// The trace export, when an OTLP endpoint is set: ended after the command.
    telemetry: Option<Telemetry>,
}

impl Shell {
    /// Log at `level` (unless `RUST_LOG` says otherwise) as `logs` says, export traces when an
    /// OTLP endpoint is set (as `service`), check the document size caps of the environment
    /// and start the runtime. `Err`: said on stderr, the process exits with it.
    pub fn start(level: LevelFilter, logs: &LogArgs, service: &str) -> Result<Shell, Exit> {
        let telemetry = crate::logging::init(level, logs.log_format, service);
        // a bad size cap is the operator's mistake: said once at start, not by every job
        if let Err(problem) = shared::load::document::Limits::from_env() {
            let expected = problem.expected.unwrap_or_default();
            eprintln!("error: {} (expected {expected})", problem.message);
            return Err(Exit::Error);
        }
        // loading runs on the blocking pool (`shared::load::off_runtime`): its threads get the
        // stack the main thread has, so a file that loads here loads there
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_stack_size(8 * 1024 * 1024)
            .build()
            .map_err(|e| {
                eprintln!("error: cannot start the async runtime: {e}");
                Exit::Error
            })?;
        Ok(Shell { runtime, telemetry })
    }

    /// Run `command` to its end, then wait for the clean-up it left behind (up to
    /// `shared::cleanup::DRAIN_LIMIT`, or until a second signal); its exit code. An error is
    /// said on stderr and exits `Error`.
    pub fn run<F, Fut>(self, command: F) -> ExitCode
    where
        F: FnOnce(Signals) -> Fut,
        Fut: Future<Output = anyhow::Result<Exit>>,
    {
        let outcome = self.runtime.block_on(async {
            let signals = Signals::new();
            let cleanup = signals.cleanup().clone();
            let outcome = command(signals).await;
            // a run stopped mid-fault leaves SSM cancels and lock releases to finish
            cleanup.drain(shared::cleanup::DRAIN_LIMIT).await;
            outcome
        });
        let exit = exit(outcome);
        // off the runtime: the last spans are sent before the process ends
        if let Some(telemetry) = self.telemetry {
            telemetry.shutdown();
        }
        exit.into()
    }
}

/// The exit code of a command's outcome; an error (of the tool or the cloud, not of the
/// experiments) is said on stderr.
pub fn exit(outcome: anyhow::Result<Exit>) -> Exit {
    outcome.unwrap_or_else(|e| {
        eprintln!("error: {}", chain_text(&e));
        Exit::Error
    })
}

/// An error and its causes on one line, as `{:#}` writes them, leaving out a cause the text
/// before it already says: an error may keep its cause as `#[source]` and name it in its own
/// message too, and the operator should read it once.
pub fn chain_text(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::chain_text;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read suite-runs/r1/state.json: {source}")]
    struct SaysItsCause {
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_the_message_already_says_is_written_once() {
        let io = std::io::Error::other("permission denied");
        let e = anyhow::Error::new(SaysItsCause { source: io }).context("loading the suite run");
        assert_eq!(
            chain_text(&e),
            "loading the suite run: cannot read suite-runs/r1/state.json: permission denied"
        );
    }

    #[test]
    fn causes_the_message_does_not_say_are_all_written() {
        let e = anyhow::anyhow!("no such key").context("fetching s3://b/k");
        assert_eq!(chain_text(&e), "fetching s3://b/k: no such key");
    }
}
