//! Clean-up that must finish even though the future that needed it was dropped.
//!
//! A run stopped mid-fault (a tripwire, SIGTERM, the grace period running out) drops the
//! action's future. Its drop guards then still have work to do against the outside world:
//! cancel the SSM command, release the target locks. `Drop` cannot await, so they hand the
//! work to `spawn`; the binaries call `drain` before the process exits, so the work is not
//! cut off when the runtime shuts down (it was, when the guards spawned bare tasks).

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_util::task::TaskTracker;

static TRACKER: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// How long a binary waits for clean-up before it exits anyway.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Run `work` in the background; `drain` waits for it. `what` names it in the log if it
/// cannot run (no async runtime) or is still running when the process gives up waiting.
pub fn spawn(what: &str, work: impl Future<Output = ()> + Send + 'static) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            TRACKER.spawn_on(work, &handle);
        }
        Err(_) => tracing::error!("{what}: not done (no async runtime to run it on)"),
    }
}

/// Wait up to `limit` for every clean-up `spawn`ed so far (and any they spawn). Returns how
/// many were still running when the limit was reached (0: all done).
pub async fn drain(limit: Duration) -> usize {
    if TRACKER.is_empty() {
        return 0;
    }
    tracing::info!(
        "waiting up to {}s for {} clean-up task(s) (SSM cancels, lock releases)",
        limit.as_secs(),
        TRACKER.len()
    );
    TRACKER.close();
    let finished = tokio::time::timeout(limit, TRACKER.wait()).await.is_ok();
    TRACKER.reopen();
    let left = if finished { 0 } else { TRACKER.len() };
    if left > 0 {
        tracing::error!(
            "{left} clean-up task(s) still running after {}s: exiting without them (SSM documents revert on their own; locks expire)",
            limit.as_secs()
        );
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // one test: the tracker is process-wide, and tests in one binary run in parallel
    #[tokio::test]
    async fn drain_waits_for_clean_up_spawned_from_a_dropped_future_and_gives_up_at_the_limit() {
        let done = Arc::new(AtomicUsize::new(0));
        struct Guard(Arc<AtomicUsize>);
        impl Drop for Guard {
            fn drop(&mut self) {
                let done = self.0.clone();
                spawn("test clean-up", async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    done.fetch_add(1, Ordering::SeqCst);
                });
            }
        }
        let guarded = {
            let guard = Guard(done.clone());
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
        assert_eq!(drain(Duration::from_secs(5)).await, 0);
        assert_eq!(done.load(Ordering::SeqCst), 1, "drain waited for it");

        spawn("a clean-up that hangs", std::future::pending());
        assert_eq!(drain(Duration::from_millis(50)).await, 1);
        // spawn still works after a drain
        let again = done.clone();
        spawn("later", async move {
            again.fetch_add(1, Ordering::SeqCst);
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(done.load(Ordering::SeqCst), 2);
    }
}
