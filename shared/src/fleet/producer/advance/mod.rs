//! Completions move a suite run on: each is recorded once per run id, then the pure gate
//! (`gate::decide`) says whether to wait, release the next wave, or end the suite.

pub mod gate;

#[cfg(test)]
mod tests;

use super::plan::Plan;
use super::state::{Completion, State};
use super::{ProducerError, ProducerPorts};
use crate::fleet::events::{CompletedRun, Detail, DetailType, SuiteCompleted, WaveReleased};
use crate::fleet::keys::SuiteRunKeys;
use crate::fleet::outcome::SuiteStatus;
use crate::model::suite::Job;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use crate::ports::{Event, EventBus};
use gate::{Decision, JobOutcome, decide};
use std::collections::BTreeMap;

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Handle one event from the events queue; `Ok(Some(id))` when it ended suite run `id`.
    pub async fn on_event(&self, event: &Event) -> Result<Option<String>, ProducerError> {
        if DetailType::of(event) != Some(DetailType::ExperimentCompleted) {
            return Ok(None);
        }
        let Some(run) = CompletedRun::read(&event.detail) else {
            return Ok(None);
        };
        if run.suite_run_id.is_empty() {
            return Ok(None); // a malformed job's event belongs to no suite
        }
        let completion = Completion {
            status: run.status,
            deviated: run.deviated,
            journal_key: run.journal_key,
        };
        self.complete(&run.suite_run_id, &run.run_id, completion)
            .await
    }

    /// Record a completion and move the suite on.
    pub async fn complete(
        &self,
        id: &str,
        run_id: &str,
        completion: Completion,
    ) -> Result<Option<String>, ProducerError> {
        let (plan, mut state) = self.load(id).await?;
        if state.status != SuiteStatus::Running || state.completions.contains_key(run_id) {
            return Ok(None); // duplicate, or late for an ended suite
        }
        state.completions.insert(run_id.to_string(), completion);
        let ended = self.advance(&plan, &mut state).await?;
        self.put_json(&SuiteRunKeys::new(id).state(), &state)
            .await?;
        Ok(ended.then(|| id.to_string()))
    }

    /// Apply the gate until nothing changes; true when the suite ended. A skipped wave (a
    /// seed payload's `completed` item) is passed over as held, never released.
    pub(super) async fn advance(
        &self,
        plan: &Plan,
        state: &mut State,
    ) -> Result<bool, ProducerError> {
        loop {
            let w = state.current_wave;
            let wave = &plan.waves[w];
            if wave.skipped {
                if w + 1 == plan.waves.len() {
                    let earlier = plan.waves[..w]
                        .iter()
                        .flat_map(|pw| pw.jobs.iter())
                        .filter_map(|j| state.completions.get(&j.run_id))
                        .map(Completion::outcome)
                        .max()
                        .unwrap_or(JobOutcome::Held);
                    return self
                        .finish(plan, state, SuiteStatus::Completed, earlier)
                        .await;
                }
                state.current_wave = w + 1;
                continue;
            }
            let ids: Vec<String> = wave.jobs.iter().map(|j| j.run_id.clone()).collect();
            let outcomes: BTreeMap<String, JobOutcome> = state
                .completions
                .iter()
                .map(|(k, c)| (k.clone(), c.outcome()))
                .collect();
            let earlier = plan.waves[..w]
                .iter()
                .flat_map(|pw| pw.jobs.iter())
                .filter_map(|j| outcomes.get(&j.run_id).copied())
                .max();
            match decide(
                &ids,
                &outcomes,
                wave.on_failure,
                w + 1 == plan.waves.len(),
                earlier,
            ) {
                Decision::Wait { .. } => {
                    self.release(plan, state, w).await?;
                    return Ok(false);
                }
                Decision::ReleaseNext => {
                    state.current_wave = w + 1;
                    self.release(plan, state, w + 1).await?;
                }
                Decision::Complete(o) => {
                    return self.finish(plan, state, SuiteStatus::Completed, o).await;
                }
                Decision::Halt(o) => return self.finish(plan, state, SuiteStatus::Halted, o).await,
            }
        }
    }

    /// End the suite run and say so on the bus.
    async fn finish(
        &self,
        plan: &Plan,
        state: &mut State,
        status: SuiteStatus,
        worst: JobOutcome,
    ) -> Result<bool, ProducerError> {
        state.status = status;
        let outcome = worst.into();
        state.outcome = Some(outcome);
        self.index(plan, state).await;
        self.event(Detail::SuiteCompleted(SuiteCompleted {
            suite_run_id: plan.suite_run_id.clone(),
            name: plan.name.clone(),
            status,
            outcome,
            problems: None,
            score: super::history::score(plan, state),
            skipped: plan.skipped(),
        }))
        .await?;
        Ok(true)
    }

    /// Enqueue the jobs of wave `w` not sent yet, up to its `max_parallel` in flight.
    pub(super) async fn release(
        &self,
        plan: &Plan,
        state: &mut State,
        w: usize,
    ) -> Result<(), ProducerError> {
        let wave = &plan.waves[w];
        let in_flight = wave
            .jobs
            .iter()
            .filter(|j| {
                state.enqueued.contains(&j.run_id) && !state.completions.contains_key(&j.run_id)
            })
            .count();
        let room = wave
            .max_parallel
            .map_or(usize::MAX, |m| (m as usize).saturating_sub(in_flight));
        let first_release = !wave.jobs.iter().any(|j| state.enqueued.contains(&j.run_id));
        let batch: Vec<&Job> = wave
            .jobs
            .iter()
            .filter(|j| !state.enqueued.contains(&j.run_id))
            .take(room)
            .collect();
        if batch.is_empty() {
            return Ok(());
        }
        for chunk in batch.chunks(10) {
            let bodies: Vec<String> = chunk
                .iter()
                .map(|j| serde_json::to_string(j).unwrap_or_default())
                .collect();
            self.jobs.send_batch(&bodies).await?;
            state
                .enqueued
                .extend(chunk.iter().map(|j| j.run_id.clone()));
        }
        if first_release {
            self.event(Detail::WaveReleased(WaveReleased {
                suite_run_id: plan.suite_run_id.clone(),
                wave: w,
                jobs: wave.jobs.len(),
            }))
            .await?;
        }
        Ok(())
    }
}
