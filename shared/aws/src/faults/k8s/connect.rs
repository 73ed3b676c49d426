//! Which cluster an activity talks to, and the client for it: a kubeconfig when one is given
//! (the activity's `kubeconfig` argument, else `configuration.kubeconfig`, else the
//! deployment's `BROKER_KUBECONFIG`), otherwise the EKS cluster named by `cluster_name`
//! (argument, else `configuration.cluster_name`): endpoint and CA from `DescribeCluster`, the
//! EKS token from the process's AWS credentials. `KUBECONFIG` is not read: a worker acts only
//! on a cluster its deployment or experiment names.

use super::auth::{Auth, EksToken};
use super::client::{Kube, KubeError, Tls};
use super::kubeconfig::{self, UserAuth};
use crate::faults::FaultContext;
use crate::faults::context::region;
use base64::Engine;
use serde_json::{Map, Value};
use shared::providers::registry::NativeCall;
use std::path::PathBuf;

/// The deployment's kubeconfig, used when an experiment names none.
pub const KUBECONFIG_ENV: &str = "BROKER_KUBECONFIG";

/// Which cluster, as the experiment says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterRef {
    /// The EKS cluster's name (and the kubeconfig context's cluster, with a kubeconfig).
    pub cluster_name: Option<String>,
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (else the one whose cluster is `cluster_name`, else current).
    pub context: Option<String>,
}

fn string(
    args: &Map<String, Value>,
    configuration: &Map<String, Value>,
    key: &str,
) -> Result<Option<String>, String> {
    for (scope, place) in [(args, ""), (configuration, "configuration.")] {
        match scope.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.trim().is_empty() => {}
            Some(Value::String(s)) => return Ok(Some(s.trim().to_string())),
            Some(v) => return Err(format!("{place}{key}: expected a string, got {v}")),
        }
    }
    Ok(None)
}

impl ClusterRef {
    /// `cluster_name`, `kubeconfig` and `kube_context` from the arguments, then the
    /// configuration, then the deployment's `BROKER_KUBECONFIG`.
    pub fn from_call(call: &NativeCall) -> Result<ClusterRef, String> {
        let (a, c) = (&call.arguments, &call.configuration);
        let kubeconfig = string(a, c, "kubeconfig")?
            .or_else(|| std::env::var(KUBECONFIG_ENV).ok().filter(|s| !s.is_empty()))
            .map(PathBuf::from);
        let cluster = ClusterRef {
            cluster_name: string(a, c, "cluster_name")?,
            kubeconfig,
            context: string(a, c, "kube_context")?,
        };
        if cluster.cluster_name.is_none() && cluster.kubeconfig.is_none() {
            return Err(format!(
                "cluster_name is missing: name the EKS cluster (argument or configuration.cluster_name), or give a kubeconfig (argument, configuration.kubeconfig or {KUBECONFIG_ENV})"
            ));
        }
        Ok(cluster)
    }

    /// How the journal names it.
    pub fn describe(&self) -> String {
        match (&self.kubeconfig, &self.cluster_name) {
            (Some(k), Some(c)) => format!("{c} (kubeconfig {})", k.display()),
            (Some(k), None) => format!("kubeconfig {}", k.display()),
            (None, Some(c)) => format!("EKS cluster {c}"),
            (None, None) => "no cluster".into(),
        }
    }
}

/// The region the EKS calls and token use: the call's, else the SDK's.
async fn eks_region(ctx: &FaultContext, call: &NativeCall) -> Result<String, KubeError> {
    if let Some(r) = region(call) {
        return Ok(r);
    }
    ctx.sdk()
        .await
        .region()
        .map(|r| r.to_string())
        .ok_or_else(|| {
            KubeError::Config(
                "no AWS region for EKS: set the region argument, configuration.aws_region or AWS_REGION".into(),
            )
        })
}

/// `DescribeCluster`: the cluster's endpoint and its CA (PEM).
pub async fn describe(
    ctx: &FaultContext,
    region: &str,
    name: &str,
) -> Result<(String, Vec<u8>), KubeError> {
    let conf = aws_sdk_eks::config::Builder::from(ctx.sdk().await)
        .region(aws_config::Region::new(region.to_string()))
        .build();
    let out = aws_sdk_eks::Client::from_conf(conf)
        .describe_cluster()
        .name(name)
        .send()
        .await
        .map_err(|e| {
            KubeError::Config(crate::sdk::explain(
                "DescribeCluster",
                name,
                "the cluster name, the region and the AWS credentials",
                &e,
            ))
        })?;
    let cluster = out
        .cluster()
        .ok_or_else(|| KubeError::Config(format!("DescribeCluster {name}: no cluster")))?;
    let endpoint = cluster
        .endpoint()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            KubeError::Config(format!(
                "EKS cluster {name} has no endpoint yet (status {:?})",
                cluster.status().map(|s| s.as_str())
            ))
        })?;
    let data = cluster
        .certificate_authority()
        .and_then(|c| c.data())
        .ok_or_else(|| {
            KubeError::Config(format!("EKS cluster {name}: no certificate authority"))
        })?;
    let ca = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| {
            KubeError::Config(format!(
                "EKS cluster {name}: the certificate authority data is not base64: {e}"
            ))
        })?;
    Ok((endpoint.to_string(), ca))
}

/// The EKS token source for `cluster` in `region`, on the process's AWS credentials.
pub async fn eks_token(
    ctx: &FaultContext,
    cluster: &str,
    region: &str,
) -> Result<EksToken, KubeError> {
    let credentials = ctx.sdk().await.credentials_provider().ok_or_else(|| {
        KubeError::Auth(format!(
            "the EKS token for cluster {cluster}: no AWS credentials are configured"
        ))
    })?;
    Ok(EksToken::new(cluster, region, credentials))
}

/// A client for the cluster `cluster` names.
pub async fn connect(
    ctx: &FaultContext,
    call: &NativeCall,
    cluster: &ClusterRef,
) -> Result<Kube, KubeError> {
    if let Some(path) = &cluster.kubeconfig {
        let resolved = kubeconfig::load(
            path,
            cluster.context.as_deref(),
            cluster.cluster_name.as_deref(),
        )?;
        let auth = match resolved.auth {
            UserAuth::None => Auth::None,
            UserAuth::Token(t) => Auth::Bearer(t),
            UserAuth::Eks {
                cluster: name,
                region,
            } => {
                let region = match region {
                    Some(r) => r,
                    None => eks_region(ctx, call).await?,
                };
                Auth::Eks(eks_token(ctx, &name, &region).await?)
            }
        };
        return Kube::new(&resolved.server, resolved.tls, auth);
    }
    let name = cluster
        .cluster_name
        .as_deref()
        .ok_or_else(|| KubeError::Config("no cluster_name and no kubeconfig".into()))?;
    let region = eks_region(ctx, call).await?;
    let (endpoint, ca) = describe(ctx, &region, name).await?;
    let token = eks_token(ctx, name, &region).await?;
    Kube::new(
        &endpoint,
        Tls {
            ca_pem: Some(ca),
            ..Tls::default()
        },
        Auth::Eks(token),
    )
    .map_err(|e| KubeError::Config(format!("EKS cluster {name}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(args: Value, configuration: Value) -> NativeCall {
        NativeCall {
            arguments: args.as_object().unwrap().clone(),
            configuration: configuration.as_object().unwrap().clone(),
            ..NativeCall::default()
        }
    }

    #[test]
    fn the_cluster_comes_from_the_arguments_then_the_configuration() {
        let c = ClusterRef::from_call(&call(
            json!({"cluster_name": "a", "kubeconfig": "/k"}),
            json!({"cluster_name": "b"}),
        ))
        .unwrap();
        assert_eq!(c.cluster_name.as_deref(), Some("a"));
        assert_eq!(c.kubeconfig, Some(PathBuf::from("/k")));
        let c = ClusterRef::from_call(&call(
            json!({}),
            json!({"cluster_name": "b", "kube_context": "x"}),
        ))
        .unwrap();
        assert_eq!(
            (c.cluster_name.as_deref(), c.context.as_deref()),
            (Some("b"), Some("x"))
        );
        let e = ClusterRef::from_call(&call(json!({"cluster_name": 3}), json!({}))).unwrap_err();
        assert!(e.contains("cluster_name: expected a string"), "{e}");
    }
}
