//! The run journal, in the Chaos Toolkit journal schema.
//!
//! Field names and nesting are the reference's (`experiment`, `start`, `end`, `duration`,
//! `status`, `deviated`, `steady_states.before|after|during`, `run[]`, `rollbacks[]`), so Chaos
//! Toolkit reporting reads our journals. Additions live in fields the reference does not use
//! (`broker`), never in changed meanings.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The final status of a run, with the reference's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Everything ran; the hypothesis may still have deviated (see `deviated`).
    Completed,
    /// A hypothesis probe failed (raised, timed out), or the continuous hypothesis failed fast.
    Failed,
    /// The engine hit an unexpected error in the method (e.g. an unresolvable `ref`).
    Aborted,
    /// A signal or a stop request ended the run early.
    Interrupted,
}

impl Status {
    /// The status a journal's `status` names (`None`: not one of the four).
    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Completed,
            Status::Failed,
            Status::Aborted,
            Status::Interrupted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Completed => "completed",
            Status::Failed => "failed",
            Status::Aborted => "aborted",
            Status::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Status {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Succeeded,
    Failed,
}

/// One executed activity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The activity as written (a `ref` is replaced by the activity it names).
    pub activity: Value,
    pub output: Value,
    pub start: String,
    pub status: RunStatus,
    pub end: String,
    pub duration: f64,
    /// The error, as a list of lines like Python's `traceback.format_exception`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exception: Option<Vec<String>>,
    /// Set on hypothesis probes only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tolerance_met: Option<bool>,
}

/// One evaluation of the steady-state hypothesis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SteadyState {
    pub steady_state_met: Option<bool>,
    pub probes: Vec<Run>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SteadyStates {
    pub before: Option<SteadyState>,
    pub after: Option<SteadyState>,
    pub during: Vec<SteadyState>,
}

/// The chaostoolkit-lib version this engine emulates, as the journal's `chaoslib-version`: the
/// reference's tools (`chaos report`) read it as a semantic version to choose how to read the
/// journal. Our own version is `broker.version`. The same version
/// `scripts/record-conformance.sh` records the conformance corpus with.
pub const CHAOSLIB_VERSION: &str = "1.45.1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    /// `CHAOSLIB_VERSION` in the journals we write.
    #[serde(rename = "chaoslib-version")]
    pub chaoslib_version: String,
    pub platform: String,
    pub node: String,
    pub experiment: Value,
    pub start: String,
    pub status: Option<Status>,
    pub deviated: bool,
    pub steady_states: SteadyStates,
    pub run: Vec<Run>,
    pub rollbacks: Vec<Run>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub end: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub duration: Option<f64>,
    /// What this broker adds: engine version, strategies used, why a run stopped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub broker: Option<Value>,
}

impl Journal {
    /// The `chaos run` exit code: 1 when the run did not complete or deviated.
    pub fn exit_code(&self) -> u8 {
        if self.status == Some(Status::Completed) && !self.deviated {
            0
        } else {
            1
        }
    }
}

/// The title of the experiment a journal ran, when it has one.
pub fn journal_title(journal: &Journal) -> Option<String> {
    journal.experiment["title"].as_str().map(str::to_string)
}

/// The journal of a job that could not run, saying why.
pub fn failed_journal(source: &str, reason: &str) -> Journal {
    let now = crate::clock::now_iso();
    Journal {
        chaoslib_version: CHAOSLIB_VERSION.to_string(),
        platform: String::new(),
        node: String::new(),
        experiment: json!({"title": source, "source": source}),
        start: now.clone(),
        status: Some(Status::Failed),
        deviated: false,
        steady_states: SteadyStates::default(),
        run: Vec::new(),
        rollbacks: Vec::new(),
        end: Some(now),
        duration: Some(0.0),
        broker: Some(json!({"error": reason, "version": env!("CARGO_PKG_VERSION")})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaoslib_version_is_the_semantic_version_the_corpus_is_recorded_with() {
        let parts: Vec<&str> = CHAOSLIB_VERSION.split('.').collect();
        assert!(
            parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
            "`chaos report` parses `chaoslib-version` as MAJOR.MINOR.PATCH: {CHAOSLIB_VERSION}"
        );
        let script = include_str!("../../../scripts/record-conformance.sh");
        assert!(
            script
                .lines()
                .any(|l| l == format!("CHAOSTOOLKIT_LIB={CHAOSLIB_VERSION}")),
            "scripts/record-conformance.sh records the corpus with another chaostoolkit-lib"
        );
        let journal = failed_journal("x.json", "why");
        assert_eq!(journal.chaoslib_version, CHAOSLIB_VERSION);
        assert_eq!(
            journal.broker.unwrap()["version"],
            env!("CARGO_PKG_VERSION"),
            "our own version"
        );
    }
}
