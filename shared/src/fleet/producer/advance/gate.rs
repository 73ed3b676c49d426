//! Wave gating: given a wave's jobs and the completions seen so far, what happens next.
//!
//! Pure and total: completions are keyed by run id, so a duplicate event counts once and an
//! event for a run outside the wave counts not at all; the order events arrive in never
//! matters. The producer keeps a tally per wave (`decide_counts`) and persists what it decided,
//! so a restart decides the same way.

pub use crate::fleet::outcome::JobOutcome;
use crate::model::suite::OnFailure;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Some jobs of the wave have not completed yet.
    Wait { pending: usize },
    /// The wave is done and the next one may start.
    ReleaseNext,
    /// The last wave is done: the suite completed (the worst outcome of its jobs).
    Complete(JobOutcome),
    /// The wave is done, something failed or deviated, and its policy is `stop`.
    Halt(JobOutcome),
}

/// Decide for the current wave from the completions of its jobs, keyed by run id.
pub fn decide(
    wave_run_ids: &[String],
    completions: &BTreeMap<String, JobOutcome>,
    on_failure: OnFailure,
    is_last_wave: bool,
    earlier: Option<JobOutcome>,
) -> Decision {
    let outcomes: Vec<JobOutcome> = wave_run_ids
        .iter()
        .filter_map(|id| completions.get(id).copied())
        .collect();
    let worst = outcomes.iter().copied().max();
    decide_counts(
        wave_run_ids.len(),
        outcomes.len(),
        worst,
        on_failure,
        is_last_wave,
        earlier,
    )
}

/// Decide for the current wave from its tally: `completed` of its `size` jobs counted (each
/// once, by run id), the worst of their outcomes so far.
pub fn decide_counts(
    size: usize,
    completed: usize,
    wave_worst: Option<JobOutcome>,
    on_failure: OnFailure,
    is_last_wave: bool,
    earlier: Option<JobOutcome>,
) -> Decision {
    let pending = size.saturating_sub(completed);
    if pending > 0 {
        return Decision::Wait { pending };
    }
    let wave_worst = wave_worst.unwrap_or(JobOutcome::Held);
    let worst = earlier.map_or(wave_worst, |e| e.max(wave_worst));
    if wave_worst != JobOutcome::Held && on_failure == OnFailure::Stop && !is_last_wave {
        return Decision::Halt(worst);
    }
    if is_last_wave {
        Decision::Complete(worst)
    } else {
        Decision::ReleaseNext
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Journal, Status};
    use JobOutcome::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("r{i}")).collect()
    }

    fn done(pairs: &[(&str, JobOutcome)]) -> BTreeMap<String, JobOutcome> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn waits_until_every_job_of_the_wave_completed() {
        let c = done(&[("r0", Held), ("elsewhere", Held)]);
        assert_eq!(
            decide(&ids(3), &c, OnFailure::Stop, false, None),
            Decision::Wait { pending: 2 }
        );
    }

    #[test]
    fn duplicates_and_order_do_not_matter() {
        let a = done(&[("r1", Held), ("r0", Held), ("r1", Held)]);
        let b = done(&[("r0", Held), ("r1", Held)]);
        assert_eq!(
            decide(&ids(2), &a, OnFailure::Stop, false, None),
            decide(&ids(2), &b, OnFailure::Stop, false, None)
        );
    }

    #[test]
    fn exhaustive_policy_table() {
        for on_failure in [OnFailure::Continue, OnFailure::Stop] {
            for last in [false, true] {
                for earlier in [None, Some(Held), Some(Deviated), Some(Failed)] {
                    for outcomes in [
                        [Held, Held],
                        [Held, Deviated],
                        [Deviated, Failed],
                        [Failed, Failed],
                    ] {
                        let c = done(&[("r0", outcomes[0]), ("r1", outcomes[1])]);
                        let wave_worst = outcomes[0].max(outcomes[1]);
                        let worst = earlier.map_or(wave_worst, |e| e.max(wave_worst));
                        let expected =
                            if wave_worst != Held && on_failure == OnFailure::Stop && !last {
                                Decision::Halt(worst)
                            } else if last {
                                Decision::Complete(worst)
                            } else {
                                Decision::ReleaseNext
                            };
                        assert_eq!(
                            decide(&ids(2), &c, on_failure, last, earlier),
                            expected,
                            "{on_failure:?} last={last} earlier={earlier:?} {outcomes:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn outcomes_from_journals() {
        let mut j: Journal = serde_json::from_value(serde_json::json!({
            "chaoslib-version": "x", "platform": "p", "node": "n", "experiment": {}, "start": "s",
            "status": "completed", "deviated": false,
            "steady_states": {"before": null, "after": null, "during": []}, "run": [], "rollbacks": []
        }))
        .unwrap();
        assert_eq!(JobOutcome::of(&j), Held);
        j.deviated = true;
        assert_eq!(JobOutcome::of(&j), Deviated);
        for status in [Status::Failed, Status::Aborted, Status::Interrupted] {
            j.status = Some(status);
            assert_eq!(JobOutcome::of(&j), Failed);
        }
    }
}
