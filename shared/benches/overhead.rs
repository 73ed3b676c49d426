//! Broker overhead per job on the embedded backend: lease, fetch, load, journal, completion
//! event, ack, measured through the real `shared::serve` loop on an experiment with an empty
//! method (so the engine does nothing but the bookkeeping). Target (DESIGN.md): under 5 ms.
//!
//! `cargo bench -p shared --bench overhead`

use criterion::{Criterion, criterion_group, criterion_main};
use shared::config::Embedded;
use shared::fleet::worker::{ServeConfig, WorkerPorts, serve};
use shared::model::suite::Job;
use shared::ports::JobQueue;
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
    let mut next = 0u64;
    let mut group = c.benchmark_group("embedded");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("job_lifecycle", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let bodies: Vec<String> = (0..iters)
                    .map(|_| {
                        next += 1;
                        serde_json::to_string(&Job {
                            version: Job::VERSION,
                            suite_run_id: "bench".into(),
                            wave: 0,
                            run_id: format!("r{next}"),
                            experiment_source: experiment.to_string_lossy().into_owned(),
                            bucket_name: None,
                            experiment_version: None,
                            traceparent: None,
                            settings: Default::default(),
                        })
                        .unwrap()
                    })
                    .collect();
                for chunk in bodies.chunks(100) {
                    e.jobs.send_batch(chunk).await.unwrap();
                }
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
                let mut seen = 0;
                while seen < iters {
                    let got = e
                        .events
                        .receive(10, Duration::from_secs(60), Duration::from_millis(20))
                        .await
                        .unwrap();
                    for m in got {
                        e.events.ack(&m.receipt).await.unwrap();
                        seen += 1;
                    }
                }
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
