//! `eks_update_image_tag(cluster_name, failed_image_tag, pod_name_pattern, name_space,
//! region)`: deploys a broken image tag to a deployment, and its revert.
//!
//! As the seed: the deployment is `<pod_name_pattern>-<name_space>` (or `deployment_name`),
//! its first container (or `container_name`); the new image is the old one with its last
//! `-`-separated part replaced by `failed_image_tag` (an image with no `-` gets its `:tag`
//! replaced instead). Unlike the seed, the previous image is put on record in the journal
//! and in an annotation on the deployment (`experiment-broker/previous-image.<container>`)
//! in the same patch, before the new image can roll out; `eks_restore_image_tag` (a rollback,
//! same cluster arguments) and a redelivered job's revert (`restore_recorded`) put it back.
//! A deployment that already carries the annotation is refused: a fault is never stacked.
//! The deployment, or its namespace, must carry the opt-in label (as pods do).
//!
//! Patches are strategic merge patches (`containers` merge by `name`, as `kubectl set
//! image`), so the container's other fields are untouched.

use super::client::{Kube, PatchKind};
use super::connect::{ClusterRef, connect};
use super::objects::{Deployment, Namespace};
use super::targets::opt_in_label;
use crate::faults::FaultContext;
use crate::faults::target_locks;
use serde_json::{Value, json};
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use shared::providers::{ActivityError, Refusal};
use std::sync::Arc;
use std::time::Duration;

/// The annotation holding a container's image before the fault.
pub const PREVIOUS: &str = "experiment-broker/previous-image.";

fn fail(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::Failed(e.to_string())
}

/// The image with the seed's tag rule applied. Pure.
pub fn failed_image(image: &str, tag: &str) -> String {
    match image.rsplit_once('-') {
        Some((head, _)) => format!("{head}-{tag}"),
        None => {
            let name_end = image.rfind('/').map_or(0, |i| i + 1);
            match image[name_end..].rfind(':') {
                Some(i) => format!("{}:{tag}", &image[..name_end + i]),
                None => format!("{image}:{tag}"),
            }
        }
    }
}

struct Target {
    cluster: ClusterRef,
    namespace: String,
    deployment: String,
}

fn target(call: &NativeCall) -> Result<Target, String> {
    let args = &call.arguments;
    let cluster = ClusterRef::from_call(call)?;
    let namespace = super::args::namespace(args)?;
    let deployment = match super::args::text(args, "deployment_name")? {
        Some(d) => d,
        None => {
            let pattern = super::args::required(args, "pod_name_pattern", "\"web\"")?;
            format!("{pattern}-{namespace}")
        }
    };
    Ok(Target {
        cluster,
        namespace,
        deployment,
    })
}

fn path<'a>(ns: &'a str, name: &'a str) -> [&'a str; 7] {
    ["apis", "apps", "v1", "namespaces", ns, "deployments", name]
}

async fn read(kube: &Kube, t: &Target) -> Result<Deployment, ActivityError> {
    kube.get_opt(&path(&t.namespace, &t.deployment))
        .await
        .map_err(fail)?
        .ok_or_else(|| {
            fail(format!(
                "deployment {}/{} does not exist (the seed names it <pod_name_pattern>-<name_space>; set deployment_name otherwise)",
                t.namespace, t.deployment
            ))
        })
}

async fn update(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let t = target(&call).map_err(fail)?;
    let tag =
        super::args::required(&call.arguments, "failed_image_tag", "\"broken\"").map_err(fail)?;
    let kube = connect(ctx, &call, &t.cluster).await.map_err(fail)?;
    let deployment = read(&kube, &t).await?;
    let container = match super::args::text(&call.arguments, "container_name").map_err(fail)? {
        Some(name) => deployment
            .spec
            .template
            .spec
            .containers
            .iter()
            .find(|c| c.name == name),
        None => deployment.spec.template.spec.containers.first(),
    }
    .ok_or_else(|| {
        fail(format!(
            "deployment {}/{} has no such container",
            t.namespace, t.deployment
        ))
    })?
    .clone();
    let id = format!("{}/{}", t.namespace, t.deployment);
    let refuse = |rule: &'static str, message: String| {
        ActivityError::Refused(Refusal::new(rule, message).on(id.clone()))
    };
    if let Some((k, v)) = opt_in_label(ctx.settings()) {
        let ns: Option<Namespace> = kube
            .get_opt(&["api", "v1", "namespaces", &t.namespace])
            .await
            .map_err(fail)?;
        let opted = deployment.metadata.labels.get(&k) == Some(&v)
            || ns.is_some_and(|n| n.metadata.labels.get(&k) == Some(&v));
        if !opted {
            return Err(refuse(
                "opt_in",
                format!(
                    "deployment {id}: neither it nor namespace {} carries the opt-in label {k}={v}",
                    t.namespace
                ),
            ));
        }
    }
    let key = format!("{PREVIOUS}{}", container.name);
    // the lock before the check and the record: two runs cannot both find the container free,
    // and nothing goes on record for a run that then cannot act
    let held = if call.plan_only {
        None
    } else {
        Some(
            target_locks::lock(
                ctx,
                &call,
                &[format!("deployment:{id}")],
                Duration::from_secs(300),
            )
            .await?,
        )
    };
    let deployment = match held {
        Some(_) => match read(&kube, &t).await {
            Ok(fresh) => fresh,
            Err(e) => {
                release(held).await;
                return Err(e);
            }
        },
        None => deployment,
    };
    let container = deployment
        .spec
        .template
        .spec
        .containers
        .iter()
        .find(|c| c.name == container.name)
        .cloned()
        .unwrap_or(container);
    if let Some(previous) = deployment.metadata.annotations.get(&key) {
        release(held).await;
        return Err(refuse(
            "already_injected",
            format!(
                "deployment {id}: container {} already runs a fault image (previous image {previous} not restored yet): restore it first",
                container.name
            ),
        ));
    }
    let previous = container.image.clone().unwrap_or_default();
    let image = failed_image(&previous, &tag);
    let mut record = json!({
        "kind": "k8s_image",
        "activity": call.activity,
        "at": shared::clock::now_iso(),
        "cluster_name": t.cluster.cluster_name,
        "kubeconfig": t.cluster.kubeconfig,
        "kube_context": t.cluster.context,
        "region": crate::faults::context::region(&call),
        "namespace": t.namespace,
        "deployment": t.deployment,
        "container": container.name,
        "previous_image": previous,
        "image": image,
        "dry_run": call.plan_only,
    });
    if let Err(e) = call.recorder.record(record.clone()).await {
        release(held).await;
        return Err(fail(format!(
            "the previous image could not be put on record, so nothing was done: {e}"
        )));
    }
    record["kind"] = json!("eks_update_image_tag");
    let Some(held) = held else {
        return Ok(record);
    };
    let patch = json!({
        "metadata": {"annotations": {key: previous}},
        "spec": {"template": {"spec": {"containers": [{"name": container.name, "image": image}]}}},
    });
    let result = kube
        .patch::<Deployment>(
            &path(&t.namespace, &t.deployment),
            &patch,
            PatchKind::StrategicMerge,
        )
        .await;
    held.release().await;
    result.map_err(fail)?;
    Ok(record)
}

async fn release(held: Option<target_locks::Held>) {
    if let Some(held) = held {
        held.release().await;
    }
}

/// Put back every image the annotations hold, and drop the annotations; what was restored.
async fn restore(kube: &Kube, t: &Target, plan_only: bool) -> Result<Vec<Value>, ActivityError> {
    let deployment = read(kube, t).await?;
    let mut restored = Vec::new();
    let mut annotations = serde_json::Map::new();
    let mut containers = Vec::new();
    for (key, previous) in &deployment.metadata.annotations {
        let Some(container) = key.strip_prefix(PREVIOUS) else {
            continue;
        };
        annotations.insert(key.clone(), Value::Null);
        containers.push(json!({"name": container, "image": previous}));
        restored.push(json!({"namespace": t.namespace, "deployment": t.deployment,
                             "container": container, "image": previous}));
    }
    if containers.is_empty() || plan_only {
        return Ok(restored);
    }
    let patch = json!({
        "metadata": {"annotations": annotations},
        "spec": {"template": {"spec": {"containers": containers}}},
    });
    kube.patch::<Deployment>(
        &path(&t.namespace, &t.deployment),
        &patch,
        PatchKind::StrategicMerge,
    )
    .await
    .map_err(fail)?;
    Ok(restored)
}

async fn restore_call(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let t = target(&call).map_err(fail)?;
    let kube = connect(ctx, &call, &t.cluster).await.map_err(fail)?;
    let restored = restore(&kube, &t, call.plan_only).await?;
    Ok(json!({"restored": restored, "dry_run": call.plan_only}))
}

/// A dead owner's `k8s_image` records: restore each deployment (once). For the fleet's
/// redelivery revert.
pub async fn restore_recorded(ctx: &FaultContext, records: &[Value]) -> Vec<Value> {
    let mut done: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for r in records
        .iter()
        .filter(|r| r["kind"] == "k8s_image" && r["dry_run"] != true)
    {
        let mut args = serde_json::Map::new();
        for k in [
            "cluster_name",
            "kubeconfig",
            "kube_context",
            "region",
            "deployment_name",
        ] {
            let v = if k == "deployment_name" {
                &r["deployment"]
            } else {
                &r[k]
            };
            if !v.is_null() {
                args.insert(k.into(), v.clone());
            }
        }
        args.insert("name_space".into(), r["namespace"].clone());
        let call = NativeCall {
            arguments: args,
            ..NativeCall::default()
        };
        let key = format!("{}", Value::Object(call.arguments.clone()));
        if done.contains(&key) {
            continue;
        }
        done.push(key);
        let outcome = match target(&call) {
            Err(e) => Err(e),
            Ok(t) => match connect(ctx, &call, &t.cluster).await {
                Err(e) => Err(e.to_string()),
                Ok(kube) => restore(&kube, &t, false).await.map_err(|e| e.to_string()),
            },
        };
        out.push(match outcome {
            Ok(restored) => json!({"kind": "k8s_image", "restored": restored}),
            Err(e) => json!({"kind": "k8s_image", "deployment": r["deployment"], "error": e}),
        });
    }
    out
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let mut params = vec![
        Param::optional("cluster_name"),
        Param::required("failed_image_tag"),
        Param::optional("pod_name_pattern"),
        Param::required("name_space"),
        Param::optional("region"),
        Param::optional("deployment_name"),
        Param::optional("container_name"),
        Param::optional("kubeconfig"),
        Param::optional("kube_context"),
    ];
    let c = ctx.clone();
    registry.register(
        super::actions::MODULE,
        "eks_update_image_tag",
        NativeActivity::new(params.clone(), move |call| {
            let ctx = c.clone();
            async move { update(&ctx, call).await }
        })
        .fault(),
    );
    params.remove(1);
    let c = ctx.clone();
    registry.register(
        super::actions::MODULE,
        "eks_restore_image_tag",
        NativeActivity::new(params, move |call| {
            let ctx = c.clone();
            async move { restore_call(&ctx, call).await }
        })
        .fault(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_tag_rule_replaces_the_last_dash_part() {
        assert_eq!(
            failed_image("1.dkr.ecr/demo:experiment-demo-v1", "broken"),
            "1.dkr.ecr/demo:experiment-demo-broken"
        );
        assert_eq!(failed_image("nginx:1.25", "nope"), "nginx:nope");
        assert_eq!(
            failed_image("registry:5000/web", "x"),
            "registry:5000/web:x"
        );
    }
}
