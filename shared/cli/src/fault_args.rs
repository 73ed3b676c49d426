//! The fault library's guard-rail settings as both binaries take them (flags and environment):
//! the deployment's limits every fault action acts within (`aws::faults::safety`).

use aws::faults::safety::{DEFAULT_OPT_IN, FaultSettings, parse_opt_in};

/// Command-line and environment settings of the fault library (flattened into `worker run`
/// and `worker serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct FaultArgs {
    /// Tag every target must carry, `KEY=VALUE`, or `off` (the account opts in wholesale).
    #[arg(long, env = "BROKER_OPT_IN_TAG", default_value = DEFAULT_OPT_IN, value_name = "KEY=VALUE|off")]
    pub opt_in_tag: String,
    /// At most this many targets per action (an experiment may set fewer).
    #[arg(long, env = "BROKER_MAX_TARGETS", value_name = "N")]
    pub max_targets: Option<u32>,
    /// At most this percentage of the matching targets per action (an experiment may set less).
    #[arg(long, env = "BROKER_MAX_PERCENT", value_name = "PERCENT", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_percent: Option<u32>,
    /// Prefix of the SSM document names the deployment registered (the template uses `<stack>-`).
    #[arg(
        long,
        env = "BROKER_SSM_DOCUMENT_PREFIX",
        default_value = "",
        value_name = "PREFIX"
    )]
    pub ssm_document_prefix: String,
}

impl FaultArgs {
    pub fn settings(&self) -> Result<FaultSettings, String> {
        Ok(FaultSettings {
            opt_in: parse_opt_in(&self.opt_in_tag)?,
            max_targets: self.max_targets,
            max_percent: self.max_percent,
            document_prefix: self.ssm_document_prefix.clone(),
        })
    }
}
