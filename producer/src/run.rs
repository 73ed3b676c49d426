//! `producer run`: a whole suite on this machine, the producer and N workers in this process.
//! On a terminal a progress bar, with a line above it per finished job; elsewhere (CI, a
//! pipe) the same lines plainly. A signal interrupts the running jobs (their rollbacks run),
//! marks the suite run `interrupted` and exits 130. Then the closing table.

use crate::ports::{Ports, open};
use crate::summary::{Facts, duration, exit, read_facts, summary};
use aws::Store;
use aws::faults::FaultContext;
use aws::faults::safety::FaultSettings;
use cli::BackendArgs;
use cli::{Exit, Signals};
use shared::fleet::outcome::{SuiteOutcome, SuiteStatus};
use shared::fleet::producer::{Origin, Plan, State, new_suite_run_id};
use shared::fleet::worker::{ServeConfig, WorkerPorts, serve};
use shared::load::Purpose;
use shared::providers::Providers;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// What `producer run` runs a suite with.
pub struct Local {
    /// Workers in this process (experiments run at once).
    pub workers: u16,
    pub providers: Providers,
    pub settings: FaultSettings,
    /// `--log-format json`: the progress lines are JSON objects too.
    pub json_logs: bool,
    /// `--strict`: warnings are errors.
    pub strict: bool,
}

pub async fn run(
    path: &Path,
    args: &BackendArgs,
    local: Local,
    signals: &Signals,
) -> anyhow::Result<Exit> {
    let providers = &local.providers;
    let (mut suite, _) = match crate::suite::checked(path, providers, (Purpose::Run, local.strict))
    {
        Ok(s) => s,
        Err(exit) => return Ok(exit),
    };
    // the workers hold experiments the producer could not check (S3, store keys) to it too
    suite.strict |= local.strict;
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
    let id = new_suite_run_id();
    // the suite run's span: its waves, jobs and activities are under it (logs and traces)
    let span = tracing::info_span!("suite", suite_run_id = %id, suite = %suite.name);
    let submitted = ports
        .submit_from(&id, &suite, &Origin::Dir(base.to_path_buf()), None)
        .instrument(span.clone())
        .await?;
    let total: usize = suite
        .waves
        .iter()
        .filter(|w| !w.skipped)
        .map(|w| w.experiments.len())
        .sum();
    let progress = Progress::new(total as u64, &submitted, local.json_logs);
    progress.line(&format!(
        "suite run {submitted}: {} ({} waves, {total} jobs, {} workers)",
        suite.name,
        suite.waves.len(),
        local.workers
    ));
    local
        .run(&submitted, backend, ports, progress, signals)
        .instrument(span)
        .await
}

impl Local {
    async fn run(
        self,
        id: &str,
        backend: aws::Backend,
        ports: Ports,
        progress: Progress,
        signals: &Signals,
    ) -> anyhow::Result<Exit> {
        let Local {
            workers,
            mut providers,
            settings,
            ..
        } = self;
        let interrupted =
            signals.watch("interrupting the running experiments (their rollbacks run)");
        let workers_stop = CancellationToken::new();
        // the workers lock their targets in the fleet's store
        let faults = Arc::new(FaultContext::new(
            settings,
            backend.store.clone(),
            signals.cleanup().clone(),
        ));
        providers.registry = aws::faults::lazy_registry(faults.clone());
        let providers = Arc::new(providers);
        let mut tasks = tokio::task::JoinSet::new();
        for n in 0..workers {
            let cfg = ServeConfig {
                concurrency: 1,
                visibility: Duration::from_secs(60),
                wait: Duration::from_secs(1),
                // the workers stop when the suite run ended (nothing runs then) or on a signal,
                // which interrupts what runs at once
                grace: Duration::ZERO,
                worker_id: format!("run-{}-{n}", std::process::id()),
            };
            let ports = WorkerPorts {
                jobs: backend.jobs.clone(),
                store: backend.store.clone(),
                bus: backend.bus.clone(),
            };
            let tripwires =
                aws::faults::stop_conditions::tripwires(&faults, backend.store.clone(), None);
            tasks.spawn(
                serve(
                    cfg,
                    ports,
                    providers.clone(),
                    tripwires,
                    workers_stop.clone().cancelled_owned(),
                )
                .in_current_span(),
            );
        }

        let producer_stop = CancellationToken::new();
        let watcher = {
            let (ports, id, stop, mut progress) = (
                ports.clone(),
                id.to_string(),
                producer_stop.clone(),
                progress.clone(),
            );
            tokio::spawn(async move {
                // the plan once; then the producer's own view (the store only for the records
                // of jobs that completed since)
                let plan = ports.load(&id).await.ok().map(|(plan, _)| plan);
                while !stop.is_cancelled() {
                    if let (Some(plan), Some(state)) = (&plan, ports.views.state(&id)) {
                        progress.update(&ports, plan, &state, false).await;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                progress
            })
        };
        let ended = producer_stop.clone();
        let ours = id.to_string();
        tokio::select! {
            _ = ports.serve(producer_stop.clone(), move |done| if done == ours { ended.cancel() }) => {}
            _ = interrupted.cancelled() => {
                progress.line("interrupted: the running experiments are interrupted and rolled back");
            }
        }
        producer_stop.cancel();
        let mut progress = watcher.await.unwrap_or(progress);
        workers_stop.cancel();
        while tasks.join_next().await.is_some() {}
        if interrupted.is_cancelled() && ports.interrupt(id).await? {
            tracing::warn!("suite run {id} interrupted");
        }
        let (plan, state) = ports.load(id).await?;
        progress.update(&ports, &plan, &state, true).await;
        progress.finish();
        let completions = ports.completions(id).await?;
        read_facts(&ports, &completions, &mut progress.facts).await;

        print!(
            "{}",
            summary(&plan, &state, &completions, &backend, &progress.facts)
        );
        let outcome = state.outcome.map_or("-", SuiteOutcome::as_str);
        println!(
            "suite run {id} ({}): {} — {outcome}",
            plan.name, state.status
        );
        Ok(if state.status == SuiteStatus::Interrupted {
            Exit::Interrupted
        } else {
            exit(&state)
        })
    }
}

/// The progress of a suite run on stderr: a bar on a terminal, with a line above it per
/// finished job (and per wave released); without a terminal, the lines alone.
#[derive(Clone)]
struct Progress {
    /// `None` without a terminal.
    bar: Option<indicatif::ProgressBar>,
    /// Without a terminal under `--log-format json`: each line a JSON object (`message`,
    /// `suite_run_id`), as the log lines are.
    json: Option<String>,
    total: u64,
    /// The jobs already said, with their journal's facts.
    facts: BTreeMap<String, Facts>,
    /// The waves already said.
    waves: usize,
}

impl Progress {
    fn new(total: u64, id: &str, json: bool) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} experiments  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        Progress {
            bar,
            json: (json && !terminal).then(|| id.to_string()),
            total,
            facts: BTreeMap::new(),
            waves: 0,
        }
    }

    /// A line above the bar, or on its own.
    fn line(&self, text: &str) {
        match (&self.bar, &self.json) {
            (Some(bar), _) => bar.println(text),
            (None, Some(id)) => eprintln!(
                "{}",
                serde_json::json!({
                    "timestamp": shared::clock::now_iso(),
                    "level": "INFO",
                    "suite_run_id": id,
                    "message": text,
                })
            ),
            (None, None) => eprintln!("{text}"),
        }
    }

    /// Say the waves released and the jobs finished since the last update: when more jobs
    /// completed than were said (or `all`), the completion records are listed and the new ones
    /// read, with their journals (for the titles).
    async fn update(&mut self, ports: &Ports, plan: &Plan, state: &State, all: bool) {
        let released = if state.released == 0 && state.current_wave == 0 {
            0
        } else {
            state.current_wave + 1
        };
        while self.waves < released.min(plan.waves.len()) {
            let wave = &plan.waves[self.waves];
            self.waves += 1;
            self.line(&format!(
                "wave {}/{} released: {} experiment{}",
                self.waves,
                plan.waves.len(),
                wave.jobs.len(),
                if wave.jobs.len() == 1 { "" } else { "s" }
            ));
        }
        if all || state.completed > self.facts.len() {
            let id = &plan.suite_run_id;
            let mut new = BTreeMap::new();
            for run_id in ports.recorded(id).await.unwrap_or_default() {
                if self.facts.contains_key(&run_id) {
                    continue;
                }
                if let Ok(Some(c)) = ports.completion(id, &run_id).await {
                    new.insert(run_id, c);
                }
            }
            read_facts(ports, &new, &mut self.facts).await;
            let mut done = self.facts.len() - new.len();
            for (run_id, c) in &new {
                done += 1;
                let facts = self.facts.get(run_id).cloned().unwrap_or_default();
                self.line(&format!(
                    "[{done}/{}] {:<8} {:>8}  {}  ({run_id})",
                    self.total,
                    c.outcome().as_str(),
                    facts.duration.map(duration).unwrap_or_else(|| "-".into()),
                    facts.title.as_deref().unwrap_or("?"),
                ));
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(self.facts.len() as u64);
            bar.set_message(format!(
                "wave {}/{}",
                state.current_wave + 1,
                plan.waves.len()
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
