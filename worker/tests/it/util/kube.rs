//! An in-process Kubernetes API server for the k8s tests (there is no installable one here):
//! tokio on 127.0.0.1, answering the real API's paths and JSON shapes for what the fault
//! library calls: namespaces, nodes, pods (list with `labelSelector` and pages of two with
//! `continue` tokens, get, delete, `watch=true` streams from a `resourceVersion`), deployments
//! (get, strategic-merge patch: annotations, `containers` merged by name) and `Status` errors.
//! A request without the expected bearer token gets 401, as the API answers. A deleted pod of
//! a deployment-like set (label `app`) is rebuilt after `rebuild_after`: a new pod, Ready,
//! with an `ADDED` event. Every request is logged (method, path).

use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Whether a bearer token is accepted.
pub type TokenCheck = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// The cluster's state.
#[derive(Default)]
pub struct State {
    pub namespaces: Vec<Value>,
    pub nodes: Vec<Value>,
    pub pods: Vec<Value>,
    pub deployments: Vec<Value>,
    /// (resourceVersion, type, object) of every pod change.
    pub events: Vec<(u64, String, Value)>,
    pub version: u64,
    /// (method, path with query) of every request.
    pub requests: Vec<(String, String)>,
    /// Accepts a bearer token.
    pub token_ok: Option<TokenCheck>,
    pub rebuild_after: Option<Duration>,
    pub rebuilt: u64,
}

pub struct Server {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    _rt: tokio::runtime::Runtime,
}

pub fn namespace(name: &str, labels: Value) -> Value {
    json!({"kind": "Namespace", "apiVersion": "v1",
           "metadata": {"name": name, "uid": format!("ns-{name}"), "labels": labels}})
}

pub fn node(name: &str, instance: &str) -> Value {
    json!({"kind": "Node", "apiVersion": "v1", "metadata": {"name": name, "uid": format!("node-{name}")},
           "spec": {"providerID": format!("aws:///us-east-1a/{instance}")}})
}

/// A running, ready pod with one container `app`.
pub fn pod(ns: &str, name: &str, labels: Value, node: &str) -> Value {
    json!({"kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}"), "labels": labels,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "web:1"}]},
        "status": {"phase": "Running", "podIP": "127.0.0.1",
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "app", "ready": true, "started": true, "restartCount": 0,
                                          "image": "web:1", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}})
}

pub fn deployment(ns: &str, name: &str, labels: Value, image: &str) -> Value {
    json!({"kind": "Deployment", "apiVersion": "apps/v1",
        "metadata": {"name": name, "namespace": ns, "uid": format!("dep-{name}"), "labels": labels},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": name}},
                 "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 80}]},
                                         {"name": "sidecar", "image": "proxy:1"}]}}}})
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason, "code": code}),
    )
}

fn find<'a>(list: &'a [Value], ns: Option<&str>, name: &str) -> Option<&'a Value> {
    list.iter().find(|o| {
        o["metadata"]["name"] == name && ns.is_none_or(|ns| o["metadata"]["namespace"] == ns)
    })
}

/// `k=v,k2=v2` (equality only) against labels.
fn selects(selector: &str, labels: &Value) -> bool {
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels[k.trim_end_matches('=')] == v,
            None => !labels[term].is_null(),
        })
}

impl State {
    fn bump(&mut self, kind: &str, pod: &mut Value) {
        self.version += 1;
        pod["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.events.push((self.version, kind.into(), pod.clone()));
    }

    /// A page of pods as the API lists them.
    fn list(&self, ns: Option<&str>, query: &[(String, String)]) -> Value {
        let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let all: Vec<&Value> = self
            .pods
            .iter()
            .filter(|p| ns.is_none_or(|ns| p["metadata"]["namespace"] == ns))
            .filter(|p| q("labelSelector").is_none_or(|s| selects(s, &p["metadata"]["labels"])))
            .collect();
        let start: usize = q("continue").and_then(|c| c.parse().ok()).unwrap_or(0);
        let limit = q("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(usize::MAX)
            .min(2);
        let page: Vec<Value> = all
            .iter()
            .skip(start)
            .take(limit)
            .map(|p| (*p).clone())
            .collect();
        let mut meta = json!({"resourceVersion": self.version.to_string()});
        if start + limit < all.len() {
            meta["continue"] = json!((start + limit).to_string());
        }
        json!({"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": page})
    }
}

/// Strategic merge of a deployment patch: annotations (null removes), containers by name.
fn merge(target: &mut Value, patch: &Value) {
    if let Some(a) = patch["metadata"]["annotations"].as_object() {
        let annotations = &mut target["metadata"]["annotations"];
        if !annotations.is_object() {
            *annotations = json!({});
        }
        for (k, v) in a {
            if v.is_null() {
                annotations.as_object_mut().unwrap().remove(k);
            } else {
                annotations[k] = v.clone();
            }
        }
    }
    if let Some(cs) = patch["spec"]["template"]["spec"]["containers"].as_array() {
        let containers = target["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap();
        for c in cs {
            match containers.iter_mut().find(|t| t["name"] == c["name"]) {
                Some(t) => {
                    for (k, v) in c.as_object().unwrap() {
                        t[k] = v.clone();
                    }
                }
                None => containers.push(c.clone()),
            }
        }
    }
}

fn route(
    state: &Arc<Mutex<State>>,
    method: &str,
    path: &str,
    query: &[(String, String)],
    body: &[u8],
    content_type: &str,
) -> (u16, Value) {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut s = state.lock().unwrap();
    match (method, segments.as_slice()) {
        ("GET", ["api", "v1", "namespaces", ns]) => find(&s.namespaces, None, ns)
            .map(|n| (200, n.clone()))
            .unwrap_or_else(|| status(404, "NotFound", &format!("namespaces \"{ns}\" not found"))),
        ("GET", ["api", "v1", "nodes", name]) => find(&s.nodes, None, name)
            .map(|n| (200, n.clone()))
            .unwrap_or_else(|| status(404, "NotFound", &format!("nodes \"{name}\" not found"))),
        ("GET", ["api", "v1", "pods"]) => (200, s.list(None, query)),
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => (200, s.list(Some(ns), query)),
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => find(&s.pods, Some(ns), name)
            .map(|p| (200, p.clone()))
            .unwrap_or_else(|| status(404, "NotFound", &format!("pods \"{name}\" not found"))),
        ("DELETE", ["api", "v1", "namespaces", ns, "pods", name]) => {
            let Some(i) = s
                .pods
                .iter()
                .position(|p| p["metadata"]["name"] == *name && p["metadata"]["namespace"] == *ns)
            else {
                return status(404, "NotFound", &format!("pods \"{name}\" not found"));
            };
            let mut gone = s.pods.remove(i);
            s.bump("DELETED", &mut gone);
            if let (Some(after), Some(app)) =
                (s.rebuild_after, gone["metadata"]["labels"]["app"].as_str())
            {
                let (state, app, ns, node) = (
                    state.clone(),
                    app.to_string(),
                    ns.to_string(),
                    gone["spec"]["nodeName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                );
                tokio::spawn(async move {
                    tokio::time::sleep(after).await;
                    let mut s = state.lock().unwrap();
                    s.rebuilt += 1;
                    let mut new = pod(
                        &ns,
                        &format!("{app}-rebuilt{}", s.rebuilt),
                        json!({"app": app}),
                        &node,
                    );
                    s.bump("ADDED", &mut new);
                    s.pods.push(new);
                });
            }
            (200, gone)
        }
        ("GET", ["apis", "apps", "v1", "namespaces", ns, "deployments", name]) => {
            find(&s.deployments, Some(ns), name)
                .map(|d| (200, d.clone()))
                .unwrap_or_else(|| {
                    status(
                        404,
                        "NotFound",
                        &format!("deployments.apps \"{name}\" not found"),
                    )
                })
        }
        ("PATCH", ["apis", "apps", "v1", "namespaces", ns, "deployments", name]) => {
            if content_type != "application/strategic-merge-patch+json" {
                return status(
                    415,
                    "UnsupportedMediaType",
                    &format!(
                        "the body of the request was in an unknown format - accepted media types include: application/strategic-merge-patch+json (got {content_type})"
                    ),
                );
            }
            let Ok(patch) = serde_json::from_slice::<Value>(body) else {
                return status(400, "BadRequest", "the patch is not JSON");
            };
            let Some(d) = s
                .deployments
                .iter_mut()
                .find(|d| d["metadata"]["name"] == *name && d["metadata"]["namespace"] == *ns)
            else {
                return status(
                    404,
                    "NotFound",
                    &format!("deployments.apps \"{name}\" not found"),
                );
            };
            merge(d, &patch);
            (200, d.clone())
        }
        _ => status(
            404,
            "NotFound",
            &format!("the server could not find the requested resource ({method} {path})"),
        ),
    }
}

async fn serve(state: Arc<Mutex<State>>, stream: tokio::net::TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let (method, target) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let (mut length, mut auth, mut content_type) = (0usize, String::new(), String::new());
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim().split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "authorization" => auth = v.trim().to_string(),
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    let url = url::Url::parse(&format!("http://x{target}")).unwrap();
    let query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let path = url.path().to_string();
    let authorized = {
        let mut s = state.lock().unwrap();
        s.requests.push((method.clone(), target.clone()));
        let check = s.token_ok.clone();
        auth.strip_prefix("Bearer ")
            .is_some_and(|t| check.is_some_and(|f| f(t)))
    };
    let mut stream = reader.into_inner();
    let (code, value) = if !authorized {
        status(401, "Unauthorized", "Unauthorized")
    } else if method == "GET" && query.iter().any(|(k, v)| k == "watch" && v == "true") {
        return watch(state, stream, &path, &query).await;
    } else {
        route(&state, &method, &path, &query, &body, &content_type)
    };
    let body = serde_json::to_vec(&value).unwrap();
    let head = format!(
        "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&body).await?;
    stream.shutdown().await
}

/// A watch of a namespace's pods: every event after `resourceVersion`, one JSON per line, as
/// they happen, until `timeoutSeconds`.
async fn watch(
    state: Arc<Mutex<State>>,
    mut stream: tokio::net::TcpStream,
    path: &str,
    query: &[(String, String)],
) -> std::io::Result<()> {
    let q = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let ns = path.split('/').nth(4).unwrap_or("").to_string();
    let mut from: u64 = q("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let end = tokio::time::Instant::now()
        + Duration::from_secs(
            q("timeoutSeconds")
                .and_then(|t| t.parse().ok())
                .unwrap_or(30),
        );
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        )
        .await?;
    while tokio::time::Instant::now() < end {
        let events: Vec<(u64, String, Value)> = state
            .lock()
            .unwrap()
            .events
            .iter()
            .filter(|(v, _, o)| *v > from && o["metadata"]["namespace"] == ns.as_str())
            .cloned()
            .collect();
        for (v, kind, object) in events {
            from = v;
            let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap();
            line.push(b'\n');
            stream.write_all(&line).await?;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stream.shutdown().await
}

impl Server {
    /// A server accepting exactly `token`.
    pub fn start(token: &str) -> Server {
        let token = token.to_string();
        Server::start_checking(Arc::new(move |t: &str| t == token))
    }

    /// A server accepting the tokens `check` accepts.
    pub fn start_checking(check: TokenCheck) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            token_ok: Some(check),
            ..State::default()
        }));
        let s = state.clone();
        rt.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(s, stream).await;
                });
            }
        });
        Server {
            url,
            state,
            _rt: rt,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// A kubeconfig for this server with `token`, written in `dir`.
    pub fn kubeconfig(
        &self,
        dir: &std::path::Path,
        cluster: &str,
        token: &str,
    ) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: {cluster}\n  cluster:\n    server: {}\n\
             contexts:\n- name: test\n  context: {{cluster: {cluster}, user: tester}}\nusers:\n- name: tester\n  user: {{token: {token}}}\n",
            self.url
        )).unwrap();
        path
    }

    /// The names of the pods of `ns`, sorted.
    pub fn pod_names(&self, ns: &str) -> Vec<String> {
        let mut names: Vec<String> = self.with(|s| {
            s.pods
                .iter()
                .filter(|p| p["metadata"]["namespace"] == ns)
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        });
        names.sort();
        names
    }

    /// How many requests had `method` and a path starting with `prefix`.
    pub fn count(&self, method: &str, prefix: &str) -> usize {
        self.with(|s| {
            s.requests
                .iter()
                .filter(|(m, p)| m == method && p.starts_with(prefix))
                .count()
        })
    }
}
