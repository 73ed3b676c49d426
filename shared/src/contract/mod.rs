//! Contract tests: one `pub async fn` per promise a port makes, run against every adapter.
//!
//! An adapter's test file builds a fixture and expands a macro (`queue_contract!`,
//! `store_contract!`, `bus_contract!`) into one `#[tokio::test]` per promise, as apalis and
//! ripgrep do. Waits are on conditions with deadlines, never fixed sleeps; each test uses a
//! fresh queue, store prefix or subscription, so tests run in parallel.

pub mod bus;
pub mod queue;
pub mod store;

use crate::ports::queue::{JobQueue, Message};
use std::future::Future;
use std::time::{Duration, Instant};

/// Poll `check` until it yields `Some`, or panic with `what` after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The next message on `q`, leased for `visibility`, waiting up to 10 s for it.
pub async fn next_message<Q: JobQueue + Clone>(q: &Q, visibility: Duration, what: &str) -> Message {
    eventually(Duration::from_secs(10), what, || {
        let q = q.clone();
        async move {
            q.receive(1, visibility, Duration::from_millis(200))
                .await
                .unwrap()
                .pop()
        }
    })
    .await
}
