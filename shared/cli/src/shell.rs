//! A binary's life around its command: start-up (logging, the document size caps, the async
//! runtime), the command, the wait for clean-up it left behind, and the exit code. Both
//! binaries' `main` is: parse the command line, `Shell::start`, `Shell::run` the command.

use crate::{Exit, Signals};
use std::future::Future;
use std::process::ExitCode;
use tracing::level_filters::LevelFilter;

/// The started process: logging set up, settings checked, the runtime ready.
pub struct Shell {
    runtime: tokio::runtime::Runtime,
}

impl Shell {
    /// Log at `level` (unless `RUST_LOG` says otherwise), check the document size caps of the
    /// environment and start the runtime. `Err`: said on stderr, the process exits with it.
    pub fn start(level: LevelFilter) -> Result<Shell, Exit> {
        crate::logging::init(level);
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
        Ok(Shell { runtime })
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
        exit(outcome).into()
    }
}

/// The exit code of a command's outcome; an error (of the tool or the cloud, not of the
/// experiments) is said on stderr.
pub fn exit(outcome: anyhow::Result<Exit>) -> Exit {
    outcome.unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        Exit::Error
    })
}
