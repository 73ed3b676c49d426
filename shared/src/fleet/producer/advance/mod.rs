//! Completions move a suite run on: a batch of them is counted (once per run id) in the
//! in-memory view, the pure gate (`gate::decide_counts`) says whether to wait, release the next
//! wave, or end the suite, then the completions are recorded and the state saved (once for the
//! batch, and only when the gate moved).

pub mod gate;

#[cfg(test)]
mod tests;

use super::plan::Plan;
use super::state::{Completion, State};
use super::view::View;
use super::{ProducerError, ProducerPorts};
use crate::clock::now_iso;
use crate::fleet::events::{CompletedRun, Detail, DetailType, SuiteCompleted, WaveReleased};
use crate::fleet::keys::SuiteRunKeys;
use crate::fleet::outcome::SuiteStatus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use crate::ports::{Event, EventBus};
use gate::{Decision, JobOutcome, decide_counts};
use std::sync::Arc;

/// Jobs per `send_batch` call when a wave is released (the SQS adapter sends them 10 at a time).
const SEND_CHUNK: usize = 500;

/// An "Experiment Completed" event read for the producer: suite run, run id, completion.
pub fn completion_of(event: &Event) -> Option<(String, String, Completion)> {
    if DetailType::of(event) != Some(DetailType::ExperimentCompleted) {
        return None;
    }
    let run = CompletedRun::read(&event.detail)?;
    if run.suite_run_id.is_empty() {
        return None; // a malformed job's event belongs to no suite
    }
    let completion = Completion {
        status: run.status,
        deviated: run.deviated,
        journal_key: run.journal_key,
        start: run.start,
        end: run.end,
        duration: run.duration,
        title: run.title,
    };
    Some((run.suite_run_id, run.run_id, completion))
}

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Handle one event from the events queue; `Ok(Some(id))` when it ended suite run `id`.
    pub async fn on_event(&self, event: &Event) -> Result<Option<String>, ProducerError> {
        match completion_of(event) {
            Some((id, run_id, completion)) => self.complete(&id, &run_id, completion).await,
            None => Ok(None),
        }
    }

    /// Record a completion and move the suite on.
    pub async fn complete(
        &self,
        id: &str,
        run_id: &str,
        completion: Completion,
    ) -> Result<Option<String>, ProducerError> {
        let ended = self
            .complete_many(id, vec![(run_id.to_string(), completion)])
            .await?;
        Ok(ended.then(|| id.to_string()))
    }

    /// Record a batch of completions of suite run `id`, move the suite on and save its state
    /// once; true when the suite ended. A run id counted before changes nothing (nothing is
    /// written); one outside the plan is ignored.
    pub async fn complete_many(
        &self,
        id: &str,
        completions: Vec<(String, Completion)>,
    ) -> Result<bool, ProducerError> {
        let Some(mut view) = self.take_view(id).await? else {
            return Ok(false); // ended before (a late event)
        };
        // on failure the view is dropped: the next event rebuilds it from the store, where the
        // completion records are the truth
        let ended = self.apply(id, &mut view, completions).await?;
        self.views.put(id, view);
        Ok(ended)
    }

    async fn apply(
        &self,
        id: &str,
        view: &mut View,
        completions: Vec<(String, Completion)>,
    ) -> Result<bool, ProducerError> {
        let mut new = Vec::new();
        for (run_id, completion) in completions {
            if view.counted(&run_id) {
                continue; // a duplicate
            }
            let Some(w) = view.wave_of(&run_id) else {
                tracing::warn!(
                    "suite run {id}: a completion for {run_id}, which is not in its plan, ignored"
                );
                continue;
            };
            if view.count(&run_id, w, Some(completion.outcome())) {
                new.push((run_id, completion));
            }
        }
        if new.is_empty() {
            return Ok(false);
        }
        // the next wave is released first (the gating latency is the producer's wake-up and a
        // send), then the records and the state are written, all before the events are acked.
        // A crash in between leaves the events unacked: they come back to a view rebuilt from
        // the store, which counts them again and may send the released jobs again; a second
        // copy of a job is dropped by the worker that finds the first one's `started` marker.
        let before = view.state.clone();
        let ended = self.advance(view).await?;
        for (run_id, completion) in &new {
            self.record(id, run_id, completion).await?;
        }
        // the state is saved when the gate moved (a release, a wave, the end); counts alone are
        // in the records, which a restart recounts, so a batch that only counted writes none
        let moved = State {
            completed: before.completed,
            ..view.state.clone()
        } != before;
        if moved {
            self.put_json(&SuiteRunKeys::new(id).state(), &view.state)
                .await?;
        }
        Ok(ended)
    }

    /// Apply the gate until nothing changes; true when the suite ended. A skipped wave (a
    /// seed payload's `completed` item) is passed over as held, never released; a skipped
    /// last wave ends the suite with the worst outcome of the waves before it (held if none).
    async fn advance(&self, view: &mut View) -> Result<bool, ProducerError> {
        let plan = view.plan.clone();
        loop {
            let w = view.state.current_wave;
            let wave = &plan.waves[w];
            if wave.skipped {
                if w + 1 == plan.waves.len() {
                    view.settle_rest();
                    let earlier = view.state.earlier_worst.unwrap_or(JobOutcome::Held);
                    return self
                        .finish(&plan, &mut view.state, SuiteStatus::Completed, earlier)
                        .await;
                }
                view.state.current_wave = w + 1;
                view.state.released = 0;
                continue;
            }
            let tally = view.tallies[w];
            match decide_counts(
                wave.jobs.len(),
                tally.completed,
                tally.worst,
                wave.on_failure,
                w + 1 == plan.waves.len(),
                view.state.earlier_worst,
            ) {
                Decision::Wait { .. } => {
                    self.release(&plan, &mut view.state, tally.completed)
                        .await?;
                    return Ok(false);
                }
                Decision::ReleaseNext => {
                    view.settle(w);
                    let state = &mut view.state;
                    state.earlier_worst = state.earlier_worst.max(tally.worst);
                    state.current_wave = w + 1;
                    state.released = 0;
                    let done = view.tallies[w + 1].completed;
                    self.release(&plan, &mut view.state, done).await?;
                }
                Decision::Complete(o) => {
                    view.settle_rest();
                    return self
                        .finish(&plan, &mut view.state, SuiteStatus::Completed, o)
                        .await;
                }
                Decision::Halt(o) => {
                    view.settle_rest();
                    return self
                        .finish(&plan, &mut view.state, SuiteStatus::Halted, o)
                        .await;
                }
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
        state.ended = Some(now_iso());
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

    /// Enqueue the jobs of the current wave not sent yet, up to its `max_parallel` in flight
    /// (`completed`: how many of the wave's jobs completed).
    pub(super) async fn release(
        &self,
        plan: &Plan,
        state: &mut State,
        completed: usize,
    ) -> Result<(), ProducerError> {
        let w = state.current_wave;
        let wave = &plan.waves[w];
        let in_flight = state.released.saturating_sub(completed);
        let room = wave
            .max_parallel
            .map_or(usize::MAX, |m| (m as usize).saturating_sub(in_flight));
        let first_release = state.released == 0;
        let from = state.released.min(wave.jobs.len());
        let to = from.saturating_add(room).min(wave.jobs.len());
        if from == to {
            return Ok(());
        }
        for chunk in wave.jobs[from..to].chunks(SEND_CHUNK) {
            let bodies: Vec<String> = chunk
                .iter()
                .map(|j| serde_json::to_string(j).unwrap_or_default())
                .collect();
            self.jobs.send_batch(&bodies).await?;
            state.released += chunk.len();
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

    /// Start a stored plan: its first wave to run is released (past skipped ones; a plan of
    /// skipped waves only ends here). The view is kept (saves reading back what was just
    /// written); the state is returned for the caller to save.
    pub(super) async fn begin(&self, plan: &Plan) -> Result<State, ProducerError> {
        let mut view = View::new(Arc::new(plan.clone()), State::running());
        self.advance(&mut view).await?;
        let state = view.state.clone();
        self.views.put(&plan.suite_run_id, view);
        Ok(state)
    }
}
