//! A suite's S3 experiment (and, when the store is a versioned bucket, its `store:` one) is
//! pinned to the version the producer saw at submit: a worker that runs the job later reads that
//! version, even if the object was replaced in between, and keeps no copy of it. Against
//! the moto server `scripts/test.sh` starts on 127.0.0.1 (its URL in `BROKER_TEST_AWS_ENDPOINT`),
//! with a versioned bucket; the queue and bus are the embedded ones (SQLite), the store is S3.

use crate::util::endpoint;
use aws::{S3Store, provision};
use serde_json::json;
use shared::config::Embedded;
use shared::fleet::producer::ProducerPorts;
use shared::fleet::worker::{ServeConfig, WorkerPorts, serve};
use shared::model::suite::{ExperimentRef, OnFailure, Suite, Wave};
use shared::ports::ObjectStore;
use shared::providers::Providers;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An experiment whose one action writes `word` to `out`.
fn experiment(out: &Path, word: &str) -> Vec<u8> {
    json!({"title": word, "description": "d",
        "method": [{"type": "action", "name": "write", "provider": {"type": "process", "path": "sh",
            "arguments": ["-c", format!("echo {word} >> {}", out.display())]}}]})
    .to_string()
    .into_bytes()
}

/// A new bucket on the emulator with versioning on, and a client for it.
async fn versioned_bucket(name: &str) -> (aws_sdk_s3::Client, String) {
    let sdk = aws::sdk::emulator(&endpoint()).await;
    let client = aws::sdk::s3_client(&sdk);
    let bucket = format!("{name}-{}", std::process::id());
    provision::bucket(&sdk, &bucket).await.unwrap();
    client
        .put_bucket_versioning()
        .bucket(&bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    (client, bucket)
}

/// Submit a one-job suite whose experiment is `experiments/pinned.json` in a new versioned
/// bucket, named as `reference` names it (given the bucket), replace the object before any
/// worker picks the job up, and serve it: which version ran, the plan, and the store.
async fn replaced_after_submit(
    name: &str,
    reference: fn(&str) -> ExperimentRef,
) -> (String, serde_json::Value, String, S3Store, String) {
    let (client, bucket) = versioned_bucket(name).await;
    let store = S3Store::new(client, bucket.clone());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ran");
    store
        .put("experiments/pinned.json", &experiment(&out, "submitted"))
        .await
        .unwrap();
    let submitted = store
        .get_from_bucket_at(&bucket, "experiments/pinned.json", None)
        .await
        .unwrap()
        .unwrap()
        .1
        .expect("a versioned bucket names the version read");

    let e = Embedded::open(&dir.path().join("state")).await.unwrap();
    let producer = ProducerPorts {
        jobs: e.jobs.clone(),
        events: e.events.clone(),
        triggers: None,
        bucket: None,
        store: store.clone(),
        bus: e.bus.clone(),
        views: Default::default(),
    };
    let suite = Suite {
        name: "pinned".into(),
        defaults: Default::default(),
        strict: false,
        waves: vec![Wave {
            experiments: vec![reference(&bucket)],
            on_failure: OnFailure::Stop,
            max_parallel: None,
            skipped: false,
        }],
    };
    let id = producer.submit(&suite, dir.path()).await.unwrap();
    // replaced before any worker picked the job up
    store
        .put("experiments/pinned.json", &experiment(&out, "replaced"))
        .await
        .unwrap();

    let journal_key = format!("runs/{id}/w0-j0/journal.json");
    let done = {
        let store = store.clone();
        let key = journal_key.clone();
        async move {
            let until = Instant::now() + Duration::from_secs(60);
            while store.get(&key).await.unwrap().is_none() && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let cfg = ServeConfig {
        concurrency: 1,
        visibility: Duration::from_secs(30),
        wait: Duration::from_millis(200),
        grace: Duration::from_secs(5),
        worker_id: "pinned".into(),
    };
    let ports = WorkerPorts {
        jobs: e.jobs.clone(),
        store: store.clone(),
        bus: e.bus.clone(),
    };
    serve(cfg, ports, Arc::new(Providers::default()), Vec::new(), done).await;

    let journal: serde_json::Value =
        serde_json::from_slice(&store.get(&journal_key).await.unwrap().expect("a journal"))
            .unwrap();
    assert_eq!(journal["status"], "completed", "{journal:#}");
    let ran = std::fs::read_to_string(&out).unwrap();
    let plan: serde_json::Value = serde_json::from_slice(
        &store
            .get(&format!("suite-runs/{id}/plan.json"))
            .await
            .unwrap()
            .expect("the plan"),
    )
    .unwrap();
    (ran, plan, submitted, store, id)
}

#[tokio::test]
async fn an_s3_experiment_replaced_after_the_submit_runs_as_it_was_submitted() {
    let (ran, plan, submitted, _, _) =
        replaced_after_submit("versions", |bucket| ExperimentRef::S3 {
            bucket: bucket.to_string(),
            key: "experiments/pinned.json".into(),
        })
        .await;
    assert_eq!(ran, "submitted\n", "the version pinned at submit ran");
    assert_eq!(
        plan["waves"][0]["jobs"][0]["experiment_version"],
        submitted.as_str(),
        "{plan:#}"
    );
}

#[tokio::test]
async fn a_store_experiment_in_a_versioned_bucket_is_pinned_too_and_needs_no_copy() {
    let (ran, plan, submitted, store, id) =
        replaced_after_submit("versions-store", |_| ExperimentRef::Store {
            key: "experiments/pinned.json".into(),
        })
        .await;
    assert_eq!(ran, "submitted\n", "the version pinned at submit ran");
    let job = &plan["waves"][0]["jobs"][0];
    assert_eq!(job["experiment_source"], "store:experiments/pinned.json");
    assert_eq!(job["experiment_version"], submitted.as_str(), "{plan:#}");
    // a pinned version cannot change: the run kept no copy of it (a revert reads the version)
    assert_eq!(
        store
            .get(&format!("runs/{id}/w0-j0/experiment"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_pinned_version_that_is_gone_reads_as_missing() {
    let (client, bucket) = versioned_bucket("versions-gone").await;
    let store = S3Store::new(client.clone(), bucket.clone());
    store.put("e.json", b"{}").await.unwrap();
    let (_, version) = store
        .get_from_bucket_at(&bucket, "e.json", None)
        .await
        .unwrap()
        .unwrap();
    let version = version.unwrap();
    client
        .delete_object()
        .bucket(&bucket)
        .key("e.json")
        .version_id(&version)
        .send()
        .await
        .unwrap();
    assert!(
        store
            .get_from_bucket_at(&bucket, "e.json", Some(&version))
            .await
            .unwrap()
            .is_none(),
        "a deleted version is missing, not an error"
    );
}
