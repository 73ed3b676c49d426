//! The open-model HTTP load generator: requests at a constant arrival rate, each at its
//! intended send time whatever became of the earlier ones, latency measured from that
//! intended time (so a slow server is not hidden by a generator that waits for it: no
//! coordinated omission).
//!
//! It runs on a thread of its own with its own single-threaded Tokio runtime, so its timing
//! does not depend on what else the worker's runtime is doing, and the worker's other work does
//! not wait behind thousands of requests a second. Dropping the future `run` returns (the
//! activity interrupted) cancels it: scheduling stops and the requests in flight are dropped
//! with the runtime.
//!
//! Scheduling: request `i` is due at `start + i / rate`. The scheduler sleeps until the next
//! due time, then sends every request that is due (a late wake-up sends the backlog at once;
//! its lag counts in each request's latency). A due request finds a free slot among
//! `max_in_flight` or is not sent and recorded `missed`. Each request's record goes to the
//! run's memory as it ends (see `records`).

use super::plan::Plan;
use super::records::{Log, Outcome, Record, latency_summary, ms};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, oneshot};
use tokio_util::sync::CancellationToken;

/// How much of an answer's body is read (and dropped) before the connection is closed.
const BODY_LIMIT: usize = 1024 * 1024;

/// What a finished generator reports (the action's output is `summary.output()`).
#[derive(Debug, Clone)]
pub struct Summary {
    pub plan: Plan,
    pub records: Vec<Record>,
    /// How late the scheduler sent each sent request, microseconds.
    pub lags_us: Vec<u32>,
    /// From the first intended send time to the last request's end.
    pub elapsed: Duration,
    /// From the first intended send time to the last send, plus one interval: the time the
    /// requests sent took to send (`achieved_rate` is sent / this).
    pub sending: Duration,
    /// The generator thread's time on a CPU (Linux: `/proc/thread-self/schedstat`).
    pub cpu: Option<Duration>,
}

/// Run `plan`, recording into `log`; resolves when every request has ended, or with an error
/// when the generator could not start. Dropping the future stops the generator.
pub async fn run(plan: Plan, log: Arc<Log>) -> Result<Summary, String> {
    let stop = CancellationToken::new();
    let _stop_on_drop = stop.clone().drop_guard();
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("load-generator".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("the load generator's runtime could not start: {e}"))
                .and_then(|rt| rt.block_on(generate(plan, log, stop)));
            let _ = tx.send(result);
        })
        .map_err(|e| format!("the load generator's thread could not start: {e}"))?;
    rx.await
        .map_err(|_| "the load generator stopped without a result".to_string())?
}

fn unix_us(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX - 1)
}

/// The calling thread's CPU time, where the OS tells it.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

async fn generate(plan: Plan, log: Arc<Log>, stop: CancellationToken) -> Result<Summary, String> {
    let client = reqwest::Client::builder()
        .timeout(plan.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(plan.max_in_flight)
        .build()
        .map_err(|e| format!("the load generator's HTTP client could not be built: {e}"))?;
    let cpu_before = thread_cpu();
    let slots = Arc::new(Semaphore::new(plan.max_in_flight));
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let mut lags_us = Vec::with_capacity(plan.requests.min(1 << 20) as usize);
    let start = Instant::now();
    let wall_start = SystemTime::now();
    let due = |i: u64| start + interval.mul_f64(i as f64);
    let intended_us = |at: Instant| unix_us(wall_start + (at - start));
    let mut next = 0u64;
    let mut last_send = start;
    'schedule: while next < plan.requests {
        let at = due(next);
        if Instant::now() < at {
            tokio::select! {
                _ = tokio::time::sleep_until(at.into()) => {}
                _ = stop.cancelled() => break 'schedule,
            }
        }
        let now = Instant::now();
        while next < plan.requests && due(next) <= now {
            let intended = due(next);
            next += 1;
            match slots.clone().try_acquire_owned() {
                Ok(slot) => {
                    last_send = now;
                    lags_us.push(micros(now - intended));
                    let (client, url, log) = (client.clone(), plan.url.clone(), log.clone());
                    let intended_at = intended_us(intended);
                    tokio::spawn(async move {
                        let outcome = request(&client, url).await;
                        log.push(Record {
                            intended_us: intended_at,
                            latency_us: micros(intended.elapsed()),
                            outcome,
                        });
                        drop(slot);
                    });
                }
                Err(_) => log.push(Record {
                    intended_us: intended_us(intended),
                    latency_us: u32::MAX,
                    outcome: Outcome::Missed,
                }),
            }
        }
    }
    // every slot back: every request sent has ended (each is bounded by the timeout)
    tokio::select! {
        _ = slots.acquire_many(plan.max_in_flight as u32) => {}
        _ = stop.cancelled() => {}
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Summary {
        records: log.all(),
        plan,
        lags_us,
        elapsed,
        sending: (last_send - start) + interval,
        cpu,
    })
}

/// One request: its answer's status once the body is read (up to `BODY_LIMIT`), or why not.
async fn request(client: &reqwest::Client, url: url::Url) -> Outcome {
    let classify = |e: reqwest::Error| {
        if e.is_timeout() {
            Outcome::Timeout
        } else {
            Outcome::Failed
        }
    };
    let mut response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => return classify(e),
    };
    let status = response.status().as_u16();
    let mut read = 0usize;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                if read > BODY_LIMIT {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return classify(e),
        }
    }
    Outcome::Status(status)
}

impl Summary {
    /// The action's output: what the seed's experiments read (`response_time` avg/max/min in
    /// milliseconds, `error_count`) and more.
    pub fn output(&self) -> Value {
        let mut status_counts = Map::new();
        let (mut sent, mut missed, mut answered, mut errors) = (0u64, 0u64, 0u64, 0u64);
        let mut latencies = Vec::with_capacity(self.records.len());
        for r in &self.records {
            let key = r.outcome.key();
            let n = status_counts.get(&key).and_then(Value::as_u64).unwrap_or(0);
            status_counts.insert(key, json!(n + 1));
            match r.outcome {
                Outcome::Missed => missed += 1,
                Outcome::Status(_) => {
                    sent += 1;
                    answered += 1;
                    latencies.push(r.latency_us);
                }
                Outcome::Timeout | Outcome::Failed => sent += 1,
            }
            if !r.outcome.is_success() {
                errors += 1;
            }
        }
        let seconds = self.elapsed.as_secs_f64();
        let per_second = |n: u64, over: Duration| {
            let s = over.as_secs_f64();
            if s > 0.0 {
                (n as f64 / s * 10.0).round() / 10.0
            } else {
                0.0
            }
        };
        let mut lags = self.lags_us.clone();
        lags.sort_unstable();
        let lag = |q| super::records::quantile(&lags, q).map(|v| ms(f64::from(v)));
        json!({
            "target": self.plan.url.as_str(),
            "rate": self.plan.rate,
            "duration": self.plan.duration.as_secs_f64(),
            "scheduled": self.plan.requests,
            "sent": sent,
            "missed": missed,
            "unsent": self.plan.requests.saturating_sub(sent + missed),
            "answered": answered,
            "error_count": errors,
            "response_time": latency_summary(latencies),
            "throughput": per_second(answered, self.elapsed),
            "achieved_rate": per_second(sent, self.sending),
            "status_counts": status_counts,
            "elapsed": (seconds * 1000.0).round() / 1000.0,
            "generator": {
                "cpu_seconds": self.cpu.map(|d| (d.as_secs_f64() * 1e6).round() / 1e6),
                "cpu_us_per_request": self.cpu.filter(|_| sent > 0)
                    .map(|d| (d.as_secs_f64() * 1e6 / sent as f64 * 10.0).round() / 10.0),
                "schedule_lag_ms": {"p50": lag(0.5), "p99": lag(0.99), "max": lags.last().map(|&v| ms(f64::from(v)))},
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_counts_each_request_once_by_what_became_of_it() {
        let plan = super::super::plan::plan(
            super::super::plan::Action::Generate,
            json!({"load": "http://127.0.0.1:1/", "count": 10, "duration": 1})
                .as_object()
                .unwrap(),
            &Map::new(),
        )
        .unwrap();
        let record = |i: i64, latency_us: u32, outcome| Record {
            intended_us: i * 100_000,
            latency_us,
            outcome,
        };
        let records = vec![
            record(0, 2_000, Outcome::Status(200)),
            record(1, 4_000, Outcome::Status(200)),
            record(2, 6_000, Outcome::Status(503)),
            record(3, 10_000_000, Outcome::Timeout),
            record(4, 500, Outcome::Failed),
            record(5, u32::MAX, Outcome::Missed),
        ];
        let summary = Summary {
            plan,
            records,
            lags_us: vec![100, 200, 300, 400, 5_000],
            elapsed: Duration::from_secs(2),
            sending: Duration::from_millis(500),
            cpu: Some(Duration::from_millis(1)),
        };
        let out = summary.output();
        assert_eq!(
            (
                &out["scheduled"],
                &out["sent"],
                &out["missed"],
                &out["unsent"]
            ),
            (&json!(10), &json!(5), &json!(1), &json!(4))
        );
        assert_eq!(out["answered"], 3);
        assert_eq!(out["error_count"], 4, "503, timeout, failure, missed");
        assert_eq!(
            out["status_counts"],
            json!({"200": 2, "503": 1, "timeout": 1, "error": 1, "missed": 1})
        );
        assert_eq!(
            out["response_time"],
            json!({"avg": 4.0, "min": 2.0, "max": 6.0, "p50": 4.0, "p90": 6.0, "p99": 6.0}),
            "answered requests only, in milliseconds"
        );
        assert_eq!(out["achieved_rate"], 10.0, "5 sent in 0.5 s");
        assert_eq!(out["throughput"], 1.5, "3 answers in 2 s");
        assert_eq!(out["generator"]["cpu_us_per_request"], 200.0);
        assert_eq!(
            out["generator"]["schedule_lag_ms"],
            json!({"p50": 0.3, "p99": 5.0, "max": 5.0})
        );
    }
}
