//! The producer's in-memory view of the suite runs it serves: the plan (immutable: read once),
//! the saved state, the run ids already counted and each wave's tally. Built from the store the
//! first time a suite run is touched, which is how a restarted producer resumes (the plan, the
//! state, one listing of the completion records, one read of each record of the current wave
//! on), then kept up to date as completions come in, so a completion costs the same whatever
//! the suite's size.

use super::plan::Plan;
use super::state::{Completion, Outcomes, State};
use super::{ProducerError, ProducerPorts};
use crate::fleet::keys::SuiteRunKeys;
use crate::fleet::outcome::{JobOutcome, SuiteStatus};
use crate::ports::EventBus;
use crate::ports::queue::JobQueue;
use crate::ports::store::ObjectStore;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// One wave's completions so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub completed: usize,
    pub worst: Option<JobOutcome>,
    /// The outcomes counted (not those of a settled wave counted by a rebuilt view: the
    /// state's `settled` has them).
    pub outcomes: Outcomes,
}

/// A running suite run as the producer sees it.
#[derive(Debug)]
pub(super) struct View {
    pub plan: Arc<Plan>,
    pub state: State,
    wave_of: HashMap<String, usize>,
    done: HashSet<String>,
    pub tallies: Vec<Tally>,
}

impl View {
    pub fn new(plan: Arc<Plan>, state: State) -> View {
        let wave_of = plan
            .waves
            .iter()
            .enumerate()
            .flat_map(|(w, wave)| wave.jobs.iter().map(move |j| (j.run_id.clone(), w)))
            .collect();
        let tallies = vec![Tally::default(); plan.waves.len()];
        View {
            plan,
            state,
            wave_of,
            done: HashSet::new(),
            tallies,
        }
    }

    /// The wave of run `run_id`, if it is one of the plan's.
    pub fn wave_of(&self, run_id: &str) -> Option<usize> {
        self.wave_of.get(run_id).copied()
    }

    pub fn counted(&self, run_id: &str) -> bool {
        self.done.contains(run_id)
    }

    /// Count run `run_id` of wave `w` (once: false when it was counted before).
    pub fn count(&mut self, run_id: &str, w: usize, outcome: Option<JobOutcome>) -> bool {
        if !self.done.insert(run_id.to_string()) {
            return false;
        }
        if let Some(t) = self.tallies.get_mut(w) {
            t.completed += 1;
            t.worst = t.worst.max(outcome);
            if let Some(o) = outcome {
                t.outcomes.add(o);
            }
        }
        self.state.completed = self.done.len();
        true
    }

    /// Wave `w` is settled: its outcomes join the state's `settled` counts (once per wave:
    /// when the gate moves past it, or when the suite run ends).
    pub fn settle(&mut self, w: usize) {
        if let Some(t) = self.tallies.get(w) {
            self.state.settled = self.state.settled.plus(t.outcomes);
        }
    }

    /// The suite run ends: the current wave and those after it are settled.
    pub fn settle_rest(&mut self) {
        for w in self.state.current_wave..self.tallies.len() {
            self.settle(w);
        }
    }
}

/// The views of the suite runs a producer serves; `None` for a suite run that ended (a late
/// or duplicate event for it changes nothing and reads nothing). Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Views(Arc<Mutex<HashMap<String, Option<View>>>>);

/// What `take` found.
pub(super) enum Taken {
    Running(Box<View>),
    Ended,
    Unknown,
}

impl Views {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<View>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Take suite run `id`'s view out while it is worked on.
    pub(super) fn take(&self, id: &str) -> Taken {
        let mut map = self.map();
        match map.remove(id) {
            Some(Some(v)) => Taken::Running(Box::new(v)),
            Some(None) => {
                map.insert(id.to_string(), None);
                Taken::Ended
            }
            None => Taken::Unknown,
        }
    }

    /// Put a view back (an ended suite run keeps only that it ended).
    pub(super) fn put(&self, id: &str, view: View) {
        let entry = (view.state.status == SuiteStatus::Running).then_some(view);
        self.map().insert(id.to_string(), entry);
    }

    pub(super) fn ended(&self, id: &str) {
        self.map().insert(id.to_string(), None);
    }

    /// The state of a running suite run this producer holds, as it stands in memory (ahead of
    /// the stored one: counts are saved only when the gate moves).
    pub fn state(&self, id: &str) -> Option<State> {
        self.map().get(id)?.as_ref().map(|v| v.state.clone())
    }

    /// Completions counted and the current wave of a running suite run this producer holds.
    pub fn progress(&self, id: &str) -> Option<(usize, usize)> {
        self.map()
            .get(id)?
            .as_ref()
            .map(|v| (v.state.completed, v.state.current_wave))
    }
}

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Take suite run `id`'s view to work on (put it back with `views.put`): the one held, or
    /// one rebuilt from the store; `None` when the suite run has ended (it is then known so).
    pub(super) async fn take_view(&self, id: &str) -> Result<Option<View>, ProducerError> {
        match self.views.take(id) {
            Taken::Running(v) => Ok(Some(*v)),
            Taken::Ended => Ok(None),
            Taken::Unknown => {
                let view = self.build_view(id).await?;
                if view.is_none() {
                    self.views.ended(id);
                }
                Ok(view)
            }
        }
    }

    /// Build suite run `id`'s view from the store: `None` when it is not running.
    pub(super) async fn build_view(&self, id: &str) -> Result<Option<View>, ProducerError> {
        let (plan, state) = self.load(id).await?;
        if state.status != SuiteStatus::Running {
            return Ok(None);
        }
        let mut view = View::new(Arc::new(plan), state);
        let keys = SuiteRunKeys::new(id);
        for run_id in self.recorded(id).await? {
            let Some(w) = view.wave_of(&run_id) else {
                continue;
            };
            if w < view.state.current_wave {
                // settled: its worst is in the state's `earlier_worst`
                view.count(&run_id, w, None);
                continue;
            }
            if let Some(c) = self
                .get_json::<Completion>(&keys.completion(&run_id))
                .await?
            {
                view.count(&run_id, w, Some(c.outcome()));
            }
        }
        Ok(Some(view))
    }
}
