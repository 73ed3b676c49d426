//! `producer`: thin glue over `shared::fleet::producer`. Validate a suite, submit it, serve
//! completion events (wave gating), show a suite run's status, or run a whole suite on this
//! machine with in-process workers.

mod kill_switch;

use anyhow::{Context, anyhow};
use aws::faults::FaultContext;
use aws::faults::safety::FaultSettings;
use aws::{Backend, BackendArgs, Bus, Queue, Role, Store};
use clap::{Parser, Subcommand};
use shared::cleanup::Cleanup;
use shared::config::positive_seconds;
use shared::fleet::outcome::SuiteOutcome;
use shared::fleet::producer::{ProducerPorts, status_document};
use shared::fleet::worker::{ServeConfig, WorkerPorts, serve};
use shared::load::Vars;
use shared::load::suite::{check_experiments, load_suite};
use shared::providers::Providers;
use shared::providers::python::DEFAULT_SIGNATURE_TIMEOUT;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "producer",
    version,
    about = "Expand suites of experiments into waves of jobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How long checking an experiment's Python activities against their functions'
    /// signatures may take (it imports their modules); past it the check is stopped and the
    /// experiment is invalid, with the activity whose import did not finish located.
    #[arg(long, global = true, env = "BROKER_SIGNATURE_TIMEOUT", default_value_t = DEFAULT_SIGNATURE_TIMEOUT.as_secs_f64(), value_name = "SECONDS", value_parser = positive_seconds)]
    signature_timeout: f64,
}

/// The activity providers, with the signature check bounded as the command line says, the
/// fault library acting within `faults`.
fn providers(signature_timeout: Duration, faults: Arc<FaultContext>) -> Providers {
    let mut providers = Providers::new(aws::faults::registry(faults));
    providers.python.set_signature_timeout(signature_timeout);
    providers
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a suite and every experiment file it names (exit 1 if anything is invalid).
    Validate {
        /// The suite file (YAML or JSON; the seed's Step Function payload is accepted).
        suite: PathBuf,
    },
    /// Validate a suite, store its plan and enqueue its first wave; prints the run id.
    Submit {
        suite: PathBuf,
        /// Block until the suite run ends, print its summary, and exit 0 only if every
        /// experiment held (1 otherwise): a CI gate.
        #[arg(long)]
        wait: bool,
        /// With --wait: give up waiting after this many seconds (exit 3; the suite run goes on).
        #[arg(long, value_name = "SECONDS", requires = "wait", value_parser = clap::value_parser!(u64).range(1..))]
        timeout: Option<u64>,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Consume completion events and release waves until SIGTERM/SIGINT.
    Serve {
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Show a suite run: status, outcome, waves, jobs and journals.
    Status {
        run_id: String,
        /// One JSON document, for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// The kill switch: running jobs stop (their rollbacks run) and jobs not yet started are
    /// reported not started, until `resume`. Sets the store's flag and, on AWS, the SSM
    /// parameter (`--halt-parameter`).
    Halt {
        /// Why, for the journals and the audit trail.
        #[arg(long, default_value = "halted by an operator")]
        reason: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Clear the kill switch: jobs start again.
    Resume {
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Run a whole suite here: producer and N workers in this process, with progress; exit 0
    /// when every experiment held, 1 otherwise.
    Run {
        suite: PathBuf,
        /// Workers (experiments run at once).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: u16,
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        faults: aws::faults::safety::FaultArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // a bad size cap is the operator's mistake: said once at start, not by every job
    if let Err(problem) = shared::load::document::Limits::from_env() {
        let expected = problem.expected.unwrap_or_default();
        eprintln!("error: {} (expected {expected})", problem.message);
        return ExitCode::from(2);
    }
    let quiet = matches!(cli.command, Command::Run { .. });
    use tracing::level_filters::LevelFilter;
    shared::logging::init(if quiet {
        LevelFilter::WARN
    } else {
        LevelFilter::INFO
    });
    // `producer run` loads its workers' experiments on the blocking pool
    // (`shared::load::off_runtime`): its threads get the main thread's stack, as in `worker`
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_stack_size(8 * 1024 * 1024)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // what a run stopped mid-fault leaves to finish (SSM cancels, lock releases)
    let cleanup = Cleanup::new();
    // until `producer run` opens its backend, the fault library only names its activities
    let checking = Arc::new(FaultContext::new(
        Default::default(),
        aws::faults::target_locks::lone_store(),
        cleanup.clone(),
    ));
    let providers = providers(Duration::from_secs_f64(cli.signature_timeout), checking);
    let result = runtime.block_on(async {
        let result = match cli.command {
            Command::Validate { suite } => validate(&suite, &providers),
            Command::Submit {
                suite,
                wait,
                timeout,
                backend,
            } => {
                let wait = wait.then(|| timeout.map(Duration::from_secs));
                submit(&suite, wait, &backend, &providers).await
            }
            Command::Serve { backend } => serve_events(&backend).await,
            Command::Status {
                run_id,
                json,
                backend,
            } => status(&run_id, json, &backend).await,
            Command::Run {
                suite,
                workers,
                backend,
                faults,
            } => {
                let settings = faults.settings().map_err(anyhow::Error::msg)?;
                run(&suite, workers, &backend, providers, settings, &cleanup).await
            }
            Command::Halt { reason, backend } => halt(Some(&reason), &backend).await,
            Command::Resume { backend } => halt(None, &backend).await,
        };
        cleanup.drain(shared::cleanup::DRAIN_LIMIT).await;
        result
    });
    match result {
        Ok(code) => ExitCode::from(code),
        // an error of the broker or its backend, not of the experiments: told apart from 1
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn report(problems: &[shared::load::Problem]) -> u8 {
    for p in problems {
        eprintln!("error: {p}");
    }
    eprintln!(
        "{} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    1
}

/// Load a suite and check every experiment it names; `Err(code)` after printing problems.
fn checked_suite(
    path: &Path,
    providers: &Providers,
) -> Result<(shared::model::suite::Suite, Vec<String>), u8> {
    let suite = load_suite(path).map_err(|p| report(&p.0))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let (problems, unchecked) = check_experiments(&suite, base, &Vars::default(), providers);
    if !problems.0.is_empty() {
        return Err(report(&problems.0));
    }
    Ok((suite, unchecked.iter().map(ToString::to_string).collect()))
}

fn validate(path: &Path, providers: &Providers) -> anyhow::Result<u8> {
    let (suite, unchecked) = match checked_suite(path, providers) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let jobs: usize = suite.waves.iter().map(|w| w.experiments.len()).sum();
    println!(
        "{}: valid suite '{}': {} wave{}, {jobs} job{}",
        path.display(),
        suite.name,
        suite.waves.len(),
        if suite.waves.len() == 1 { "" } else { "s" },
        if jobs == 1 { "" } else { "s" }
    );
    for r in unchecked {
        println!("  not checked here (fetched by the worker when it runs): {r}");
    }
    Ok(0)
}

type Ports = ProducerPorts<Queue, Queue, Store, Bus>;

async fn open(args: &BackendArgs) -> anyhow::Result<(Backend, Ports)> {
    let backend = args.open(Role::Producer).await.map_err(|e| anyhow!(e))?;
    let ports = ProducerPorts {
        jobs: backend.jobs.clone(),
        events: backend
            .events
            .clone()
            .ok_or_else(|| anyhow!("the producer needs the events queue"))?,
        triggers: backend.triggers.clone(),
        bucket: match &backend.store {
            Store::S3(s3) => Some(s3.bucket().to_string()),
            Store::Dir(_) => None,
        },
        store: backend.store.clone(),
        bus: backend.bus.clone(),
    };
    Ok((backend, ports))
}

/// `wait`: `None` to return at once, `Some(timeout)` to wait for the end.
async fn submit(
    path: &Path,
    wait: Option<Option<Duration>>,
    args: &BackendArgs,
    providers: &Providers,
) -> anyhow::Result<u8> {
    let (suite, _) = match checked_suite(path, providers) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let (backend, ports) = open(args).await?;
    let base = path.parent().unwrap_or(Path::new("."));
    // workers elsewhere cannot read this machine's files: copy them into the bucket
    let submitted = match backend.store {
        Store::S3(_) => ports.submit_uploading(&suite, base).await,
        Store::Dir(_) => ports.submit(&suite, base).await,
    };
    let id = submitted
        .map_err(|e| anyhow!(e))
        .with_context(|| format!("submitting {}", path.display()))?;
    println!("{id}");
    let Some(timeout) = wait else {
        return Ok(0);
    };
    let stop = stop_on_signals();
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        match ports.load(&id).await {
            Ok((plan, state)) if state.status != "running" => {
                eprint!("{}", summary(&plan, &state, &backend));
                return Ok(suite_exit_code(&state));
            }
            Ok(_) => failing_since = None,
            // the store may be briefly unavailable: keep waiting, up to a minute of failures
            Err(e) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                tracing::warn!("reading suite run {id}: {e}");
                if since.elapsed() > Duration::from_secs(60) {
                    return Err(anyhow!(e).context(format!("waiting for suite run {id}")));
                }
            }
        }
        if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            eprintln!("timed out waiting; suite run {id} goes on (producer status {id})");
            return Ok(3);
        }
        tokio::select! {
            _ = stop.cancelled() => {
                eprintln!("stopped waiting; suite run {id} goes on (producer status {id})");
                return Ok(130);
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// 0 when every experiment held, 1 otherwise.
fn suite_exit_code(state: &shared::fleet::producer::State) -> u8 {
    if state.outcome == Some(SuiteOutcome::Held) {
        0
    } else {
        1
    }
}

fn stop_on_signals() -> CancellationToken {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = CancellationToken::new();
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    let token = stop.clone();
    tokio::spawn(async move {
        if let (Ok(mut int), Ok(mut term)) = handlers {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            tracing::warn!("stopping");
            token.cancel();
        }
    });
    stop
}

async fn serve_events(args: &BackendArgs) -> anyhow::Result<u8> {
    let (backend, ports) = open(args).await?;
    let stop = stop_on_signals();
    tracing::info!(
        "serving completion events and triggers: {}",
        backend.description
    );
    ports
        .serve(stop, |id| tracing::info!("suite run {id} ended"))
        .await;
    Ok(0)
}

async fn status(id: &str, as_json: bool, args: &BackendArgs) -> anyhow::Result<u8> {
    let (backend, ports) = open(args).await?;
    let (plan, state) = ports.load(id).await.map_err(|e| anyhow!(e))?;
    if as_json {
        let doc = status_document(&plan, &state);
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(0);
    }
    print!("{}", summary(&plan, &state, &backend));
    Ok(0)
}

/// `producer halt` (`Some(reason)`) and `producer resume` (`None`): the store's flag and, when
/// one is configured, the SSM parameter are written independently (one failing does not keep
/// the other from being written), each outcome on stderr; exit 2 if either failed.
async fn halt(reason: Option<&str>, args: &BackendArgs) -> anyhow::Result<u8> {
    let halting = reason.is_some();
    let store = match args.open(aws::Role::Worker).await {
        Ok(backend) => shared::fleet::safety::guard::set_halt(&backend.store, reason)
            .await
            .map(|()| locate(&backend, shared::fleet::safety::guard::HALT_KEY)),
        Err(e) => Err(format!("cannot open the backend: {e}")),
    };
    let ssm = match args.halt_parameter() {
        Some(parameter) => Some(
            aws::faults::stop_conditions::set_ssm_halt(
                &aws::sdk::load().await,
                &parameter,
                halting,
            )
            .await
            .map(|()| parameter),
        ),
        None => None,
    };
    let (lines, code) = kill_switch::report(halting, &store, ssm.as_ref());
    for line in lines {
        eprintln!("{line}");
    }
    if code == 0 {
        match reason {
            Some(r) => println!(
                "halted ({r}): running jobs stop and run their rollbacks; no job starts until `producer resume`"
            ),
            None => println!("resumed: jobs start again"),
        }
    }
    Ok(code)
}

/// Where a store key is, for people: a file under the state directory or an S3 URI.
fn locate(backend: &Backend, key: &str) -> String {
    match (&backend.store, &backend.state_dir) {
        (Store::S3(s3), _) => format!("s3://{}/{key}", s3.bucket()),
        (Store::Dir(_), Some(dir)) => dir.join("store").join(key).display().to_string(),
        (Store::Dir(_), None) => key.to_string(),
    }
}

/// The human summary of a suite run: its status, then every job with its journal.
fn summary(
    plan: &shared::fleet::producer::Plan,
    state: &shared::fleet::producer::State,
    backend: &Backend,
) -> String {
    use std::fmt::Write;
    let doc = status_document(plan, state);
    let mut out = format!(
        "suite run {} ({}): {}{}\n",
        plan.suite_run_id,
        plan.name,
        state.status,
        state
            .outcome
            .as_ref()
            .map(|o| format!(", {o}"))
            .unwrap_or_default()
    );
    if let Some(source) = &plan.source {
        let _ = writeln!(out, "from {source}");
    }
    for p in &state.problems {
        let _ = writeln!(out, "  problem: {p}");
    }
    for wave in doc["waves"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "wave {} (on failure: {})",
            wave["wave"],
            wave["on_failure"].as_str().unwrap_or("")
        );
        for job in wave["jobs"].as_array().into_iter().flatten() {
            let journal = job["journal_key"]
                .as_str()
                .map(|k| locate(backend, k))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<8} {:<10} {:<9} {}  {}",
                job["run_id"].as_str().unwrap_or(""),
                job["state"].as_str().unwrap_or(""),
                job["outcome"].as_str().unwrap_or("-"),
                job["experiment_source"].as_str().unwrap_or(""),
                journal
            );
        }
    }
    out
}

async fn run(
    path: &Path,
    workers: u16,
    args: &BackendArgs,
    mut providers: Providers,
    settings: FaultSettings,
    cleanup: &Cleanup,
) -> anyhow::Result<u8> {
    let (suite, _) = match checked_suite(path, &providers) {
        Ok(s) => s,
        Err(code) => return Ok(code),
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
    let id = ports.submit(&suite, base).await.map_err(|e| anyhow!(e))?;
    let total: usize = suite.waves.iter().map(|w| w.experiments.len()).sum();
    eprintln!(
        "suite run {id}: {} ({} waves, {total} jobs, {workers} workers)",
        suite.name,
        suite.waves.len()
    );

    let interrupted = stop_on_signals();
    let workers_stop = CancellationToken::new();
    // the workers lock their targets in the fleet's store
    let faults = Arc::new(FaultContext::new(
        settings,
        backend.store.clone(),
        cleanup.clone(),
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
    let (plan, state) = ports.load(&id).await.map_err(|e| anyhow!(e))?;
    bar.set_position(state.completions.len() as u64);
    bar.finish_and_clear();

    print!("{}", summary(&plan, &state, &backend));
    let outcome = state.outcome.map_or("interrupted", SuiteOutcome::as_str);
    println!(
        "suite run {id} ({}): {} — {outcome}",
        plan.name, state.status
    );
    Ok(suite_exit_code(&state))
}
