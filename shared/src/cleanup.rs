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
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

static TRACKER: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);
static ABANDON: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

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

/// The operator insists (a repeated SIGINT/SIGTERM): `drain` stops waiting at once.
pub fn abandon() {
    ABANDON.cancel();
}

/// Wait up to `limit` for every clean-up `spawn`ed so far (and any they spawn), or until
/// `abandon`. Returns how many were still running when it stopped waiting (0: all done).
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
    let finished = tokio::select! {
        done = tokio::time::timeout(limit, TRACKER.wait()) => done.is_ok(),
        _ = ABANDON.cancelled() => false,
    };
    TRACKER.reopen();
    let left = if finished { 0 } else { TRACKER.len() };
    if left > 0 {
        tracing::error!(
            "{left} clean-up task(s) not finished ({}): exiting without them (SSM documents revert on their own; locks expire)",
            if ABANDON.is_cancelled() {
                "abandoned on a repeated signal".to_string()
            } else {
                format!("still running after {}s", limit.as_secs())
            }
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
    async fn drain_waits_for_clean_up_of_a_dropped_future_gives_up_at_the_limit_or_on_abandon() {
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

        // a repeated signal: drain stops waiting at once (last: it is for the whole process)
        abandon();
        let started = std::time::Instant::now();
        assert!(drain(Duration::from_secs(30)).await >= 1, "the hung one");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "not the 30 s limit"
        );
    }
}
