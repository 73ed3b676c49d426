//! The resilience score of a suite run (0–100): one number for a nightly trend, computed the
//! same way wherever it is shown (`producer status`, reports, "Suite Completed", `producer
//! history`). Pure.
//!
//! The formula (docs/reports.md says it for users):
//!
//! ```text
//! score = floor(100 × held / (held + deviated + not_run + 2 × failed))
//! ```
//!
//! - `held`: experiments that completed with their steady state held (the only credit);
//! - `deviated`: completed, but the hypothesis did not hold;
//! - `not_run`: jobs that never ran because the suite halted before their wave (untested is
//!   not proven);
//! - `failed`: runs that failed, aborted (a guard rail refused a fault: the run is aborted),
//!   were interrupted (kill switch, stop condition, signal) or never started (dead-lettered,
//!   unreadable): they count twice, since they tell nothing about the system and cost a
//!   tested experiment.
//!
//! Floored, so 100 means every experiment held. A rejected suite (invalid, it never ran)
//! scores 0; a running one, or one with no job, has no score yet.

use crate::fleet::outcome::{JobOutcome, SuiteStatus};

/// How the jobs of a suite run ended, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub held: u32,
    pub deviated: u32,
    pub failed: u32,
    pub not_run: u32,
}

impl Tally {
    /// Count outcomes: `None` is a job that has not run.
    pub fn of(outcomes: impl IntoIterator<Item = Option<JobOutcome>>) -> Tally {
        let mut t = Tally::default();
        for o in outcomes {
            let slot = match o {
                Some(JobOutcome::Held) => &mut t.held,
                Some(JobOutcome::Deviated) => &mut t.deviated,
                Some(JobOutcome::Failed) => &mut t.failed,
                None => &mut t.not_run,
            };
            *slot = slot.saturating_add(1);
        }
        t
    }

    /// Jobs counted.
    pub fn jobs(&self) -> u64 {
        u64::from(self.held)
            + u64::from(self.deviated)
            + u64::from(self.failed)
            + u64::from(self.not_run)
    }

    /// The score of these jobs, ended (see the module's formula); `None` when there is none.
    pub fn score(&self) -> Option<u8> {
        let weight = u64::from(self.held)
            + u64::from(self.deviated)
            + u64::from(self.not_run)
            + 2 * u64::from(self.failed);
        if weight == 0 {
            return None;
        }
        // at most 100: held <= weight
        Some((100 * u64::from(self.held) / weight) as u8)
    }

    /// How the score was made, for people: `4 held, 1 deviated, 1 failed (×2), 2 not run`.
    pub fn explain(&self) -> String {
        let mut parts = vec![format!("{} held", self.held)];
        if self.deviated > 0 {
            parts.push(format!("{} deviated", self.deviated));
        }
        if self.failed > 0 {
            parts.push(format!("{} failed (counts twice)", self.failed));
        }
        if self.not_run > 0 {
            parts.push(format!("{} not run", self.not_run));
        }
        parts.join(", ")
    }
}

/// The score of a suite run that stands at `status` with these jobs: `None` while it runs
/// (or when it has no job), 0 when it was rejected.
pub fn suite_score(status: SuiteStatus, tally: &Tally) -> Option<u8> {
    match status {
        SuiteStatus::Running => None,
        SuiteStatus::Rejected => Some(0),
        SuiteStatus::Completed | SuiteStatus::Halted | SuiteStatus::Interrupted => tally.score(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(held: u32, deviated: u32, failed: u32, not_run: u32) -> Tally {
        Tally {
            held,
            deviated,
            failed,
            not_run,
        }
    }

    #[test]
    fn the_score_follows_the_documented_formula() {
        for (tally, expected) in [
            (t(0, 0, 0, 0), None),
            (t(1, 0, 0, 0), Some(100)),
            (t(10, 0, 0, 0), Some(100)),
            (t(0, 1, 0, 0), Some(0)),
            (t(0, 0, 1, 0), Some(0)),
            (t(0, 0, 0, 1), Some(0)),
            (t(1, 1, 0, 0), Some(50)),
            (t(3, 1, 0, 0), Some(75)),
            // a failure weighs twice a deviation
            (t(2, 0, 1, 0), Some(50)),
            (t(2, 1, 0, 0), Some(66)),
            (t(1, 0, 1, 0), Some(33)),
            // untested is not proven
            (t(1, 0, 0, 1), Some(50)),
            (t(1, 1, 1, 1), Some(20)),
            (t(5, 2, 1, 2), Some(45)),
            // floored: 100 only when every experiment held
            (t(199, 1, 0, 0), Some(99)),
            (t(999, 0, 0, 1), Some(99)),
            (t(1, 0, 0, 999), Some(0)),
            (t(u32::MAX, 0, 0, 0), Some(100)),
            (t(u32::MAX, 0, u32::MAX, 0), Some(33)),
            (t(u32::MAX, u32::MAX, u32::MAX, u32::MAX), Some(20)),
        ] {
            assert_eq!(tally.score(), expected, "{tally:?}");
        }
    }

    #[test]
    fn every_mix_of_up_to_four_jobs_scores_within_0_to_100_and_more_held_never_scores_less() {
        for h in 0..=4 {
            for d in 0..=4 {
                for f in 0..=4 {
                    for n in 0..=4 {
                        let Some(s) = t(h, d, f, n).score() else {
                            assert_eq!((h, d, f, n), (0, 0, 0, 0));
                            continue;
                        };
                        assert!(s <= 100);
                        assert_eq!(s == 100, d + f + n == 0, "{h} {d} {f} {n}: {s}");
                        // turning one deviated, failed or not-run job into a held one raises it
                        for better in [
                            (d > 0).then(|| t(h + 1, d - 1, f, n)),
                            (f > 0).then(|| t(h + 1, d, f - 1, n)),
                            (n > 0).then(|| t(h + 1, d, f, n - 1)),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            assert!(better.score() > Some(s), "{better:?} vs {h} {d} {f} {n}");
                        }
                        // a failure never scores above a deviation in its place
                        if f > 0 {
                            assert!(t(h, d + 1, f - 1, n).score() >= Some(s));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_suite_scores_once_it_ended_and_a_rejected_one_scores_0() {
        let some = t(3, 1, 0, 0);
        for (status, tally, expected) in [
            (SuiteStatus::Running, some, None),
            (SuiteStatus::Completed, some, Some(75)),
            (SuiteStatus::Halted, some, Some(75)),
            (SuiteStatus::Rejected, t(0, 0, 0, 0), Some(0)),
            (SuiteStatus::Rejected, some, Some(0)),
            (SuiteStatus::Completed, t(0, 0, 0, 0), None),
        ] {
            assert_eq!(suite_score(status, &tally), expected, "{status} {tally:?}");
        }
    }

    #[test]
    fn outcomes_are_counted_and_explained() {
        let tally = Tally::of([
            Some(JobOutcome::Held),
            Some(JobOutcome::Held),
            Some(JobOutcome::Deviated),
            Some(JobOutcome::Failed),
            None,
        ]);
        assert_eq!(tally, t(2, 1, 1, 1));
        assert_eq!(tally.jobs(), 5);
        assert_eq!(
            tally.explain(),
            "2 held, 1 deviated, 1 failed (counts twice), 1 not run"
        );
        assert_eq!(t(3, 0, 0, 0).explain(), "3 held");
    }
}
