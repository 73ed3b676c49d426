//! The lease of a running job: renewed every third of the visibility timeout; when it is lost
//! (or can no longer be extended), the run is stopped so its rollbacks run under it.

use crate::ports::queue::{JobQueue, Message, QueueError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Renew the lease every third of the visibility timeout; stop the run if it is lost.
pub(super) fn heartbeat<Q: JobQueue + Clone + 'static>(
    jobs: &Q,
    message: &Message,
    visibility: Duration,
    stop: &CancellationToken,
) -> CancellationToken {
    let done = CancellationToken::new();
    let (jobs, receipt, stop, finished) = (
        jobs.clone(),
        message.receipt.clone(),
        stop.clone(),
        done.clone(),
    );
    let id = message.id.clone();
    tokio::spawn(async move {
        // the lease runs out one visibility timeout after the last extension that
        // succeeded; a call that hangs must not outlive it
        let mut lease_end = tokio::time::Instant::now() + visibility;
        loop {
            tokio::select! {
                _ = finished.cancelled() => return,
                _ = tokio::time::sleep(visibility / 3) => {}
            }
            let asked = tokio::time::Instant::now();
            let left = lease_end.saturating_duration_since(asked);
            let lost = match tokio::time::timeout(left, jobs.extend(&receipt, visibility)).await {
                Ok(Ok(())) => {
                    lease_end = asked + visibility;
                    false
                }
                Ok(Err(QueueError::LeaseLost { .. })) => true,
                // final: the lease ends when it ends, so stop now, while it still holds
                // (at least two thirds of a visibility timeout) for the rollbacks
                Ok(Err(e @ QueueError::LeaseLimit { .. })) => {
                    tracing::error!(message_id = %id, "{e}: interrupting the run so its rollbacks run under the lease");
                    stop.cancel();
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(message_id = %id, "heartbeat failed: {e}");
                    tokio::time::Instant::now() >= lease_end
                }
                Err(_) => true,
            };
            if lost {
                tracing::error!(message_id = %id, "lease lost while running: interrupting the run");
                stop.cancel();
                return;
            }
        }
    });
    done
}
