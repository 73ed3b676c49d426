//! The load generator's benchmark: hold a constant arrival rate (default 2,000 requests/s for
//! 10 s) against a local HTTP server on 127.0.0.1 (a thread per connection, in this process)
//! and report what the generator itself measures: the rate achieved, the answers' latency from
//! the intended send times, its own CPU time per request and how late its scheduler sent
//! (lag p50/p99). A benchmark, not a test: it reports and never fails on a figure.
//!
//! `cargo bench -p shared --bench load` (release); `bench/load.sh` wraps it.
//! `BENCH_LOAD_RATE`, `BENCH_LOAD_SECONDS`, `BENCH_LOAD_IN_FLIGHT` change the plan.

#[path = "../tests/it/load_server.rs"]
mod load_server;

use serde_json::{Value, json};
use shared::providers::registry::{NativeCall, Registry};

fn setting(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names something else skips this bench
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && a != "load")
    {
        return;
    }
    let rate = setting("BENCH_LOAD_RATE", 2000.0);
    let seconds = setting("BENCH_LOAD_SECONDS", 10.0);
    let in_flight = setting("BENCH_LOAD_IN_FLIGHT", 1000.0);
    let server = load_server::LoadServer::start();
    let mut registry = Registry::new();
    shared::providers::load::register(&mut registry);
    let generate = registry
        .get("experimentvr.load.actions", "load_generate")
        .expect("load_generate is registered");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let arguments = json!({"load": server.url("/"), "count": rate, "duration": seconds,
        "max_in_flight": in_flight});
    let out: Value = rt
        .block_on(generate.call(NativeCall {
            arguments: arguments.as_object().unwrap().clone(),
            ..NativeCall::default()
        }))
        .expect("the generator ran");
    let g = &out["generator"];
    let rt_ms = &out["response_time"];
    println!("load generator, {rate} requests/s for {seconds} s against 127.0.0.1");
    println!(
        "| target rate | achieved rate | sent | missed | errors | latency p50 / p99 / max ms | CPU µs/request | lag p50 / p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {rate} | {} | {} | {} | {} | {} / {} / {} | {} | {} / {} |",
        out["achieved_rate"],
        out["sent"],
        out["missed"],
        out["error_count"],
        rt_ms["p50"],
        rt_ms["p99"],
        rt_ms["max"],
        g["cpu_us_per_request"],
        g["schedule_lag_ms"]["p50"],
        g["schedule_lag_ms"]["p99"],
    );
    println!(
        "server answered {}",
        server.answered.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
