//! The fleet's events, as types: the detail types, the detail of each (field for field what
//! `docs/schemas/events/` publishes, in the same order), and the EventBridge envelope they go
//! out in. The worker publishes "Experiment Completed"; the producer "Wave Released" and
//! "Suite Completed", and reads "Experiment Completed" back.

use super::outcome::{SuiteOutcome, SuiteStatus};
use crate::model::Status;
use crate::ports::Event;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The `source` of every event the fleet publishes.
pub const SOURCE: &str = "experiment-broker";

/// An event's `detail-type`: what happened, and what queues subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DetailType {
    #[serde(rename = "Experiment Completed")]
    ExperimentCompleted,
    #[serde(rename = "Wave Released")]
    WaveReleased,
    #[serde(rename = "Suite Completed")]
    SuiteCompleted,
}

impl DetailType {
    pub const ALL: [DetailType; 3] = [
        DetailType::ExperimentCompleted,
        DetailType::WaveReleased,
        DetailType::SuiteCompleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DetailType::ExperimentCompleted => "Experiment Completed",
            DetailType::WaveReleased => "Wave Released",
            DetailType::SuiteCompleted => "Suite Completed",
        }
    }

    /// The detail type an envelope names, if it is one of the fleet's.
    pub fn of(event: &Event) -> Option<DetailType> {
        DetailType::ALL
            .into_iter()
            .find(|t| t.as_str() == event.detail_type)
    }
}

impl fmt::Display for DetailType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// "Experiment Completed": a worker stored a job's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentCompleted {
    /// Empty for a malformed job message.
    pub suite_run_id: String,
    /// The job within the suite run (a malformed message's id).
    pub run_id: String,
    pub wave: u32,
    pub experiment_source: String,
    /// The journal's status.
    pub status: Option<Status>,
    pub deviated: bool,
    pub journal_key: String,
    /// The worker that ran the job.
    pub worker: String,
    /// The journal's start and end, and its duration in seconds (absent from events of
    /// older workers and, but for `end`, from a malformed job message's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// The experiment's title (absent from events of older workers): `producer status` shows
    /// it without reading the journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// What the producer needs of an "Experiment Completed" detail, read leniently: the run ids
/// must be strings; a status missing or not understood reads as failed, `deviated` as false,
/// `journal_key` as empty, timings not there (or not understood) as absent.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedRun {
    pub suite_run_id: String,
    pub run_id: String,
    pub status: Status,
    pub deviated: bool,
    pub journal_key: String,
    pub start: Option<String>,
    pub end: Option<String>,
    pub duration: Option<f64>,
    pub title: Option<String>,
}

impl CompletedRun {
    /// `None` when the detail names no run.
    pub fn read(detail: &Value) -> Option<CompletedRun> {
        let (Some(suite_run_id), Some(run_id)) =
            (detail["suite_run_id"].as_str(), detail["run_id"].as_str())
        else {
            return None;
        };
        Some(CompletedRun {
            suite_run_id: suite_run_id.to_string(),
            run_id: run_id.to_string(),
            status: detail["status"]
                .as_str()
                .and_then(Status::parse)
                .unwrap_or(Status::Failed),
            deviated: detail["deviated"].as_bool().unwrap_or(false),
            journal_key: detail["journal_key"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            start: detail["start"].as_str().map(str::to_string),
            end: detail["end"].as_str().map(str::to_string),
            duration: detail["duration"].as_f64(),
            title: detail["title"].as_str().map(str::to_string),
        })
    }
}

/// "Wave Released": the producer first enqueued jobs of a wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveReleased {
    pub suite_run_id: String,
    pub wave: usize,
    /// Jobs in the wave (all of them, whatever `max_parallel` enqueues first).
    pub jobs: usize,
}

/// "Suite Completed": a suite run ended (or was rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteCompleted {
    pub suite_run_id: String,
    pub name: String,
    pub status: SuiteStatus,
    pub outcome: SuiteOutcome,
    /// Why a rejected suite run was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<String>>,
    /// The resilience score, 0–100 (`report::score`); absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<u8>,
    /// The run ids planned but not run: a seed payload's items already `completed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// One of the fleet's events, before it is put in an envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Detail {
    ExperimentCompleted(ExperimentCompleted),
    WaveReleased(WaveReleased),
    SuiteCompleted(SuiteCompleted),
}

impl Detail {
    pub fn detail_type(&self) -> DetailType {
        match self {
            Detail::ExperimentCompleted(_) => DetailType::ExperimentCompleted,
            Detail::WaveReleased(_) => DetailType::WaveReleased,
            Detail::SuiteCompleted(_) => DetailType::SuiteCompleted,
        }
    }

    /// The detail as JSON, its fields in the order the schemas list them.
    pub fn to_value(&self) -> Value {
        let value = match self {
            Detail::ExperimentCompleted(d) => serde_json::to_value(d),
            Detail::WaveReleased(d) => serde_json::to_value(d),
            Detail::SuiteCompleted(d) => serde_json::to_value(d),
        };
        // plain structs of strings, numbers and enums: serialising them cannot fail
        value.unwrap_or_default()
    }

    /// The EventBridge envelope this detail goes out in: a fresh id, the fleet's source, now.
    pub fn envelope(&self) -> Event {
        Event {
            id: crate::ids::random_id(),
            source: SOURCE.into(),
            detail_type: self.detail_type().as_str().into(),
            time: crate::clock::now_iso(),
            detail: self.to_value(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn details_serialise_field_for_field_as_the_schemas_say() {
        let completed = Detail::ExperimentCompleted(ExperimentCompleted {
            suite_run_id: "sr".into(),
            run_id: "w0-j0".into(),
            wave: 0,
            experiment_source: "store:e.json".into(),
            status: None,
            deviated: false,
            journal_key: "runs/sr/w0-j0/journal.json".into(),
            worker: "h-1".into(),
            start: None,
            end: None,
            duration: None,
            title: None,
        });
        assert_eq!(
            completed.to_value().to_string(),
            json!({"suite_run_id": "sr", "run_id": "w0-j0", "wave": 0,
                   "experiment_source": "store:e.json", "status": null, "deviated": false,
                   "journal_key": "runs/sr/w0-j0/journal.json", "worker": "h-1"})
            .to_string()
        );
        let ended = Detail::SuiteCompleted(SuiteCompleted {
            suite_run_id: "sr".into(),
            name: "n".into(),
            status: SuiteStatus::Halted,
            outcome: SuiteOutcome::Deviated,
            problems: None,
            score: Some(50),
            skipped: Vec::new(),
        });
        assert_eq!(
            ended.to_value().to_string(),
            r#"{"suite_run_id":"sr","name":"n","status":"halted","outcome":"deviated","score":50}"#
        );
        let event = ended.envelope();
        assert_eq!(
            (event.source.as_str(), event.detail_type.as_str()),
            ("experiment-broker", "Suite Completed")
        );
        assert_eq!(DetailType::of(&event), Some(DetailType::SuiteCompleted));
    }

    #[test]
    fn a_completion_is_read_leniently() {
        let read = CompletedRun::read(&json!({"suite_run_id": "sr", "run_id": "r"})).unwrap();
        assert_eq!(
            (read.status, read.deviated, read.journal_key.as_str()),
            (Status::Failed, false, "")
        );
        assert_eq!(CompletedRun::read(&json!({"run_id": "r"})), None);
        // the title travels to the completion record; a title that is not text is no title
        let titled = json!({"suite_run_id": "sr", "run_id": "r", "title": "Checkout holds"});
        assert_eq!(
            CompletedRun::read(&titled).unwrap().title.as_deref(),
            Some("Checkout holds")
        );
        let odd = json!({"suite_run_id": "sr", "run_id": "r", "title": 3});
        assert_eq!(CompletedRun::read(&odd).unwrap().title, None);
    }
}
