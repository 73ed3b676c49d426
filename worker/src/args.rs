//! Command-line interface of `worker`: the same options, defaults and meanings as `chaos run`
//! and `chaos validate`, plus `worker serve` for the fleet.

use clap::{Args, Parser, Subcommand, ValueEnum};
use shared::config::positive_seconds;
use shared::model::{Dry, HypothesisStrategy, RollbackStrategy};
use shared::providers::python::DEFAULT_SIGNATURE_TIMEOUT;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "worker",
    version = cli::VERSION,
    about = "Run Chaos Toolkit experiments: one static binary, no Python needed",
    after_help = cli::help::EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub logs: cli::LogArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an experiment and write its journal (exit 1 if it failed or deviated).
    #[command(after_help = RUN_EXAMPLES)]
    Run(RunArgs),
    /// Check an experiment and report every problem with its location (exit 1 if invalid).
    #[command(after_help = VALIDATE_EXAMPLES)]
    Validate(ValidateArgs),
    /// Lease jobs from the queue and run them until SIGTERM/SIGINT (embedded or AWS backend).
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),
    /// Write a report of journals: one self-contained HTML page (default), Markdown, or JUnit
    /// XML with a testcase per journal.
    #[command(after_help = REPORT_EXAMPLES)]
    Report(ReportArgs),
}

const REPORT_EXAMPLES: &str = "\
Examples:
  worker report journal.json -o report.html
  worker report --format junit -o junit.xml journals/*.json
  worker report --format md journal.json >> \"$GITHUB_STEP_SUMMARY\"";

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// html, md or junit.
    #[arg(long, default_value = "html", value_parser = clap::value_parser!(shared::report::Format))]
    pub format: shared::report::Format,
    /// Where to write it (default: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The journals (as `worker run` or `chaos run` wrote them).
    #[arg(required = true, value_name = "JOURNAL")]
    pub journals: Vec<PathBuf>,
}

const RUN_EXAMPLES: &str = "\
Examples:
  worker run experiment.json
  worker run --journal-path out/journal.json --var-file vars.yaml experiment.yaml
  worker run --var region=eu-west-1 --var replicas:int=3 experiment.json
  worker run --dry actions experiment.json    # what the faults would act on; nothing acts

A first SIGINT/SIGTERM interrupts the run: rollbacks run and the journal is written (exit 130).";

const VALIDATE_EXAMPLES: &str = "\
Examples:
  worker validate experiment.json
  worker validate --var-file vars.yaml experiment.yaml";

const SERVE_EXAMPLES: &str = "\
Examples:
  worker serve                                       # the embedded backend in .broker
  worker serve --concurrency 8 --state-dir /var/lib/broker
  worker serve --backend aws --config broker.yaml    # the CloudFormation stack's outputs

A first SIGTERM/SIGINT: no new jobs; running jobs get --grace seconds, then are interrupted.";

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub backend: cli::BackendArgs,
    /// Jobs run at once.
    #[arg(long, help_heading = "Serving", env = "BROKER_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Lease on a received job, renewed every third of it while the job runs; at most 43200
    /// (12 hours, SQS's maximum).
    #[arg(long, help_heading = "Serving", env = "BROKER_VISIBILITY_TIMEOUT", default_value_t = 60.0, value_name = "SECONDS", value_parser = lease_seconds)]
    pub visibility_timeout: f64,
    /// On SIGTERM/SIGINT, how long running jobs may go on before they are interrupted.
    #[arg(long, help_heading = "Serving", env = "BROKER_GRACE", default_value_t = 30.0, value_name = "SECONDS", value_parser = positive_seconds)]
    pub grace: f64,
    #[command(flatten)]
    pub faults: cli::FaultArgs,
    #[command(flatten)]
    pub signatures: SignatureArgs,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Checks")]
pub struct SignatureArgs {
    /// How long checking an experiment's Python activities against their functions'
    /// signatures may take (it imports their modules); past it the check is stopped and the
    /// experiment is invalid, with the activity whose import did not finish located.
    #[arg(long, env = "BROKER_SIGNATURE_TIMEOUT", default_value_t = DEFAULT_SIGNATURE_TIMEOUT.as_secs_f64(), value_name = "SECONDS", value_parser = positive_seconds)]
    pub signature_timeout: f64,
}

impl SignatureArgs {
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.signature_timeout)
    }
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Configuration")]
pub struct VarArgs {
    /// Configuration value `KEY=VALUE` or `KEY:TYPE=VALUE` (str, int, float, bool, json, bytes).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// JSON/YAML file with `configuration` and `secrets`, or a .env file of environment variables.
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Where to write the journal.
    #[arg(long, default_value = "./journal.json", value_name = "PATH")]
    pub journal_path: PathBuf,
    /// When to play rollbacks (default: the experiment's runtime, else `default`).
    #[arg(long, value_enum)]
    pub rollback_strategy: Option<RollbackArg>,
    /// When to check the steady-state hypothesis (default: the experiment's runtime, else `default`).
    #[arg(long, value_enum)]
    pub hypothesis_strategy: Option<HypothesisArg>,
    /// Seconds between two checks of the continuous hypothesis.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS", value_parser = positive_seconds)]
    pub hypothesis_frequency: f64,
    /// Fail the run at the first deviation of the continuous hypothesis.
    #[arg(long)]
    pub fail_fast: bool,
    /// Run without executing the chosen kind of activities (or without pausing). Under
    /// `actions` or `activities`, AWS fault actions still resolve their targets and print the
    /// plan, acting on nothing.
    #[arg(long, value_enum)]
    pub dry: Option<DryArg>,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub faults: cli::FaultArgs,
    #[command(flatten)]
    pub signatures: SignatureArgs,
    #[command(flatten)]
    pub strict: StrictArg,
    /// The experiment file (JSON or YAML).
    pub experiment: PathBuf,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub signatures: SignatureArgs,
    #[command(flatten)]
    pub strict: StrictArg,
    /// The experiment file (JSON or YAML).
    pub experiment: PathBuf,
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Checks")]
pub struct StrictArg {
    /// Warnings are errors: what the Chaos Toolkit accepts but this broker warns about
    /// (unknown or repeated keys, risky substitutions...) makes the experiment invalid
    /// (exit 1). Also `strict: true` in the experiment's experiment-broker extension.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RollbackArg {
    /// Rollbacks run unless the run failed (an interrupted run still rolls back).
    Default,
    /// Rollbacks always run.
    Always,
    /// Rollbacks never run.
    Never,
    /// Rollbacks run only if the experiment deviated.
    Deviated,
}

impl From<RollbackArg> for RollbackStrategy {
    fn from(a: RollbackArg) -> Self {
        match a {
            RollbackArg::Default => RollbackStrategy::Default,
            RollbackArg::Always => RollbackStrategy::Always,
            RollbackArg::Never => RollbackStrategy::Never,
            RollbackArg::Deviated => RollbackStrategy::Deviated,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum HypothesisArg {
    /// Before and after the method.
    Default,
    /// Before the method only.
    BeforeMethodOnly,
    /// After the method only.
    AfterMethodOnly,
    /// While the method runs, every --hypothesis-frequency seconds.
    DuringMethodOnly,
    /// Before, during and after the method.
    #[value(alias = "continously")]
    Continuously,
}

impl From<HypothesisArg> for HypothesisStrategy {
    fn from(a: HypothesisArg) -> Self {
        match a {
            HypothesisArg::Default => HypothesisStrategy::Default,
            HypothesisArg::BeforeMethodOnly => HypothesisStrategy::BeforeMethodOnly,
            HypothesisArg::AfterMethodOnly => HypothesisStrategy::AfterMethodOnly,
            HypothesisArg::DuringMethodOnly => HypothesisStrategy::DuringMethodOnly,
            HypothesisArg::Continuously => HypothesisStrategy::Continuously,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DryArg {
    /// Probes are not run.
    Probes,
    /// Actions are not run.
    Actions,
    /// Neither probes nor actions are run.
    Activities,
    /// Activities run; their pauses are skipped.
    Pause,
}

impl From<DryArg> for Dry {
    fn from(a: DryArg) -> Self {
        match a {
            DryArg::Probes => Dry::Probes,
            DryArg::Actions => Dry::Actions,
            DryArg::Activities => Dry::Activities,
            DryArg::Pause => Dry::Pause,
        }
    }
}

/// The longest lease SQS grants (12 hours); the embedded queue needs no more, since the
/// heartbeat renews a lease for as long as the job runs.
pub const MAX_VISIBILITY_TIMEOUT: f64 = 43_200.0;

/// A lease: positive seconds, at most `MAX_VISIBILITY_TIMEOUT`. A longer one is refused here
/// rather than shortened later by the queue.
fn lease_seconds(text: &str) -> Result<f64, String> {
    let value = positive_seconds(text)?;
    if value > MAX_VISIBILITY_TIMEOUT {
        return Err(format!(
            "`{text}` is more than {MAX_VISIBILITY_TIMEOUT} seconds (12 hours), the longest \
             lease SQS grants; the heartbeat renews a shorter lease for as long as a job runs"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_argument_has_help() {
        use clap::CommandFactory;
        assert_eq!(
            cli::help::undocumented(&Cli::command()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_visibility_timeout_above_12_hours_is_refused_not_capped() {
        for (text, ok) in [
            ("0.5", true),
            ("60", true),
            ("43200", true),
            ("43200.5", false),
            ("86400", false),
            ("0", false),
            ("-1", false),
            ("inf", false),
            ("soon", false),
        ] {
            assert_eq!(lease_seconds(text).is_ok(), ok, "{text}");
        }
        let e = lease_seconds("86400").unwrap_err();
        assert!(
            e.contains(
                "`86400` is more than 43200 seconds (12 hours), the longest lease SQS grants"
            ),
            "{e}"
        );
    }

    #[test]
    fn the_signature_timeout_is_30_seconds_unless_set_and_must_be_positive() {
        let timeout = |args: &[&str]| -> Result<f64, String> {
            let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
            Ok(match cli.command {
                Command::Validate(a) => a.signatures.signature_timeout,
                Command::Run(a) => a.signatures.signature_timeout,
                Command::Serve(a) => a.signatures.signature_timeout,
                Command::Report(_) => return Err("a report checks no signature".into()),
            })
        };
        assert_eq!(timeout(&["worker", "validate", "e.json"]), Ok(30.0));
        assert_eq!(
            timeout(&["worker", "run", "--signature-timeout", "2.5", "e.json"]),
            Ok(2.5)
        );
        assert_eq!(
            timeout(&["worker", "serve", "--signature-timeout", "90"]),
            Ok(90.0)
        );
        let refused = timeout(&["worker", "validate", "--signature-timeout", "0", "e.json"]);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.contains("must be more than 0")),
            "{refused:?}"
        );
    }
}
