//! `producer serve`: consume completion events and triggers, release waves, until a signal.

use cli::{Exit, Signals};

/// Serves until SIGTERM/SIGINT, the way a service is stopped: `Held` (exit 0).
pub async fn serve(args: &cli::BackendArgs, signals: &Signals) -> anyhow::Result<Exit> {
    let (backend, ports) = crate::ports::open(args).await?;
    let stop = signals.watch("stopping");
    tracing::info!(
        "serving completion events and triggers: {}",
        backend.description
    );
    ports
        .serve(stop, |id| tracing::info!("suite run {id} ended"))
        .await;
    Ok(Exit::Held)
}
