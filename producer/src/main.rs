//! `producer`: thin glue over the library's suite loader. Today it validates suites; submitting,
//! serving (wave gating) and status come with the fleet.

use broker::load::Vars;
use broker::load::suite::{check_experiments, load_suite};
use broker::providers::Providers;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "producer",
    version,
    about = "Expand suites of experiments into waves of jobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a suite and every experiment file it names, reporting every problem with its
    /// location (exit 1 if anything is invalid).
    Validate {
        /// The suite file (YAML or JSON; the seed's Step Function payload is accepted).
        suite: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { suite } => validate(&suite),
    }
}

fn validate(path: &std::path::Path) -> ExitCode {
    let suite = match load_suite(path) {
        Ok(s) => s,
        Err(problems) => return report(&problems.0),
    };
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    let (problems, unchecked) =
        check_experiments(&suite, base, &Vars::default(), &Providers::default());
    if !problems.0.is_empty() {
        return report(&problems.0);
    }
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
    ExitCode::SUCCESS
}

fn report(problems: &[broker::load::Problem]) -> ExitCode {
    for p in problems {
        eprintln!("error: {p}");
    }
    eprintln!(
        "{} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    ExitCode::FAILURE
}
