//! Pod targeting: which pods a Kubernetes fault acts on, under the same guard rails as the EC2
//! faults, for this module's API actions and for the pod faults that run on the pod's node
//! through SSM (`PodSelector::on_node`).
//!
//! 1. The namespace's pods (`labelSelector` when given) whose name the `name_pattern` (a Python
//!    regular expression, searched as `chaosk8s` does) finds, running and not being deleted,
//!    are the candidates.
//! 2. `shared::fleet::safety::targets::select` chooses among them (mode, the deployment's and
//!    the experiment's `max_targets`/`max_percent`), and requires the opt-in label on each
//!    chosen pod: the pod carries it, or its namespace does. The label is the deployment's
//!    opt-in tag with `:` as `/` (default `experiment-broker/opt-in=true`; `off` turns both off).
//! 3. For a fault on the node: each chosen pod's node must be an EC2 instance
//!    (`spec.providerID` `aws:///az/i-...`) carrying the opt-in tag (as EC2 faults require).
//! 4. The choice (or the refusal) goes on record in the journal before anything acts;
//!    [`lock`] then locks each pod and each node (the instance id: the key EC2 faults lock).

use super::client::Kube;
use super::connect::{ClusterRef, connect};
use super::objects::{Namespace, Node, Pod};
use crate::faults::FaultContext;
use crate::faults::ec2::instances::{candidates, seed};
use crate::faults::safety::{self, FaultSettings};
use crate::faults::target_locks::{self, Held};
use serde_json::{Value, json};
use shared::fleet::safety::targets::{Candidate, Limits, Mode, Refusal, Selector, select};
use shared::providers::registry::NativeCall;
use shared::providers::{ActivityError, Refusal as Refused};
use std::collections::BTreeMap;
use std::time::Duration;

/// Which pods a fault targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSelector {
    pub cluster: ClusterRef,
    pub namespace: String,
    /// A Python regular expression searched in each pod's name; `None`: every pod.
    pub name_pattern: Option<String>,
    /// A Kubernetes label selector (`app=web,tier!=db`), given to the API.
    pub label_selector: Option<String>,
    /// `All`, `Count(n)`, `Percent(n)`, `Random` (one), or `Ids` (exactly these pod names).
    pub mode: Mode,
    /// The fault runs on the pod's node: the node must be an opted-in EC2 instance, and is
    /// locked too.
    pub on_node: bool,
}

/// A chosen pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodTarget {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub node_name: Option<String>,
    /// The node's EC2 instance id (resolved when `on_node`, else when the node says).
    pub instance_id: Option<String>,
    /// Container names, in the pod's order.
    pub containers: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl PodTarget {
    /// The pod's lock key.
    pub fn lock_key(&self) -> String {
        format!("pod:{}/{}", self.namespace, self.name)
    }

    fn record(&self) -> Value {
        json!({"namespace": self.namespace, "name": self.name, "uid": self.uid,
               "node": self.node_name, "instance_id": self.instance_id,
               "containers": self.containers})
    }
}

/// The choice, as put on record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSelection {
    pub pods: Vec<PodTarget>,
    /// How many candidates matched.
    pub matched: usize,
    pub seed: u64,
}

impl PodSelection {
    /// What [`lock`] locks: every pod, and every node instance when the fault is on the node.
    pub fn lock_keys(&self, on_node: bool) -> Vec<String> {
        let mut keys: Vec<String> = self.pods.iter().map(PodTarget::lock_key).collect();
        if on_node {
            keys.extend(self.pods.iter().filter_map(|p| p.instance_id.clone()));
        }
        keys.sort();
        keys.dedup();
        keys
    }

    /// The distinct node instance ids, sorted.
    pub fn instance_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .pods
            .iter()
            .filter_map(|p| p.instance_id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The plan a dry run returns: the pods (and nodes) it would act on.
    pub fn plan(&self, call: &NativeCall, action: &str) -> Value {
        json!({
            "action": action,
            "pods": self.pods.iter().map(PodTarget::record).collect::<Vec<_>>(),
            "targets": self.pods.iter().map(|p| format!("{}/{}", p.namespace, p.name)).collect::<Vec<_>>(),
            "nodes": self.instance_ids(),
            "matched": self.matched,
            "seed": self.seed,
            "dry_run": call.plan_only,
        })
    }
}

/// The pods' opt-in label under `settings`: the opt-in tag, `:` written `/`.
pub fn opt_in_label(settings: &FaultSettings) -> Option<(String, String)> {
    settings
        .opt_in
        .as_ref()
        .map(|(k, v)| (k.replace(':', "/"), v.clone()))
}

/// Connect to the selector's cluster and [`resolve_with`].
pub async fn resolve_pods(
    ctx: &FaultContext,
    call: &NativeCall,
    selector: &PodSelector,
) -> Result<PodSelection, ActivityError> {
    let kube = connect(ctx, call, &selector.cluster)
        .await
        .map_err(|e| ActivityError::Failed(e.to_string()))?;
    resolve_with(ctx, call, &kube, selector).await
}

fn failed(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::Failed(e.to_string())
}

/// The candidates: the namespace's running pods the pattern finds, each with the opt-in
/// label when its namespace carries it.
async fn pod_candidates(
    kube: &Kube,
    selector: &PodSelector,
    label: Option<&(String, String)>,
) -> Result<Vec<(Candidate, Pod)>, ActivityError> {
    let ns = &selector.namespace;
    let namespace: Namespace = kube
        .get_opt(&["api", "v1", "namespaces", ns])
        .await
        .map_err(failed)?
        .ok_or_else(|| failed(format!("namespace {ns} does not exist in the cluster")))?;
    let namespace_opted_in =
        label.is_some_and(|(k, v)| namespace.metadata.labels.get(k) == Some(v));
    let regex = match &selector.name_pattern {
        Some(p) => Some(
            shared::pyregex::compile(p)
                .map_err(|e| failed(format!("pod_name_pattern {p:?}: {e}")))?,
        ),
        None => None,
    };
    let query: Vec<(&str, &str)> = selector
        .label_selector
        .as_deref()
        .map(|l| vec![("labelSelector", l)])
        .unwrap_or_default();
    let (pods, _) = kube
        .list::<Pod>(&["api", "v1", "namespaces", ns, "pods"], &query)
        .await
        .map_err(failed)?;
    let mut out = Vec::new();
    for pod in pods {
        if pod.terminating() || pod.status.phase.as_deref() != Some("Running") {
            continue;
        }
        if let Some(re) = &regex
            && !re.is_match(&pod.metadata.name).unwrap_or(false)
        {
            continue;
        }
        let mut tags = pod.metadata.labels.clone();
        if namespace_opted_in && let Some((k, v)) = label {
            tags.insert(k.clone(), v.clone());
        }
        out.push((
            Candidate {
                id: pod.metadata.name.clone(),
                tags,
                attributes: BTreeMap::new(),
            },
            pod,
        ));
    }
    Ok(out)
}

/// The chosen pods' nodes: each must be an EC2 instance carrying the opt-in tag.
async fn node_instances(
    ctx: &FaultContext,
    call: &NativeCall,
    kube: &Kube,
    pods: &mut [PodTarget],
) -> Result<(), (&'static str, String, String)> {
    let mut nodes: BTreeMap<String, String> = BTreeMap::new();
    for pod in pods.iter_mut() {
        let id = format!("{}/{}", pod.namespace, pod.name);
        let Some(node) = pod.node_name.clone() else {
            return Err((
                "unknown_target",
                id.clone(),
                format!("pod {id} is on no node yet"),
            ));
        };
        if !nodes.contains_key(&node) {
            let n: Node = kube
                .get(&["api", "v1", "nodes", &node])
                .await
                .map_err(|e| ("unknown_target", node.clone(), e.to_string()))?;
            let instance = n.instance_id().ok_or_else(|| {
                (
                    "unknown_target",
                    node.clone(),
                    format!(
                        "node {node} (of pod {id}) is not an EC2 instance (providerID {:?})",
                        n.spec.provider_id
                    ),
                )
            })?;
            nodes.insert(node.clone(), instance);
        }
        pod.instance_id = nodes.get(&node).cloned();
    }
    let ids: Vec<String> = nodes.values().cloned().collect();
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("instance-id")
        .set_values(Some(ids.clone()))
        .build();
    let found = candidates(ctx, call, vec![filter])
        .await
        .map_err(|e| ("unknown_target", ids.join(","), e.to_string()))?;
    for id in &ids {
        let Some(c) = found.iter().find(|c| &c.id == id) else {
            return Err((
                "unknown_target",
                id.clone(),
                format!("node instance {id} does not exist in EC2"),
            ));
        };
        if let Some((k, v)) = &ctx.settings().opt_in
            && c.tags.get(k) != Some(v)
        {
            return Err((
                "opt_in",
                id.clone(),
                format!("node instance {id} does not carry the opt-in tag {k}={v}"),
            ));
        }
    }
    Ok(())
}

/// Resolve `selector` on `kube` under the guard rails, and put the choice (or the refusal) on
/// record before returning it.
pub async fn resolve_with(
    ctx: &FaultContext,
    call: &NativeCall,
    kube: &Kube,
    selector: &PodSelector,
) -> Result<PodSelection, ActivityError> {
    let (limits, allow_empty) =
        safety::limits(ctx.settings(), &call.extension, &call.activity).map_err(failed)?;
    let label = opt_in_label(ctx.settings());
    let found = pod_candidates(kube, selector, label.as_ref()).await?;
    let seed = seed(call)?;
    let rule = Selector {
        tags: Vec::new(),
        filters: Vec::new(),
        mode: selector.mode.clone(),
        within: Vec::new(),
        allow_empty,
    };
    let limits = Limits {
        opt_in: label.clone(),
        ..limits
    };
    let list: Vec<Candidate> = found.iter().map(|(c, _)| c.clone()).collect();
    let mut outcome: Result<PodSelection, (&'static str, String, String)> =
        match select(&list, &rule, &limits, seed) {
            Ok(s) => Ok(PodSelection {
                pods: s
                    .chosen
                    .iter()
                    .filter_map(|name| found.iter().find(|(c, _)| &c.id == name))
                    .map(|(_, pod)| target(pod, &selector.namespace))
                    .collect(),
                matched: s.matched,
                seed,
            }),
            Err(r) => Err(refusal(&r, &selector.namespace)),
        };
    if selector.on_node
        && let Ok(selection) = &mut outcome
        && !selection.pods.is_empty()
        && let Err(e) = node_instances(ctx, call, kube, &mut selection.pods).await
    {
        outcome = Err(e);
    }
    let mut record = json!({
        "kind": "targets",
        "activity": call.activity,
        "at": shared::clock::now_iso(),
        "cluster": selector.cluster.describe(),
        "namespace": selector.namespace,
        "name_pattern": selector.name_pattern,
        "label_selector": selector.label_selector,
        "mode": format!("{:?}", selector.mode),
        "on_node": selector.on_node,
        "candidates": found.len(),
        "seed": seed,
        "limits": {
            "max_targets": limits.max_targets,
            "max_percent": limits.max_percent,
            "opt_in": label.as_ref().map(|(k, v)| format!("{k}={v}")),
            "node_opt_in": ctx.settings().opt_in.as_ref().map(|(k, v)| format!("{k}={v}")),
        },
        "dry_run": call.plan_only,
    });
    match &outcome {
        Ok(s) => {
            record["matched"] = json!(s.matched);
            record["chosen"] = json!(
                s.pods
                    .iter()
                    .map(|p| format!("{}/{}", p.namespace, p.name))
                    .collect::<Vec<_>>()
            );
            record["pods"] = json!(s.pods.iter().map(PodTarget::record).collect::<Vec<_>>());
        }
        Err((_, _, message)) => record["refused"] = json!(message),
    }
    if let Err(e) = call.recorder.record(record).await {
        return Err(failed(match &outcome {
            Ok(_) => {
                format!("the chosen pods could not be put on record, so nothing was done: {e}")
            }
            Err((_, _, m)) => format!(
                "pod selection refused: {m} (and the refusal could not be put on record: {e})"
            ),
        }));
    }
    outcome.map_err(|(rule, target, message)| {
        ActivityError::Refused(
            Refused::new(rule, format!("pod selection refused: {message}")).on(target),
        )
    })
}

fn target(pod: &Pod, namespace: &str) -> PodTarget {
    PodTarget {
        namespace: pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_string()),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        node_name: pod.spec.node_name.clone(),
        instance_id: None,
        containers: pod.spec.containers.iter().map(|c| c.name.clone()).collect(),
        labels: pod.metadata.labels.clone(),
    }
}

/// A selection refusal as (rule, target, message), pods named `namespace/name`.
fn refusal(r: &Refusal, namespace: &str) -> (&'static str, String, String) {
    match r {
        Refusal::NotOptedIn { id, key, value } => (
            r.rule(),
            format!("{namespace}/{id}"),
            format!(
                "pod {namespace}/{id}: neither it nor namespace {namespace} carries the opt-in label {key}={value}"
            ),
        ),
        Refusal::Empty { .. } => (
            r.rule(),
            namespace.to_string(),
            format!(
                "no running pod in namespace {namespace} matches; allow an empty selection to skip instead"
            ),
        ),
        other => (
            other.rule(),
            other
                .target()
                .map(|t| format!("{namespace}/{t}"))
                .unwrap_or_default(),
            other.to_string(),
        ),
    }
}

/// Lock every pod (and node, when `on_node`) of `selection` for `ttl`, as EC2 faults lock
/// their instances; dropping or releasing the `Held` unlocks them.
pub async fn lock(
    ctx: &FaultContext,
    call: &NativeCall,
    selection: &PodSelection,
    on_node: bool,
    ttl: Duration,
) -> Result<Held, ActivityError> {
    target_locks::lock(ctx, call, &selection.lock_keys(on_node), ttl).await
}
