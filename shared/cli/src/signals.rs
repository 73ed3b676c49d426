//! SIGINT and SIGTERM, the same way in every command: the first stops the command (it stops
//! taking work, interrupts what runs, runs rollbacks, writes journals); a second, while that
//! goes on, abandons the wait for clean-up left behind (SSM cancels, lock releases) so the
//! operator who insists gets the process back.
//!
//! A command installs the handlers (`watch`) once it can stop cleanly, before it starts
//! anything that must be rolled back: until then a signal ends the process at once, as it does
//! a command that never watches (`validate`).

use shared::cleanup::Cleanup;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// The process's signals, as the command sees them, and the clean-up the shell waits for after
/// the command (which a second signal abandons). Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Signals(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    stop: CancellationToken,
    received: AtomicBool,
    watching: OnceLock<()>,
    cleanup: Cleanup,
}

impl Signals {
    pub fn new() -> Signals {
        Signals::default()
    }

    /// Install the handlers (once; a later call returns the same token) and return the stop
    /// token the first signal cancels. `what` tells the operator what stopping does.
    pub fn watch(&self, what: &'static str) -> CancellationToken {
        use tokio::signal::unix::{SignalKind, signal};
        self.0.watching.get_or_init(|| {
            let handlers = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            );
            let inner = self.0.clone();
            tokio::spawn(async move {
                let (Ok(mut int), Ok(mut term)) = handlers else {
                    tracing::warn!(
                        "cannot install signal handlers; Ctrl-C will kill the process without rollbacks"
                    );
                    return;
                };
                loop {
                    let name = tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                    };
                    if inner.received.swap(true, Ordering::SeqCst) {
                        tracing::warn!(
                            "{name} received again: already stopping; rollbacks run to completion and journals are written; clean-up after that (SSM cancels, lock releases) is not waited for"
                        );
                        inner.cleanup.abandon();
                    } else {
                        tracing::warn!("{name} received: {what}");
                        inner.stop.cancel();
                    }
                }
            });
        });
        self.0.stop.clone()
    }

    /// The process's clean-up: handed to whatever may leave work behind a dropped future (the
    /// fault library's context); the shell drains it after the command.
    pub fn cleanup(&self) -> &Cleanup {
        &self.0.cleanup
    }

    /// Whether a signal asked the command to stop (its exit code is then `Interrupted`,
    /// unless it finished anyway).
    pub fn received(&self) -> bool {
        self.0.received.load(Ordering::SeqCst)
    }
}
