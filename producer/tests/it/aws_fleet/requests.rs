//! What a job costs on AWS, read from moto's request recording (`BROKER_TEST_MOTO_RECORDING`,
//! which `scripts/test.sh` has moto keep): every SQS, S3 and EventBridge request the producer
//! and the workers sent for a suite uploaded to the bucket, from the upload to "Suite
//! Completed", per job (at most 12: issue 13's target); and the bytes written to S3 per job,
//! which must not grow with the suite. `docs/scale.md` lists the requests per job stage
//! from this test's table.

use crate::util::Deployment;
use crate::util::scenarios::{experiment, producer_serve, stop};
use crate::util::worker_bin;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};

/// Requests per job allowed (issue 13): in the 100-job suite, and what each job past the 20th
/// adds (the suite's own requests, idle long polls above all, are shared by its jobs: 20 jobs
/// pay more each). What a job needs (docs/scale.md): the worker's receive, kill-switch read,
/// `started` marker, experiment fetch, one checkpoint, journal, event, `completed` marker and
/// ack, the producer's record and its share of event receives, deletes and sends.
const MAX_REQUESTS_PER_JOB: f64 = 12.0;

/// The 20-job suite, fixed costs included (13.45 before the experiment copy went, 2026-12-01).
const MAX_REQUESTS_PER_JOB_SMALL_SUITE: f64 = 13.0;

/// Every line of the recording (one JSON object per request), from line `from` on.
fn recording(from: usize) -> Vec<Value> {
    let path = std::env::var("BROKER_TEST_MOTO_RECORDING").unwrap_or_else(|_| {
        panic!(
            "BROKER_TEST_MOTO_RECORDING is not set: run the tests through scripts/test.sh, which \
             starts moto with MOTO_ENABLE_RECORDING and says where the recording is"
        )
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .skip(from)
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn lines_so_far() -> usize {
    recording(0).len()
}

/// Standard base64 (moto records every body so), without a crate for one test.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(v) = ALPHABET.iter().position(|a| *a == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// One request: its operation (`SQS ReceiveMessage`, `S3 PUT journal.json`, ...) and, for an
/// S3 PUT, the bytes written.
fn operation(r: &Value) -> (String, u64) {
    let headers = &r["headers"];
    let header = |name: &str| {
        headers
            .as_object()
            .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_string)
    };
    if let Some(target) = header("X-Amz-Target") {
        let (service, op) = target.split_once('.').unwrap_or(("?", &target));
        let service = if service.starts_with("AmazonSQS") {
            "SQS"
        } else if service.starts_with("AWSEvents") {
            "EventBridge"
        } else {
            service
        };
        return (format!("{service} {op}"), 0);
    }
    let url = r["url"].as_str().unwrap_or_default();
    let path = url.split('?').next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    // the store's keys by what they are: runs/<suite>/<run>/<name>, suite-runs/<suite>/...
    let object = if path.contains("/completions/") {
        "completions/<run>.json"
    } else if path.contains("/experiments/") {
        "experiments/*"
    } else if path.contains("/suites/") {
        "suites/*"
    } else {
        match last {
            "started" | "experiment" | "checkpoint.json" | "journal.json" | "completed"
            | "plan.json" | "state.json" => last,
            "halt" => "control/halt (kill switch)",
            _ => "other",
        }
    };
    let method = r["method"].as_str().unwrap_or("?");
    let bytes = if method == "PUT" {
        header("x-amz-decoded-content-length")
            .or_else(|| header("Content-Length"))
            .and_then(|l| l.parse().ok())
            .unwrap_or(0)
    } else {
        0
    };
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let method = if method == "GET" && query.contains("list-type") {
        "LIST"
    } else {
        method
    };
    (format!("S3 {method} {object}"), bytes)
}

/// The requests of deployment `prefix` (its queues, bucket and bus; not the test's audit
/// queue) in `records`, by operation, and the bytes PUT to S3.
fn tally(records: &[Value], prefix: &str) -> (BTreeMap<String, u64>, u64) {
    let mut ops = BTreeMap::new();
    let mut bytes = 0;
    for r in records {
        let body = match r["body"].as_str() {
            Some(b) if r["body_encoded"] == true => {
                String::from_utf8_lossy(&base64_decode(b)).into_owned()
            }
            Some(b) => b.to_string(),
            None => String::new(),
        };
        let url = r["url"].as_str().unwrap_or_default();
        let host = r["headers"]["Host"].as_str().unwrap_or_default();
        let ours = url.contains(prefix) || host.contains(prefix) || body.contains(prefix);
        if !ours || body.contains(&format!("{prefix}-audit")) || url.contains("-audit") {
            continue;
        }
        let (op, written) = operation(r);
        *ops.entry(op).or_insert(0) += 1;
        bytes += written;
    }
    (ops, bytes)
}

/// `worker serve` as `infra/` deploys it but one job at a time: a 300 s lease.
fn worker(dep: &Deployment, dir: &Path) -> Child {
    dep.command(worker_bin(), dir)
        .args(["serve", "--concurrency", "1", "--visibility-timeout", "300"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Run a suite of `jobs` trivial jobs (one wave) uploaded to the bucket, with a producer and
/// two workers; the requests it took, by operation, and the bytes written to S3.
fn run_suite(name: &str, jobs: usize, d: &Path) -> (BTreeMap<String, u64>, u64) {
    let dep = Deployment::moto(name);
    experiment(d, "trivial.json", "true", "no-flag", "true");
    dep.put(
        "experiments/trivial.json",
        &std::fs::read(d.join("trivial.json")).unwrap(),
    );
    let prefix = dep
        .aws
        .as_ref()
        .unwrap()
        .1
        .bucket
        .trim_end_matches("-bucket")
        .to_string();
    let serving = producer_serve(&dep, d);
    let workers = vec![worker(&dep, d), worker(&dep, d)];
    // (leases as deployed: a short job needs no heartbeat)
    let refs = vec!["../experiments/trivial.json"; jobs].join(", ");
    let from = lines_so_far();
    dep.put(
        &format!("suites/{name}.yaml"),
        format!("name: {name}\nwaves:\n  - experiments: [{refs}]\n    on_failure: continue\n")
            .as_bytes(),
    );
    let events = dep.audit_until("the suite's completion", |events| {
        events.iter().any(|e| e["detail-type"] == "Suite Completed")
    });
    let done = events
        .iter()
        .find(|e| e["detail-type"] == "Suite Completed")
        .unwrap();
    assert_eq!(done["detail"]["outcome"], "held", "{done}");
    let mut all = workers;
    all.push(serving);
    stop(all);
    let (mut ops, bytes) = tally(&recording(from), &prefix);
    // the test's own upload of the suite is not the fleet's
    if let Some(n) = ops.get_mut("S3 PUT suites/*") {
        *n -= 1;
    }
    ops.retain(|_, n| *n > 0);
    (ops, bytes)
}

#[test]
fn a_job_costs_at_most_12_requests_and_the_same_s3_bytes_whatever_the_suites_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut per_job = Vec::new();
    let mut totals = Vec::new();
    for jobs in [20usize, 100] {
        let d = dir.path().join(jobs.to_string());
        std::fs::create_dir_all(&d).unwrap();
        let (ops, bytes) = run_suite(&format!("reqs{jobs}"), jobs, &d);
        let total: u64 = ops.values().sum();
        let requests = total as f64 / jobs as f64;
        let table: Vec<String> = ops
            .iter()
            .map(|(op, n)| format!("  {op:<40} {n:>5}  {:>6.2}/job", *n as f64 / jobs as f64))
            .collect();
        eprintln!(
            "{jobs} jobs: {total} requests ({requests:.2}/job), {bytes} bytes written to S3 \
             ({:.0}/job)\n{}",
            bytes as f64 / jobs as f64,
            table.join("\n")
        );
        let max = if jobs < 100 {
            MAX_REQUESTS_PER_JOB_SMALL_SUITE
        } else {
            MAX_REQUESTS_PER_JOB
        };
        assert!(
            requests <= max,
            "{jobs} jobs: {requests:.2} requests per job, over {max}:\n{}",
            table.join("\n")
        );
        per_job.push(bytes as f64 / jobs as f64);
        totals.push(total as f64);
    }
    let marginal = (totals[1] - totals[0]) / 80.0;
    eprintln!("each job past the 20th: {marginal:.2} requests");
    assert!(
        marginal <= MAX_REQUESTS_PER_JOB,
        "each job past the 20th costs {marginal:.2} requests, over {MAX_REQUESTS_PER_JOB}"
    );
    // constant per job: the 100-job suite writes no more per job than the 20-job one (within
    // 10 %: the suite's own documents are shared by more jobs, the state is one small object)
    assert!(
        per_job[1] <= per_job[0] * 1.1,
        "S3 bytes per job grew with the suite: {:.0} at 20 jobs, {:.0} at 100",
        per_job[0],
        per_job[1]
    );
}
