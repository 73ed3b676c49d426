//! Loading a suite as every producer command that takes one does (the suite, then every
//! experiment it names, every problem with its location), and `producer validate`, which stops
//! there.

use aws::faults::FaultContext;
use cli::Exit;
use shared::load::suite::{check_experiments, load_suite};
use shared::load::{Purpose, Vars};
use shared::model::suite::Suite;
use shared::providers::Providers;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The activity providers, with the signature check bounded as the command line says, the
/// fault library acting within `faults`.
pub fn providers(signature_timeout: Duration, faults: Arc<FaultContext>) -> Providers {
    let mut providers = Providers::new(aws::faults::lazy_registry(faults));
    providers.python.set_signature_timeout(signature_timeout);
    providers
}

/// Say every problem on stderr, then how many: the input is invalid.
fn report(problems: &[shared::load::Problem]) -> Exit {
    for p in problems {
        eprintln!("error: {p}");
    }
    eprintln!(
        "{} problem{} found",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    Exit::Failed
}

/// Load a suite and check every experiment it names: the suite and the references not checked
/// here (the experiments' warnings said on stderr), or (after the problems are said) the exit
/// code. `purpose`: `Validate` for the reference's verdict, `Run` before jobs are sent (what a
/// run would refuse is refused now). Under `strict` (or the suite's `strict: true`) warnings
/// are problems.
pub fn checked(
    path: &Path,
    providers: &Providers,
    (purpose, strict): (Purpose, bool),
) -> Result<(Suite, Vec<String>), Exit> {
    let suite = load_suite(path).map_err(|p| report(&p.0))?;
    let base = path.parent().unwrap_or(Path::new("."));
    let checked = check_experiments(&suite, base, &Vars::default(), providers, (purpose, strict));
    if !checked.problems.0.is_empty() {
        return Err(report(&checked.problems.0));
    }
    for w in &checked.warnings {
        eprintln!("warning: {w}");
    }
    let unchecked = checked.unchecked.iter().map(ToString::to_string).collect();
    Ok((suite, unchecked))
}

/// `producer validate`.
pub fn validate(path: &Path, providers: &Providers, strict: bool) -> Exit {
    let (suite, unchecked) = match checked(path, providers, (Purpose::Validate, strict)) {
        Ok(s) => s,
        Err(exit) => return exit,
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
    Exit::Held
}
