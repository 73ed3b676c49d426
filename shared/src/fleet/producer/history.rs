//! The history of a suite: a small record per suite run, indexed by the suite's name
//! (`suite-index/<name>/<suite run id>.json`, see `keys::history_entry`), written when the run
//! starts and again when it ends — one small write each, whatever the store holds — so
//! `producer history NAME` lists a suite's runs without reading every suite run. The records
//! are an index, not the truth: the suite run's state is; a record that cannot be written is
//! logged and the run goes on.

use super::plan::Plan;
use super::state::State;
use super::{ProducerError, ProducerPorts};
use crate::fleet::keys::{history_entry, history_prefix};
use crate::fleet::outcome::{SuiteOutcome, SuiteStatus};
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use crate::report::score::{Tally, suite_score};
use serde::{Deserialize, Serialize};

/// One suite run in its suite's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub suite_run_id: String,
    pub name: String,
    /// When the suite run was submitted (the plan's `created`).
    pub created: String,
    pub status: SuiteStatus,
    pub outcome: Option<SuiteOutcome>,
    pub score: Option<u8>,
    /// Jobs in the plan.
    pub jobs: u64,
    /// When the record was last written (the end, once the run ended).
    pub updated: String,
}

/// How the jobs of a suite run stand, counted for the score from the state's counts (its
/// `settled` outcomes: every wave's once the run ended): a planned job not counted has not run.
/// A skipped wave's jobs (a seed payload's items already completed) are not counted: they did
/// not run in this suite run, and what they did before is not known here.
pub fn tally(plan: &Plan, state: &State) -> Tally {
    let planned: u64 = plan
        .waves
        .iter()
        .filter(|w| !w.skipped)
        .map(|w| w.jobs.len() as u64)
        .sum();
    let s = state.settled;
    Tally {
        held: s.held,
        deviated: s.deviated,
        failed: s.failed,
        not_run: u32::try_from(planned.saturating_sub(s.total())).unwrap_or(u32::MAX),
    }
}

/// The resilience score of a suite run as it stands (`None` while it runs).
pub fn score(plan: &Plan, state: &State) -> Option<u8> {
    suite_score(state.status, &tally(plan, state))
}

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Write (or rewrite) the suite run's history record; a failure is logged, not returned.
    pub(super) async fn index(&self, plan: &Plan, state: &State) {
        let entry = HistoryEntry {
            suite_run_id: plan.suite_run_id.clone(),
            name: plan.name.clone(),
            created: plan.created.clone(),
            status: state.status,
            outcome: state.outcome,
            score: score(plan, state),
            jobs: plan.waves.iter().map(|w| w.jobs.len() as u64).sum(),
            updated: crate::clock::now_iso(),
        };
        let key = history_entry(&plan.name, &plan.suite_run_id);
        if let Err(e) = self.put_json(&key, &entry).await {
            tracing::warn!(
                "suite run {}: its history record {key} could not be written (producer history will miss it): {e}",
                plan.suite_run_id
            );
        }
    }

    /// The suite runs of the suite named `name`, newest first.
    pub async fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, ProducerError> {
        let mut entries = Vec::new();
        for key in self.store.list(&history_prefix(name)).await? {
            match self.get_json::<HistoryEntry>(&key).await {
                // a long name's prefix may be shared: the record says whose it is
                Ok(Some(entry)) if entry.name == name => entries.push(entry),
                Ok(_) => {}
                Err(e) => tracing::warn!("skipping a history record: {e}"),
            }
        }
        entries.sort_by(|a, b| {
            b.created
                .cmp(&a.created)
                .then_with(|| b.suite_run_id.cmp(&a.suite_run_id))
        });
        Ok(entries)
    }
}
