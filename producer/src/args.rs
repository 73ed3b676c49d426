//! Command-line interface of `producer`: validate, submit, serve, show, halt and resume suite
//! runs, or run a whole suite on this machine.

use clap::{Parser, Subcommand};
use cli::BackendArgs;
use shared::config::positive_seconds;
use shared::providers::python::DEFAULT_SIGNATURE_TIMEOUT;
use shared::report::Format;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "producer",
    version = cli::VERSION,
    about = "Expand suites of experiments into waves of jobs",
    after_help = cli::help::EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// How long checking an experiment's Python activities against their functions'
    /// signatures may take (it imports their modules); past it the check is stopped and the
    /// experiment is invalid, with the activity whose import did not finish located.
    #[arg(long, global = true, help_heading = "Checks", env = "BROKER_SIGNATURE_TIMEOUT", default_value_t = DEFAULT_SIGNATURE_TIMEOUT.as_secs_f64(), value_name = "SECONDS", value_parser = positive_seconds)]
    pub signature_timeout: f64,
    /// Warnings are errors (validate, submit, run): what the Chaos Toolkit accepts but this
    /// broker warns about (unknown or repeated keys, risky substitutions...) makes an
    /// experiment invalid (exit 1). Also `strict: true` in a suite or in an experiment's
    /// experiment-broker extension.
    #[arg(long, global = true, help_heading = "Checks")]
    pub strict: bool,
    #[command(flatten)]
    pub logs: cli::LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a suite and every experiment file it names (exit 1 if anything is invalid).
    #[command(after_help = "Examples:\n  producer validate suites/nightly.yaml")]
    Validate {
        /// The suite file (YAML or JSON; the seed's Step Function payload is accepted).
        suite: PathBuf,
    },
    /// Validate a suite, store its plan and enqueue its first wave; prints the run id.
    #[command(after_help = SUBMIT_EXAMPLES)]
    Submit {
        /// The suite file (YAML or JSON); the experiment files it names are read beside it.
        suite: PathBuf,
        /// Block until the suite run ends, print its summary, and exit 0 only if every
        /// experiment held (1 otherwise): a CI gate.
        #[arg(long, help_heading = "Waiting")]
        wait: bool,
        /// With --wait: give up waiting after this many seconds (exit 3; the suite run goes on).
        #[arg(long, help_heading = "Waiting", value_name = "SECONDS", requires = "wait", value_parser = clap::value_parser!(u64).range(1..))]
        timeout: Option<u64>,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Consume completion events and release waves until SIGTERM/SIGINT.
    #[command(after_help = SERVE_EXAMPLES)]
    Serve {
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Show a suite run: status, outcome, waves, jobs and journals.
    #[command(after_help = STATUS_EXAMPLES)]
    Status {
        /// The suite run's id, as `producer submit` printed it.
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
    #[command(after_help = HALT_EXAMPLES)]
    Halt {
        /// Why, for the journals and the audit trail.
        #[arg(long, default_value = "halted by an operator")]
        reason: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Clear the kill switch: jobs start again.
    #[command(
        after_help = "Examples:\n  producer resume\n  producer resume --backend aws --config broker.yaml"
    )]
    Resume {
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Run a whole suite here: producer and N workers in this process, with progress; exit 0
    /// when every experiment held, 1 otherwise.
    #[command(after_help = RUN_EXAMPLES)]
    Run {
        /// The suite file (YAML or JSON); the experiment files it names are read beside it.
        suite: PathBuf,
        /// Workers (experiments run at once).
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
        workers: u16,
        #[command(flatten)]
        backend: BackendArgs,
        #[command(flatten)]
        faults: cli::FaultArgs,
    },
    /// Write a report of a suite run: one self-contained HTML page (default), Markdown for pull
    /// requests and wikis, or JUnit XML for CI dashboards.
    #[command(after_help = REPORT_EXAMPLES)]
    Report {
        /// The suite run's id, as `producer submit` printed it.
        run_id: String,
        /// html, md or junit.
        #[arg(long, default_value = "html", value_parser = clap::value_parser!(Format))]
        format: Format,
        /// Where to write it (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// List the runs of a suite, newest first, with their outcome and resilience score.
    #[command(after_help = HISTORY_EXAMPLES)]
    History {
        /// The suite's name (its `name:`).
        name: String,
        /// One JSON array, for scripts.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

const REPORT_EXAMPLES: &str = "\
Examples:
  producer report sr-20260101-120000-3f2a9c1e -o report.html
  producer report --format md sr-20260101-120000-3f2a9c1e >> \"$GITHUB_STEP_SUMMARY\"
  producer report --format junit -o junit.xml --backend aws --config broker.yaml sr-...";

const HISTORY_EXAMPLES: &str = "\
Examples:
  producer history nightly
  producer history --json nightly | jq '.[0].score'";

const SUBMIT_EXAMPLES: &str = "\
Examples:
  producer submit suites/nightly.yaml                      # prints the suite run's id
  producer submit --wait suites/nightly.yaml               # a CI gate: exit 0 when all held
  producer submit --wait --timeout 3600 --backend aws --config broker.yaml suites/nightly.yaml";

const SERVE_EXAMPLES: &str = "\
Examples:
  producer serve                                   # the embedded backend in .broker
  producer serve --backend aws --config broker.yaml";

const STATUS_EXAMPLES: &str = "\
Examples:
  producer status sr-20260101-120000-3f2a9c1e
  producer status --json sr-20260101-120000-3f2a9c1e | jq .outcome";

const HALT_EXAMPLES: &str = "\
Examples:
  producer halt --reason 'incident 42'
  producer halt --backend aws --config broker.yaml --halt-parameter /broker/halt";

const RUN_EXAMPLES: &str = "\
Examples:
  producer run suites/nightly.yaml
  producer run --workers 4 --state-dir /tmp/broker suites/nightly.yaml

A first SIGINT/SIGTERM interrupts the running experiments at once (their rollbacks run), marks
the suite run `interrupted` and exits 130.";

#[cfg(test)]
mod tests {
    use super::Cli;

    #[test]
    fn every_argument_has_help() {
        use clap::CommandFactory;
        assert_eq!(
            cli::help::undocumented(&Cli::command()),
            Vec::<String>::new()
        );
    }
}
