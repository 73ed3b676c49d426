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

    /// Where the experiment files uploaded with the suite are (no trailing `/`).
    pub fn experiments(&self) -> String {
        format!("{}/experiments", self.prefix)
    }

    /// An experiment file uploaded with the suite (job `j` of wave `w`, file name `name`).
    pub fn experiment(&self, w: usize, j: usize, name: &str) -> String {
        format!("{}/w{w}-j{j}-{name}", self.experiments())
    }
}

/// Where the history records of suite runs live, by suite name (see `history_entry`).
pub const SUITE_INDEX: &str = "suite-index";

/// The longest a suite name's part of a history key gets (keys stay under S3's 1,024 bytes); a
/// longer name shares its prefix, and the record itself names its suite.
const MAX_NAME_SEGMENT: usize = 600;

/// A suite name as one key segment: letters, digits, `-` and `_` as they are, every other byte
/// `%XX`; the empty name `%`.
fn name_segment(name: &str) -> String {
    if name.is_empty() {
        return "%".into();
    }
    let mut out = String::new();
    for b in name.bytes() {
        if out.len() >= MAX_NAME_SEGMENT {
            break;
        }
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The prefix of every history record of the suite named `name` (ends with `/`).
pub fn history_prefix(name: &str) -> String {
    format!("{SUITE_INDEX}/{}/", name_segment(name))
}

/// The history record of suite run `suite_run_id` of the suite named `name`.
pub fn history_entry(name: &str, suite_run_id: &str) -> String {
    format!("{}{suite_run_id}.json", history_prefix(name))
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

    #[test]
    fn a_suite_name_becomes_one_safe_key_segment() {
        for (name, key) in [
            ("nightly", "suite-index/nightly/sr-1.json"),
            ("team a/../b", "suite-index/team%20a%2F%2E%2E%2Fb/sr-1.json"),
            ("", "suite-index/%/sr-1.json"),
            ("..", "suite-index/%2E%2E/sr-1.json"),
            ("café", "suite-index/caf%C3%A9/sr-1.json"),
        ] {
            assert_eq!(history_entry(name, "sr-1"), key, "{name}");
            assert!(crate::ports::store::check_key(&history_entry(name, "sr-1")).is_ok());
        }
        let long = history_entry(&"é".repeat(1000), "sr-1");
        assert!(long.len() < 700, "{}", long.len());
        assert_ne!(history_prefix("a"), history_prefix("ab"));
        assert!(!history_prefix("ab").starts_with(&history_prefix("a")));
    }
}
