//! Broker overhead per job on the embedded backend: submit, lease, fetch, load, journal,
//! completion event, ack, and the producer's completion path (record, count, gate, state,
//! batch ack), measured through the real worker `serve` loop and `ProducerPorts::serve` on an
//! experiment with an empty method (so the engine does nothing but the bookkeeping), one suite
//! run of as many jobs as criterion asks for. Target (DESIGN.md): under 5 ms.
//!
//! `cargo bench -p shared --bench overhead`

use criterion::{Criterion, criterion_group, criterion_main};
use shared::config::Embedded;
use shared::fleet::producer::ProducerPorts;
use shared::fleet::worker::{ServeConfig, WorkerPorts, serve};
use shared::model::suite::{ExperimentRef, OnFailure, Suite, Wave};
use shared::providers::Providers;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn per_job(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let experiment = dir.path().join("empty.json");
    std::fs::write(
        &experiment,
        r#"{"title": "t", "description": "d", "method": []}"#,
    )
    .unwrap();
    let e = rt
        .block_on(Embedded::open(&dir.path().join("state")))
        .unwrap();
    let producer = ProducerPorts {
        jobs: e.jobs.clone(),
        events: e.events.clone(),
        triggers: None,
        bucket: None,
        store: e.store.clone(),
        bus: e.bus.clone(),
        views: Default::default(),
    };
    let mut group = c.benchmark_group("embedded");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("job_lifecycle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                // one suite run of `iters` jobs in one wave: submitted, run by one worker, and
                // every completion handled by the producer until the suite run ends
                let suite = Suite {
                    name: "bench".into(),
                    defaults: Default::default(),
                    strict: false,
                    waves: vec![Wave {
                        experiments: (0..iters)
                            .map(|_| ExperimentRef::File {
                                path: "empty.json".into(),
                            })
                            .collect(),
                        on_failure: OnFailure::Continue,
                        max_parallel: None,
                        skipped: false,
                    }],
                };
                let stop = CancellationToken::new();
                let cfg = ServeConfig {
                    concurrency: 1,
                    visibility: Duration::from_secs(60),
                    wait: Duration::from_millis(20),
                    grace: Duration::from_secs(5),
                    worker_id: "bench".into(),
                };
                let ports = WorkerPorts {
                    jobs: e.jobs.clone(),
                    store: e.store.clone(),
                    bus: e.bus.clone(),
                };
                let started = Instant::now();
                let id = producer.submit(&suite, dir.path()).await.unwrap();
                // the kill switch is read before every job, as in a real worker
                let halt: Arc<dyn shared::fleet::safety::guard::Tripwire> =
                    Arc::new(shared::fleet::safety::guard::StoreHalt(e.store.clone()));
                let worker = tokio::spawn(serve(
                    cfg,
                    ports,
                    Arc::new(Providers::default()),
                    vec![halt],
                    stop.clone().cancelled_owned(),
                ));
                let ended = CancellationToken::new();
                let done = ended.clone();
                producer
                    .serve(ended.clone(), move |s| {
                        if s == id {
                            done.cancel()
                        }
                    })
                    .await;
                let elapsed = started.elapsed();
                stop.cancel();
                worker.await.unwrap();
                elapsed
            })
        })
    });
    group.finish();
}

criterion_group!(benches, per_job);
criterion_main!(benches);
