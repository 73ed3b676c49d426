//! The seed's Step Function payload as the seed sent it, on the AWS backend: wrapped as
//! `{"Payload": {...}}`, half done (an item already `completed` is skipped, not run again), and
//! naming another bucket than the deployment's (`bucket_name`), which the worker reads from.

use crate::util::Deployment;
use crate::util::scenarios::{producer_serve, stop, worker};
use serde_json::{Value, json};
use shared::ports::ObjectStore;

/// An experiment that leaves `marker` behind when its method runs.
fn leaves(title: &str, marker: &std::path::Path) -> Vec<u8> {
    json!({"title": title, "description": "d",
        "steady-state-hypothesis": {"title": "h", "probes": [{"type": "probe", "name": "p",
            "tolerance": 0, "provider": {"type": "process", "path": "true"}}]},
        "method": [{"type": "action", "name": "act", "provider": {"type": "process",
            "path": "touch", "arguments": [marker.display().to_string()]}}]})
    .to_string()
    .into_bytes()
}

#[test]
fn a_wrapped_half_done_seed_payload_resumes_and_reads_the_bucket_each_item_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dep = Deployment::moto("seed");
    let (sdk, settings) = dep.aws.as_ref().unwrap();
    let other = format!("{}-other", settings.bucket);
    let elsewhere = aws::S3Store::new(aws::sdk::s3_client(sdk), &other);
    dep.rt.block_on(async {
        aws::provision::bucket(sdk, &other).await.unwrap();
        let done = leaves("done before", &d.join("done-ran-again"));
        elsewhere.put("experiments/done.json", &done).await.unwrap();
        let next = leaves("from the other bucket", &d.join("next-ran"));
        elsewhere.put("experiments/next.json", &next).await.unwrap();
    });
    let payload = json!({"Payload": {"state": "in-progress", "list": [
        {"experiment_source": "experiments/done.json", "bucket_name": other, "state": "completed"},
        {"experiment_source": "experiments/next.json", "bucket_name": other, "state": "pending"}]}});
    std::fs::write(d.join("payload.json"), payload.to_string()).unwrap();

    let serving = producer_serve(&dep, d);
    let workers = vec![worker(&dep, d)];
    let out = dep.producer(&["submit", "--wait", "payload.json"], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        stderr.contains("completed, held (1 skipped: already completed)"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("w0-j0") && l.contains("skipped")),
        "the summary reports the completed item skipped:\n{stderr}"
    );
    assert!(
        !d.join("done-ran-again").exists(),
        "a completed item never runs again"
    );
    assert!(d.join("next-ran").exists(), "the pending item ran");

    let doc = dep.status(d, &id);
    assert_eq!(doc["waves"][0]["jobs"][0]["state"], "skipped", "{doc}");
    assert_eq!(doc["waves"][1]["jobs"][0]["state"], "completed", "{doc}");
    let journal: Value = serde_json::from_slice(
        &dep.get(&format!("runs/{id}/w1-j0/journal.json"))
            .expect("the pending item's journal"),
    )
    .unwrap();
    assert_eq!(
        journal["experiment"]["title"], "from the other bucket",
        "read from the bucket the item names"
    );
    let events = dep.audit_until("the payload's completion", |events| {
        events.iter().any(|e| {
            e["detail-type"] == "Suite Completed" && e["detail"]["suite_run_id"] == id.as_str()
        })
    });
    let ended = events
        .iter()
        .find(|e| {
            e["detail-type"] == "Suite Completed" && e["detail"]["suite_run_id"] == id.as_str()
        })
        .unwrap();
    assert_eq!(ended["detail"]["outcome"], "held", "{ended}");
    assert_eq!(ended["detail"]["skipped"], json!(["w0-j0"]), "{ended}");
    stop(workers.into_iter().chain([serving]).collect());
}
