//! Where a suite run stands, in the store: a small document of counts (`state.json`, saved
//! at most once per batch of events, when the gate moved; its size independent of the
//! suite's) and one record per
//! completion (`completions/<run id>.json`, written once per run id), so handling a completion
//! costs the same in a suite of 10 jobs as in one of 100,000.

use super::plan::Plan;
use super::{ProducerError, ProducerPorts};
use crate::fleet::keys::SuiteRunKeys;
use crate::fleet::outcome::{JobOutcome, SuiteOutcome, SuiteStatus};
use crate::model::Status;
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::{ObjectStore, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a suite run stands: counts, never lists of jobs. The completion records are the
/// truth; a producer that restarts recounts them (see `view`), so counts saved before a crash
/// are only ever behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: SuiteStatus,
    pub current_wave: usize,
    /// How many jobs of the current wave were sent to the jobs queue: its first `released`,
    /// in plan order (the waves before it were sent whole).
    #[serde(default)]
    pub released: usize,
    /// The worst outcome of the waves before the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier_worst: Option<JobOutcome>,
    /// Completions counted, all waves.
    #[serde(default)]
    pub completed: usize,
    /// How the jobs of the settled waves ended (the waves before the current one; every wave
    /// once the suite run ended): the resilience score's counts.
    #[serde(default)]
    pub settled: Outcomes,
    /// Once the suite ended: the worst of its jobs' outcomes; `invalid` when it was rejected.
    pub outcome: Option<SuiteOutcome>,
    /// Why a triggered suite was rejected (status `rejected`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
    /// When the suite run ended (the producer's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
}

/// Jobs counted by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    pub held: u32,
    pub deviated: u32,
    pub failed: u32,
}

impl Outcomes {
    /// Count one job that ended with `outcome`.
    pub fn add(&mut self, outcome: JobOutcome) {
        let slot = match outcome {
            JobOutcome::Held => &mut self.held,
            JobOutcome::Deviated => &mut self.deviated,
            JobOutcome::Failed => &mut self.failed,
        };
        *slot = slot.saturating_add(1);
    }

    /// Both counts together.
    pub fn plus(self, other: Outcomes) -> Outcomes {
        Outcomes {
            held: self.held.saturating_add(other.held),
            deviated: self.deviated.saturating_add(other.deviated),
            failed: self.failed.saturating_add(other.failed),
        }
    }

    /// Jobs counted.
    pub fn total(&self) -> u64 {
        u64::from(self.held) + u64::from(self.deviated) + u64::from(self.failed)
    }
}

/// One job's completion, as recorded under `completions/<run id>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    /// The journal's status.
    pub status: Status,
    pub deviated: bool,
    pub journal_key: String,
    /// The journal's start and end, and its duration in seconds (from the completion event;
    /// absent for a dead-lettered job and for events of workers that do not send them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// The experiment's title, from the event (status shows it without reading journals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

impl Completion {
    /// A completion with no timings.
    pub fn new(status: Status, deviated: bool, journal_key: String) -> Completion {
        Completion {
            status,
            deviated,
            journal_key,
            start: None,
            end: None,
            duration: None,
            title: None,
        }
    }

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
            released: 0,
            earlier_worst: None,
            completed: 0,
            settled: Outcomes::default(),
            outcome: None,
            problems: Vec::new(),
            ended: None,
        }
    }

    /// Whether job `index` of wave `wave` was sent to the jobs queue.
    pub fn was_released(&self, wave: usize, index: usize) -> bool {
        wave < self.current_wave || (wave == self.current_wave && index < self.released)
    }
}

/// Completion records `completions` reads at once.
const READS_AT_ONCE: usize = 64;

/// The run id a completion record's key names (`SuiteRunKeys::completion`).
pub fn run_id_of(key: &str) -> Option<&str> {
    key.rsplit('/').next()?.strip_suffix(".json")
}

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// The plan and the saved state of suite run `id`, as stored.
    pub async fn load(&self, id: &str) -> Result<(Plan, State), ProducerError> {
        let plan: Plan = self
            .get_json(&SuiteRunKeys::new(id).plan())
            .await?
            .ok_or_else(|| ProducerError::NoSuiteRun { id: id.to_string() })?;
        let state = self.load_state(id).await?;
        Ok((plan, state))
    }

    /// The saved state of suite run `id` alone (a small document, whatever the suite's size).
    pub async fn load_state(&self, id: &str) -> Result<State, ProducerError> {
        self.get_json(&SuiteRunKeys::new(id).state())
            .await?
            .ok_or_else(|| ProducerError::NoState { id: id.to_string() })
    }

    /// The run ids whose completion is recorded for suite run `id` (one listing).
    pub async fn recorded(&self, id: &str) -> Result<Vec<String>, ProducerError> {
        let prefix = SuiteRunKeys::new(id).completions();
        let keys = self.store.list(&prefix).await?;
        Ok(keys
            .iter()
            .filter_map(|k| run_id_of(k).map(str::to_string))
            .collect())
    }

    /// Every completion recorded for suite run `id`, by run id: one listing, then the records
    /// read `READS_AT_ONCE` at a time (on S3 each is a request: 10,000 of them one after the
    /// other would take minutes).
    pub async fn completions(&self, id: &str) -> Result<BTreeMap<String, Completion>, ProducerError>
    where
        S: Clone + 'static,
    {
        let keys = SuiteRunKeys::new(id);
        let mut out = BTreeMap::new();
        let recorded = self.recorded(id).await?;
        for chunk in recorded.chunks(READS_AT_ONCE) {
            let mut reads = tokio::task::JoinSet::new();
            for run_id in chunk {
                let (store, key, run_id) =
                    (self.store.clone(), keys.completion(run_id), run_id.clone());
                reads.spawn(async move { (run_id, key.clone(), store.get(&key).await) });
            }
            while let Some(read) = reads.join_next().await {
                let Ok((run_id, key, got)) = read else {
                    continue; // a read that panicked: that job shows as not completed
                };
                if let Some(bytes) = got? {
                    let c = serde_json::from_slice(&bytes)
                        .map_err(|source| ProducerError::Json { key, source })?;
                    out.insert(run_id, c);
                }
            }
        }
        Ok(out)
    }

    /// Run `run_id`'s completion record in suite run `id`, if there is one.
    pub async fn completion(
        &self,
        id: &str,
        run_id: &str,
    ) -> Result<Option<Completion>, ProducerError> {
        self.get_json(&SuiteRunKeys::new(id).completion(run_id))
            .await
    }

    /// Record run `run_id`'s completion: a conditional create keyed by run id, so the first
    /// completion recorded stands (a record already there is one a producer wrote before a
    /// crash, or the answer to our own create that was lost).
    pub(super) async fn record(
        &self,
        id: &str,
        run_id: &str,
        completion: &Completion,
    ) -> Result<(), ProducerError> {
        let key = SuiteRunKeys::new(id).completion(run_id);
        let bytes = serde_json::to_vec(completion).map_err(|source| ProducerError::Json {
            key: key.clone(),
            source,
        })?;
        match self.store.put_if_absent(&key, &bytes).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_key_names_its_run() {
        let keys = SuiteRunKeys::new("sr-1");
        assert_eq!(run_id_of(&keys.completion("w3-j17")), Some("w3-j17"));
        assert_eq!(run_id_of("suite-runs/sr-1/completions/x"), None);
    }

    #[test]
    fn the_state_document_is_the_same_size_whatever_the_suite() {
        let mut small = State::running();
        small.completed = 3;
        let mut large = State::running();
        large.completed = 99_999;
        large.released = 99_999;
        let size = |s: &State| serde_json::to_vec(s).unwrap().len();
        assert!(size(&large) <= size(&small) + 10, "counts, not lists");
    }
}
