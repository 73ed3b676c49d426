//! Clean-up that must finish even though the future that needed it was dropped.
//!
//! A run stopped mid-fault (a tripwire, SIGTERM, the grace period running out) drops the
//! action's future. Its drop guards then still have work to do against the outside world:
//! cancel the SSM command, release the target locks. `Drop` cannot await, so they hand the
//! work to `Cleanup::spawn`; the binary that made the `Cleanup` calls `drain` before the
//! process exits, so the work is not cut off when the runtime shuts down (it was, when the
//! guards spawned bare tasks).

use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The clean-up of one process: made once by the binary, cloned into whatever may leave
/// clean-up behind (the fault library's context), drained by the binary before it exits.
/// Clones share the same tasks.
#[derive(Debug, Clone, Default)]
pub struct Cleanup {
    tracker: TaskTracker,
    abandon: CancellationToken,
}

/// How long a binary waits for clean-up before it exits anyway.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

impl Cleanup {
    pub fn new() -> Cleanup {
        Cleanup::default()
    }

    /// Run `work` in the background; `drain` waits for it. `what` names it in the log if it
    /// cannot run (no async runtime) or is still running when the process gives up waiting.
    pub fn spawn(&self, what: &str, work: impl Future<Output = ()> + Send + 'static) {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                self.tracker.spawn_on(work, &handle);
            }
            Err(_) => tracing::error!("{what}: not done (no async runtime to run it on)"),
        }
    }

    /// The operator insists (a repeated SIGINT/SIGTERM): `drain` stops waiting at once.
    pub fn abandon(&self) {
        self.abandon.cancel();
    }

    /// Wait up to `limit` for every clean-up `spawn`ed so far (and any they spawn), or until
    /// `abandon`. Returns how many were still running when it stopped waiting (0: all done).
    pub async fn drain(&self, limit: Duration) -> usize {
        let tracker = &self.tracker;
        if tracker.is_empty() {
            return 0;
        }
        tracing::info!(
            "waiting up to {}s for {} clean-up task(s) (SSM cancels, lock releases)",
            limit.as_secs(),
            tracker.len()
        );
        tracker.close();
        let finished = tokio::select! {
            done = tokio::time::timeout(limit, tracker.wait()) => done.is_ok(),
            _ = self.abandon.cancelled() => false,
        };
        tracker.reopen();
        let left = if finished { 0 } else { tracker.len() };
        if left > 0 {
            tracing::error!(
                "{left} clean-up task(s) not finished ({}): exiting without them (SSM documents revert on their own; locks expire)",
                if self.abandon.is_cancelled() {
                    "abandoned on a repeated signal".to_string()
                } else {
                    format!("still running after {}s", limit.as_secs())
                }
            );
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn drain_waits_for_clean_up_of_a_dropped_future_gives_up_at_the_limit_or_on_abandon() {
        let cleanup = Cleanup::new();
        let done = Arc::new(AtomicUsize::new(0));
        struct Guard(Arc<AtomicUsize>, Cleanup);
        impl Drop for Guard {
            fn drop(&mut self) {
                let done = self.0.clone();
                self.1.spawn("test clean-up", async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        }
        let guarded = {
            let guard = Guard(done.clone(), cleanup.clone());
            async move {
                let _guard = guard;
                std::future::pending::<()>().await
            }
        };
        // the future is cut off, as a tripwire cuts off a run
        assert!(
            tokio::time::timeout(Duration::from_millis(10), guarded)
                .await
                .is_err()
        );
        assert_eq!(done.load(Ordering::SeqCst), 0, "not done yet");
        assert_eq!(cleanup.drain(Duration::from_secs(5)).await, 0);
        assert_eq!(done.load(Ordering::SeqCst), 1, "drain waited for it");

        cleanup.spawn("a clean-up that hangs", std::future::pending());
        assert_eq!(cleanup.drain(Duration::from_millis(50)).await, 1);
        // spawn still works after a drain
        let again = done.clone();
        cleanup.spawn("later", async move {
            again.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(done.load(Ordering::SeqCst), 2);

        // a repeated signal: drain stops waiting at once (last: every later drain gives up too)
        cleanup.abandon();
        let started = std::time::Instant::now();
        assert!(
            cleanup.drain(Duration::from_secs(30)).await >= 1,
            "the hung one"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not the 30 s limit"
        );
    }
}
