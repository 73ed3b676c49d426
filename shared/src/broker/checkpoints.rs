//! A running job's journal checkpoints, written to the store from a task of their own.
//!
//! The engine hands over a snapshot at every step; bursts are coalesced to the latest, so a
//! slow store never slows the run. A fault action that must put its targets, locks or command
//! id on record before it acts calls `flush` (through the journal's recorder) and waits until
//! the checkpoint holding them is written: a worker killed a moment later has not lost them.

use crate::engine::Observer;
use crate::model::Journal;
use crate::ports::store::ObjectStore;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

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
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        // the outcome of the last write, for a flush that finds nothing newer to write
        let mut last: Result<(), String> = Ok(());
        while let Some(first) = rx.recv().await {
            let mut latest = None;
            let mut waiting = Vec::new();
            let mut take = |m: Message| match m {
                Message::Checkpoint(j) => latest = Some(j),
                Message::Flush(w) => waiting.push(w),
            };
            take(first);
            while let Ok(more) = rx.try_recv() {
                take(more);
            }
            if let Some(journal) = latest {
                last = write(&store, &key, &journal).await;
                if let Err(e) = &last {
                    tracing::warn!("{e}");
                }
            }
            for w in waiting {
                let _ = w.send(last.clone());
            }
        }
    });
    (Arc::new(ChannelObserver(tx)), writer)
}

async fn write<S: ObjectStore>(store: &S, key: &str, journal: &Journal) -> Result<(), String> {
    let bytes = serde_json::to_vec(journal)
        .map_err(|e| format!("checkpoint {key} not written: cannot serialise it: {e}"))?;
    store
        .put(key, &bytes)
        .await
        .map_err(|e| format!("checkpoint {key} not written: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::embedded::DirStore;
    use serde_json::json;

    fn journal(n: usize) -> Journal {
        let mut j = super::super::serve::failed_journal("t", "r");
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
}
