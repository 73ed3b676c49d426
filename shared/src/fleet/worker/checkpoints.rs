//! A running job's journal checkpoints, written to the store from a task of their own.
//!
//! The engine hands over a snapshot at every step; bursts are coalesced to the latest, so a
//! slow store never slows the run, and writes are at most one a second (`EVERY`): a short run
//! writes one checkpoint, not one per step (each is a request on S3). A fault action that must put its targets, locks or command
//! id on record before it acts calls `flush` (through the journal's recorder) and waits until
//! the checkpoint holding them is written: a worker killed a moment later has not lost them.
//!
//! A revert-only run (the job came back after its worker died) starts from the dead owner's
//! checkpoint: every snapshot it writes, and its final journal, carry what the dead owner did
//! (`carry_over`), so the records of what was injected are never overwritten by the revert.

use crate::engine::Observer;
use crate::model::Journal;
use crate::ports::store::{ObjectStore, StoreError};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// The shortest time between two checkpoint writes, but for a flush.
const EVERY: std::time::Duration = std::time::Duration::from_secs(1);

enum Message {
    Checkpoint(Box<Journal>),
    /// Answer once everything sent before is written.
    Flush(oneshot::Sender<Result<(), String>>),
}

struct ChannelObserver(mpsc::UnboundedSender<Message>);

impl Observer for ChannelObserver {
    fn checkpoint(&self, journal: &Journal) {
        let _ = self.0.send(Message::Checkpoint(Box::new(journal.clone())));
    }

    fn flush(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        let (tx, rx) = oneshot::channel();
        let sent = self.0.send(Message::Flush(tx));
        Box::pin(async move {
            sent.map_err(|_| "the checkpoint writer has stopped".to_string())?;
            rx.await
                .map_err(|_| "the checkpoint writer has stopped".to_string())?
        })
    }
}

/// Start writing checkpoints of one job to `key`. The writer task ends, having written the
/// last snapshot, once the observer is dropped: await it before reporting the job done.
pub fn start<S: ObjectStore + 'static>(
    store: S,
    key: String,
) -> (Arc<dyn Observer>, JoinHandle<()>) {
    start_after(store, key, None)
}

/// As `start`, for a run that continues `prior` (the dead owner's checkpoint): each snapshot
/// is written as `carry_over(prior, snapshot)`.
pub fn start_after<S: ObjectStore + 'static>(
    store: S,
    key: String,
    prior: Option<Journal>,
) -> (Arc<dyn Observer>, JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(
        async move {
            // the outcome of the last write, for a flush that finds nothing newer to write (as
            // text: the engine's `Observer::flush` answers every waiter with a copy of it)
            let mut last: Result<(), String> = Ok(());
            let mut next_due = tokio::time::Instant::now() + EVERY;
            while let Some(first) = rx.recv().await {
                let mut latest = None;
                let mut waiting = Vec::new();
                let take =
                    |m: Message, latest: &mut Option<Box<Journal>>, waiting: &mut Vec<_>| match m {
                        Message::Checkpoint(j) => *latest = Some(j),
                        Message::Flush(w) => waiting.push(w),
                    };
                take(first, &mut latest, &mut waiting);
                while let Ok(more) = rx.try_recv() {
                    take(more, &mut latest, &mut waiting);
                }
                // unless someone waits on a flush (a record that must be on file before a fault
                // acts), snapshots are written at most every `EVERY`: a short run writes one
                // checkpoint (its last snapshot, as the run ends), a long one one a second
                while waiting.is_empty() {
                    tokio::select! {
                        m = rx.recv() => match m {
                            Some(m) => take(m, &mut latest, &mut waiting),
                            None => break, // the run ended: write what it left now
                        },
                        _ = tokio::time::sleep_until(next_due) => break,
                    }
                }
                next_due = tokio::time::Instant::now() + EVERY;
                if let Some(journal) = latest {
                    let journal = match &prior {
                        Some(prior) => carry_over(prior, *journal),
                        None => *journal,
                    };
                    last = write(&store, &key, &journal)
                        .await
                        .map_err(|e| e.to_string());
                    if let Err(e) = &last {
                        tracing::warn!("{e}");
                    }
                }
                for w in waiting {
                    let _ = w.send(last.clone());
                }
            }
        }
        .in_current_span(),
    );
    (Arc::new(ChannelObserver(tx)), writer)
}

/// The journal of a run that continues `prior` (what a dead owner did, from its checkpoint):
/// `next` with the dead owner's hypothesis evaluations, method runs, rollbacks it had played and
/// `broker.records` put first, and any other `broker` entry of the dead owner's kept under the
/// same name unless `next` has one. `next`'s status, times and verdicts stand.
pub fn carry_over(prior: &Journal, next: Journal) -> Journal {
    let mut out = next;
    let states = &mut out.steady_states;
    if states.before.is_none() {
        states.before = prior.steady_states.before.clone();
    }
    if states.after.is_none() {
        states.after = prior.steady_states.after.clone();
    }
    states.during = [
        prior.steady_states.during.clone(),
        std::mem::take(&mut states.during),
    ]
    .concat();
    out.run = [prior.run.clone(), std::mem::take(&mut out.run)].concat();
    out.rollbacks = [prior.rollbacks.clone(), std::mem::take(&mut out.rollbacks)].concat();
    let Some(Value::Object(before)) = &prior.broker else {
        return out;
    };
    let broker = out.broker.get_or_insert_with(|| json!({}));
    if !broker.is_object() {
        *broker = json!({});
    }
    if let Value::Object(now) = broker {
        let mut records = records_of(&prior.broker);
        records.extend(
            now.remove("records")
                .and_then(|r| match r {
                    Value::Array(list) => Some(list),
                    _ => None,
                })
                .unwrap_or_default(),
        );
        for (k, v) in before {
            if k != "records" && !now.contains_key(k) {
                now.insert(k.clone(), v.clone());
            }
        }
        if !records.is_empty() {
            now.insert("records".into(), Value::Array(records));
        }
    }
    out
}

/// The `records` list of a journal's `broker` entry (empty if it has none).
pub fn records_of(broker: &Option<Value>) -> Vec<Value> {
    broker
        .as_ref()
        .and_then(|b| b.get("records"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Why a checkpoint was not written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {key} not written: cannot serialise it: {source}")]
    Serialise {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("checkpoint {key} not written: {source}")]
    Store {
        key: String,
        #[source]
        source: StoreError,
    },
}

async fn write<S: ObjectStore>(
    store: &S,
    key: &str,
    journal: &Journal,
) -> Result<(), CheckpointError> {
    let bytes = serde_json::to_vec(journal).map_err(|source| CheckpointError::Serialise {
        key: key.to_string(),
        source,
    })?;
    store
        .put(key, &bytes)
        .await
        .map_err(|source| CheckpointError::Store {
            key: key.to_string(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::DirStore;
    use serde_json::json;

    fn journal(n: usize) -> Journal {
        let mut j = crate::model::failed_journal("t", "r");
        j.broker = Some(json!({"records": (0..n).collect::<Vec<_>>()}));
        j
    }

    #[tokio::test]
    async fn a_flush_resolves_only_once_the_latest_checkpoint_is_in_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().join("store"));
        let (observer, writer) = start(store.clone(), "runs/r/checkpoint.json".into());
        for n in 1..=50 {
            observer.checkpoint(&journal(n));
            if n % 10 == 0 {
                observer.flush().await.unwrap();
                let bytes = store.get("runs/r/checkpoint.json").await.unwrap().unwrap();
                let written: Journal = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(written.broker, journal(n).broker, "after flush {n}");
            }
        }
        observer.checkpoint(&journal(51));
        drop(observer);
        writer.await.unwrap();
        let bytes = store.get("runs/r/checkpoint.json").await.unwrap().unwrap();
        let written: Journal = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            written.broker,
            journal(51).broker,
            "the last one is written"
        );
    }

    #[tokio::test]
    async fn a_flush_says_so_when_the_checkpoint_could_not_be_written() {
        let dir = tempfile::tempdir().unwrap();
        // the store's directory is a file: every write fails
        let root = dir.path().join("not-a-dir");
        std::fs::write(&root, "x").unwrap();
        let (observer, _writer) = start(DirStore::new(root), "runs/r/checkpoint.json".into());
        observer.checkpoint(&journal(1));
        let e = observer.flush().await.unwrap_err();
        assert!(
            e.contains("checkpoint runs/r/checkpoint.json not written"),
            "{e}"
        );
        // a flush with nothing newer reports the last write's outcome
        assert!(observer.flush().await.is_err());
    }

    fn run(name: &str) -> crate::model::Run {
        crate::model::Run {
            activity: json!({"name": name}),
            output: Value::Null,
            start: String::new(),
            status: crate::model::RunStatus::Succeeded,
            end: String::new(),
            duration: 0.0,
            exception: None,
            tolerance_met: None,
        }
    }

    fn names(runs: &[crate::model::Run]) -> Vec<&str> {
        runs.iter()
            .map(|r| r.activity["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_revert_keeps_the_dead_owners_runs_records_and_rollbacks_before_its_own() {
        let mut dead = crate::model::failed_journal("t", "r");
        dead.status = None;
        dead.run = vec![run("inject"), run("wait")];
        dead.rollbacks = vec![run("revert-half-done")];
        dead.broker = Some(
            json!({"records": [{"kind": "targets"}, {"kind": "ssm_command", "command_id": "c-1"}],
                                  "hypothesis_strategy": "Default", "version": "old"}),
        );
        let mut revert = crate::model::failed_journal("t", "r");
        revert.status = Some(crate::model::Status::Interrupted);
        revert.rollbacks = vec![run("revert")];
        revert.broker = Some(json!({"revert_only": true, "version": "new",
                                   "records": [{"kind": "orphans_stopped"}]}));
        let out = carry_over(&dead, revert);
        assert_eq!(names(&out.run), ["inject", "wait"]);
        assert_eq!(names(&out.rollbacks), ["revert-half-done", "revert"]);
        assert_eq!(out.status, Some(crate::model::Status::Interrupted));
        let broker = out.broker.unwrap();
        assert_eq!(
            broker["records"],
            json!([{"kind": "targets"}, {"kind": "ssm_command", "command_id": "c-1"}, {"kind": "orphans_stopped"}])
        );
        assert_eq!(broker["revert_only"], true);
        assert_eq!(broker["version"], "new", "the revert's own entries stand");
        assert_eq!(broker["hypothesis_strategy"], "Default");

        // carried twice (the reverting worker died too): nothing is lost, nothing doubled
        let mut again = crate::model::failed_journal("t", "r");
        again.rollbacks = vec![run("revert")];
        let twice = carry_over(&out_again(&dead), again);
        assert_eq!(names(&twice.run), ["inject", "wait"]);
        assert_eq!(
            names(&twice.rollbacks),
            ["revert-half-done", "revert", "revert"]
        );
        assert_eq!(
            twice.broker.unwrap()["records"].as_array().unwrap().len(),
            3
        );

        // a dead owner with no broker entry, a revert with none
        let bare = crate::model::failed_journal("t", "r");
        let mut plain = bare.clone();
        plain.broker = None;
        assert_eq!(carry_over(&plain, bare.clone()).broker, bare.broker);
    }

    fn out_again(dead: &Journal) -> Journal {
        let mut revert = crate::model::failed_journal("t", "r");
        revert.rollbacks = vec![run("revert")];
        revert.broker = Some(json!({"records": [{"kind": "orphans_stopped"}]}));
        carry_over(dead, revert)
    }

    #[tokio::test]
    async fn checkpoints_of_a_revert_carry_the_dead_owners_journal() {
        let dir = tempfile::tempdir().unwrap();
        let store = DirStore::new(dir.path().join("store"));
        let mut dead = journal(2);
        dead.run = vec![run("inject")];
        let (observer, writer) =
            start_after(store.clone(), "runs/r/checkpoint.json".into(), Some(dead));
        let mut revert = crate::model::failed_journal("t", "r");
        revert.rollbacks = vec![run("revert")];
        observer.checkpoint(&revert);
        drop(observer);
        writer.await.unwrap();
        let bytes = store.get("runs/r/checkpoint.json").await.unwrap().unwrap();
        let written: Journal = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(names(&written.run), ["inject"]);
        assert_eq!(names(&written.rollbacks), ["revert"]);
        assert_eq!(written.broker.unwrap()["records"], json!([0, 1]));
    }
}
