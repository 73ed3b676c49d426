//! Ending a suite run its operator stopped (`producer run` and Ctrl-C): once its workers have
//! interrupted their jobs and written their journals, the run is marked `interrupted`, with
//! the completions those journals say recorded, and "Suite Completed" says so.

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
    /// sent but not yet recorded are recorded as they say (an interrupted job is `failed`); its
    /// outcome is `failed`. `Ok(false)`: it had ended before.
    pub async fn interrupt(&self, id: &str) -> Result<bool, ProducerError> {
        let Some(mut view) = self.take_view(id).await? else {
            return Ok(false); // ended before (a late event)
        };
        let withdrawn = self.withdraw_queued(id).await?;
        if withdrawn > 0 {
            tracing::info!("suite run {id}: {withdrawn} queued jobs withdrawn, never to run");
        }
        let plan = view.plan.clone();
        for (w, wave) in plan.waves.iter().enumerate().filter(|(_, w)| !w.skipped) {
            for (i, job) in wave.jobs.iter().enumerate() {
                if !view.state.was_released(w, i) || view.counted(&job.run_id) {
                    continue;
                }
                let key = RunKeys::of(job).journal();
                let Some(bytes) = self.store.get(&key).await? else {
                    continue;
                };
                // a journal that does not read counts as a failed run
                let journal = serde_json::from_slice::<Journal>(&bytes).ok();
                let completion = Completion {
                    status: journal
                        .as_ref()
                        .and_then(|j| j.status)
                        .unwrap_or(crate::model::Status::Failed),
                    deviated: journal.as_ref().is_some_and(|j| j.deviated),
                    journal_key: key,
                    start: journal.as_ref().map(|j| j.start.clone()),
                    end: journal.as_ref().and_then(|j| j.end.clone()),
                    duration: journal.as_ref().and_then(|j| j.duration),
                    title: journal.as_ref().and_then(crate::model::journal_title),
                };
                self.record(id, &job.run_id, &completion).await?;
                view.count(&job.run_id, w, Some(completion.outcome()));
            }
        }
        view.settle_rest();
        let state = &mut view.state;
        // a suite that did not run to its end did not hold, whatever its finished jobs say
        let outcome = SuiteOutcome::Failed;
        state.status = SuiteStatus::Interrupted;
        state.outcome = Some(outcome);
        state.ended = Some(crate::clock::now_iso());
        self.put_json(&SuiteRunKeys::new(id).state(), &*state)
            .await?;
        self.views.ended(id);
        self.index(&plan, state).await;
        self.event(Detail::SuiteCompleted(SuiteCompleted {
            suite_run_id: id.to_string(),
            name: plan.name.clone(),
            status: SuiteStatus::Interrupted,
            outcome,
            problems: None,
            score: super::history::score(&plan, state),
            skipped: plan.skipped(),
        }))
        .await?;
        Ok(true)
    }

    /// Delete the jobs of suite run `id` still waiting in the jobs queue, so that no worker
    /// started later on the same queue runs a job of a suite its operator stopped; other
    /// messages are leased while looking and then made visible again. For a queue this process
    /// alone serves (`producer run`'s, once its workers stopped): a short receive that comes
    /// back empty means nothing is left. Returns how many were withdrawn.
    async fn withdraw_queued(&self, id: &str) -> Result<usize, ProducerError> {
        const LOOK: std::time::Duration = std::time::Duration::from_secs(30);
        let (mut withdrawn, mut others) = (0, Vec::new());
        loop {
            let batch = self
                .jobs
                .receive(10, LOOK, std::time::Duration::ZERO)
                .await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                match crate::model::suite::Job::from_message(&m.body) {
                    Ok(job) if job.suite_run_id == id => {
                        self.jobs.ack(&m.receipt).await?;
                        withdrawn += 1;
                    }
                    _ => others.push(m.receipt),
                }
            }
        }
        for receipt in others {
            self.jobs
                .extend(&receipt, std::time::Duration::ZERO)
                .await?;
        }
        Ok(withdrawn)
    }
}
