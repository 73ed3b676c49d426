//! `worker run`: one experiment on this machine, guarded by the kill switch and its stop
//! conditions, interrupted (rollbacks still run, the journal still written) by a signal.

use crate::args::RunArgs;
use crate::experiment::{load_checked, load_vars, providers, report_problems};
use aws::faults::FaultContext;
use cli::{Exit, Signals};
use shared::RunOptions;
use shared::load::Purpose;
use std::sync::Arc;

pub async fn run(args: RunArgs, signals: &Signals) -> anyhow::Result<Exit> {
    // a lone run locks its targets where its kill switch is (`lone_tripwires`)
    let faults = Arc::new(FaultContext::new(
        args.faults.settings().map_err(anyhow::Error::msg)?,
        aws::faults::target_locks::lone_store(),
        signals.cleanup().clone(),
    ));
    crate::journal::check_path(&args.journal_path)?;
    let vars = match load_vars(&args.vars) {
        Ok(v) => v,
        Err(p) => return Ok(report_problems(&p)),
    };
    let providers = Arc::new(providers(&vars, &args.signatures, faults.clone()));
    let checks = (Purpose::Run, args.strict.strict);
    let experiment = match load_checked(&args.experiment, &vars, &providers, checks) {
        Ok(e) => Arc::new(e),
        Err(problems) => return Ok(report_problems(&problems)),
    };
    let options = RunOptions {
        hypothesis_strategy: args.hypothesis_strategy.map(Into::into),
        rollback_strategy: args.rollback_strategy.map(Into::into),
        hypothesis_frequency: args.hypothesis_frequency,
        fail_fast: args.fail_fast,
        dry: args.dry.map(Into::into),
        revert_only: false,
    };
    let stop = signals.watch("interrupting the experiment, then running rollbacks");
    let tripwires = lone_tripwires(&faults);
    let journal = match shared::fleet::safety::guard::run_guarded(
        experiment, &vars, &options, providers, stop, None, &tripwires,
    )
    .await
    {
        Ok(j) => j,
        Err(problems) => return Ok(report_problems(&problems)),
    };
    crate::journal::write(&args.journal_path, &journal)?;
    if options.dry.is_some() {
        crate::journal::print_plan(&journal);
    }
    Ok(match journal.exit_code() {
        0 => Exit::Held,
        _ if signals.received() => Exit::Interrupted,
        _ => Exit::Failed,
    })
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
