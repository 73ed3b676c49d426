//! Tripwires: what stops a run from outside it. The kill switch (a halt flag) and stop
//! conditions (CloudWatch alarms named by the experiment) are both checks polled while a run
//! goes on; the first one that trips cancels the run's stop token, so the method is cut short
//! and the rollbacks run, exactly as on SIGTERM, and the journal says what tripped.
//!
//! Tripwires are checked once before the run starts too: a run that would start under a halt
//! never starts; its journal says so (status `interrupted`, `broker.not_started`). Before the
//! start, a check that cannot be made (a misnamed alarm, no permission) also keeps the run from
//! starting: a fault must not start unwatched. During the run such an error is logged.
//!
//! The broker knows only the `Tripwire` trait; the halt flag in the store lives here
//! (`StoreHalt`), the AWS ones (SSM parameter, CloudWatch alarms) beside the AWS adapters.

use crate::engine::{Observer, RunOptions, run_experiment};
use crate::load::{Problems, Vars};
use crate::model::{Experiment, Journal, Status};
use crate::ports::ObjectStore;
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
    /// made) is logged and the run goes on.
    fn check<'a>(&'a self, experiment: &'a Experiment) -> CheckFuture<'a>;
    /// How often to check during this experiment; `None`: this tripwire has nothing to watch.
    fn interval(&self, experiment: &Experiment) -> Option<Duration>;
}

/// The store key of the kill switch.
pub const HALT_KEY: &str = "control/halt";

/// The kill switch as a store object: present and `{"halted": true}` means halted.
pub struct StoreHalt<S>(pub S);

/// Read the halt flag from the store.
pub async fn halted<S: ObjectStore>(store: &S) -> Result<Option<Value>, String> {
    let Some(bytes) = store.get(HALT_KEY).await.map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let flag: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{HALT_KEY}: not JSON ({e}); write it with producer halt/resume"))?;
    Ok((flag["halted"] == true).then_some(flag))
}

/// Set (`Some(reason)`) or clear (`None`) the halt flag.
pub async fn set_halt<S: ObjectStore>(store: &S, reason: Option<&str>) -> Result<(), String> {
    let flag = match reason {
        Some(r) => json!({"halted": true, "reason": r, "at": crate::engine::activity::now_iso()}),
        None => json!({"halted": false, "at": crate::engine::activity::now_iso()}),
    };
    store
        .put(HALT_KEY, flag.to_string().as_bytes())
        .await
        .map_err(|e| e.to_string())
}

impl<S: ObjectStore + 'static> Tripwire for StoreHalt<S> {
    fn check<'a>(&'a self, _: &'a Experiment) -> CheckFuture<'a> {
        Box::pin(async move {
            Ok(halted(&self.0).await?.map(|flag| {
                format!(
                    "the kill switch is on (producer halt{})",
                    flag["reason"]
                        .as_str()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                )
            }))
        })
    }
    fn interval(&self, _: &Experiment) -> Option<Duration> {
        Some(HALT_INTERVAL)
    }
}

/// How often the kill switch is read during a run.
pub const HALT_INTERVAL: Duration = Duration::from_secs(2);

/// Check one tripwire. A check that cannot be made trips before the start (`strict`: a run
/// must not start unwatched) and is logged during the run.
async fn tripped(wire: &dyn Tripwire, experiment: &Experiment, strict: bool) -> Option<String> {
    match wire.check(experiment).await {
        Ok(reason) => reason,
        Err(e) if strict => Some(format!(
            "a stop check could not be made, so the run is not started: {e}"
        )),
        Err(e) => {
            tracing::warn!("a stop check could not be made (the run goes on): {e}");
            None
        }
    }
}

/// `run_experiment`, watched by `tripwires`: checked before the start (a tripped one means
/// the run never starts) and, each at its own interval, while it runs (a tripped one stops
/// it, rollbacks run). The journal records the reason under `broker.stopped_by`.
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
    if !options.revert_only {
        for (wire, _) in &armed {
            if let Some(reason) = tripped(wire.as_ref(), &experiment, true).await {
                tracing::warn!("not starting {}: {reason}", experiment.title);
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
        watchers.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.cancelled() => return,
                }
                if let Some(why) = tripped(wire.as_ref(), &experiment, false).await {
                    let mut first = reason.lock().unwrap_or_else(|e| e.into_inner());
                    if first.is_none() {
                        tracing::error!("stopping the run: {why}; rollbacks run");
                        *first = Some(why);
                        stop.cancel();
                    }
                    return;
                }
            }
        });
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
    let mut journal = super::serve::failed_journal(&experiment.title, reason);
    journal.status = Some(Status::Interrupted);
    journal.broker = Some(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "not_started": true,
        "stopped_by": reason,
    }));
    journal
}
