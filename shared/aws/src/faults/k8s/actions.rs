//! `experimentvr.k8s.actions` through the Kubernetes API, with the seed library's argument
//! names and defaults; every one resolves its pods with `targets` (guard rails, record before
//! acting), returns the plan under a dry run, and locks what it acts on.
//!
//! - `kill_pods(cluster_name, name_space, pod_name_pattern, num_pods_to_kill="1",
//!   test_target_type="RANDOM", region)`: deletes that many matching pods (`ALL`: every one);
//!   returns `{"pods_terminated": [names], ...}` as the seed does.
//! - `delete_pod(region, name_space, pod_name_pattern, tag_key, tag_value,
//!   output_s3_bucket_name)`: what the seed's experiments call (the seed defines no such
//!   function; its `delete_pod_ssm` runs `kubectl delete pod` on a node): one matching pod at
//!   random, deleted through the API. The cluster is `cluster_name` (argument or
//!   configuration), else the `tag_value` of a `tag:aws:eks:cluster-name` `tag_key`.
//! - `eks_update_image_tag` and `stress_eks_api`: `image.rs` and `stress.rs`.

use super::args::{pod_selector, text};
use super::connect::connect;
use super::targets::{lock, resolve_with};
use crate::faults::FaultContext;
use serde_json::{Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{ArgKind, NativeActivity, NativeCall, Param, Registry};
use std::sync::Arc;
use std::time::Duration;

pub const MODULE: &str = "experimentvr.k8s.actions";

/// How long pod deletions hold their locks at most (released when the calls return).
const LOCK_TTL: Duration = Duration::from_secs(300);

/// The arguments every API activity accepts beyond the seed's: another way to name the
/// cluster, and a label selector.
pub const CLUSTER_EXTRAS: [Param; 3] = [
    Param::optional("kubeconfig"),
    Param::optional("kube_context"),
    Param::optional("label_selector"),
];

fn fail(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::Failed(e.to_string())
}

/// Delete the pods the call selects; `func` names the action in the plan.
async fn delete_pods(
    ctx: &FaultContext,
    call: NativeCall,
    func: &str,
    count_arg: &str,
) -> Result<Value, ActivityError> {
    let selector = pod_selector(&call, count_arg, false).map_err(fail)?;
    let kube = connect(ctx, &call, &selector.cluster).await.map_err(fail)?;
    let selection = resolve_with(ctx, &call, &kube, &selector).await?;
    let mut out = selection.plan(&call, func);
    if call.plan_only || selection.pods.is_empty() {
        out["pods_terminated"] = json!([]);
        return Ok(out);
    }
    let grace = match call.arguments.get("grace_period") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| fail(format!("grace_period: expected whole seconds, got {v}")))?,
        ),
    };
    let held = lock(ctx, &call, &selection, false, LOCK_TTL).await?;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for pod in &selection.pods {
        tracing::info!(
            "  {}: deleting pod {}/{}",
            call.activity,
            pod.namespace,
            pod.name
        );
        match kube
            .delete(
                &["api", "v1", "namespaces", &pod.namespace, "pods", &pod.name],
                grace,
            )
            .await
        {
            Ok(_) => deleted.push(pod.name.clone()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    held.release().await;
    out["pods_terminated"] = json!(deleted);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(fail(format!(
            "deleted {} of {} pods; {}",
            deleted.len(),
            selection.pods.len(),
            errors.join("; ")
        )))
    }
}

/// `delete_pod`: the cluster from `tag_key`/`tag_value` when they name the EKS cluster tag
/// and nothing else names it; one pod at random.
async fn delete_pod(ctx: &FaultContext, mut call: NativeCall) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let named = text(args, "cluster_name").map_err(fail)?.is_some()
        || call
            .configuration
            .get("cluster_name")
            .is_some_and(|v| v.as_str().is_some_and(|s| !s.is_empty()));
    if !named
        && text(args, "tag_key").map_err(fail)?.as_deref() == Some("tag:aws:eks:cluster-name")
        && let Some(cluster) = text(args, "tag_value").map_err(fail)?
    {
        call.arguments.insert("cluster_name".into(), json!(cluster));
    }
    call.arguments
        .insert("test_target_type".into(), json!("RANDOM"));
    delete_pods(ctx, call, "delete_pod", "num_pods_to_kill").await
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let mut kill = vec![
        Param::optional("cluster_name"),
        Param::required("name_space"),
        Param::optional("pod_name_pattern"),
        Param::optional("num_pods_to_kill").of(ArgKind::Scalar),
        Param::optional("test_target_type").of(crate::faults::ec2::fault_table::MODE),
        Param::optional("region"),
        Param::optional("pod_names"),
        Param::optional("grace_period"),
    ];
    kill.extend(CLUSTER_EXTRAS);
    let c = ctx.clone();
    registry.register(
        MODULE,
        "kill_pods",
        NativeActivity::new(kill, move |call| {
            let ctx = c.clone();
            async move { delete_pods(&ctx, call, "kill_pods", "num_pods_to_kill").await }
        })
        .fault(),
    );
    let mut one = vec![
        Param::optional("region"),
        Param::required("name_space"),
        Param::optional("pod_name_pattern"),
        Param::optional("tag_key"),
        Param::optional("tag_value"),
        Param::optional("output_s3_bucket_name"),
        Param::optional("cluster_name"),
        Param::optional("grace_period"),
    ];
    one.extend(CLUSTER_EXTRAS);
    let c = ctx.clone();
    registry.register(
        MODULE,
        "delete_pod",
        NativeActivity::new(one, move |call| {
            let ctx = c.clone();
            async move { delete_pod(&ctx, call).await }
        })
        .fault(),
    );
    super::image::register(registry, ctx);
    super::stress::register(registry, ctx);
}
