//! `worker`: thin glue. Parse the command line, set up logging, build the providers, call the
//! library, map the outcome to `chaos`'s exit codes (0 held, 1 invalid/failed/deviated).

mod cli;

use anyhow::Context;
use aws::faults::FaultContext;
use clap::Parser;
use cli::{Cli, Command, RunArgs, ServeArgs, SignatureArgs, ValidateArgs, VarArgs};
use shared::cleanup::Cleanup;
use shared::load::{Problems, Vars};
use shared::providers::Providers;
use shared::{RunOptions, load_experiment};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::logging::init(tracing::level_filters::LevelFilter::INFO);
    // a bad size cap is the operator's mistake: said once at start, not by every job
    if let Err(problem) = shared::load::document::Limits::from_env() {
        let expected = problem.expected.unwrap_or_default();
        eprintln!("error: {} (expected {expected})", problem.message);
        return ExitCode::from(2);
    }
    // loading runs on the blocking pool (`shared::load::off_runtime`): its threads get the
    // stack the main thread has, so a file that loads here loads there
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
    let outcome = runtime.block_on(async {
        let outcome = match cli.command {
            Command::Run(args) => run(args, &cleanup).await,
            Command::Validate(args) => validate(args),
            Command::Serve(args) => serve(args, &cleanup).await,
        };
        cleanup.drain(shared::cleanup::DRAIN_LIMIT).await;
        outcome
    });
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The native registry: the AWS activities (`aws::faults`), acting within `faults`.
fn providers(vars: &Vars, signatures: &SignatureArgs, faults: Arc<FaultContext>) -> Providers {
    let mut providers = Providers::new(aws::faults::registry(faults));
    providers.env_overlay = vars.env.clone();
    providers.python.set_signature_timeout(signatures.timeout());
    providers
}

fn load_vars(args: &VarArgs) -> Result<Vars, Problems> {
    let mut vars = Vars::default();
    let mut problems = Vec::new();
    for file in &args.var_files {
        if let Err(p) = vars.add_file(file) {
            problems.extend(p.0);
        }
    }
    for var in &args.vars {
        if let Err(p) = vars.add_var(var) {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        Ok(vars)
    } else {
        Err(Problems(problems))
    }
}

fn report_problems(problems: &Problems) {
    for p in &problems.0 {
        eprintln!("error: {p}");
    }
    let n = problems.0.len();
    eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
}

fn validate(args: ValidateArgs) -> anyhow::Result<u8> {
    let vars = match load_vars(&args.vars) {
        Ok(v) => v,
        Err(p) => {
            report_problems(&p);
            return Ok(1);
        }
    };
    // nothing runs: the fault library's defaults only name its activities
    let faults = Arc::new(FaultContext::new(
        Default::default(),
        aws::faults::target_locks::lone_store(),
        Cleanup::new(),
    ));
    match load_experiment(
        &args.experiment,
        &vars,
        &providers(&vars, &args.signatures, faults),
    ) {
        Ok(experiment) => {
            // warnings: valid but risky; printed, the exit status stays 0
            for w in shared::load::validate::file_warnings(&args.experiment, &experiment) {
                eprintln!("warning: {w}");
            }
            println!("{}: valid experiment", args.experiment.display());
            Ok(0)
        }
        Err(problems) => {
            report_problems(&problems);
            Ok(1)
        }
    }
}

async fn run(args: RunArgs, cleanup: &Cleanup) -> anyhow::Result<u8> {
    // a lone run locks its targets where its kill switch is (`lone_tripwires`)
    let faults = Arc::new(FaultContext::new(
        args.faults.settings().map_err(anyhow::Error::msg)?,
        aws::faults::target_locks::lone_store(),
        cleanup.clone(),
    ));
    check_journal_path(&args.journal_path)?;
    let vars = match load_vars(&args.vars) {
        Ok(v) => v,
        Err(p) => {
            report_problems(&p);
            return Ok(1);
        }
    };
    let providers = Arc::new(providers(&vars, &args.signatures, faults.clone()));
    let experiment = match load_experiment(&args.experiment, &vars, &providers) {
        Ok(e) => Arc::new(e),
        Err(problems) => {
            report_problems(&problems);
            return Ok(1);
        }
    };
    let options = RunOptions {
        hypothesis_strategy: args.hypothesis_strategy.map(Into::into),
        rollback_strategy: args.rollback_strategy.map(Into::into),
        hypothesis_frequency: args.hypothesis_frequency,
        fail_fast: args.fail_fast,
        dry: args.dry.map(Into::into),
        revert_only: false,
    };
    let stop = CancellationToken::new();
    let _signals = watch_signals(
        stop.clone(),
        "interrupting the experiment, then running rollbacks",
        cleanup.clone(),
    );
    let tripwires = lone_tripwires(&faults);
    let journal = match shared::fleet::safety::guard::run_guarded(
        experiment, &vars, &options, providers, stop, None, &tripwires,
    )
    .await
    {
        Ok(j) => j,
        Err(problems) => {
            report_problems(&problems);
            return Ok(1);
        }
    };
    write_journal(&args.journal_path, &journal)?;
    if options.dry.is_some() {
        print_plan(&journal);
    }
    Ok(journal.exit_code())
}

/// What a lone `worker run` watches: the kill switch's flag in the embedded store under
/// `BROKER_STATE_DIR` (default `.broker`, where its locks are too), the SSM parameter
/// `BROKER_HALT_PARAMETER` when one is set, and the experiment's stop conditions. Each is read
/// before the start, and one that cannot be read then keeps the run from starting.
fn lone_tripwires(
    faults: &Arc<FaultContext>,
) -> Vec<Arc<dyn shared::fleet::safety::guard::Tripwire>> {
    let parameter = std::env::var("BROKER_HALT_PARAMETER").ok();
    aws::faults::stop_conditions::tripwires(faults, faults.lock_store().clone(), parameter)
}

/// `worker serve`: the fleet's worker, on the backend the settings choose.
async fn serve(args: ServeArgs, cleanup: &Cleanup) -> anyhow::Result<u8> {
    use shared::fleet::worker::{ServeConfig, WorkerPorts, serve};
    let settings = args.faults.settings().map_err(anyhow::Error::msg)?;
    let backend = args
        .backend
        .open(aws::Role::Worker)
        .await
        .map_err(anyhow::Error::msg)?;
    // SQS bills per request: long-poll as long as it allows; SQLite wakes up on its own
    let wait = match backend.jobs {
        aws::Queue::Sqs(_) => std::time::Duration::from_secs(20),
        aws::Queue::Sqlite(_) => std::time::Duration::from_secs(5),
    };
    let node = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let cfg = ServeConfig {
        concurrency: usize::from(args.concurrency),
        visibility: std::time::Duration::from_secs_f64(args.visibility_timeout),
        wait,
        grace: std::time::Duration::from_secs_f64(args.grace),
        worker_id: format!("{}-{}", node.trim(), std::process::id()),
    };
    let faults = Arc::new(FaultContext::new(
        settings,
        backend.store.clone(),
        cleanup.clone(),
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
    let stop = CancellationToken::new();
    let _signals = watch_signals(
        stop.clone(),
        "no new jobs; running jobs get the grace period, then are interrupted (rollbacks run)",
        cleanup.clone(),
    );
    tracing::info!("{}", backend.description);
    serve(
        cfg,
        ports,
        Arc::new(providers(&Vars::default(), &args.signatures, faults)),
        tripwires,
        stop.cancelled_owned(),
    )
    .await;
    Ok(0)
}

/// SIGINT/SIGTERM: interrupt the run; rollbacks still run and the journal is still written.
/// The handlers are installed before the run starts (no window where a signal kills the
/// process without rollbacks); the returned task turns signals into the stop token.
fn watch_signals(
    stop: CancellationToken,
    what: &'static str,
    cleanup: Cleanup,
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = handlers else {
            tracing::warn!(
                "cannot install signal handlers; Ctrl-C will kill the run without rollbacks"
            );
            return;
        };
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if stop.is_cancelled() {
                tracing::warn!(
                    "{name} received again: already stopping; rollbacks run to completion, then the journal is written; clean-up after that (SSM cancels, lock releases) is not waited for"
                );
                cleanup.abandon();
            } else {
                tracing::warn!("{name} received: {what}");
                stop.cancel();
            }
        }
    })
}

/// After a dry run: what each fault action would have acted on.
fn print_plan(journal: &shared::Journal) {
    for run in &journal.run {
        let out = &run.output;
        if out.get("dry_run") == Some(&serde_json::Value::Bool(true)) {
            let targets: Vec<&str> = out["targets"]
                .as_array()
                .map(|t| t.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let what = match out["document"].as_str() {
                Some(document) => format!("send {document}"),
                None => format!("run {}", out["action"].as_str().unwrap_or("?")),
            };
            let stages = match out["stages"].as_array() {
                Some(stages) => format!(
                    "; {} stage(s), {}s in all",
                    stages.len(),
                    out["total_duration"]
                ),
                None => String::new(),
            };
            println!(
                "dry run: {} would {what} on {} ({} of {} matching; seed {}{stages})",
                run.activity["name"].as_str().unwrap_or("?"),
                if targets.is_empty() {
                    "nothing".to_string()
                } else {
                    targets.join(", ")
                },
                targets.len(),
                out["matched"],
                out["seed"],
            );
        }
    }
}

/// Write durably (`shared::durable`): a reader never sees half a journal, and after a crash
/// the file is the old journal or the new one.
fn write_journal(path: &Path, journal: &shared::Journal) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(journal).context("serialising the journal")?;
    shared::durable::write_atomically(path, (text + "\n").as_bytes())
        .with_context(|| format!("writing the journal to {}", path.display()))?;
    tracing::info!("journal written to {}", path.display());
    Ok(())
}

/// Before the run: a journal that cannot be written would leave faults injected with nothing on
/// record, so the run does not start.
fn check_journal_path(path: &Path) -> anyhow::Result<()> {
    shared::durable::check_writable(path).with_context(|| {
        format!(
            "cannot write the journal to {} (its directory must exist and be writable); the experiment was not run",
            path.display()
        )
    })
}
