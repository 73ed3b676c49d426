//! The worker's loop: receive up to `concurrency` jobs at a time, run each in a task of its
//! own, and on shutdown stop receiving, give running jobs their grace, then interrupt them.

use super::job::JobRun;
use super::{ServeConfig, WorkerPorts};
use crate::fleet::safety::guard::Tripwire;
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use crate::providers::Providers;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Serve jobs until `shutdown` resolves, then drain as `ServeConfig::grace` says.
///
/// `tripwires` (the kill switch, stop conditions) are checked before each job starts and while
/// it runs; see `guard.rs`.
pub async fn serve<Q, S, B>(
    cfg: ServeConfig,
    ports: WorkerPorts<Q, S, B>,
    providers: Arc<Providers>,
    tripwires: Vec<Arc<dyn Tripwire>>,
    shutdown: impl Future<Output = ()>,
) where
    Q: JobQueue + Clone + 'static,
    S: ObjectStore + Clone + 'static,
    B: EventBus + Clone + 'static,
{
    let interrupt_all = CancellationToken::new();
    let tripwires = Arc::new(tripwires);
    let mut tasks = JoinSet::new();
    let concurrency = cfg.concurrency.max(1);
    tokio::pin!(shutdown);
    tracing::info!(worker = %cfg.worker_id, "serving jobs (concurrency {concurrency})");
    'serve: loop {
        while tasks.len() >= concurrency {
            tokio::select! {
                _ = &mut shutdown => break 'serve,
                _ = tasks.join_next() => {}
            }
        }
        let free = concurrency - tasks.len();
        let received = tokio::select! {
            _ = &mut shutdown => break 'serve,
            r = ports.jobs.receive(free, cfg.visibility, cfg.wait) => r,
        };
        match received {
            Ok(messages) => {
                for message in messages {
                    let job = JobRun {
                        cfg: cfg.clone(),
                        ports: ports.clone(),
                        providers: providers.clone(),
                        tripwires: tripwires.clone(),
                        stop: interrupt_all.child_token(),
                    };
                    tasks.spawn(async move { job.handle(message).await });
                }
            }
            Err(e) => {
                tracing::error!("receiving jobs failed: {e}; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    tracing::info!(
        "no longer receiving; {} job(s) running get {:?} to finish",
        tasks.len(),
        cfg.grace
    );
    let drained = tokio::time::timeout(cfg.grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "grace period over: interrupting {} running job(s); their rollbacks run",
            tasks.len()
        );
        interrupt_all.cancel();
        while tasks.join_next().await.is_some() {}
    }
}
