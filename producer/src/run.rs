//! `producer run`: a whole suite on this machine, the producer and N workers in this process,
//! with a progress bar; a signal stops the workers (running experiments are interrupted and
//! rolled back).

use crate::ports::open;
use crate::summary::{exit, summary};
use aws::Store;
use aws::faults::FaultContext;
use aws::faults::safety::FaultSettings;
use cli::BackendArgs;
use cli::{Exit, Signals};
use shared::fleet::outcome::SuiteOutcome;
use shared::fleet::worker::{ServeConfig, WorkerPorts, serve};
use shared::load::Purpose;
use shared::providers::Providers;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run(
    path: &Path,
    workers: u16,
    args: &BackendArgs,
    (mut providers, strict): (Providers, bool),
    settings: FaultSettings,
    signals: &Signals,
) -> anyhow::Result<Exit> {
    let (suite, _) = match crate::suite::checked(path, &providers, (Purpose::Run, strict)) {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    let (backend, ports) = open(args).await?;
    if !matches!(backend.store, Store::Dir(_)) {
        // in-process workers would take the fleet's jobs and a second producer would race the
        // deployed one on the suite state
        anyhow::bail!(
            "producer run is for the local backend; on AWS, run `producer submit --wait SUITE` \
             and let the deployed producer and workers run it"
        );
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let id = ports.submit(&suite, base).await?;
    let total: usize = suite
        .waves
        .iter()
        .filter(|w| !w.skipped)
        .map(|w| w.experiments.len())
        .sum();
    eprintln!(
        "suite run {id}: {} ({} waves, {total} jobs, {workers} workers)",
        suite.name,
        suite.waves.len()
    );

    let interrupted = signals.watch("stopping");
    let workers_stop = CancellationToken::new();
    // the workers lock their targets in the fleet's store
    let faults = Arc::new(FaultContext::new(
        settings,
        backend.store.clone(),
        signals.cleanup().clone(),
    ));
    providers.registry = aws::faults::registry(faults.clone());
    let providers = Arc::new(providers);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..workers {
        let cfg = ServeConfig {
            concurrency: 1,
            visibility: Duration::from_secs(60),
            wait: Duration::from_secs(1),
            grace: Duration::from_secs(10),
            worker_id: format!("run-{}-{n}", std::process::id()),
        };
        let ports = WorkerPorts {
            jobs: backend.jobs.clone(),
            store: backend.store.clone(),
            bus: backend.bus.clone(),
        };
        let tripwires =
            aws::faults::stop_conditions::tripwires(&faults, backend.store.clone(), None);
        tasks.spawn(serve(
            cfg,
            ports,
            providers.clone(),
            tripwires,
            workers_stop.clone().cancelled_owned(),
        ));
    }

    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} experiments  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let producer_stop = CancellationToken::new();
    let progress = {
        let (ports, bar, id, stop) = (
            ports.clone(),
            bar.clone(),
            id.clone(),
            producer_stop.clone(),
        );
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                if let Ok((plan, state)) = ports.load(&id).await {
                    bar.set_position(state.completions.len() as u64);
                    bar.set_message(format!(
                        "wave {}/{}",
                        state.current_wave + 1,
                        plan.waves.len()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let ended = producer_stop.clone();
    let ours = id.clone();
    tokio::select! {
        _ = ports.serve(producer_stop.clone(), move |done| if done == ours { ended.cancel() }) => {}
        _ = interrupted.cancelled() => {
            bar.println("interrupted: stopping workers (running experiments are interrupted and rolled back)");
            producer_stop.cancel();
        }
    }
    producer_stop.cancel();
    let _ = progress.await;
    workers_stop.cancel();
    while tasks.join_next().await.is_some() {}
    let (plan, state) = ports.load(&id).await?;
    bar.set_position(state.completions.len() as u64);
    bar.finish_and_clear();

    print!("{}", summary(&plan, &state, &backend));
    let outcome = state.outcome.map_or("interrupted", SuiteOutcome::as_str);
    println!(
        "suite run {id} ({}): {} — {outcome}",
        plan.name, state.status
    );
    // stopped by a signal: interrupted, unless the suite run ended all the same
    Ok(match exit(&state) {
        Exit::Failed if interrupted.is_cancelled() => Exit::Interrupted,
        exit => exit,
    })
}
