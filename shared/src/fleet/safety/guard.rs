//! Tripwires: what stops a run from outside it. The kill switch (a halt flag) and stop
//! conditions (CloudWatch alarms named by the experiment) are both checks polled while a run
//! goes on; the first one that trips cancels the run's stop token, so the method is cut short
//! and the rollbacks run, exactly as on SIGTERM, and the journal says what tripped.
//!
//! Tripwires fail safe. They are checked once before the run starts: a run that would start
//! under a halt never starts; its journal says so (status `interrupted`, `broker.not_started`),
//! and so does a check that cannot be made (a misnamed alarm, no permission, no answer): a fault
//! must not start unwatched. During the run a check that cannot be made is tolerated for a grace
//! of `unreadable_grace_intervals` reads in a row (the experiment's `experiment-broker`
//! extension, 1 to 10, default 3); the next failure after that trips the run like a halt, and
//! `broker.stopped_by` says the tripwire could not be read for that many intervals. A halt flag
//! whose content is not understood means halted.
//!
//! The broker knows only the `Tripwire` trait; the halt flag in the store lives here
//! (`StoreHalt`), the AWS ones (SSM parameter, CloudWatch alarms) beside the AWS adapters.

use crate::engine::TRACE_EVENT;
use crate::engine::{Observer, RunOptions, run_experiment};
use crate::load::{Problems, Vars};
use crate::model::broker_extension;
use crate::model::{Experiment, Journal, Status};
use crate::ports::{ObjectStore, StoreError};
use crate::providers::Providers;
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub type CheckFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, String>> + Send + 'a>>;

/// A check that may demand a run stop.
pub trait Tripwire: Send + Sync {
    /// Why the run must stop now (`Some(reason)`), or `None`. An `Err` (the check could not be
    /// made) keeps a run from starting, and stops a running one once it has lasted the grace.
    fn check<'a>(&'a self, experiment: &'a Experiment) -> CheckFuture<'a>;
    /// How often to check during this experiment; `None`: this tripwire has nothing to watch.
    fn interval(&self, experiment: &Experiment) -> Option<Duration>;
}

/// The store key of the kill switch.
pub const HALT_KEY: &str = "control/halt";

/// The kill switch as a store object: absent or `{"halted": false}` means running,
/// `{"halted": true}` halted, anything else (see `read_halt_flag`) halted too.
pub struct StoreHalt<S>(pub S);

/// What a halt flag's bytes say. Anything not understood counts as halted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaltFlag {
    /// `{"halted": false, ...}` (as `producer resume` writes it).
    Clear,
    /// `{"halted": true, ...}`, with its `reason` when it is a string.
    Halted(Option<String>),
    /// Anything else: not JSON, not a mapping, no boolean `halted`. Why, for the journal.
    NotUnderstood(String),
}

/// Read a halt flag's content. Pure.
pub fn read_halt_flag(bytes: &[u8]) -> HaltFlag {
    let flag: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(_) if bytes.iter().all(u8::is_ascii_whitespace) => {
            return HaltFlag::NotUnderstood("it is empty".into());
        }
        Err(e) => return HaltFlag::NotUnderstood(format!("it is not JSON: {e}")),
    };
    match flag.get("halted") {
        Some(Value::Bool(false)) => HaltFlag::Clear,
        Some(Value::Bool(true)) => HaltFlag::Halted(flag["reason"].as_str().map(str::to_string)),
        Some(other) => HaltFlag::NotUnderstood(format!("`halted` is {other}, not true or false")),
        None if flag.is_object() => HaltFlag::NotUnderstood("it has no `halted` field".into()),
        None => HaltFlag::NotUnderstood(format!("it is {flag}, not a mapping")),
    }
}

/// Read the halt flag from the store: why the kill switch is on (`Some`), or `None` when it is
/// absent or cleared. Content that is not understood means on.
pub async fn halted<S: ObjectStore>(store: &S) -> Result<Option<String>, HaltError> {
    let Some(bytes) = store
        .get(HALT_KEY)
        .await
        .map_err(|source| HaltError::Read {
            key: HALT_KEY,
            source,
        })?
    else {
        return Ok(None);
    };
    Ok(match read_halt_flag(&bytes) {
        HaltFlag::Clear => None,
        HaltFlag::Halted(reason) => Some(format!(
            "the kill switch is on (producer halt{})",
            reason.map(|r| format!(": {r}")).unwrap_or_default()
        )),
        HaltFlag::NotUnderstood(why) => Some(format!(
            "the kill switch's flag {HALT_KEY} is not understood ({why}), so it counts as on; `producer halt` or `producer resume` rewrites it"
        )),
    })
}

/// Why the kill switch's flag could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HaltError {
    /// The store could not read the flag at `key`.
    #[error("reading the kill switch ({key}): {source}")]
    Read {
        key: &'static str,
        #[source]
        source: StoreError,
    },
    /// The store refused or failed the write of `key` (the store's message names the key).
    #[error("{source}")]
    Write {
        key: &'static str,
        #[source]
        source: StoreError,
    },
}

/// Set (`Some(reason)`) or clear (`None`) the halt flag.
pub async fn set_halt<S: ObjectStore>(store: &S, reason: Option<&str>) -> Result<(), HaltError> {
    let flag = match reason {
        Some(r) => json!({"halted": true, "reason": r, "at": crate::clock::now_iso()}),
        None => json!({"halted": false, "at": crate::clock::now_iso()}),
    };
    store
        .put(HALT_KEY, flag.to_string().as_bytes())
        .await
        .map_err(|source| HaltError::Write {
            key: HALT_KEY,
            source,
        })
}

impl<S: ObjectStore + 'static> Tripwire for StoreHalt<S> {
    fn check<'a>(&'a self, _: &'a Experiment) -> CheckFuture<'a> {
        // a tripwire's answer is text: the guard puts it in the journal and the log
        Box::pin(async { halted(&self.0).await.map_err(|e| e.to_string()) })
    }
    fn interval(&self, _: &Experiment) -> Option<Duration> {
        Some(HALT_INTERVAL)
    }
}

/// How often the kill switch is read during a run.
pub const HALT_INTERVAL: Duration = Duration::from_secs(2);

// the extension's tripwire settings are checked when an experiment loads, so they live there
pub use crate::load::validate::extension::{
    DEFAULT_GRACE_INTERVALS, MAX_GRACE_INTERVALS, MAX_STOP_CONDITION_INTERVAL,
    MIN_STOP_CONDITION_INTERVAL, SettingError, grace_intervals, setting_errors,
    stop_condition_interval,
};

/// One check's outcome during the run, given the unreadable checks in a row before it: the new
/// count, and why the run must stop, if it must. Pure.
fn judge(
    outcome: Result<Option<String>, String>,
    unread: u32,
    grace: u32,
    every: Duration,
) -> (u32, Option<String>) {
    match outcome {
        Ok(reason) => (0, reason),
        Err(e) if unread + 1 >= grace => (
            unread + 1,
            Some(format!(
                "a tripwire could not be read for {} intervals in a row ({every:?} apart), so the run is stopped: {e}",
                unread + 1
            )),
        ),
        Err(_) => (unread + 1, None),
    }
}

/// How long one check may take before it counts as unreadable.
fn check_limit(every: Duration) -> Duration {
    every.max(Duration::from_secs(5))
}

/// Make one check, bounded by `limit`: a check with no answer could not be made.
async fn read(
    wire: &dyn Tripwire,
    experiment: &Experiment,
    limit: Duration,
) -> Result<Option<String>, String> {
    tokio::time::timeout(limit, wire.check(experiment))
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {limit:?}")))
}

/// `run_experiment`, watched by `tripwires`: checked before the start (a tripped or unreadable
/// one means the run never starts) and, each at its own interval, while it runs (a tripped one,
/// or one unreadable for longer than the grace, stops it; rollbacks run). The journal records
/// the reason under `broker.stopped_by`.
pub async fn run_guarded(
    experiment: Arc<Experiment>,
    vars: &Vars,
    options: &RunOptions,
    providers: Arc<Providers>,
    stop: CancellationToken,
    observer: Option<Arc<dyn Observer>>,
    tripwires: &[Arc<dyn Tripwire>],
) -> Result<Journal, Problems> {
    let armed: Vec<(Arc<dyn Tripwire>, Duration)> = tripwires
        .iter()
        .filter_map(|t| t.interval(&experiment).map(|i| (t.clone(), i)))
        .collect();
    if armed.is_empty() {
        return run_experiment(experiment, vars, options, providers, stop, observer).await;
    }
    // the loader refuses a bad grace; an experiment built otherwise gets the strictest one
    let grace = grace_intervals(&broker_extension(&experiment)).unwrap_or(1);
    if !options.revert_only {
        for (wire, every) in &armed {
            let reason = match read(wire.as_ref(), &experiment, check_limit(*every)).await {
                Ok(reason) => reason,
                Err(e) => Some(format!(
                    "a stop check could not be made, so the run is not started: {e}"
                )),
            };
            if let Some(reason) = reason {
                tracing::warn!(target: TRACE_EVENT, tripwire = %reason, "not starting {}: {reason}", experiment.title);
                return Ok(not_started(&experiment, &reason));
            }
        }
    }
    // each tripwire on its own schedule: a 2 s kill switch does not make a fleet read its
    // alarms every 2 s too
    let reason = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut watchers = tokio::task::JoinSet::new();
    for (wire, every) in armed {
        let (experiment, stop, reason) = (experiment.clone(), stop.clone(), reason.clone());
        watchers.spawn(tracing::Instrument::in_current_span(async move {
            let mut unread = 0;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => return,
                }
                let outcome = read(wire.as_ref(), &experiment, check_limit(every)).await;
                let failed = outcome.as_ref().err().cloned();
                let (count, why) = judge(outcome, unread, grace, every);
                unread = count;
                if let (Some(e), None) = (failed, &why) {
                    tracing::warn!(
                        "a stop check could not be made ({count} of {grace} in a row before the run is stopped): {e}"
                    );
                }
                if let Some(why) = why {
                    let mut first = reason.lock().unwrap_or_else(|e| e.into_inner());
                    if first.is_none() {
                        // a span event of the job's trace too (`cli::telemetry`)
                        tracing::error!(target: TRACE_EVENT, tripwire = %why, "stopping the run: {why}; rollbacks run");
                        *first = Some(why);
                        stop.cancel();
                    }
                    return;
                }
            }
        }));
    }
    let result = run_experiment(experiment, vars, options, providers, stop, observer).await;
    watchers.abort_all();
    let reason = reason.lock().unwrap_or_else(|e| e.into_inner()).take();
    result.map(|mut journal| {
        if let Some(reason) = reason {
            let broker = journal.broker.get_or_insert_with(|| json!({}));
            broker["stopped_by"] = json!(reason);
        }
        journal
    })
}

/// The journal of a run a tripwire kept from starting.
fn not_started(experiment: &Experiment, reason: &str) -> Journal {
    let mut journal = crate::model::failed_journal(&experiment.title, reason);
    journal.status = Some(Status::Interrupted);
    journal.broker = Some(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "not_started": true,
        "stopped_by": reason,
    }));
    journal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_halt_flag_not_understood_means_halted() {
        let halted = |r: &str| HaltFlag::Halted(Some(r.into()));
        for (bytes, expected) in [
            (
                &br#"{"halted": false, "at": "x"}"#[..],
                Some(HaltFlag::Clear),
            ),
            (
                br#"{"halted": true, "reason": "incident"}"#,
                Some(halted("incident")),
            ),
            (br#"{"halted": true}"#, Some(HaltFlag::Halted(None))),
            (
                br#"{"halted": true, "reason": 42}"#,
                Some(HaltFlag::Halted(None)),
            ),
            // not understood: None here, checked below
            (b"", None),
            (b"  \n", None),
            (b"garbage", None),
            (b"true", None),
            (b"[]", None),
            (b"{}", None),
            (br#"{"halted": "false"}"#, None),
            (br#"{"halted": 0}"#, None),
            (br#"{"halted": null}"#, None),
            (br#"{"state": "running"}"#, None),
            (b"\xff\xfe", None),
        ] {
            let got = read_halt_flag(bytes);
            match expected {
                Some(expected) => assert_eq!(got, expected, "{}", String::from_utf8_lossy(bytes)),
                None => assert!(
                    matches!(got, HaltFlag::NotUnderstood(_)),
                    "{}: {got:?}",
                    String::from_utf8_lossy(bytes)
                ),
            }
        }
    }

    #[test]
    fn an_unreadable_tripwire_trips_on_the_read_that_exhausts_the_grace() {
        let every = Duration::from_secs(2);
        let err = || Err("no permission".to_string());
        let halt = || Ok(Some("halted".to_string()));
        for (outcome, unread, grace, count, trips) in [
            (Ok(None), 0, 3, 0, None),
            (Ok(None), 2, 3, 0, None), // a good read resets the count
            (halt(), 0, 3, 0, Some("halted")),
            (halt(), 2, 3, 0, Some("halted")),
            (err(), 0, 3, 1, None),
            (err(), 1, 3, 2, None),
            (err(), 2, 3, 3, Some("for 3 intervals in a row")),
            (err(), 0, 1, 1, Some("for 1 intervals in a row")),
            (err(), 8, 10, 9, None),
            (err(), 9, 10, 10, Some("for 10 intervals in a row")),
        ] {
            let (got_count, why) = judge(outcome.clone(), unread, grace, every);
            assert_eq!(got_count, count, "{outcome:?} after {unread} of {grace}");
            match (trips, why) {
                (None, None) => {}
                (Some(needle), Some(why)) => {
                    assert!(why.contains(needle), "{why}");
                    if outcome.is_err() {
                        assert!(
                            why.contains("no permission") && why.contains("2s apart"),
                            "{why}"
                        );
                    }
                }
                (expected, got) => {
                    panic!("{outcome:?} after {unread} of {grace}: {expected:?} vs {got:?}")
                }
            }
        }
    }

    #[test]
    fn a_check_may_take_its_interval_and_at_least_five_seconds() {
        assert_eq!(check_limit(Duration::from_secs(2)), Duration::from_secs(5));
        assert_eq!(
            check_limit(Duration::from_secs(10)),
            Duration::from_secs(10)
        );
    }
}
