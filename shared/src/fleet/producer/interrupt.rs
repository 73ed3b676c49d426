//! Ending a suite run its operator stopped (`producer run` and Ctrl-C): once its workers have
//! interrupted their jobs and written their journals, the run is marked `interrupted`, with
//! the completions those journals say, and "Suite Completed" says so.

use super::state::Completion;
use super::{ProducerError, ProducerPorts};
use crate::fleet::events::{Detail, SuiteCompleted};
use crate::fleet::keys::{RunKeys, SuiteRunKeys};
use crate::fleet::outcome::{SuiteOutcome, SuiteStatus};
use crate::model::Journal;
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Mark suite run `id` `interrupted` unless it already ended: the journals of its jobs
    /// sent but not yet recorded count as they say (an interrupted job is `failed`); its outcome
    /// is `failed`. `Ok(false)`: it had ended before.
    pub async fn interrupt(&self, id: &str) -> Result<bool, ProducerError> {
        let (plan, mut state) = self.load(id).await?;
        if state.status != SuiteStatus::Running {
            return Ok(false);
        }
        for job in plan.waves.iter().flat_map(|w| w.jobs.iter()) {
            if !state.enqueued.contains(&job.run_id) || state.completions.contains_key(&job.run_id)
            {
                continue;
            }
            let key = RunKeys::of(job).journal();
            let Some(bytes) = self.store.get(&key).await? else {
                continue;
            };
            // a journal that does not read counts as a failed run
            let (status, deviated) = serde_json::from_slice::<Journal>(&bytes)
                .map(|j| (j.status, j.deviated))
                .unwrap_or((None, false));
            state.completions.insert(
                job.run_id.clone(),
                Completion {
                    status: status.unwrap_or(crate::model::Status::Failed),
                    deviated,
                    journal_key: key,
                },
            );
        }
        // a suite that did not run to its end did not hold, whatever its finished jobs say
        let outcome = SuiteOutcome::Failed;
        state.status = SuiteStatus::Interrupted;
        state.outcome = Some(outcome);
        self.put_json(&SuiteRunKeys::new(id).state(), &state)
            .await?;
        self.index(&plan, &state).await;
        self.event(Detail::SuiteCompleted(SuiteCompleted {
            suite_run_id: id.to_string(),
            name: plan.name.clone(),
            status: SuiteStatus::Interrupted,
            outcome,
            problems: None,
            score: super::history::score(&plan, &state),
            skipped: plan.skipped(),
        }))
        .await?;
        Ok(true)
    }
}
