//! `producer`: thin glue over `shared::fleet::producer`. Parse the command line, start the
//! shell (`cli`), call the library, and map the outcome to the exit codes both binaries share
//! (`cli::Exit`).

mod args;
mod kill_switch;
mod ports;
mod report;
mod run;
mod serve;
mod submit;
mod suite;
mod summary;

use args::{Cli, Command};
use aws::faults::FaultContext;
use clap::Parser;
use cli::Shell;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tracing::level_filters::LevelFilter;

fn main() -> ExitCode {
    let Cli {
        command,
        signature_timeout,
        strict,
        logs,
    } = Cli::parse();
    // `producer run` shows progress; its log says only what goes wrong
    let level = match command {
        Command::Run { .. } => LevelFilter::WARN,
        _ => LevelFilter::INFO,
    };
    let json_logs = logs.log_format == cli::logging::LogFormat::Json;
    let shell = match Shell::start(level, &logs, "producer") {
        Ok(shell) => shell,
        Err(exit) => return exit.into(),
    };
    shell.run(|signals| async move {
        // until `producer run` opens its backend, the fault library only names its activities
        let checking = FaultContext::for_checking(signals.cleanup().clone());
        let timeout = Duration::from_secs_f64(signature_timeout);
        let providers = suite::providers(timeout, Arc::new(checking));
        match command {
            Command::Validate { suite } => Ok(suite::validate(&suite, &providers, strict)),
            Command::Submit {
                suite,
                wait,
                timeout,
                backend,
            } => {
                let wait = wait.then(|| timeout.map(Duration::from_secs));
                submit::submit(&suite, wait, &backend, &providers, strict, &signals).await
            }
            Command::Serve { backend } => serve::serve(&backend, &signals).await,
            Command::Status {
                run_id,
                json,
                backend,
            } => summary::status(&run_id, json, &backend).await,
            Command::Run {
                suite,
                workers,
                backend,
                faults,
            } => {
                let settings = faults.settings().map_err(anyhow::Error::msg)?;
                let local = run::Local {
                    workers,
                    providers,
                    settings,
                    json_logs,
                    strict,
                };
                run::run(&suite, &backend, local, &signals).await
            }
            Command::Halt { reason, backend } => kill_switch::halt(Some(&reason), &backend).await,
            Command::Resume { backend } => kill_switch::halt(None, &backend).await,
            Command::Report {
                run_id,
                format,
                output,
                backend,
            } => report::report(&run_id, format, output.as_deref(), &backend).await,
            Command::History {
                name,
                json,
                backend,
            } => report::history(&name, json, &backend).await,
        }
    })
}
