//! Decisions made from strategies and the run's state: pure functions, tested exhaustively.

use crate::model::{HypothesisStrategy, RollbackStrategy, RunStatus, Status, SteadyState};

/// Which hypothesis phases a strategy runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    pub before: bool,
    pub during: bool,
    pub after: bool,
}

pub fn phases(strategy: HypothesisStrategy) -> Phases {
    use HypothesisStrategy::*;
    if strategy == Skip {
        return Phases {
            before: false,
            during: false,
            after: false,
        };
    }
    Phases {
        before: matches!(strategy, Default | BeforeMethodOnly | Continuously),
        during: matches!(strategy, DuringMethodOnly | Continuously),
        after: matches!(strategy, Default | AfterMethodOnly | Continuously),
    }
}

/// Whether rollbacks are played.
///
/// The reference's rules, with one deliberate change: under `default` (and `deviated` when the
/// run deviated) an *interrupted* run plays its rollbacks. The reference skips them on Ctrl-C
/// or SIGTERM, which leaves injected faults in place; a broker that is trusted to revert must
/// not. `never` still means never.
pub fn play_rollbacks(strategy: RollbackStrategy, status: Option<Status>, deviated: bool) -> bool {
    match strategy {
        RollbackStrategy::Always => true,
        RollbackStrategy::Never => false,
        RollbackStrategy::Default => status != Some(Status::Failed),
        RollbackStrategy::Deviated => deviated,
    }
}

/// The run's status after a hypothesis evaluation: `None` when it was met; when missed,
/// `failed` if a probe itself failed, else `completed` (the reference's rule, before and after
/// the method alike).
pub fn status_when_missed(state: &SteadyState) -> Option<Status> {
    if state.steady_state_met == Some(true) {
        return None;
    }
    let probe_failed = state.probes.iter().any(|p| p.status == RunStatus::Failed);
    Some(if probe_failed {
        Status::Failed
    } else {
        Status::Completed
    })
}

/// The strategy in force: the command line, else the experiment's `runtime`, else `default`.
pub fn resolve<T: Copy + Default>(cli: Option<T>, experiment: Option<T>) -> T {
    cli.or(experiment).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_per_strategy() {
        use HypothesisStrategy::*;
        let p = |b, d, a| Phases {
            before: b,
            during: d,
            after: a,
        };
        assert_eq!(phases(Default), p(true, false, true));
        assert_eq!(phases(BeforeMethodOnly), p(true, false, false));
        assert_eq!(phases(AfterMethodOnly), p(false, false, true));
        assert_eq!(phases(DuringMethodOnly), p(false, true, false));
        assert_eq!(phases(Continuously), p(true, true, true));
        assert_eq!(phases(Skip), p(false, false, false));
    }

    #[test]
    fn rollback_table() {
        use RollbackStrategy::*;
        let statuses = [
            None,
            Some(Status::Completed),
            Some(Status::Failed),
            Some(Status::Aborted),
            Some(Status::Interrupted),
        ];
        for status in statuses {
            for deviated in [false, true] {
                assert!(play_rollbacks(Always, status, deviated));
                assert!(!play_rollbacks(Never, status, deviated));
                assert_eq!(play_rollbacks(Deviated, status, deviated), deviated);
                assert_eq!(
                    play_rollbacks(Default, status, deviated),
                    status != Some(Status::Failed),
                    "{status:?}"
                );
            }
        }
    }

    #[test]
    fn missed_hypothesis_status() {
        use crate::model::Run;
        let probe = |status| Run {
            activity: serde_json::Value::Null,
            output: serde_json::Value::Null,
            start: String::new(),
            status,
            end: String::new(),
            duration: 0.0,
            exception: None,
            tolerance_met: None,
        };
        let state = |met, statuses: Vec<RunStatus>| SteadyState {
            steady_state_met: Some(met),
            probes: statuses.into_iter().map(probe).collect(),
        };
        assert_eq!(
            status_when_missed(&state(true, vec![RunStatus::Succeeded])),
            None
        );
        assert_eq!(
            status_when_missed(&state(
                false,
                vec![RunStatus::Succeeded, RunStatus::Succeeded]
            )),
            Some(Status::Completed),
            "out of tolerance: the run still completed"
        );
        assert_eq!(
            status_when_missed(&state(false, vec![RunStatus::Succeeded, RunStatus::Failed])),
            Some(Status::Failed),
            "a probe that raised fails the run"
        );
    }

    #[test]
    fn cli_overrides_experiment_overrides_default() {
        use RollbackStrategy::*;
        assert_eq!(resolve(Some(Never), Some(Always)), Never);
        assert_eq!(resolve(None, Some(Always)), Always);
        assert_eq!(resolve::<RollbackStrategy>(None, None), Default);
    }
}
