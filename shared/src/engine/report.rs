//! The journal of a run while it is written: every change goes through `Reporter`, which hands
//! the observer a snapshot (everything in it already redacted); records made by native
//! activities join it under `broker.records`.

use super::run::Observer;
use crate::model::{Journal, Status};
use crate::providers::registry::Recorder;
use crate::redact::Redactor;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// Shared journal + checkpoints. Everything in the journal is redacted before it gets there.
#[derive(Clone)]
pub(super) struct Reporter {
    pub(super) journal: Arc<Mutex<Journal>>,
    pub(super) observer: Option<Arc<dyn Observer>>,
}

impl Reporter {
    pub(super) fn update(&self, f: impl FnOnce(&mut Journal)) {
        {
            let mut j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut j);
        }
        if let Some(o) = &self.observer {
            o.checkpoint(&self.snapshot());
        }
    }

    pub(super) fn status(&self) -> Option<Status> {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .status
    }

    /// One list of runs of the journal (`run`, `rollbacks`) as JSON: an after-hook's state.
    pub(super) fn runs(&self, pick: fn(&Journal) -> &Vec<crate::model::Run>) -> Value {
        let j = self.journal.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::to_value(pick(&j)).unwrap_or(Value::Null)
    }

    pub(super) fn snapshot(&self) -> Journal {
        self.journal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Records made by native activities go to `broker.records` in the journal, redacted, and are
/// checkpointed at once (the fleet writes the checkpoint to the store before the action acts).
pub(super) fn recorder(report: &Reporter, redactor: Arc<Redactor>) -> Recorder {
    let report = report.clone();
    Recorder::new(move |mut value| {
        redactor.value(&mut value);
        // the fault window opens in the activity's span; what it acts on, never its parameters
        tracing::info!(
            target: super::TRACE_EVENT,
            record = value["kind"].as_str().unwrap_or("record"),
            document = value["document"].as_str().unwrap_or(""),
            command_id = value["command_id"].as_str().unwrap_or(""),
            targets = %value["instance_ids"],
            "fault on record"
        );
        report.update(|j| {
            let broker = j.broker.get_or_insert_with(|| json!({}));
            if let Value::Object(b) = broker {
                let records = b.entry("records").or_insert_with(|| json!([]));
                if let Value::Array(list) = records {
                    list.push(value);
                }
            }
        });
        match &report.observer {
            Some(o) => o.flush(),
            None => Box::pin(std::future::ready(Ok(()))),
        }
    })
}
