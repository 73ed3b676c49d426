//! The store keys of the fleet, in one place: where a run keeps its ownership marker, the copy
//! of the experiment it runs, its checkpoint, its journal and its "published" marker; where a
//! suite run keeps its plan, its state, its completion records and the experiments uploaded
//! with it.
//!
//! Suite runs live under `suite-runs/`, not `suites/`: uploads under `suites/` trigger runs,
//! and the producer's own writes must never trigger one.

use crate::model::suite::Job;

/// The keys of one run (one job of a suite run), under `runs/<suite run id>/<run id>`; a
/// malformed job message's journal is under `malformed/<message id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKeys {
    prefix: String,
}

impl RunKeys {
    /// The keys of run `run_id` of suite run `suite_run_id`.
    pub fn new(suite_run_id: &str, run_id: &str) -> RunKeys {
        RunKeys {
            prefix: format!("runs/{suite_run_id}/{run_id}"),
        }
    }

    /// The keys of a job's run.
    pub fn of(job: &Job) -> RunKeys {
        RunKeys::new(&job.suite_run_id, &job.run_id)
    }

    /// Where the journal of a message that is not a job goes (by its message id).
    pub fn malformed(message_id: &str) -> RunKeys {
        RunKeys {
            prefix: format!("malformed/{message_id}"),
        }
    }

    /// The prefix every key of the run starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The ownership marker a delivery creates before the engine runs (one owner per run).
    pub fn started(&self) -> String {
        format!("{}/started", self.prefix)
    }

    /// The exact experiment text the run runs (what a revert plays).
    pub fn experiment(&self) -> String {
        format!("{}/experiment", self.prefix)
    }

    /// The journal checkpoint written while the run goes on.
    pub fn checkpoint(&self) -> String {
        format!("{}/checkpoint.json", self.prefix)
    }

    /// The run's journal.
    pub fn journal(&self) -> String {
        format!("{}/journal.json", self.prefix)
    }

    /// Written once the journal's completion event is published.
    pub fn completed(&self) -> String {
        format!("{}/completed", self.prefix)
    }
}

/// Where every suite run lives.
pub const SUITE_RUNS: &str = "suite-runs";

/// The keys of one suite run, under `suite-runs/<suite run id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteRunKeys {
    prefix: String,
}

impl SuiteRunKeys {
    pub fn new(suite_run_id: &str) -> SuiteRunKeys {
        SuiteRunKeys {
            prefix: format!("{SUITE_RUNS}/{suite_run_id}"),
        }
    }

    /// The plan: every job of every wave, written before any job is sent.
    pub fn plan(&self) -> String {
        format!("{}/plan.json", self.prefix)
    }

    /// Where the suite run stands, saved after every change.
    pub fn state(&self) -> String {
        format!("{}/state.json", self.prefix)
    }

    /// Where the completion records are, one per run id.
    pub fn completions(&self) -> String {
        format!("{}/completions/", self.prefix)
    }

    /// Run `run_id`'s completion record.
    pub fn completion(&self, run_id: &str) -> String {
        format!("{}/completions/{run_id}.json", self.prefix)
    }

    /// An experiment file uploaded with the suite (job `j` of wave `w`, file name `name`).
    pub fn experiment(&self, w: usize, j: usize, name: &str) -> String {
        format!("{}/experiments/w{w}-j{j}-{name}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_of_a_run_and_of_a_suite_run() {
        let run = RunKeys::new("sr-1", "w0-j1");
        assert_eq!(
            [
                run.prefix().to_string(),
                run.started(),
                run.experiment(),
                run.checkpoint(),
                run.journal(),
                run.completed()
            ],
            [
                "runs/sr-1/w0-j1",
                "runs/sr-1/w0-j1/started",
                "runs/sr-1/w0-j1/experiment",
                "runs/sr-1/w0-j1/checkpoint.json",
                "runs/sr-1/w0-j1/journal.json",
                "runs/sr-1/w0-j1/completed"
            ]
        );
        assert_eq!(
            RunKeys::malformed("m-1").journal(),
            "malformed/m-1/journal.json"
        );
        let suite = SuiteRunKeys::new("sr-1");
        assert_eq!(
            [
                suite.plan(),
                suite.state(),
                suite.experiment(1, 2, "a.json"),
                suite.completion("w0-j1")
            ],
            [
                "suite-runs/sr-1/plan.json",
                "suite-runs/sr-1/state.json",
                "suite-runs/sr-1/experiments/w1-j2-a.json",
                "suite-runs/sr-1/completions/w0-j1.json"
            ]
        );
    }
}
