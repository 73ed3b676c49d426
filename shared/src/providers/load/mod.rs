//! Native HTTP load: the seed's `experimentvr.load.actions` (`load_generate`,
//! `load_generate_demo`, stubs in the seed) generating real load, and
//! `experimentvr.load.probes` (`load_probe_absolute`, `load_probe_relative`) judging it.
//!
//! It needs no AWS, so it lives beside the `http` provider and is registered into the native
//! registry by whoever builds it (`register`); the engine knows nothing of it. The generator
//! and the probes of one run meet in the run's memory (`RunLoads` in
//! `providers::memory::RunMemory`), never in a process-wide table.
//!
//! - `plan`: the seed's arguments → target URL, rate, duration (the mapping is documented there).
//! - `generator`: the open-model generator (constant arrival rate, latency from the intended
//!   send time) on a thread of its own.
//! - `records`: a record per request, the run's records, the statistics.
//! - `probes`: the SLA verdict over a time window.
//!
//! Run a generator in the background of the method with `background: true` on the action; the
//! probes after it then judge the requests sent so far.

pub mod generator;
pub mod plan;
pub mod probes;
pub mod records;

use super::ActivityError;
use super::registry::{NativeActivity, NativeCall, Param, Registry};
use plan::Action;
use probes::Window;
use records::{Log, RunLoads};
use serde_json::{Value, json};
use std::sync::Arc;

pub const ACTIONS: &str = "experimentvr.load.actions";
pub const PROBES: &str = "experimentvr.load.probes";

/// Register the load actions and probes under the seed's names.
pub fn register(registry: &mut Registry) {
    let options = [
        Param::optional("timeout").of(plan::TIMEOUT),
        Param::optional("max_in_flight").of(plan::IN_FLIGHT),
    ];
    let mut generate = vec![
        Param::optional("load").of(plan::URL),
        Param::optional("count").of(plan::RATE),
        Param::optional("duration").of(plan::DURATION),
        Param::optional("requests").of(plan::REQUESTS),
    ];
    generate.extend(options);
    registry.register(
        ACTIONS,
        "load_generate",
        NativeActivity::new(generate, |call| run(Action::Generate, call)),
    );
    let mut demo = vec![
        Param::required("target").of(plan::HOST_OR_URL),
        Param::required("intensity").of(plan::RATE),
        Param::optional("load_duration").of(plan::DURATION),
    ];
    demo.extend(options);
    registry.register(
        ACTIONS,
        "load_generate_demo",
        NativeActivity::new(demo, |call| run(Action::Demo, call)),
    );
    let judged = [
        Param::required("sla").of(probes::SLA),
        Param::required("missed_percent").of(probes::PERCENT),
    ];
    let mut absolute = vec![
        Param::required("testday"),
        Param::required("teststart").of(probes::TIME),
        Param::required("testend").of(probes::TIME),
    ];
    absolute.extend(judged);
    registry.register(
        PROBES,
        "load_probe_absolute",
        NativeActivity::new(absolute, |call| probe(Window::Absolute, call)),
    );
    let mut relative = vec![
        Param::required("testday"),
        Param::required("minutes").of(probes::MINUTES),
    ];
    relative.extend(judged);
    registry.register(
        PROBES,
        "load_probe_relative",
        NativeActivity::new(relative, |call| probe(Window::Relative, call)),
    );
}

async fn run(action: Action, call: NativeCall) -> Result<Value, ActivityError> {
    let plan =
        plan::plan(action, &call.arguments, &call.configuration).map_err(ActivityError::Failed)?;
    tracing::info!(
        "{}: {} requests/s to {} for {:.1} s ({} requests, at most {} in flight)",
        action.name(),
        plan.rate,
        plan.url,
        plan.duration.as_secs_f64(),
        plan.requests,
        plan.max_in_flight
    );
    let log = Arc::new(Log::with_capacity(plan.requests.min(1 << 20) as usize));
    call.memory.get::<RunLoads>().add(log.clone());
    let summary = generator::run(plan, log)
        .await
        .map_err(ActivityError::Failed)?;
    let output = summary.output();
    tracing::info!(
        "{}: {} sent, {} missed, {} errors, {} answers/s",
        action.name(),
        output["sent"],
        output["missed"],
        output["error_count"],
        output["throughput"]
    );
    Ok(output)
}

async fn probe(window: Window, call: NativeCall) -> Result<Value, ActivityError> {
    let (from, to, sla, allowed) =
        probes::window(window, &call.arguments).map_err(ActivityError::Failed)?;
    let loads = call.memory.get::<RunLoads>();
    let verdict = probes::judge(&loads, from, to, sla, allowed).map_err(ActivityError::Failed)?;
    tracing::info!(
        "{} of {} requests ({} %) missed the {sla} ms SLA; passes under {allowed} %: {}",
        verdict.missed,
        verdict.total,
        verdict.missed_percent,
        verdict.passed
    );
    Ok(json!(verdict.passed))
}
