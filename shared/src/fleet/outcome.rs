//! How jobs and suite runs end, as types: the words of `docs/schemas/events/` (`held`,
//! `deviated`, `failed`, `invalid`; `running`, `completed`, `halted`, `rejected`, `interrupted`), shared by the
//! producer's state, its events and the status document.

use crate::model::{Journal, Status};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How one experiment ended, for gating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobOutcome {
    /// Completed and the steady state held.
    Held,
    /// Completed, but the steady state deviated.
    Deviated,
    /// Failed, aborted, interrupted, or never ran (invalid, dead-lettered).
    Failed,
}

impl JobOutcome {
    pub fn of(journal: &Journal) -> JobOutcome {
        JobOutcome::from_status(journal.status, journal.deviated)
    }

    /// The outcome of a run that ended with `status` (none: it never ended) and `deviated`.
    pub fn from_status(status: Option<Status>, deviated: bool) -> JobOutcome {
        match (status, deviated) {
            (Some(Status::Completed), false) => JobOutcome::Held,
            (Some(Status::Completed), true) => JobOutcome::Deviated,
            _ => JobOutcome::Failed,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Held => "held",
            JobOutcome::Deviated => "deviated",
            JobOutcome::Failed => "failed",
        }
    }
}

/// How a suite run ended: the worst of its jobs' outcomes, or `invalid` when it was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuiteOutcome {
    Held,
    Deviated,
    Failed,
    /// The suite could not be read or is invalid: it never started.
    Invalid,
}

impl SuiteOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SuiteOutcome::Held => "held",
            SuiteOutcome::Deviated => "deviated",
            SuiteOutcome::Failed => "failed",
            SuiteOutcome::Invalid => "invalid",
        }
    }
}

impl From<JobOutcome> for SuiteOutcome {
    fn from(worst: JobOutcome) -> SuiteOutcome {
        match worst {
            JobOutcome::Held => SuiteOutcome::Held,
            JobOutcome::Deviated => SuiteOutcome::Deviated,
            JobOutcome::Failed => SuiteOutcome::Failed,
        }
    }
}

/// Where a suite run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuiteStatus {
    /// Its waves are being released.
    Running,
    /// Every wave ran.
    Completed,
    /// A wave with `on_failure: stop` failed or deviated: the waves after it never ran.
    Halted,
    /// A triggered suite that could not be read or is invalid (see `problems`).
    Rejected,
    /// Stopped by its operator (`producer run` and Ctrl-C): its running jobs were interrupted
    /// (their rollbacks ran) and the jobs not started never will be.
    Interrupted,
}

impl SuiteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SuiteStatus::Running => "running",
            SuiteStatus::Completed => "completed",
            SuiteStatus::Halted => "halted",
            SuiteStatus::Rejected => "rejected",
            SuiteStatus::Interrupted => "interrupted",
        }
    }
}

/// Each reads as its word (in messages, and compared with the word).
macro_rules! words {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    )*};
}
words!(JobOutcome, SuiteOutcome, SuiteStatus);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_serialises_as_the_word_the_schemas_name() {
        for (value, word) in [
            (serde_json::to_value(JobOutcome::Deviated), "deviated"),
            (serde_json::to_value(SuiteOutcome::Invalid), "invalid"),
            (serde_json::to_value(SuiteStatus::Halted), "halted"),
            (serde_json::to_value(SuiteStatus::Running), "running"),
        ] {
            assert_eq!(value.unwrap(), word);
        }
        for o in [JobOutcome::Held, JobOutcome::Deviated, JobOutcome::Failed] {
            assert_eq!(SuiteOutcome::from(o).as_str(), o.as_str());
            assert_eq!(o.to_string(), o.as_str());
        }
    }
}
