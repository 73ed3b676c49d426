//! Where a suite run stands (saved after every change), the completions it has seen, and the
//! store keys of its plan and state.

use super::ProducerPorts;
use super::advance::gate::JobOutcome;
use super::plan::Plan;
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a suite run stands. Saved after every change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// `running`, `completed` or `halted`.
    pub status: String,
    pub current_wave: usize,
    /// Run ids sent to the jobs queue.
    pub enqueued: Vec<String>,
    pub completions: BTreeMap<String, Completion>,
    /// `held`, `deviated` or `failed` once the suite ended; `invalid` when it was rejected.
    pub outcome: Option<String>,
    /// Why a triggered suite was rejected (status `rejected`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub status: String,
    pub deviated: bool,
    pub journal_key: String,
}

impl Completion {
    pub fn outcome(&self) -> JobOutcome {
        match (self.status.as_str(), self.deviated) {
            ("completed", false) => JobOutcome::Held,
            ("completed", true) => JobOutcome::Deviated,
            _ => JobOutcome::Failed,
        }
    }
}

pub fn outcome_name(o: JobOutcome) -> &'static str {
    match o {
        JobOutcome::Held => "held",
        JobOutcome::Deviated => "deviated",
        JobOutcome::Failed => "failed",
    }
}

/// Suite runs live under `suite-runs/`, not `suites/`: uploads under `suites/` trigger runs,
/// and the producer's own writes must never trigger one.
pub(super) fn plan_key(id: &str) -> String {
    format!("suite-runs/{id}/plan.json")
}
pub(super) fn state_key(id: &str) -> String {
    format!("suite-runs/{id}/state.json")
}

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    pub async fn load(&self, id: &str) -> Result<(Plan, State), String> {
        let plan: Plan = self
            .get_json(&plan_key(id))
            .await?
            .ok_or_else(|| format!("no suite run {id}"))?;
        let state: State = self
            .get_json(&state_key(id))
            .await?
            .ok_or_else(|| format!("suite run {id} has no state"))?;
        Ok((plan, state))
    }
}
