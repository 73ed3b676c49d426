//! The Kubernetes faults where they meet AWS, on the moto server (`scripts/test.sh` starts it)
//! and the in-process API server: the EKS token checked by the API server the way EKS checks
//! it (decoded, its shape checked, and its presigned `GetCallerIdentity` asked of STS), the
//! endpoint and CA from `DescribeCluster`, the node-side guard rail (a pod's node must be an
//! opted-in EC2 instance), `stress_eks_api`'s bounds, and `experiments/eks-pod-kill.yaml` run
//! by `worker run`, under `--dry actions` (the plan, nothing deleted) and for real.

use crate::k8s_api::Lab;
use crate::util::Sandbox;
use crate::util::kube::{self, Server};
use crate::util::moto::{self, Aws, Env, OPT_IN, team};
use aws::faults::FaultContext;
use aws::faults::k8s::auth::{Auth, EksToken, token_url};
use aws::faults::k8s::client::{Kube, Tls};
use aws::faults::k8s::connect::{ClusterRef, connect, describe};
use aws::faults::k8s::targets::{PodSelector, resolve_pods};
use serde_json::{Value, json};
use shared::cleanup::Cleanup;
use shared::fleet::safety::targets::Mode;
use shared::providers::ActivityError;
use shared::providers::registry::NativeCall;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

fn sdk(rt: &tokio::runtime::Runtime) -> aws_config::SdkConfig {
    rt.block_on(aws::sdk::emulator(&moto::endpoint()))
}

/// A fault context on the emulator, for what takes no lock.
fn context(sdk: aws_config::SdkConfig) -> FaultContext {
    FaultContext::for_checking(Cleanup::new()).with_sdk(sdk)
}

/// An EKS cluster on the emulator, with `tags`.
fn cluster(
    rt: &tokio::runtime::Runtime,
    sdk: &aws_config::SdkConfig,
    name: &str,
    tags: &[(&str, &str)],
) {
    let mut req = aws_sdk_eks::Client::new(sdk)
        .create_cluster()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/eks")
        .resources_vpc_config(
            aws_sdk_eks::types::VpcConfigRequest::builder()
                .subnet_ids("subnet-1")
                .build(),
        );
    for (k, v) in tags {
        req = req.tags(*k, *v);
    }
    rt.block_on(req.send()).unwrap();
}

/// GET the presigned URL's query from the emulator's STS, as EKS calls STS with it (moto picks
/// the service from an Authorization header, so the credential scope goes there too; moto
/// does not check signatures).
fn caller_identity(url: &str) -> String {
    let parsed = url::Url::parse(url).unwrap();
    let credential = parsed
        .query_pairs()
        .find(|(k, _)| k == "X-Amz-Credential")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let endpoint = url::Url::parse(&moto::endpoint()).unwrap();
    let mut s =
        std::net::TcpStream::connect((endpoint.host_str().unwrap(), endpoint.port().unwrap()))
            .unwrap();
    write!(s, "GET /?{} HTTP/1.0\r\nHost: sts.amazonaws.com\r\nAuthorization: AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host;x-k8s-aws-id, Signature=0\r\n\r\n",
        parsed.query().unwrap()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn the_eks_token_passes_the_check_eks_makes_and_describe_cluster_gives_endpoint_and_ca() {
    let rt = moto::runtime();
    let sdk = sdk(&rt);
    let name = team("k8s-token");
    cluster(&rt, &sdk, &name, &[]);
    let ctx = context(sdk.clone());

    let (endpoint, ca) = rt.block_on(describe(&ctx, "us-east-1", &name)).unwrap();
    assert!(
        endpoint.starts_with("https://") && endpoint.contains(".us-east-1.eks.amazonaws.com"),
        "{endpoint}"
    );
    assert!(!ca.is_empty());
    // moto's CA data is not a certificate: connecting by cluster name says so, naming the cluster
    let call = NativeCall {
        arguments: json!({"cluster_name": name}).as_object().unwrap().clone(),
        ..NativeCall::default()
    };
    let e = rt.block_on(connect(
        &ctx,
        &call,
        &ClusterRef {
            cluster_name: Some(name.clone()),
            ..ClusterRef::default()
        },
    ));
    let e = e.err().expect("moto's CA is not PEM").to_string();
    assert!(e.contains(&name) && e.contains("certificate"), "{e}");

    // the API server checks the token as EKS does: shape, cluster binding, then STS
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (seen2, cluster_name) = (seen.clone(), name.clone());
    let server = Server::start_checking(Arc::new(move |token: &str| {
        let Ok(url) = token_url(token) else {
            return false;
        };
        let q: Vec<(String, String)> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |k: &str| {
            q.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let shaped = url.starts_with("https://sts.us-east-1.amazonaws.com/?")
            && get("Action") == "GetCallerIdentity"
            && get("X-Amz-Expires") == "60"
            && get("X-Amz-SignedHeaders")
                .split(';')
                .any(|h| h == "x-k8s-aws-id")
            && get("X-Amz-Credential").starts_with("testing/");
        let identity = caller_identity(&url);
        seen2.lock().unwrap().push(identity.clone());
        shaped && !cluster_name.is_empty() && identity.contains("<GetCallerIdentityResult>")
    }));
    server.with(|s| s.namespaces.push(kube::namespace("shop", json!({}))));
    let token = EksToken::new(&name, "us-east-1", sdk.credentials_provider().unwrap());
    let kube = Kube::new(&server.url, Tls::default(), Auth::Eks(token)).unwrap();
    let ns: Value = rt
        .block_on(kube.get(&["api", "v1", "namespaces", "shop"]))
        .unwrap();
    assert_eq!(ns["metadata"]["name"], "shop");
    // a second call reuses the token made less than 40 s ago
    rt.block_on(kube.get::<Value>(&["api", "v1", "namespaces", "shop"]))
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[0].contains("<Account>123456789012</Account>"),
        "{}",
        seen[0]
    );
}

#[test]
fn a_fault_on_the_node_needs_the_pods_node_to_be_an_opted_in_instance() {
    let rt = moto::runtime();
    let aws = Aws::new();
    let tag = team("k8s-node");
    let opted = aws.instances(1, &[("team", &tag), OPT_IN]);
    let plain = aws.instances(1, &[("team", &tag)]);
    let lab = Lab::on_sdk(Some(sdk(&rt)));
    lab.server.with(|s| {
        s.nodes.push(kube::node("node-a", &opted[0]));
        s.nodes.push(kube::node("node-b", &plain[0]));
        s.nodes.push(json!({"metadata": {"name": "node-c"}, "spec": {"providerID": "kind://docker/x/node-c"}}));
        s.pods.push(kube::pod("shop", "job-b", json!({}), "node-b"));
        s.pods.push(kube::pod("shop", "job-c", json!({}), "node-c"));
    });
    let resolve = |pattern: &str| {
        let selector = PodSelector {
            cluster: ClusterRef {
                kubeconfig: Some(lab.kubeconfig().into()),
                ..ClusterRef::default()
            },
            namespace: "shop".into(),
            name_pattern: Some(pattern.into()),
            label_selector: None,
            mode: Mode::All,
            on_node: true,
        };
        let call = NativeCall {
            activity: "pod_fault".into(),
            ..NativeCall::default()
        };
        lab.rt.block_on(resolve_pods(&lab.ctx, &call, &selector))
    };
    let picked = resolve("^web-").unwrap();
    assert_eq!(picked.instance_ids(), opted);
    assert!(
        picked
            .pods
            .iter()
            .all(|p| p.instance_id.as_ref() == Some(&opted[0]) && p.containers == ["app"])
    );
    let keys = picked.lock_keys(true);
    assert!(
        keys.contains(&opted[0]) && keys.contains(&"pod:shop/web-1".to_string()),
        "{keys:?}"
    );
    for (pattern, rule, target) in [
        ("job-b", "opt_in", plain[0].clone()),
        ("job-c", "unknown_target", "node-c".into()),
    ] {
        match resolve(pattern) {
            Err(ActivityError::Refused(r)) => assert_eq!(
                (r.rule, r.target.as_deref()),
                (rule, Some(target.as_str())),
                "{pattern}"
            ),
            other => panic!("{pattern}: {other:?}"),
        }
    }
    aws.terminate(&opted);
    aws.terminate(&plain);
}

#[test]
fn stress_eks_api_is_capped_and_needs_an_opted_in_cluster() {
    let rt = moto::runtime();
    let sdk = sdk(&rt);
    let (opted, plain) = (team("k8s-stress-a"), team("k8s-stress-b"));
    cluster(&rt, &sdk, &opted, &[OPT_IN]);
    cluster(&rt, &sdk, &plain, &[]);
    let lab = Lab::on_sdk(Some(sdk));
    let out = lab.action("stress_eks_api", json!({"cluster_name": opted, "duration_seconds": 2, "intensity": 500, "region": "us-east-1"})).unwrap();
    assert_eq!(out["requests_per_second"], 20, "{out}");
    let sent = out["requests"].as_u64().unwrap();
    assert!((20..=60).contains(&sent), "2 s at 20/s, not 500/s: {out}");
    assert_eq!(
        out["succeeded"].as_u64().unwrap()
            + out["throttled"].as_u64().unwrap()
            + out["errors"].as_u64().unwrap(),
        sent
    );
    match lab.action(
        "stress_eks_api",
        json!({"cluster_name": plain, "duration_seconds": 1}),
    ) {
        Err(ActivityError::Refused(r)) => assert_eq!(r.rule, "opt_in"),
        other => panic!("{other:?}"),
    }
    match lab.action(
        "stress_eks_api",
        json!({"cluster_name": opted, "api_stress_duration": 31}),
    ) {
        Err(ActivityError::Refused(r)) => assert_eq!(r.rule, "max_duration"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_eks_pod_kill_experiment_prints_its_plan_under_dry_actions_and_runs_for_real() {
    let server = Server::start("eks-pod-kill-token");
    server.with(|s| {
        s.namespaces.push(kube::namespace(
            "experiment-demo",
            json!({"experiment-broker/opt-in": "true"}),
        ));
        for name in ["experiment-demo-7f9-a", "experiment-demo-7f9-b"] {
            s.pods.push(kube::pod(
                "experiment-demo",
                name,
                json!({"app": "experiment-demo"}),
                "node-a",
            ));
        }
        s.rebuild_after = Some(std::time::Duration::from_millis(500));
    });
    let sandbox = Sandbox::new();
    let kubeconfig = server.kubeconfig(sandbox.dir.path(), "experiment-eks", "eks-pod-kill-token");
    let experiment =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/eks-pod-kill.yaml");
    let run = |extra: &[&str]| {
        sandbox.run_with(&experiment, extra, |c| {
            moto::command_env(
                c,
                Env {
                    unset: &["BROKER_OPT_IN_TAG"],
                    ..Env::default()
                },
            );
            c.env("BROKER_KUBECONFIG", &kubeconfig);
        })
    };
    let dry = run(&["--dry", "actions"]);
    assert_eq!(dry.code, 0, "{}", dry.output());
    assert!(
        dry.stdout.contains(
            "dry run: kill-one-pod would run kill_pods on experiment-demo/experiment-demo-7f9-"
        ),
        "{}",
        dry.output()
    );
    assert_eq!(
        server.count("DELETE", "/"),
        0,
        "nothing deleted under --dry actions"
    );
    assert_eq!(dry.journal()["run"][0]["output"]["dry_run"], true);

    let real = run(&[]);
    assert_eq!(real.code, 0, "{}", real.output());
    let journal = real.journal();
    assert_eq!(journal["status"], "completed", "{journal:#}");
    let killed = journal["run"][0]["output"]["pods_terminated"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(killed.len(), 1);
    assert_eq!(
        server.count("DELETE", "/api/v1/namespaces/experiment-demo/pods/"),
        1
    );
    assert_eq!(
        journal["run"][1]["output"], true,
        "the replacement was seen: {journal:#}"
    );
    let records = journal["broker"]["records"].as_array().unwrap();
    assert_eq!(records[0]["kind"], "targets");
    assert_eq!(
        records[0]["chosen"][0],
        format!("experiment-demo/{}", killed[0].as_str().unwrap())
    );
}
