//! A kubeconfig file read into what the client needs: the server, how to trust it, and how to
//! authenticate. Supported: `certificate-authority-data` / `certificate-authority`,
//! `insecure-skip-tls-verify`, `token` / `tokenFile`, `client-certificate(-data)` with
//! `client-key(-data)`, and an `exec` plugin that is `aws eks get-token --cluster-name X` or
//! `aws-iam-authenticator token -i X` (the broker makes that EKS token itself). Any other
//! `exec` plugin, `auth-provider` and `username`/`password` are refused with an error naming
//! them: the broker runs no plugin.

use super::client::{KubeError, Tls};
use base64::Engine;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// How the kubeconfig's user authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAuth {
    None,
    Token(String),
    /// The EKS token for this cluster, in this region (else the call's).
    Eks {
        cluster: String,
        region: Option<String>,
    },
}

/// One context of a kubeconfig, resolved.
pub struct Resolved {
    pub context: String,
    pub server: String,
    pub tls: Tls,
    pub auth: UserAuth,
    /// The context's namespace, if it sets one.
    pub namespace: Option<String>,
}

fn config(path: &Path, message: impl std::fmt::Display) -> KubeError {
    KubeError::Config(format!("kubeconfig {}: {message}", path.display()))
}

/// The named entry of the list `key` (`clusters`, `users`, `contexts`), its inner mapping.
fn entry<'a>(doc: &'a Value, key: &str, name: &str, inner: &str) -> Option<&'a Value> {
    doc[key]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)
        .map(|e| &e[inner])
}

fn text(v: &Value, key: &str) -> Option<String> {
    v[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `*-data` (base64) or the file it names (relative to the kubeconfig's directory).
fn bytes(
    path: &Path,
    v: &Value,
    data_key: &str,
    file_key: &str,
    field: &str,
) -> Result<Option<Vec<u8>>, KubeError> {
    if let Some(data) = text(v, data_key) {
        return base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map(Some)
            .map_err(|e| config(path, format!("{field}.{data_key}: not base64: {e}")));
    }
    if let Some(file) = text(v, file_key) {
        let file = relative(path, &file);
        return std::fs::read(&file).map(Some).map_err(|e| {
            config(
                path,
                format!("{field}.{file_key}: cannot read {}: {e}", file.display()),
            )
        });
    }
    Ok(None)
}

fn relative(kubeconfig: &Path, file: &str) -> PathBuf {
    let file = Path::new(file);
    if file.is_absolute() {
        file.to_path_buf()
    } else {
        kubeconfig
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(file)
    }
}

/// The EKS cluster (and region) an `exec` plugin asks a token for, if it is one we make.
fn eks_exec(exec: &Value) -> Option<(String, Option<String>)> {
    let command = exec["command"].as_str()?;
    let args: Vec<&str> = exec["args"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let after = |flags: &[&str]| {
        args.windows(2)
            .find(|w| flags.contains(&w[0]))
            .map(|w| w[1].to_string())
    };
    let base = Path::new(command).file_name()?.to_str()?;
    let cluster = match base {
        "aws" if args.windows(2).any(|w| w == ["eks", "get-token"]) => after(&["--cluster-name"]),
        "aws-iam-authenticator" if args.first() == Some(&"token") => after(&["-i", "--cluster-id"]),
        _ => None,
    }?;
    Some((cluster, after(&["--region"])))
}

/// Read `path` and resolve `context`, else the context whose cluster is named `cluster` (none
/// is an error: a named cluster is never swapped for another), else `current-context`.
pub fn load(
    path: &Path,
    context: Option<&str>,
    cluster: Option<&str>,
) -> Result<Resolved, KubeError> {
    let source = std::fs::read_to_string(path).map_err(|e| config(path, e))?;
    let doc = shared::load::document::parse(&source, shared::load::document::Format::Yaml)
        .map_err(|p| config(path, p))?
        .value;
    let contexts = doc["contexts"].as_array().cloned().unwrap_or_default();
    let chosen = match (context, cluster) {
        (Some(c), _) => c.to_string(),
        (None, Some(cluster)) if contexts.iter().any(|c| names(c, cluster)) => contexts
            .iter()
            .find(|c| names(c, cluster))
            .and_then(|c| c["name"].as_str())
            .unwrap_or_default()
            .to_string(),
        (None, Some(cluster)) => {
            return Err(config(
                path,
                format!(
                    "no context for cluster {cluster:?}: the experiment names that cluster, so \
                     another one is never used (set kube_context to choose a context)"
                ),
            ));
        }
        (None, None) => text_of(&doc, "current-context")
            .ok_or_else(|| config(path, "no context given and no current-context"))?,
    };
    let ctx = entry(&doc, "contexts", &chosen, "context")
        .ok_or_else(|| config(path, format!("contexts: no context named {chosen:?}")))?;
    let cluster_name = text(ctx, "cluster")
        .ok_or_else(|| config(path, format!("context {chosen:?} names no cluster")))?;
    let c = entry(&doc, "clusters", &cluster_name, "cluster")
        .ok_or_else(|| config(path, format!("clusters: no cluster named {cluster_name:?}")))?;
    let server = text(c, "server")
        .ok_or_else(|| config(path, format!("cluster {cluster_name:?}: no server")))?;
    let mut tls = Tls {
        ca_pem: bytes(
            path,
            c,
            "certificate-authority-data",
            "certificate-authority",
            &format!("clusters[{cluster_name}]"),
        )?,
        identity_pem: None,
        insecure: c["insecure-skip-tls-verify"] == true,
    };
    let user_name = text(ctx, "user").unwrap_or_default();
    let user = entry(&doc, "users", &user_name, "user")
        .cloned()
        .unwrap_or(Value::Null);
    let field = format!("users[{user_name}]");
    for unsupported in ["auth-provider", "username", "password"] {
        if !user[unsupported].is_null() {
            return Err(config(
                path,
                format!(
                    "{field}.{unsupported} is not supported (supported: token, tokenFile, \
                     client-certificate/client-key, exec with aws eks get-token)"
                ),
            ));
        }
    }
    let cert = bytes(
        path,
        &user,
        "client-certificate-data",
        "client-certificate",
        &field,
    )?;
    let key = bytes(path, &user, "client-key-data", "client-key", &field)?;
    match (cert, key) {
        (Some(mut cert), Some(key)) => {
            cert.push(b'\n');
            cert.extend_from_slice(&key);
            tls.identity_pem = Some(cert);
        }
        (None, None) => {}
        _ => {
            return Err(config(
                path,
                format!("{field}: a client certificate needs both its certificate and its key"),
            ));
        }
    }
    let auth = if let Some(token) = text(&user, "token") {
        UserAuth::Token(token)
    } else if let Some(file) = text(&user, "tokenFile") {
        let file = relative(path, &file);
        let token = std::fs::read_to_string(&file).map_err(|e| {
            config(
                path,
                format!("{field}.tokenFile: cannot read {}: {e}", file.display()),
            )
        })?;
        UserAuth::Token(token.trim().to_string())
    } else if !user["exec"].is_null() {
        let (cluster, region) = eks_exec(&user["exec"]).ok_or_else(|| {
            config(
                path,
                format!(
                    "{field}.exec: only `aws eks get-token --cluster-name X` and \
                     `aws-iam-authenticator token -i X` are supported (the broker makes that \
                     token itself and runs no plugin)"
                ),
            )
        })?;
        UserAuth::Eks { cluster, region }
    } else {
        UserAuth::None
    };
    Ok(Resolved {
        context: chosen,
        server,
        tls,
        auth,
        namespace: text(ctx, "namespace"),
    })
}

/// Whether the context `c` is on the cluster `name` (or its EKS ARN, as `aws eks
/// update-kubeconfig` names it).
fn names(c: &Value, name: &str) -> bool {
    c["context"]["cluster"]
        .as_str()
        .is_some_and(|k| k == name || k.ends_with(&format!(":cluster/{name}")))
}

fn text_of(doc: &Value, key: &str) -> Option<String> {
    text(doc, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("config");
        std::fs::write(&p, text).unwrap();
        p
    }

    const TWO: &str = "
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster: {server: 'http://127.0.0.1:1', insecure-skip-tls-verify: true}
- name: shop
  cluster: {server: 'https://shop.example', certificate-authority: ca.pem}
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev, namespace: team}
- name: prod
  context: {cluster: shop, user: eks}
users:
- name: dev
  user: {tokenFile: token.txt}
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [--region, eu-west-1, eks, get-token, --cluster-name, shop]
";

    #[test]
    fn contexts_resolve_by_name_by_cluster_or_current() {
        let dir = std::env::temp_dir().join(format!("kubeconfig-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token.txt"), "abc\n").unwrap();
        std::fs::write(dir.join("ca.pem"), "PEM").unwrap();
        let p = write(&dir, TWO);
        let r = load(&p, None, None).unwrap();
        assert_eq!(
            (r.context.as_str(), r.server.as_str()),
            ("dev", "http://127.0.0.1:1")
        );
        assert_eq!(r.auth, UserAuth::Token("abc".into()));
        assert!(r.tls.insecure && r.tls.ca_pem.is_none());
        assert_eq!(r.namespace.as_deref(), Some("team"));
        let r = load(&p, None, Some("shop")).unwrap();
        assert_eq!(r.context, "prod");
        assert_eq!(r.tls.ca_pem.as_deref(), Some(&b"PEM"[..]));
        assert_eq!(
            r.auth,
            UserAuth::Eks {
                cluster: "shop".into(),
                region: Some("eu-west-1".into())
            }
        );
        assert_eq!(
            load(&p, Some("prod"), Some("other")).unwrap().context,
            "prod"
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn what_the_broker_does_not_support_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("kubeconfig-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (user, needle) in [
            ("{exec: {command: gke-gcloud-auth-plugin}}", "exec: only"),
            (
                "{auth-provider: {name: oidc}}",
                "auth-provider is not supported",
            ),
            ("{username: a, password: b}", "username is not supported"),
            ("{client-certificate-data: QUJD}", "needs both"),
            ("{client-key-data: '***'}", "client-key-data: not base64"),
        ] {
            let p = write(
                &dir,
                &format!(
                    "current-context: c\nclusters: [{{name: k, cluster: {{server: 'https://k'}}}}]\n\
                     contexts: [{{name: c, context: {{cluster: k, user: u}}}}]\nusers: [{{name: u, user: {user}}}]\n"
                ),
            );
            let e = load(&p, None, None).err().unwrap().to_string();
            assert!(e.contains(needle), "{user}: {e}");
            assert!(e.contains("kubeconfig "), "{e}");
        }
        let p = write(&dir, "clusters: []\n");
        let e = load(&p, Some("nope"), None).err().unwrap().to_string();
        assert!(e.contains("no context named \"nope\""), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
