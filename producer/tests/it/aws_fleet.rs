//! The fleet on the AWS backend, end to end against the moto server `scripts/test.sh` starts
//! on 127.0.0.1: SQS queues, an S3 bucket whose `suites/` uploads notify the triggers queue,
//! an EventBridge bus whose rule feeds the events queue. Nothing here is a fake of AWS.

use crate::util;

use serde_json::Value;
use std::time::Duration;
use util::Deployment;
use util::scenarios::{completed_runs, experiment, producer_serve, stop, worker};

mod lost_answers;
mod requests;
mod seed_payload;

#[test]
fn the_suite_completes_on_sqs_when_a_worker_is_killed_mid_run() {
    let dir = tempfile::tempdir().unwrap();
    let dep = Deployment::moto("crash");
    util::scenarios::a_worker_killed_mid_run(&dep, dir.path());
}

/// The id of the suite run that "Suite Completed" announced for `source`, once it arrives.
fn wait_for_suite(dep: &Deployment, what: &str, matches: impl Fn(&Value) -> bool) -> Vec<Value> {
    dep.audit_until(what, |events| {
        events
            .iter()
            .any(|e| e["detail-type"] == "Suite Completed" && matches(e))
    })
}

#[test]
fn an_uploaded_suite_runs_through_notifications_workers_and_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dep = Deployment::moto("e2e");
    // each wave-0 job leaves its own marker after a second; wave 1's hypothesis requires both,
    // so wave 1 holds only if it started after every job of wave 0 ended
    let marker = |n: usize| d.join(format!("wave0-job{n}-done"));
    for n in 0..2 {
        experiment(
            d,
            &format!("first{n}.json"),
            &format!("sleep 1; touch {}", marker(n).display()),
            "no-flag",
            "true",
        );
    }
    let second = serde_json::json!({"title": "second", "description": "d",
        "steady-state-hypothesis": {"title": "wave 0 is done", "probes": [{"type": "probe", "name": "p", "tolerance": 0,
            "provider": {"type": "process", "path": "sh", "arguments": ["-c", format!("test -e {} && test -e {}", marker(0).display(), marker(1).display())]}}]},
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "true"}}]});
    for n in 0..2 {
        dep.put(
            &format!("experiments/first{n}.json"),
            &std::fs::read(d.join(format!("first{n}.json"))).unwrap(),
        );
    }
    dep.put("experiments/second.json", second.to_string().as_bytes());

    let serving = producer_serve(&dep, d);
    let workers = vec![worker(&dep, d), worker(&dep, d)];
    // a space in the key: S3 notifications carry it URL-encoded (`+`)
    dep.put(
        "suites/team a/nightly run.yaml",
        b"name: uploaded\nwaves:\n  - experiments: [../../experiments/first0.json, ../../experiments/first1.json]\n  - experiments: [../../experiments/second.json]\n",
    );
    let events = wait_for_suite(&dep, "the uploaded suite's completion", |_| true);
    let done = events
        .iter()
        .find(|e| e["detail-type"] == "Suite Completed")
        .unwrap();
    assert_eq!(done["source"], "experiment-broker");
    assert_eq!(done["detail"]["name"], "uploaded");
    assert_eq!(done["detail"]["status"], "completed", "{done}");
    assert_eq!(
        done["detail"]["outcome"], "held",
        "wave 1 started after wave 0: {done}"
    );
    let id = done["detail"]["suite_run_id"].as_str().unwrap().to_string();

    let doc = dep.status(d, &id);
    assert_eq!(
        doc["source"], "store:suites/team a/nightly run.yaml",
        "{doc}"
    );
    for job in ["w0-j0", "w0-j1", "w1-j0"] {
        let journal: Value = serde_json::from_slice(
            &dep.get(&format!("runs/{id}/{job}/journal.json"))
                .expect("journal in S3"),
        )
        .unwrap();
        assert_eq!(journal["status"], "completed", "{job}: {journal}");
        assert_eq!(journal["deviated"], false, "{job}");
    }
    let waves: Vec<u64> = events
        .iter()
        .filter(|e| {
            e["detail-type"] == "Wave Released" && e["detail"]["suite_run_id"] == id.as_str()
        })
        .map(|e| e["detail"]["wave"].as_u64().unwrap())
        .collect();
    assert!(
        waves.contains(&0) && waves.contains(&1),
        "both waves released: {events:#?}"
    );
    assert_eq!(completed_runs(&events, &id), ["w0-j0", "w0-j1", "w1-j0"]);

    // the nightly schedule's exact message (moto stores schedules but never fires them)
    dep.put(
        "suites/nightly.yaml",
        b"name: nightly\nwaves:\n  - experiments: [../experiments/second.json]\n",
    );
    let triggers = dep
        .aws
        .as_ref()
        .unwrap()
        .1
        .triggers_queue_url
        .clone()
        .unwrap();
    let sdk = dep.aws.as_ref().unwrap().0.clone();
    // the upload above notified too; the scheduled run is the second "nightly" suite run
    dep.rt
        .block_on(
            aws_sdk_sqs::Client::new(&sdk)
                .send_message()
                .queue_url(&triggers)
                .message_body(r#"{"version": 1, "suite": "suites/nightly.yaml"}"#)
                .send(),
        )
        .unwrap();
    let nightly = |events: &[Value]| {
        events
            .iter()
            .filter(|e| e["detail-type"] == "Suite Completed" && e["detail"]["name"] == "nightly")
            .count()
    };
    let events = dep.audit_until("two nightly runs (upload and schedule)", |events| {
        nightly(events) >= 2
    });
    assert!(
        events
            .iter()
            .filter(|e| e["detail-type"] == "Suite Completed" && e["detail"]["name"] == "nightly")
            .all(|e| e["detail"]["outcome"] == "held"),
        "{events:#?}"
    );
    stop(workers.into_iter().chain([serving]).collect());
}

#[test]
fn submit_wait_uploads_local_files_and_exits_with_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dep = Deployment::moto("wait");
    let held = experiment(d, "held.json", "true", "no-flag", "true");
    let deviates = experiment(
        d,
        "deviates.json",
        &format!("touch {}", d.join("flag").display()),
        "flag",
        "true",
    );
    std::fs::write(
        d.join("ok.yaml"),
        format!("name: ok\nwaves:\n  - experiments: [{held}]\n"),
    )
    .unwrap();
    std::fs::write(
        d.join("bad.yaml"),
        format!("name: bad\nwaves:\n  - experiments: [{deviates}]\n"),
    )
    .unwrap();
    let serving = producer_serve(&dep, d);
    let workers = vec![worker(&dep, d)];

    let out = dep.producer(&["submit", "--wait", "ok.yaml"], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        stderr.contains(&format!("suite run {id} (ok): completed, held")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "s3://{}/runs/{id}/w0-j0/journal.json",
            dep.aws.as_ref().unwrap().1.bucket
        )),
        "{stderr}"
    );
    // the experiment the workers ran is the copy in the bucket, kept with the run
    let plan: Value =
        serde_json::from_slice(&dep.get(&format!("suite-runs/{id}/plan.json")).unwrap()).unwrap();
    let source = plan["waves"][0]["jobs"][0]["experiment_source"]
        .as_str()
        .unwrap();
    assert_eq!(
        source,
        format!("store:suite-runs/{id}/experiments/w0-j0-held.json")
    );
    assert_eq!(
        dep.get(&source["store:".len()..]).unwrap(),
        std::fs::read(d.join("held.json")).unwrap()
    );

    let out = dep.producer(&["submit", "--wait", "bad.yaml"], d);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a deviated suite fails the gate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("deviated"));
    stop(workers.into_iter().chain([serving]).collect());
    let _ = Duration::ZERO;
}

#[test]
fn the_test_event_and_a_bad_trigger_are_handled_without_running_anything() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dep = Deployment::moto("notify");
    let (sdk, settings) = dep.aws.as_ref().unwrap();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let triggers = settings.triggers_queue_url.clone().unwrap();
    // configuring the bucket's notification sent S3's test event to the triggers queue
    let peek = dep
        .rt
        .block_on(
            sqs.receive_message()
                .queue_url(&triggers)
                .visibility_timeout(0)
                .wait_time_seconds(1)
                .send(),
        )
        .unwrap();
    assert!(
        peek.messages()
            .iter()
            .any(|m| m.body().unwrap_or("").contains("s3:TestEvent")),
        "the test event is waiting: {peek:?}"
    );
    dep.rt
        .block_on(
            sqs.send_message()
                .queue_url(&triggers)
                .message_body(r#"{"suite": "suites/missing.yaml"}"#)
                .send(),
        )
        .unwrap();
    let serving = producer_serve(&dep, d);
    let events = wait_for_suite(&dep, "the rejection", |_| true);
    let rejected = events
        .iter()
        .find(|e| e["detail-type"] == "Suite Completed")
        .unwrap();
    assert_eq!(rejected["detail"]["status"], "rejected");
    assert_eq!(rejected["detail"]["outcome"], "invalid");
    assert!(
        rejected["detail"]["problems"][0]
            .as_str()
            .unwrap()
            .contains("suites/missing.yaml does not exist")
    );
    // both messages were consumed, and the test event started nothing
    let until = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let attrs = dep
            .rt
            .block_on(
                sqs.get_queue_attributes()
                    .queue_url(&triggers)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                    .send(),
            )
            .unwrap();
        let count = |name: aws_sdk_sqs::types::QueueAttributeName| -> u64 {
            attrs
                .attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(99)
        };
        use aws_sdk_sqs::types::QueueAttributeName as A;
        if count(A::ApproximateNumberOfMessages) == 0
            && count(A::ApproximateNumberOfMessagesNotVisible) == 0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "the triggers queue was not drained: {attrs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        dep.list("suite-runs")
            .iter()
            .filter(|k| k.ends_with("plan.json"))
            .count(),
        1
    );
    stop(vec![serving]);
}

#[test]
fn a_job_that_keeps_dying_is_dead_lettered_and_reported_failed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dep = Deployment::moto("dlq");
    let quick = experiment(d, "quick.json", "true", "no-flag", "true");
    std::fs::write(
        d.join("s.yaml"),
        format!("name: doomed\nwaves:\n  - experiments: [{quick}]\n"),
    )
    .unwrap();
    let serving = producer_serve(&dep, d);
    let out = dep.producer(&["submit", "s.yaml"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    // a worker that dies every time: the job is received and never acked, until SQS's redrive
    // policy moves it to the dead-letter queue
    let (sdk, settings) = dep.aws.as_ref().unwrap();
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut receives = 0;
    let until = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = dep
            .rt
            .block_on(
                sqs.receive_message()
                    .queue_url(&settings.jobs_queue_url)
                    .visibility_timeout(0)
                    .wait_time_seconds(1)
                    .send(),
            )
            .unwrap();
        if got.messages().is_empty() && receives >= shared::config::MAX_RECEIVE_COUNT {
            break;
        }
        receives += got.messages().len() as u32;
        assert!(
            std::time::Instant::now() < until,
            "the job was never dead-lettered"
        );
    }
    let doc = dep.wait_for_end(d, &id);
    assert_eq!(
        (doc["status"].as_str(), doc["outcome"].as_str()),
        (Some("completed"), Some("failed")),
        "{doc}"
    );
    let journal: Value =
        serde_json::from_slice(&dep.get(&format!("runs/{id}/w0-j0/journal.json")).unwrap())
            .unwrap();
    assert_eq!(journal["status"], "failed");
    assert!(journal.to_string().contains("dead-lettered"), "{journal}");
    stop(vec![serving]);
}

#[test]
fn a_missing_bucket_or_queue_is_named_with_the_setting_to_check() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dep = Deployment::moto("errors");
    let quick = experiment(d, "quick.json", "true", "no-flag", "true");
    std::fs::write(
        d.join("s.yaml"),
        format!("name: e\nwaves:\n  - experiments: [{quick}]\n"),
    )
    .unwrap();

    let out = dep.producer(
        &["submit", "s.yaml", "--bucket", "no-such-bucket-anywhere"],
        d,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a backend error, not an experiment's: {stderr}"
    );
    assert!(
        stderr.contains("no-such-bucket-anywhere")
            && stderr.contains("NoSuchBucket")
            && stderr.contains("check BROKER_BUCKET"),
        "{stderr}"
    );

    let endpoint = std::env::var("BROKER_TEST_AWS_ENDPOINT").unwrap();
    let missing = format!("{endpoint}/123456789012/no-such-queue");
    let out = dep.producer(&["submit", "s.yaml", "--jobs-queue-url", &missing], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&missing) && stderr.contains("does not exist"),
        "{stderr}"
    );

    let out = dep.producer(&["submit", "s.yaml", "--event-bus", ""], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--event-bus (env BROKER_EVENT_BUS)"),
        "{stderr}"
    );

    // producer run would put workers on this machine into the fleet's queues
    let out = dep.producer(&["run", "s.yaml"], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("producer submit --wait"), "{stderr}");

    // no producer or worker serves this deployment: --wait gives up at its timeout
    let out = dep.producer(&["submit", "s.yaml", "--wait", "--timeout", "1"], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("timed out waiting"), "{stderr}");
}

/// An experiment that pauses 50,000 s (13 h 53 min) after its one action: no SQS lease lasts
/// that long.
fn too_long_for_a_lease() -> Vec<u8> {
    serde_json::json!({"title": "long", "description": "d",
        "method": [{"type": "action", "name": "wait", "pauses": {"after": 50000},
            "provider": {"type": "process", "path": "true", "timeout": 1}}]})
    .to_string()
    .into_bytes()
}

fn jobs_waiting(dep: &Deployment) -> usize {
    let (sdk, settings) = dep.aws.as_ref().unwrap();
    let out = dep
        .rt
        .block_on(
            aws_sdk_sqs::Client::new(sdk)
                .receive_message()
                .queue_url(&settings.jobs_queue_url)
                .visibility_timeout(0)
                .wait_time_seconds(1)
                .send(),
        )
        .unwrap();
    out.messages().len()
}

#[test]
fn a_job_longer_than_the_sqs_lease_limit_is_refused_at_submit_and_when_triggered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dep = Deployment::moto("lease");
    std::fs::write(d.join("long.json"), too_long_for_a_lease()).unwrap();
    std::fs::write(
        d.join("long.yaml"),
        "name: long\nwaves:\n  - experiments: [long.json]\n",
    )
    .unwrap();

    let out = dep.producer(&["submit", "long.yaml"], d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for needle in [
        "long.json: declares 13 h 53 min (50001 s of pauses, timeouts and fault durations)",
        "its lease cannot be extended past 12 h from the first receive",
        "at most 42300 s",
    ] {
        assert!(stderr.contains(needle), "{needle:?} in {stderr}");
    }
    assert!(out.stdout.is_empty(), "no suite run id");
    assert_eq!(
        dep.list("suite-runs"),
        Vec::<String>::new(),
        "nothing stored"
    );
    assert_eq!(jobs_waiting(&dep), 0, "nothing enqueued");

    // the same experiment uploaded with a suite: a rejected suite run, announced, never run
    dep.put("experiments/long.json", &too_long_for_a_lease());
    let serving = producer_serve(&dep, d);
    dep.put(
        "suites/long.yaml",
        b"name: long\nwaves:\n  - experiments: [../experiments/long.json]\n",
    );
    let events = wait_for_suite(&dep, "the rejection", |_| true);
    let done = events
        .iter()
        .find(|e| e["detail-type"] == "Suite Completed")
        .unwrap();
    assert_eq!(done["detail"]["status"], "rejected", "{done}");
    assert!(
        done["detail"]["problems"][0]
            .as_str()
            .unwrap()
            .starts_with("store:experiments/long.json: declares 13 h 53 min"),
        "{done}"
    );
    stop(vec![serving]);
    assert_eq!(jobs_waiting(&dep), 0, "nothing enqueued");
}

#[test]
fn sqs_refusing_a_lease_past_12_hours_is_a_lease_limit_not_a_transient_error() {
    use shared::ports::queue::{JobQueue, QueueError};
    let dep = Deployment::moto("limit");
    let (sdk, settings) = dep.aws.as_ref().unwrap();
    let q = aws::SqsQueue::new(aws_sdk_sqs::Client::new(sdk), &settings.jobs_queue_url);
    assert_eq!(q.max_lease(), Some(Duration::from_secs(43_200)));
    dep.rt.block_on(async {
        q.send_batch(&["job".to_string()]).await.unwrap();
        let got = q
            .receive(1, Duration::from_secs(43_200), Duration::from_secs(1))
            .await
            .unwrap();
        let receipt = &got[0].receipt;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // a second after the first receive, 12 hours more is past the limit
        match q.extend(receipt, Duration::from_secs(43_200)).await {
            Err(QueueError::LeaseLimit { message, .. }) => assert!(
                message.contains("beyond the limit [43200 seconds]"),
                "{message}"
            ),
            other => panic!("expected LeaseLimit, got {other:?}"),
        }
        // the lease still holds: a shorter extension and the ack go through
        q.extend(receipt, Duration::from_secs(60)).await.unwrap();
        q.ack(receipt).await.unwrap();
        // a lease SQS cannot grant at all is refused, not shortened
        let e = q
            .receive(1, Duration::from_secs(43_201), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("longer than SQS allows (43200 s)"),
            "{e}"
        );
    });
}
