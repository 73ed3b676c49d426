//! Loading an experiment as `worker run` and `worker validate` both do (its variables, the
//! providers that check its activities, every problem with its location), and `worker
//! validate`, which stops there.

use crate::args::{SignatureArgs, ValidateArgs, VarArgs};
use aws::faults::FaultContext;
use cli::Exit;
use shared::load::{Problems, Vars};
use shared::load_experiment;
use shared::providers::Providers;
use std::sync::Arc;

/// The native registry: the AWS activities (`aws::faults`), acting within `faults`.
pub fn providers(vars: &Vars, signatures: &SignatureArgs, faults: Arc<FaultContext>) -> Providers {
    let mut providers = Providers::new(aws::faults::registry(faults));
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

/// `worker validate`.
pub fn validate(args: ValidateArgs) -> Exit {
    let vars = match load_vars(&args.vars) {
        Ok(v) => v,
        Err(p) => return report_problems(&p),
    };
    // nothing runs: the fault library's defaults only name its activities
    let faults = Arc::new(FaultContext::for_checking(Default::default()));
    let providers = providers(&vars, &args.signatures, faults);
    match load_experiment(&args.experiment, &vars, &providers) {
        Ok(experiment) => {
            // warnings: valid but risky; printed, the exit status stays 0
            for w in shared::load::validate::file_warnings(&args.experiment, &experiment) {
                eprintln!("warning: {w}");
            }
            println!("{}: valid experiment", args.experiment.display());
            Exit::Held
        }
        Err(problems) => report_problems(&problems),
    }
}
