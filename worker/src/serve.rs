//! `worker serve`: the fleet's worker, on the backend the settings choose, until a signal.

use crate::args::ServeArgs;
use aws::faults::FaultContext;
use cli::{Exit, Signals};
use shared::fleet::worker::{ServeConfig, WorkerPorts, serve as serve_jobs};
use shared::load::Vars;
use std::sync::Arc;
use std::time::Duration;

/// Serves until SIGTERM/SIGINT, the way a service is stopped: `Held` (exit 0).
pub async fn serve(args: ServeArgs, signals: &Signals) -> anyhow::Result<Exit> {
    let settings = args.faults.settings().map_err(anyhow::Error::msg)?;
    let backend = args
        .backend
        .open(aws::Role::Worker)
        .await
        .map_err(anyhow::Error::msg)?;
    // SQS bills per request: long-poll as long as it allows; SQLite wakes up on its own
    let wait = match backend.jobs {
        aws::Queue::Sqs(_) => Duration::from_secs(20),
        aws::Queue::Sqlite(_) => Duration::from_secs(5),
    };
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cfg = ServeConfig {
        concurrency: usize::from(args.concurrency),
        visibility: Duration::from_secs_f64(args.visibility_timeout),
        wait,
        grace: Duration::from_secs_f64(args.grace),
        worker_id: format!("{}-{}", node.trim(), std::process::id()),
    };
    // the fleet's store holds the locks, so no two workers stack faults on a host
    let faults = Arc::new(FaultContext::new(
        settings,
        backend.store.clone(),
        signals.cleanup().clone(),
    ));
    let tripwires = aws::faults::stop_conditions::tripwires(
        &faults,
        backend.store.clone(),
        args.backend.halt_parameter(),
    );
    let ports = WorkerPorts {
        jobs: backend.jobs,
        store: backend.store,
        bus: backend.bus,
    };
    let stop = signals.watch(
        "no new jobs; running jobs get the grace period, then are interrupted (rollbacks run)",
    );
    tracing::info!("{}", backend.description);
    serve_jobs(
        cfg,
        ports,
        Arc::new(crate::experiment::providers(
            &Vars::default(),
            &args.signatures,
            faults,
        )),
        tripwires,
        stop.cancelled_owned(),
    )
    .await;
    Ok(Exit::Held)
}
