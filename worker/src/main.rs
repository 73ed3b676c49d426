//! `worker`: thin glue. Parse the command line, start the shell (`cli`), call the library, and
//! map the outcome to the exit codes both binaries share (`cli::Exit`: 0 held, 1
//! invalid/failed/deviated, 2 a tool or cloud error, 130 interrupted).

mod args;
mod experiment;
mod journal;
mod report;
mod run;
mod serve;

use args::{Cli, Command};
use clap::Parser;
use cli::Shell;
use std::process::ExitCode;
use tracing::level_filters::LevelFilter;

fn main() -> ExitCode {
    let Cli { command, logs } = Cli::parse();
    let shell = match Shell::start(LevelFilter::INFO, &logs, "worker") {
        Ok(shell) => shell,
        Err(exit) => return exit.into(),
    };
    shell.run(|signals| async move {
        match command {
            Command::Run(args) => run::run(args, &signals).await,
            Command::Validate(args) => Ok(experiment::validate(args)),
            Command::Serve(args) => serve::serve(args, &signals).await,
            Command::Report(args) => report::report(args),
        }
    })
}
