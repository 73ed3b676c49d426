//! `worker run`: one experiment on this machine, guarded by the kill switch and its stop
//! conditions, interrupted (rollbacks still run, the journal still written) by a signal.

use crate::args::RunArgs;
use crate::experiment::{load_vars, providers, report_problems};
use cli::{Exit, Signals};
use shared::{RunOptions, load_experiment};
use std::sync::Arc;

pub async fn run(args: RunArgs, signals: &Signals) -> anyhow::Result<Exit> {
    aws::native::safety::configure(args.faults.settings().map_err(anyhow::Error::msg)?);
    crate::journal::check_path(&args.journal_path)?;
    let vars = match load_vars(&args.vars) {
        Ok(v) => v,
        Err(p) => return Ok(report_problems(&p)),
    };
    let providers = Arc::new(providers(&vars, &args.signatures));
    let experiment = match load_experiment(&args.experiment, &vars, &providers) {
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
    let tripwires = lone_tripwires();
    let journal = match shared::broker::guard::run_guarded(
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
fn lone_tripwires() -> Vec<Arc<dyn shared::broker::guard::Tripwire>> {
    let dir = std::env::var_os("BROKER_STATE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| shared::config::DEFAULT_STATE_DIR.into());
    let store = aws::Store::Dir(shared::adapters::embedded::DirStore::new(dir.join("store")));
    aws::native::target_locks::configure(store.clone());
    let parameter = std::env::var("BROKER_HALT_PARAMETER").ok();
    aws::native::stop_conditions::tripwires(store, parameter)
}
