//! The load generator's own records: one per request (its intended send time, what became of
//! it, how long it took from the intended time), kept in the run's memory so the load probes of
//! the same run judge a time window from them; and the statistics the actions report.

use std::sync::{Arc, Mutex};

/// What became of one scheduled request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with this HTTP status.
    Status(u16),
    /// No answer within the request's timeout.
    Timeout,
    /// Connecting, sending or reading failed.
    Failed,
    /// Not sent: `max_in_flight` requests were awaiting an answer at its intended time.
    Missed,
}

impl Outcome {
    /// An answer that counts as served: 1xx, 2xx or 3xx.
    pub fn is_success(self) -> bool {
        matches!(self, Outcome::Status(s) if s < 400)
    }

    /// The key of `status_counts` this outcome is counted under.
    pub fn key(self) -> String {
        match self {
            Outcome::Status(s) => s.to_string(),
            Outcome::Timeout => "timeout".into(),
            Outcome::Failed => "error".into(),
            Outcome::Missed => "missed".into(),
        }
    }
}

/// One request (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Intended send time, microseconds since the Unix epoch.
    pub intended_us: i64,
    /// From the intended send time to the whole answer (or the failure), microseconds;
    /// `u32::MAX` when never sent.
    pub latency_us: u32,
    pub outcome: Outcome,
}

impl Record {
    /// Whether the request missed an SLA of `sla_us`: not served, or served later than that.
    pub fn missed_sla(&self, sla_us: u64) -> bool {
        !self.outcome.is_success() || u64::from(self.latency_us) > sla_us
    }
}

/// One generator's records, appended as requests end.
#[derive(Debug, Default)]
pub struct Log {
    records: Mutex<Vec<Record>>,
}

impl Log {
    pub fn with_capacity(n: usize) -> Self {
        Log {
            records: Mutex::new(Vec::with_capacity(n)),
        }
    }

    pub fn push(&self, record: Record) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(record);
    }

    /// Every record whose intended send time is within `[from_us, to_us]`.
    pub fn within(&self, from_us: i64, to_us: i64) -> Vec<Record> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records
            .iter()
            .filter(|r| r.intended_us >= from_us && r.intended_us <= to_us)
            .copied()
            .collect()
    }

    pub fn all(&self) -> Vec<Record> {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The run's generators (a `RunMemory` value): the probes read every one of them.
#[derive(Debug, Default)]
pub struct RunLoads {
    logs: Mutex<Vec<Arc<Log>>>,
}

impl RunLoads {
    /// Add a generator's log (before it sends anything).
    pub fn add(&self, log: Arc<Log>) {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(log);
    }

    /// How many generators this run started.
    pub fn generators(&self) -> usize {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The records of every generator of the run within `[from_us, to_us]`.
    pub fn within(&self, from_us: i64, to_us: i64) -> Vec<Record> {
        let logs = self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        logs.iter().flat_map(|l| l.within(from_us, to_us)).collect()
    }
}

/// The value at quantile `q` (0..=1) of sorted values: the smallest value with at least `q` of
/// them at or below it (nearest rank).
pub fn quantile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Milliseconds from microseconds, to the microsecond.
pub fn ms(us: f64) -> f64 {
    us.round() / 1000.0
}

/// `{avg, min, max, p50, p90, p99}` in milliseconds of `latencies_us` (sorted here), or nulls.
pub fn latency_summary(mut latencies_us: Vec<u32>) -> serde_json::Value {
    latencies_us.sort_unstable();
    let q = |p| quantile(&latencies_us, p).map(|v| ms(f64::from(v)));
    let avg = (!latencies_us.is_empty()).then(|| {
        let sum: u64 = latencies_us.iter().map(|&v| u64::from(v)).sum();
        ms(sum as f64 / latencies_us.len() as f64)
    });
    serde_json::json!({
        "avg": avg,
        "min": latencies_us.first().map(|&v| ms(f64::from(v))),
        "max": latencies_us.last().map(|&v| ms(f64::from(v))),
        "p50": q(0.50),
        "p90": q(0.90),
        "p99": q(0.99),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantiles_are_nearest_rank() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.9), Some(90));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&v, 1.0), Some(100));
        assert_eq!(quantile(&[7], 0.99), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn the_summary_is_in_milliseconds_and_null_without_answers() {
        let s = latency_summary(vec![3000, 1000, 2000, 10_500]);
        assert_eq!(
            s,
            json!({"avg": 4.125, "min": 1.0, "max": 10.5, "p50": 2.0, "p90": 10.5, "p99": 10.5})
        );
        assert!(latency_summary(vec![])["avg"].is_null());
    }

    #[test]
    fn a_request_misses_the_sla_when_late_or_not_served() {
        let r = |latency_us, outcome| Record {
            intended_us: 0,
            latency_us,
            outcome,
        };
        assert!(!r(250_000, Outcome::Status(200)).missed_sla(250_000));
        assert!(r(250_001, Outcome::Status(200)).missed_sla(250_000));
        assert!(r(10, Outcome::Status(503)).missed_sla(250_000));
        assert!(r(10, Outcome::Failed).missed_sla(250_000));
        assert!(r(u32::MAX, Outcome::Missed).missed_sla(250_000));
        assert!(!r(10, Outcome::Status(302)).missed_sla(250_000));
    }

    #[test]
    fn the_run_reads_every_generators_records_within_the_window() {
        let loads = RunLoads::default();
        for start in [0, 1_000] {
            let log = Arc::new(Log::default());
            for t in [start, start + 10, start + 20] {
                log.push(Record {
                    intended_us: t,
                    latency_us: 1,
                    outcome: Outcome::Status(200),
                });
            }
            loads.add(log);
        }
        assert_eq!(loads.generators(), 2);
        let got: Vec<i64> = loads
            .within(10, 1_010)
            .iter()
            .map(|r| r.intended_us)
            .collect();
        assert_eq!(got, vec![10, 20, 1_000, 1_010]);
    }
}
