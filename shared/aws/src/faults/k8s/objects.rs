//! The Kubernetes API objects the fault library reads, holding only the fields it uses (serde
//! ignores the rest): pods, nodes, namespaces, deployments, lists, watch events and the API's
//! `Status` error body. Field names are the API's JSON names (`camelCase`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// `metadata` of any object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub uid: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,
    pub containers: Vec<Container>,
}

/// `status.conditions[]` (`Ready`, `ContainersReady`, `PodScheduled`, ...).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

/// `status.containerStatuses[]`; `state` has one of `running`, `waiting`, `terminated`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerStatus {
    pub name: String,
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    pub restart_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub state: BTreeMap<String, Value>,
    /// `<runtime>://<id>` (`containerd://0f3c...`): the id the node's cgroup paths carry.
    #[serde(rename = "containerID", skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
}

impl ContainerStatus {
    /// Running now (`state.running` present).
    pub fn running(&self) -> bool {
        self.state.contains_key("running")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(rename = "podIP", skip_serializing_if = "Option::is_none")]
    pub pod_ip: Option<String>,
    pub conditions: Vec<Condition>,
    pub container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Pod {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
    pub status: PodStatus,
}

impl Pod {
    /// The `Ready` condition is `True`.
    pub fn ready(&self) -> bool {
        self.status
            .conditions
            .iter()
            .any(|c| c.kind == "Ready" && c.status == "True")
    }

    /// Being deleted (a `deletionTimestamp` is set).
    pub fn terminating(&self) -> bool {
        self.metadata.deletion_timestamp.is_some()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeSpec {
    #[serde(rename = "providerID", skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Node {
    pub metadata: ObjectMeta,
    pub spec: NodeSpec,
}

impl Node {
    /// The EC2 instance id in `spec.providerID` (`aws:///us-east-1a/i-0abc`), if it is one.
    pub fn instance_id(&self) -> Option<String> {
        instance_id(self.spec.provider_id.as_deref()?)
    }
}

/// `aws:///<az>/<instance id>` → the instance id.
pub fn instance_id(provider_id: &str) -> Option<String> {
    let rest = provider_id.strip_prefix("aws://")?;
    let id = rest.rsplit('/').next()?;
    (id.starts_with("i-") && id.len() > 2).then(|| id.to_string())
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Namespace {
    pub metadata: ObjectMeta,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct PodTemplate {
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct DeploymentSpec {
    pub template: PodTemplate,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Deployment {
    pub metadata: ObjectMeta,
    pub spec: DeploymentSpec,
}

/// `metadata` of a list: where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListMeta {
    #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct List<T> {
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
}

/// The API's error body (`kind: Status`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct Status {
    pub status: String,
    pub message: String,
    pub reason: String,
    pub code: u16,
}

/// One line of a `watch=true` stream: `ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK` or `ERROR`
/// (whose object is a `Status`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct WatchEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub object: Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_reads_from_the_apis_json() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1",
                         "labels": {"app": "web"}, "creationTimestamp": "2026-01-01T00:00:00Z",
                         "managedFields": [{"manager": "kubelet"}]},
            "spec": {"nodeName": "ip-10-0-0-1", "containers": [{"name": "app", "image": "web:1", "ports": []}]},
            "status": {"phase": "Running", "podIP": "10.0.0.9",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "app", "ready": true, "started": true,
                                              "restartCount": 2, "state": {"running": {"startedAt": "x"}}}]}
        }))
        .unwrap();
        assert_eq!(pod.metadata.labels["app"], "web");
        assert_eq!(pod.spec.node_name.as_deref(), Some("ip-10-0-0-1"));
        assert!(pod.ready() && !pod.terminating());
        assert!(pod.status.container_statuses[0].running());
        assert_eq!(pod.status.container_statuses[0].restart_count, 2);
        assert_eq!(pod.status.pod_ip.as_deref(), Some("10.0.0.9"));
    }

    #[test]
    fn a_nodes_provider_id_names_its_instance() {
        assert_eq!(
            instance_id("aws:///us-east-1a/i-0123456789abcdef0").as_deref(),
            Some("i-0123456789abcdef0")
        );
        for other in [
            "gce://p/z/n",
            "aws:///us-east-1a/",
            "i-1",
            "kind://docker/x/y",
        ] {
            assert_eq!(instance_id(other), None, "{other}");
        }
    }
}
