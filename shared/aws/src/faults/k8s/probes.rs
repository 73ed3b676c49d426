//! `experimentvr.k8s.probes`, read from the Kubernetes API (read-only; they never act):
//!
//! - `assert_pod_healthy(cluster_name, pod_name, namespace, region)`: true when at least one
//!   pod of the namespace whose name contains `pod_name` has every container ready, started
//!   and running (the seed looks at the last container only).
//! - `assert_pod_rebuilt(cluster_name, pod_name, namespace, region)`: true when more than one
//!   such pod is `Ready` (the seed's rule); if not yet, it watches the namespace's pods
//!   (`watch=true`) for up to `timeout` seconds (default 60; 0: look once, as the seed) and
//!   answers as soon as the rule holds.
//! - `pod_healthy(region, tag_key, tag_value, health_check_port, health_check_path,
//!   name_space, cluster_name, output_s3_bucket_name, pod_name_pattern)`: the seed runs
//!   `PodHealthCheck` on a node (curl to each pod); here every running pod whose name contains
//!   the pattern must be `Ready`, and when `health_check_port` is given must answer
//!   `GET http://<pod IP>:<port>/<path>` with a 2xx from the worker (which then must reach the
//!   pod network, as in-cluster or in-VPC workers do). `tag_key`/`tag_value` (the node the
//!   seed ran its check on) and `output_s3_bucket_name` are accepted and not needed.
//! - `assert_service_on_pod_running(process_name, container_name_pattern, ...)`: true when
//!   every container whose name the pattern finds (in `namespace`, else every namespace) is
//!   running and ready. The seed checks the process inside the container over SSM; the API
//!   cannot see processes, so `process_name` is reported, not checked.

use super::args::{namespace, required, text, whole};
use super::connect::{ClusterRef, connect};
use super::objects::Pod;
use crate::faults::FaultContext;
use serde_json::{Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use std::sync::Arc;
use std::time::Duration;

const MODULE: &str = "experimentvr.k8s.probes";

fn fail(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::Failed(e.to_string())
}

/// Every container ready, started and running.
pub fn healthy(pod: &Pod) -> bool {
    let statuses = &pod.status.container_statuses;
    !statuses.is_empty()
        && statuses
            .iter()
            .all(|s| s.ready && s.started.unwrap_or(true) && s.running())
}

fn pods_path(ns: &str) -> [&str; 5] {
    ["api", "v1", "namespaces", ns, "pods"]
}

async fn assert_healthy(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let cluster = ClusterRef::from_call(&call).map_err(fail)?;
    let ns = namespace(&call.arguments).map_err(fail)?;
    let name = required(&call.arguments, "pod_name", "\"web\"").map_err(fail)?;
    let kube = connect(ctx, &call, &cluster).await.map_err(fail)?;
    let (pods, _) = kube.list::<Pod>(&pods_path(&ns), &[]).await.map_err(fail)?;
    let ready = pods
        .iter()
        .filter(|p| p.metadata.name.contains(&name) && healthy(p))
        .count();
    tracing::info!("  assert_pod_healthy: {ready} healthy pod(s) named *{name}* in {ns}");
    Ok(json!(ready > 0))
}

/// The seed's rebuilt rule: more than one `Ready` pod named `*name*`.
fn rebuilt(pods: &[Pod], name: &str) -> bool {
    pods.iter()
        .filter(|p| p.metadata.name.contains(name) && !p.terminating() && p.ready())
        .count()
        > 1
}

async fn assert_rebuilt(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let cluster = ClusterRef::from_call(&call).map_err(fail)?;
    let ns = namespace(&call.arguments).map_err(fail)?;
    let name = required(&call.arguments, "pod_name", "\"web\"").map_err(fail)?;
    let timeout = Duration::from_secs(whole(&call.arguments, "timeout", 60).map_err(fail)?);
    let kube = connect(ctx, &call, &cluster).await.map_err(fail)?;
    let (pods, version) = kube.list::<Pod>(&pods_path(&ns), &[]).await.map_err(fail)?;
    if rebuilt(&pods, &name) || timeout.is_zero() {
        return Ok(json!(rebuilt(&pods, &name)));
    }
    // keep the namespace's pods current from the watch, and answer when the rule holds
    let mut current: Vec<Pod> = pods;
    let done = kube
        .watch(&pods_path(&ns), &[], version.as_deref(), timeout, |event| {
            let Ok(pod) = serde_json::from_value::<Pod>(event.object) else {
                return false;
            };
            current.retain(|p| p.metadata.uid != pod.metadata.uid);
            if event.kind != "DELETED" {
                current.push(pod);
            }
            rebuilt(&current, &name)
        })
        .await
        .map_err(fail)?;
    Ok(json!(done))
}

async fn pod_healthy(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let cluster = ClusterRef::from_call(&call).map_err(fail)?;
    let ns = namespace(args).map_err(fail)?;
    let pattern = required(args, "pod_name_pattern", "\"web\"").map_err(fail)?;
    let port = match args.get("health_check_port") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(_) => Some(whole(args, "health_check_port", 0).map_err(fail)?),
    };
    let path = text(args, "health_check_path")
        .map_err(fail)?
        .unwrap_or_default();
    let kube = connect(ctx, &call, &cluster).await.map_err(fail)?;
    let (pods, _) = kube.list::<Pod>(&pods_path(&ns), &[]).await.map_err(fail)?;
    let matching: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.name.contains(&pattern) && !p.terminating())
        .collect();
    if matching.is_empty() {
        tracing::warn!("  pod_healthy: no pod named *{pattern}* in {ns}");
        return Ok(json!(false));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(fail)?;
    for pod in matching {
        let name = &pod.metadata.name;
        if !pod.ready() {
            tracing::warn!("  pod_healthy: pod {ns}/{name} is not Ready");
            return Ok(json!(false));
        }
        let (Some(port), Some(ip)) = (port, pod.status.pod_ip.as_deref()) else {
            continue;
        };
        let url = format!("http://{ip}:{port}/{}", path.trim_start_matches('/'));
        match http.get(&url).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                tracing::warn!("  pod_healthy: {url} ({ns}/{name}) answered {}", r.status());
                return Ok(json!(false));
            }
            Err(e) => {
                tracing::warn!("  pod_healthy: {url} ({ns}/{name}): {e}");
                return Ok(json!(false));
            }
        }
    }
    Ok(json!(true))
}

async fn service_running(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let cluster = ClusterRef::from_call(&call).map_err(fail)?;
    let pattern = required(args, "container_name_pattern", "\"web\"").map_err(fail)?;
    let regex = shared::pyregex::compile(&pattern)
        .map_err(|e| fail(format!("container_name_pattern {pattern:?}: {e}")))?;
    let kube = connect(ctx, &call, &cluster).await.map_err(fail)?;
    let (pods, _) = match text(args, "namespace").map_err(fail)? {
        Some(ns) => kube.list::<Pod>(&pods_path(&ns), &[]).await,
        None => kube.list::<Pod>(&["api", "v1", "pods"], &[]).await,
    }
    .map_err(fail)?;
    let mut seen = 0;
    for pod in pods.iter().filter(|p| !p.terminating()) {
        for status in &pod.status.container_statuses {
            if !regex.is_match(&status.name).unwrap_or(false) {
                continue;
            }
            seen += 1;
            if !(status.ready && status.running()) {
                tracing::warn!(
                    "  assert_service_on_pod_running: container {} of {} is not running",
                    status.name,
                    pod.metadata.name
                );
                return Err(fail(format!(
                    "container {} of pod {} is not running (process {} not checked: the API does not see processes)",
                    status.name,
                    pod.metadata.name,
                    text(args, "process_name")
                        .ok()
                        .flatten()
                        .unwrap_or_default()
                )));
            }
        }
    }
    if seen == 0 {
        return Err(fail(format!("no container matches {pattern:?}")));
    }
    Ok(json!(true))
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let extras = [
        Param::optional("kubeconfig"),
        Param::optional("kube_context"),
    ];
    let with = |mut p: Vec<Param>| {
        p.extend(extras);
        p
    };
    let pod_probe = || {
        with(vec![
            Param::optional("cluster_name"),
            Param::required("pod_name"),
            Param::required("namespace"),
            Param::optional("region"),
        ])
    };
    macro_rules! probe {
        ($name:literal, $params:expr, $f:ident) => {{
            let c = ctx.clone();
            registry.register(
                MODULE,
                $name,
                NativeActivity::new($params, move |call| {
                    let ctx = c.clone();
                    async move { $f(&ctx, call).await }
                }),
            );
        }};
    }
    probe!("assert_pod_healthy", pod_probe(), assert_healthy);
    let mut rebuilt_params = pod_probe();
    rebuilt_params.push(Param::optional("timeout"));
    probe!("assert_pod_rebuilt", rebuilt_params, assert_rebuilt);
    probe!(
        "pod_healthy",
        with(vec![
            Param::optional("region"),
            Param::optional("tag_key"),
            Param::optional("tag_value"),
            Param::optional("health_check_port"),
            Param::optional("health_check_path"),
            Param::optional("name_space"),
            Param::optional("cluster_name"),
            Param::optional("output_s3_bucket_name"),
            Param::optional("pod_name_pattern"),
        ]),
        pod_healthy
    );
    probe!(
        "assert_service_on_pod_running",
        with(vec![
            Param::optional("process_name"),
            Param::required("container_name_pattern"),
            Param::optional("region"),
            Param::optional("output_s3_bucket_name"),
            Param::optional("tag_value"),
            Param::optional("tag_key"),
            Param::optional("num_instances_to_target"),
            Param::optional("num_containers_to_target"),
            Param::optional("cluster_name"),
            Param::optional("namespace"),
        ]),
        service_running
    );
}
