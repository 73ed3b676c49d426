//! `experimentvr.k8s.actions`' node-side pod faults (`pod_stress_*`, `pod_exhaust_root_vol`,
//! `pod_blackhole_by_*`, `pod_termination_crash`, `pod_kill_process_in_container`) and
//! `delete_pod_ssm`, with the seed library's argument names and defaults.
//!
//! The seed picked EC2 instances and, on each, containers whose Docker name
//! (`k8s_<container>_<pod>_<namespace>_<uid>_<n>`) `container_name_pattern` finds. Here the pods
//! come from the Kubernetes API through `targets` (the guard rails: opt-in label, the node an
//! opted-in instance, caps counting pods, the choice on record, locks per pod and per node):
//! 1. read the arguments into the document's parameters (pure: [`parameters`]), refuse a
//!    duration over `max_duration`;
//! 2. the candidates are the running pods of `name_space` (`pod_name_pattern`,
//!    `label_selector`) with a container whose Docker-style name the pattern finds;
//!    `num_containers_to_target` and `test_target_type` choose among them;
//! 3. each chosen pod's UID (and, for the container documents, the matching container's id
//!    from its status) goes into its own command to its node's instance; a dry run stops here
//!    and returns the plan;
//! 4. lock, send every command at once (the faults overlap, as the seed's did), wait for all,
//!    release.
//!
//! `delete_pod_ssm` deletes one matching pod through the API (the seed ran `kubectl delete pod`
//! on an instance): no document.

use super::args::{pod_selector, text};
use super::connect::connect;
use super::objects::{Node, Pod};
use super::pod_fault_table::{POD_FAULTS, PodFault};
use super::pod_parameters::{parameters, value_text};
use super::targets::{PodSelection, PodSelector, lock, resolve_with};
use crate::faults::FaultContext;
use crate::faults::ec2::stages::{max_seconds, over_max, stage_seconds};
use crate::faults::ssm::command::{Command, one_value_each};
use crate::faults::ssm::{documents, run};
use serde_json::{Value, json};
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use shared::providers::{ActivityError, Refusal};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// How long past the fault's own duration to wait for a command to end.
const COMMAND_MARGIN: Duration = Duration::from_secs(300);

fn fail(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::Failed(e.to_string())
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    for fault in POD_FAULTS {
        let f = *fault;
        let c = ctx.clone();
        registry.register(
            super::actions::MODULE,
            f.func,
            NativeActivity::new(f.params(), move |call| {
                let ctx = c.clone();
                async move { inject(&ctx, &f, call).await }
            })
            .fault(),
        );
    }
    let mut delete = vec![
        Param::required("name_space"),
        Param::required("pod_name_pattern"),
        Param::optional("targets"),
        Param::optional("test_target_type"),
        Param::optional("tag_key"),
        Param::optional("tag_value"),
        Param::optional("region"),
        Param::optional("delete_pod_ssm_parameter_map"),
        Param::optional("delete_pod_ssm_failure_mode"),
        Param::optional("cluster_name"),
    ];
    delete.extend(super::actions::CLUSTER_EXTRAS);
    let c = ctx.clone();
    registry.register(
        super::actions::MODULE,
        "delete_pod_ssm",
        NativeActivity::new(delete, move |call| {
            let ctx = c.clone();
            async move { delete_pod_ssm(&ctx, call).await }
        })
        .fault(),
    );
}

/// Whether a (compiled, Python) pattern finds a text.
type Finds<'a> = dyn Fn(&str) -> bool + Send + Sync + 'a;

/// The name the seed's `docker inspect` showed for a container of a pod.
fn docker_name(pod: &Pod, container: &str, restarts: u32) -> String {
    format!(
        "k8s_{container}_{}_{}_{}_{restarts}",
        pod.metadata.name,
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid
    )
}

/// The id of the first container of `pod` whose Docker-style name `pattern` finds, without
/// its `<runtime>://` prefix.
fn matching_container(pod: &Pod, finds: &Finds<'_>) -> Option<(String, String)> {
    pod.status.container_statuses.iter().find_map(|s| {
        let name = docker_name(pod, &s.name, s.restart_count);
        if !finds(&name) {
            return None;
        }
        let id = s.container_id.as_deref()?;
        let id = id.rsplit_once("://").map_or(id, |(_, id)| id);
        Some((s.name.clone(), id.to_string()))
    })
}

/// A pattern that finds exactly these pod names (none: nothing).
fn exact_names(names: &[String]) -> String {
    if names.is_empty() {
        return "^$".into();
    }
    let escaped: Vec<String> = names.iter().map(|n| n.replace('.', "\\.")).collect();
    format!("^({})$", escaped.join("|"))
}

/// Poll every future until all are done; their outputs in order. (No executor of our own:
/// they run in the activity's task, so they may borrow it.)
async fn all<'a, T>(futures: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, future) in out.iter_mut().zip(futures.iter_mut()) {
            if let Some(f) = future {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *slot = Some(v);
                        *future = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// One command's run.
type Run<'a> = Pin<Box<dyn Future<Output = Result<Value, ActivityError>> + Send + 'a>>;

/// One command: a pod, its node's instance and the parameters.
struct PodCommand {
    pod: String,
    instance: String,
    parameters: BTreeMap<String, String>,
}

async fn inject(
    ctx: &FaultContext,
    fault: &PodFault,
    mut call: NativeCall,
) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let params = parameters(fault, args).map_err(fail)?;
    let seconds = stage_seconds(&params).map_err(fail)?;
    let max = max_seconds(args.get("max_duration")).map_err(fail)?;
    if let Some(message) = over_max(seconds, max, 1) {
        return Err(ActivityError::Refused(Refusal::new(
            "max_duration",
            message,
        )));
    }
    if text(args, "tag_key").map_err(fail)?.is_some()
        || text(args, "tag_value").map_err(fail)?.is_some()
    {
        return Err(fail(
            "tag_key/tag_value: the seed chose instances by tag; the pod faults choose pods \
             through the Kubernetes API (name_space, pod_name_pattern, label_selector) and \
             run on their nodes, which must carry the opt-in tag",
        ));
    }
    let pattern_text = text(args, "container_name_pattern")
        .map_err(fail)?
        .ok_or_else(|| fail("container_name_pattern is required (it is empty)"))?;
    let regex = shared::pyregex::compile(&pattern_text)
        .map_err(|e| fail(format!("container_name_pattern {pattern_text:?}: {e}")))?;
    let pattern = move |s: &str| regex.is_match(s).unwrap_or(false);
    let instances: Option<Vec<String>> = match args.get("targets") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.split(',').map(|t| t.trim().to_string()).collect()),
        Some(Value::Array(list)) => Some(
            list.iter()
                .map(|v| value_text("targets", v))
                .collect::<Result<_, _>>()
                .map_err(fail)?,
        ),
        Some(v) => return Err(fail(format!("targets: expected instance ids, got {v}"))),
    };
    if text(&call.arguments, "pod_name_pattern")
        .map_err(fail)?
        .is_none()
    {
        call.arguments.insert("pod_name_pattern".into(), json!("."));
    }
    let mut selector = pod_selector(&call, "num_containers_to_target", true).map_err(fail)?;
    let kube = connect(ctx, &call, &selector.cluster).await.map_err(fail)?;
    narrow(&kube, &mut selector, &pattern, instances.as_deref()).await?;
    let selection = resolve_with(ctx, &call, &kube, &selector).await?;
    let mut params = params;
    if let Some(arg) = fault.addresses_of {
        params.insert("ip".into(), addresses(&kube, &call, &selector, arg).await?);
    }
    let document = documents::registered_name(ctx.settings(), &fault.document);
    let sends = commands(
        &kube,
        fault,
        &selection,
        &pattern,
        &params,
        instances.as_deref(),
    )
    .await?;
    let mut plan = selection.plan(&call, fault.func);
    plan["document"] = json!(document);
    plan["duration"] = json!(seconds);
    plan["commands"] = json!(
        sends
            .iter()
            .map(|s| json!({"pod": s.pod, "instance": s.instance, "parameters": s.parameters}))
            .collect::<Vec<_>>()
    );
    if call.plan_only || sends.is_empty() {
        return Ok(plan);
    }
    let ttl = Duration::from_secs(seconds) + COMMAND_MARGIN * 2;
    let held = lock(ctx, &call, &selection, true, ttl).await?;
    let wait = Duration::from_secs(seconds) + COMMAND_MARGIN;
    let runs: Vec<Run<'_>> = sends
        .iter()
        .map(|s| {
            let command = Command {
                document: document.clone(),
                instance_ids: vec![s.instance.clone()],
                parameters: one_value_each(&s.parameters),
                wait,
            };
            tracing::info!(
                "  {}: {} on {} for pod {}",
                call.activity,
                document,
                s.instance,
                s.pod
            );
            let (call, held) = (&call, &held);
            Box::pin(async move { run::run(ctx, call, &command, Some(held)).await }) as Run<'_>
        })
        .collect();
    let outcomes = all(runs).await;
    held.release().await;
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for (s, outcome) in sends.iter().zip(outcomes) {
        match outcome {
            Ok(r) => results.push(json!({"pod": s.pod, "status": "succeeded", "command": r})),
            Err(e) => {
                results.push(json!({"pod": s.pod, "status": "failed", "error": e.to_string()}));
                failed.push(format!("pod {}: {e}", s.pod));
            }
        }
    }
    plan["results"] = json!(results);
    if failed.is_empty() {
        Ok(plan)
    } else {
        Err(fail(failed.join("; ")))
    }
}

/// Narrow the selector's candidates to the pods with a container the pattern finds and, when
/// `targets` lists instances, on a node that is one of them.
async fn narrow(
    kube: &super::client::Kube,
    selector: &mut PodSelector,
    pattern: &Finds<'_>,
    instances: Option<&[String]>,
) -> Result<(), ActivityError> {
    let ns = selector.namespace.clone();
    let query: Vec<(&str, &str)> = selector
        .label_selector
        .as_deref()
        .map(|l| vec![("labelSelector", l)])
        .unwrap_or_default();
    let names_re = match &selector.name_pattern {
        Some(p) => Some(
            shared::pyregex::compile(p)
                .map_err(|e| fail(format!("pod_name_pattern {p:?}: {e}")))?,
        ),
        None => None,
    };
    let (pods, _) = kube
        .list::<Pod>(&["api", "v1", "namespaces", &ns, "pods"], &query)
        .await
        .map_err(fail)?;
    let mut names = Vec::new();
    let mut nodes: BTreeMap<String, Option<String>> = BTreeMap::new();
    for p in &pods {
        if !names_re
            .as_ref()
            .is_none_or(|re| re.is_match(&p.metadata.name).unwrap_or(false))
            || matching_container(p, pattern).is_none()
        {
            continue;
        }
        if let Some(allowed) = instances {
            let Some(node) = p.spec.node_name.clone() else {
                continue;
            };
            if !nodes.contains_key(&node) {
                let found: Option<Node> = kube
                    .get_opt(&["api", "v1", "nodes", &node])
                    .await
                    .map_err(fail)?;
                nodes.insert(node.clone(), found.and_then(|n| n.instance_id()));
            }
            if !nodes[&node].as_ref().is_some_and(|i| allowed.contains(i)) {
                continue;
            }
        }
        names.push(p.metadata.name.clone());
    }
    selector.name_pattern = Some(exact_names(&names));
    Ok(())
}

/// `pod_blackhole_by_name`: the addresses of the running pods of the namespace whose name
/// `arg` finds (at most 16, as the document takes).
async fn addresses(
    kube: &super::client::Kube,
    call: &NativeCall,
    selector: &PodSelector,
    arg: &str,
) -> Result<String, ActivityError> {
    let pattern = text(&call.arguments, arg)
        .map_err(fail)?
        .ok_or_else(|| fail(format!("{arg} is required")))?;
    let re =
        shared::pyregex::compile(&pattern).map_err(|e| fail(format!("{arg} {pattern:?}: {e}")))?;
    let (pods, _) = kube
        .list::<Pod>(
            &["api", "v1", "namespaces", &selector.namespace, "pods"],
            &[],
        )
        .await
        .map_err(fail)?;
    let ips: Vec<String> = pods
        .iter()
        .filter(|p| !p.terminating() && re.is_match(&p.metadata.name).unwrap_or(false))
        .filter_map(|p| p.status.pod_ip.clone())
        .collect();
    match ips.len() {
        0 => Err(fail(format!(
            "{arg} {pattern:?}: no running pod of namespace {} with an address matches",
            selector.namespace
        ))),
        1..=16 => Ok(ips.join(",")),
        n => Err(fail(format!(
            "{arg} {pattern:?}: {n} pods match; at most 16 addresses can be blackholed at once"
        ))),
    }
}

/// Each chosen pod's command: its UID, its container's id (container documents), its node.
async fn commands(
    kube: &super::client::Kube,
    fault: &PodFault,
    selection: &PodSelection,
    pattern: &Finds<'_>,
    params: &BTreeMap<String, String>,
    instances: Option<&[String]>,
) -> Result<Vec<PodCommand>, ActivityError> {
    let mut out = Vec::new();
    for pod in &selection.pods {
        let id = format!("{}/{}", pod.namespace, pod.name);
        let instance = pod
            .instance_id
            .clone()
            .ok_or_else(|| fail(format!("pod {id}: its node's instance is not known")))?;
        if let Some(allowed) = instances
            && !allowed.contains(&instance)
        {
            return Err(ActivityError::Refused(
                Refusal::new(
                    "unknown_target",
                    format!("pod {id} runs on {instance}, which targets does not list"),
                )
                .on(instance),
            ));
        }
        let mut parameters = params.clone();
        parameters.insert("podUid".into(), pod.uid.clone());
        if fault.container {
            let fresh: Pod = kube
                .get(&["api", "v1", "namespaces", &pod.namespace, "pods", &pod.name])
                .await
                .map_err(fail)?;
            if fresh.metadata.uid != pod.uid {
                return Err(fail(format!("pod {id} was replaced while it was chosen")));
            }
            let (_, container) = matching_container(&fresh, pattern)
                .ok_or_else(|| fail(format!("pod {id}: no running container matches any more")))?;
            parameters.insert("containerId".into(), container);
        }
        out.push(PodCommand {
            pod: id,
            instance,
            parameters,
        });
    }
    Ok(out)
}

/// `delete_pod_ssm`: one pod the pattern finds, deleted through the API (the seed ran
/// `kubectl delete pod` on an instance; the instance arguments are accepted and not used).
async fn delete_pod_ssm(ctx: &FaultContext, mut call: NativeCall) -> Result<Value, ActivityError> {
    call.arguments
        .insert("test_target_type".into(), json!("RANDOM"));
    call.arguments.remove("num_pods_to_kill");
    let selector = pod_selector(&call, "num_pods_to_kill", false).map_err(fail)?;
    let kube = connect(ctx, &call, &selector.cluster).await.map_err(fail)?;
    let selection = resolve_with(ctx, &call, &kube, &selector).await?;
    let mut out = selection.plan(&call, "delete_pod_ssm");
    if call.plan_only || selection.pods.is_empty() {
        out["pods_terminated"] = json!([]);
        return Ok(out);
    }
    let held = lock(ctx, &call, &selection, false, COMMAND_MARGIN).await?;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for pod in &selection.pods {
        match kube
            .delete(
                &["api", "v1", "namespaces", &pod.namespace, "pods", &pod.name],
                None,
            )
            .await
        {
            Ok(_) => deleted.push(pod.name.clone()),
            Err(e) => errors.push(format!("{}/{}: {e}", pod.namespace, pod.name)),
        }
    }
    held.release().await;
    out["pods_terminated"] = json!(deleted);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(fail(errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_found_by_their_docker_style_name() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "dns-1", "namespace": "kube-system", "uid": "u-1"},
            "spec": {"containers": [{"name": "sidecar"}, {"name": "coredns"}]},
            "status": {"containerStatuses": [
                {"name": "sidecar", "containerID": "containerd://aaa", "restartCount": 0},
                {"name": "coredns", "containerID": "containerd://bbb", "restartCount": 2}
            ]}
        }))
        .unwrap();
        let re = shared::pyregex::compile("k8s_coredns").unwrap();
        assert_eq!(
            matching_container(&pod, &|s: &str| re.is_match(s).unwrap()),
            Some(("coredns".into(), "bbb".into()))
        );
        let re = shared::pyregex::compile("_kube-system_").unwrap();
        assert_eq!(
            matching_container(&pod, &|s: &str| re.is_match(s).unwrap())
                .unwrap()
                .0,
            "sidecar"
        );
        let re = shared::pyregex::compile("k8s_web").unwrap();
        assert!(matching_container(&pod, &|s: &str| re.is_match(s).unwrap()).is_none());
        assert_eq!(exact_names(&["a.b".into(), "c".into()]), "^(a\\.b|c)$");
    }
}
