//! Loading an experiment as `worker run` and `worker validate` both do (its variables, the
//! providers that check its activities, every problem with its location), and `worker
//! validate`, which stops there.

use crate::args::{SignatureArgs, ValidateArgs, VarArgs};
use aws::faults::FaultContext;
use cli::Exit;
use shared::load::{Problems, Purpose, Vars, validate_experiment};
use shared::load_experiment;
use shared::model::Experiment;
use shared::providers::Providers;
use std::sync::Arc;

/// The native registry: the AWS activities (`aws::faults`), acting within `faults`.
pub fn providers(vars: &Vars, signatures: &SignatureArgs, faults: Arc<FaultContext>) -> Providers {
    let mut providers = Providers::new(aws::faults::lazy_registry(faults));
    providers.env_overlay = vars.env.clone();
    providers.python.set_signature_timeout(signatures.timeout());
    providers
}

/// `--var` and `--var-file`, every problem of every one of them.
pub fn load_vars(args: &VarArgs) -> Result<Vars, Problems> {
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

/// Say every problem on stderr, then how many: the input is invalid.
pub fn report_problems(problems: &Problems) -> Exit {
    for p in &problems.0 {
        eprintln!("error: {p}");
    }
    let n = problems.0.len();
    eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
    Exit::Failed
}

/// Load the experiment at `path` for `purpose`: every problem, or the experiment with its
/// warnings said on stderr; under strictness (`--strict`, or `strict: true` in the
/// experiment-broker extension) the warnings are problems.
pub fn load_checked(
    path: &std::path::Path,
    vars: &Vars,
    providers: &Providers,
    (purpose, strict): (Purpose, bool),
) -> Result<Experiment, Problems> {
    let experiment = match purpose {
        Purpose::Run => load_experiment(path, vars, providers)?,
        Purpose::Validate => validate_experiment(path, vars, providers)?,
    };
    if let Some(problems) = shared::load::strict_problems(&experiment, strict) {
        return Err(problems);
    }
    for w in &experiment.warnings {
        eprintln!("warning: {w}");
    }
    Ok(experiment)
}

/// `worker validate`.
pub fn validate(args: ValidateArgs) -> Exit {
    let vars = match load_vars(&args.vars) {
        Ok(v) => v,
        Err(p) => return report_problems(&p),
    };
    // nothing runs: the fault library's defaults only name its activities
    let faults = Arc::new(FaultContext::for_checking(Default::default()));
    let providers = providers(&vars, &args.signatures, faults);
    let checks = (Purpose::Validate, args.strict.strict);
    match load_checked(&args.experiment, &vars, &providers, checks) {
        Ok(experiment) => {
            let n = experiment.warnings.len();
            match n {
                0 => println!("{}: valid experiment", args.experiment.display()),
                _ => println!(
                    "{}: valid experiment ({n} warning{})",
                    args.experiment.display(),
                    if n == 1 { "" } else { "s" }
                ),
            }
            Exit::Held
        }
        Err(problems) => report_problems(&problems),
    }
}
