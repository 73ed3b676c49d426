//! Where a suite run stands (saved after every change), and the completions it has seen.

use super::plan::Plan;
use super::{ProducerError, ProducerPorts};
use crate::fleet::keys::SuiteRunKeys;
use crate::fleet::outcome::{JobOutcome, SuiteOutcome, SuiteStatus};
use crate::model::Status;
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a suite run stands. Saved after every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: SuiteStatus,
    pub current_wave: usize,
    /// Run ids sent to the jobs queue.
    pub enqueued: Vec<String>,
    pub completions: BTreeMap<String, Completion>,
    /// Once the suite ended: the worst of its jobs' outcomes; `invalid` when it was rejected.
    pub outcome: Option<SuiteOutcome>,
    /// Why a triggered suite was rejected (status `rejected`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The journal's status.
    pub status: Status,
    pub deviated: bool,
    pub journal_key: String,
}

impl Completion {
    pub fn outcome(&self) -> JobOutcome {
        JobOutcome::from_status(Some(self.status), self.deviated)
    }
}

impl State {
    /// A suite run whose first wave is about to be released.
    pub fn running() -> State {
        State {
            status: SuiteStatus::Running,
            current_wave: 0,
            enqueued: Vec::new(),
            completions: BTreeMap::new(),
            outcome: None,
            problems: Vec::new(),
        }
    }
}

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    pub async fn load(&self, id: &str) -> Result<(Plan, State), ProducerError> {
        let plan: Plan = self
            .get_json(&SuiteRunKeys::new(id).plan())
            .await?
            .ok_or_else(|| ProducerError::NoSuiteRun { id: id.to_string() })?;
        let state: State = self
            .get_json(&SuiteRunKeys::new(id).state())
            .await?
            .ok_or_else(|| ProducerError::NoState { id: id.to_string() })?;
        Ok((plan, state))
    }
}
