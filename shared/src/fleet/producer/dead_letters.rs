//! Dead letters: a job the jobs queue gave up on becomes a failed completion (its journal an
//! owned conditional create, so a worker's journal stands), and a completion event the events
//! queue gave up on is handled from there: a suite never waits forever.

use super::state::Completion;
use super::{ProducerError, ProducerPorts};
use crate::fleet::keys::RunKeys;
use crate::model::suite::Job;
use crate::model::{Status, failed_journal};
use crate::ports::queue::{DeadLetter, JobQueue};
use crate::ports::store::{Created, ObjectStore, create_owned};
use crate::ports::{Event, EventBus};
use serde_json::{Value, json};

impl<Q, E, S, B> ProducerPorts<Q, E, S, B>
where
    Q: JobQueue,
    E: JobQueue,
    S: ObjectStore,
    B: EventBus,
{
    /// Handle completion events that could not be handled in time (the store was down for
    /// longer than their retries) or that the rule could not deliver: they land in the events
    /// queue's dead letters and are handled from there, so a suite never waits forever.
    pub async fn drain_dead_events(&self) -> Result<Vec<String>, ProducerError> {
        let mut ended = Vec::new();
        for dead in self.events.dead_letters().await? {
            match serde_json::from_str::<Event>(&dead.body) {
                Ok(event) => match self.on_event(&event).await {
                    Ok(done) => ended.extend(done),
                    Err(e) => {
                        tracing::error!(message_id = %dead.id, "dead-lettered event still not handled: {e}");
                        continue;
                    }
                },
                Err(e) => {
                    tracing::warn!(message_id = %dead.id, "dead-lettered message is not an event, dropped: {e}")
                }
            }
            self.events.remove_dead_letter(&dead.id).await?;
        }
        Ok(ended)
    }

    /// Turn dead-lettered jobs into failed completions, so their suites finish.
    pub async fn drain_dead_letters(&self) -> Result<Vec<String>, ProducerError> {
        let mut ended = Vec::new();
        for DeadLetter {
            id,
            body,
            receive_count,
        } in self.jobs.dead_letters().await?
        {
            if let Ok(job) = Job::from_message(&body) {
                let completion = self.dead_letter_journal(&job, &id, receive_count).await?;
                if let Some(done) = self
                    .complete(&job.suite_run_id, &job.run_id, completion)
                    .await?
                {
                    ended.push(done);
                }
            }
            self.jobs.remove_dead_letter(&id).await?;
        }
        Ok(ended)
    }

    /// The journal of a dead-lettered job: a failed one saying so, created only if the job has
    /// none (with this dead letter's own token, so a lost answer is recognised as ours); a
    /// journal already there (a worker's, or an earlier drain's) stands, and the completion is
    /// what it says.
    async fn dead_letter_journal(
        &self,
        job: &Job,
        message_id: &str,
        receive_count: u32,
    ) -> Result<Completion, ProducerError> {
        let key = RunKeys::of(job).journal();
        let reason = format!(
            "the job was received {receive_count} times without completing and was dead-lettered"
        );
        let mut journal = failed_journal(&job.experiment_source, &reason);
        if let Some(Value::Object(broker)) = &mut journal.broker {
            broker.insert(
                "dead_letter".into(),
                json!({"message_id": message_id, "token": crate::ids::random_id()}),
            );
        }
        let bytes = serde_json::to_vec_pretty(&journal).map_err(|source| ProducerError::Json {
            key: key.clone(),
            source,
        })?;
        let created = create_owned(&self.store, &key, &bytes).await?;
        if let Created::Theirs(_) = &created {
            tracing::warn!(
                "dead-lettered job {}/{}: its journal {key} was already written; it stands",
                job.suite_run_id,
                job.run_id
            );
        }
        Ok(dead_letter_completion(&created, key))
    }
}

/// How a dead-lettered job counts, given what its journal's create found (pure): failed when
/// the dead-letter journal is ours; as the journal that stands says otherwise (its `status`
/// and `deviated`; failed when unreadable).
pub fn dead_letter_completion(created: &Created, journal_key: String) -> Completion {
    let failed = Completion::new(Status::Failed, false, journal_key);
    let Created::Theirs(bytes) = created else {
        return failed;
    };
    let Ok(journal) = serde_json::from_slice::<Value>(bytes) else {
        return failed;
    };
    match journal["status"].as_str().and_then(Status::parse) {
        Some(status) => Completion {
            status,
            deviated: journal["deviated"].as_bool().unwrap_or(false),
            ..failed
        },
        None => failed,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::clock::now_iso;
    use crate::model::suite::OnFailure;
    use std::time::Duration;

    #[tokio::test]
    async fn a_dead_lettered_completion_event_still_completes_its_suite() {
        let dir = tempfile::tempdir().unwrap();
        let ports = ports(dir.path()).await;
        ports
            .store
            .put("suites/n.yaml", b"waves:\n  - experiments: [a.json]\n")
            .await
            .unwrap();
        let ids = ports
            .on_trigger("m", r#"{"suite": "suites/n.yaml"}"#, None)
            .await
            .unwrap();
        let event = Event {
            id: "e1".into(),
            source: "experiment-broker".into(),
            detail_type: "Experiment Completed".into(),
            time: now_iso(),
            detail: json!({"suite_run_id": ids[0], "run_id": "w0-j0", "status": "completed",
                           "deviated": false, "journal_key": "runs/x/journal.json"}),
        };
        ports
            .events
            .send_batch(&[serde_json::to_string(&event).unwrap()])
            .await
            .unwrap();
        // received until the queue gives up on it (the store was down, say)
        for _ in 0..4 {
            let _ = ports
                .events
                .receive(1, Duration::from_millis(1), Duration::from_millis(50))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(ports.events.dead_letters().await.unwrap().len(), 1);
        assert_eq!(ports.drain_dead_events().await.unwrap(), ids);
        let (_, state) = ports.load(&ids[0]).await.unwrap();
        assert_eq!(
            (
                state.status.as_str(),
                state.outcome.map(SuiteOutcome::as_str)
            ),
            ("completed", Some("held"))
        );
        assert!(ports.events.dead_letters().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn dead_letters_become_failed_completions() {
        let dir = tempfile::tempdir().unwrap();
        let p = ports(dir.path()).await;
        let id = p
            .submit(&suite(vec![(1, OnFailure::Stop, None)]), dir.path())
            .await
            .unwrap();
        receive_until_dead_lettered(&p).await;
        assert_eq!(p.drain_dead_letters().await.unwrap(), vec![id.clone()]);
        let (_, state) = p.load(&id).await.unwrap();
        assert_eq!(state.outcome.map(SuiteOutcome::as_str), Some("failed"));
        let journal = p
            .store
            .get(&format!("runs/{id}/w0-j0/journal.json"))
            .await
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&journal).contains("dead-lettered"));
    }
    #[test]
    fn a_dead_lettered_job_counts_as_the_journal_that_stands() {
        let theirs = |j: Value| Created::Theirs(j.to_string().into_bytes());
        let table = [
            (Created::New, ("failed", false)),
            (Created::Ours, ("failed", false)),
            (
                theirs(json!({"status": "completed", "deviated": false})),
                ("completed", false),
            ),
            (
                theirs(json!({"status": "completed", "deviated": true})),
                ("completed", true),
            ),
            (
                theirs(json!({"status": "interrupted"})),
                ("interrupted", false),
            ),
            (theirs(json!({"no": "status"})), ("failed", false)),
            (Created::Theirs(b"not json".to_vec()), ("failed", false)),
        ];
        for (created, (status, deviated)) in table {
            let c = dead_letter_completion(&created, "k".into());
            assert_eq!(
                (c.status.as_str(), c.deviated, c.journal_key.as_str()),
                (status, deviated, "k"),
                "{created:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_dead_lettered_job_never_overwrites_the_workers_journal_and_a_completed_one_stays_completed()
     {
        use crate::contract::store::{Interference, Interfering};
        let dir = tempfile::tempdir().unwrap();
        // the worker's journal (its answers were lost, so its job was dead-lettered) lands
        // just as the producer writes the dead-letter journal
        let workers = serde_json::to_vec_pretty(&json!({"status": "completed", "deviated": false,
            "broker": {"delivery": {"worker": "w1", "token": "t1"}}}))
        .unwrap();
        let store = Interfering::new(
            DirStore::new(dir.path().join("store")),
            "journal.json",
            Interference::Competitor(workers.clone()),
        );
        let p = ports_on(dir.path(), store).await;
        let id = p
            .submit(&suite(vec![(1, OnFailure::Stop, None)]), dir.path())
            .await
            .unwrap();
        receive_until_dead_lettered(&p).await;
        assert_eq!(p.drain_dead_letters().await.unwrap(), vec![id.clone()]);
        let key = format!("runs/{id}/w0-j0/journal.json");
        assert_eq!(
            p.store.interfered(),
            std::slice::from_ref(&key),
            "the worker's journal landed"
        );
        let stands = p.store.get(&key).await.unwrap().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&stands),
            String::from_utf8_lossy(&workers),
            "the worker's journal stands"
        );
        let (_, state) = p.load(&id).await.unwrap();
        assert_eq!(
            (
                state.status.as_str(),
                state.outcome.map(SuiteOutcome::as_str)
            ),
            ("completed", Some("held")),
            "the job counts as its journal says"
        );
        assert_eq!(
            p.completions(&id).await.unwrap()["w0-j0"].status,
            "completed"
        );
    }
}
