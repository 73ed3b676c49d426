//! The node-side pod faults (`experimentvr.k8s.actions.pod_*`) on the moto server and the
//! in-process API server: a pod chosen through the API gets its document on its node's
//! instance, with its UID and its container's id, and nothing is sent when the pod or its node
//! is not opted in, or under a dry run. What was sent is read back from moto's record of
//! `SendCommand` calls.

use crate::k8s_api::Lab;
use crate::util::Sandbox;
use crate::util::kube;
use crate::util::kube::Server;
use crate::util::moto::{self, Aws, Env, OPT_IN, sent_to, team};
use serde_json::{Value, json};
use shared::providers::ActivityError;

const CONTAINER: &str = "0f3c5e7a9b1d2f4a6c8e0b2d4f6a8c0e1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c0e";

/// The lab's pods get a container id in their status (what the kubelet reports) and real
/// nodes: `node-a` on `a`, `node-b` on `b`.
fn lab(a: &str, b: &str) -> Lab {
    let rt = moto::runtime();
    let sdk = rt.block_on(aws::sdk::emulator(&moto::endpoint()));
    let lab = Lab::on_sdk(Some(sdk));
    lab.server.with(|s| {
        s.nodes.push(kube::node("node-a", a));
        s.nodes.push(kube::node("node-b", b));
        s.pods
            .push(kube::pod("shop", "job-1", json!({"app": "job"}), "node-b"));
        for pod in &mut s.pods {
            pod["status"]["containerStatuses"][0]["containerID"] =
                json!(format!("containerd://{CONTAINER}"));
        }
    });
    lab
}

fn refused(r: Result<Value, ActivityError>) -> (String, Option<String>) {
    match r {
        Err(ActivityError::Refused(r)) => (r.rule.to_string(), r.target),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn exactly_the_chosen_pods_node_gets_the_document_with_its_uid_and_container() {
    let aws = Aws::new();
    aws.register("PodStressCPU");
    let tag = team("pod-cpu");
    let a = aws.instances(1, &[("team", &tag), OPT_IN]);
    let b = aws.instances(1, &[("team", &tag), OPT_IN]);
    let lab = lab(&a[0], &b[0]);
    let out = lab
        .action(
            "pod_stress_cpu",
            json!({"container_name_pattern": "k8s_app_web-2_", "name_space": "shop",
                   "cluster_name": "shop-cluster", "pod_stress_cpu_duration": 5}),
        )
        .unwrap();
    assert_eq!(out["targets"], json!(["shop/web-2"]), "{out:#}");
    let sent_a = sent_to(&a);
    assert_eq!(sent_a.len(), 1, "{sent_a:?}");
    assert_eq!(sent_a[0]["DocumentName"], "PodStressCPU");
    assert_eq!(sent_a[0]["InstanceIds"], json!([a[0]]));
    assert_eq!(
        sent_a[0]["Parameters"],
        json!({"duration": ["5"], "load": ["50"], "podUid": ["uid-web-2"], "containerId": [CONTAINER]})
    );
    assert!(sent_to(&b).is_empty(), "the other node got nothing");
    // the pod (and its node) were on record before the command
    let records = lab.records.lock().unwrap();
    assert_eq!(records[0].0["kind"], "targets");
    assert_eq!(records[0].0["chosen"], json!(["shop/web-2"]));
    assert!(
        records.iter().any(|(r, _, _)| r["kind"] == "ssm_command"),
        "{records:?}"
    );
    drop(records);
    aws.terminate(&a);
    aws.terminate(&b);
}

#[test]
fn a_pod_without_the_opt_in_label_or_on_a_node_not_opted_in_is_refused_before_anything_is_sent() {
    let aws = Aws::new();
    aws.register("PodBlackholePort");
    let tag = team("pod-guard");
    let a = aws.instances(1, &[("team", &tag), OPT_IN]);
    let b = aws.instances(1, &[("team", &tag)]);
    let lab = lab(&a[0], &b[0]);
    let args = |ns: &str, pattern: &str| {
        json!({"container_name_pattern": "k8s_app_", "name_space": ns, "pod_name_pattern": pattern,
               "cluster_name": "shop-cluster", "pod_blackhole_by_port_destination_ports": "53"})
    };
    // db-1: neither it nor namespace other carries the label
    let (rule, target) = refused(lab.action("pod_blackhole_by_port", args("other", "^db-1$")));
    assert_eq!(
        (rule.as_str(), target.as_deref()),
        ("opt_in", Some("other/db-1"))
    );
    // job-1: opted in (namespace shop) but on node-b, an instance without the opt-in tag
    let (rule, target) = refused(lab.action("pod_blackhole_by_port", args("shop", "^job-1$")));
    assert_eq!(
        (rule.as_str(), target.as_deref()),
        ("opt_in", Some(b[0].as_str()))
    );
    assert!(sent_to(&a).is_empty() && sent_to(&b).is_empty());
    aws.terminate(&a);
    aws.terminate(&b);
}

#[test]
fn a_dry_run_plans_the_commands_and_sends_nothing() {
    let aws = Aws::new();
    let tag = team("pod-dry");
    let a = aws.instances(1, &[("team", &tag), OPT_IN]);
    let b = aws.instances(1, &[("team", &tag), OPT_IN]);
    let lab = lab(&a[0], &b[0]);
    let plan = lab
        .call(
            "experimentvr.k8s.actions",
            "pod_blackhole_by_name",
            json!({"cluster_name": "shop-cluster", "blacklist_pod_name_pattern": "^api-",
                   "container_name_pattern": "k8s_app_web", "name_space": "shop",
                   "num_containers_to_target": "2", "test_target_type": "RANDOM"}),
            true,
        )
        .unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["document"], "PodBlackholeIP");
    let commands = plan["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 2, "{plan:#}");
    for c in commands {
        assert_eq!(c["instance"], a[0].as_str());
        assert_eq!(c["parameters"]["ip"], "127.0.0.1", "api-1's address");
        assert_eq!(c["parameters"]["direction"], "both");
        assert!(c["pod"].as_str().unwrap().starts_with("shop/web-"));
    }
    assert!(sent_to(&a).is_empty() && sent_to(&b).is_empty());
    aws.terminate(&a);
    aws.terminate(&b);
}

#[test]
fn delete_pod_ssm_deletes_one_matching_pod_through_the_api() {
    let lab = Lab::new();
    let out = lab
        .action(
            "delete_pod_ssm",
            json!({"cluster_name": "shop-cluster", "name_space": "shop", "pod_name_pattern": "^web-"}),
        )
        .unwrap();
    let killed = out["pods_terminated"].as_array().unwrap();
    assert_eq!(killed.len(), 1, "{out:#}");
    assert_eq!(
        lab.server
            .count("DELETE", "/api/v1/namespaces/shop/pods/web-"),
        1
    );
    let (rule, _) = refused(lab.action(
        "delete_pod_ssm",
        json!({"cluster_name": "shop-cluster", "name_space": "other", "pod_name_pattern": "^db-"}),
    ));
    assert_eq!(rule, "opt_in");
}

#[test]
fn the_eks_pod_stress_experiment_validates_and_prints_its_plan_under_dry_actions() {
    let aws = Aws::new();
    let tag = team("pod-experiment");
    let node = aws.instances(1, &[("team", &tag), OPT_IN]);
    let server = Server::start("eks-pod-stress-token");
    server.with(|s| {
        s.namespaces.push(kube::namespace(
            "experiment-demo",
            json!({"experiment-broker/opt-in": "true"}),
        ));
        s.nodes.push(kube::node("node-a", &node[0]));
        for name in ["experiment-demo-7f9-a", "experiment-demo-7f9-b"] {
            let mut pod = kube::pod(
                "experiment-demo",
                name,
                json!({"app": "experiment-demo"}),
                "node-a",
            );
            pod["status"]["containerStatuses"][0]["containerID"] =
                json!(format!("containerd://{CONTAINER}"));
            s.pods.push(pod);
        }
    });
    let sandbox = Sandbox::new();
    let kubeconfig =
        server.kubeconfig(sandbox.dir.path(), "experiment-eks", "eks-pod-stress-token");
    let experiment = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments/eks-pod-stress-cpu.yaml");
    let dry = sandbox.run_with(&experiment, &["--dry", "actions"], |c| {
        moto::command_env(
            c,
            Env {
                unset: &["BROKER_OPT_IN_TAG"],
                ..Env::default()
            },
        );
        c.env("BROKER_KUBECONFIG", &kubeconfig);
    });
    assert_eq!(dry.code, 0, "{}", dry.output());
    assert!(
        dry.stdout.contains(
            "dry run: stress-one-container would send PodStressCPU on experiment-demo/experiment-demo-7f9-"
        ),
        "{}",
        dry.output()
    );
    let output = &dry.journal()["run"][0]["output"];
    assert_eq!(output["dry_run"], true, "{output:#}");
    assert_eq!(output["commands"][0]["instance"], node[0].as_str());
    assert_eq!(output["commands"][0]["parameters"]["load"], "80");
    assert!(
        sent_to(&node).is_empty(),
        "nothing sent under --dry actions"
    );
    aws.terminate(&node);
}

#[test]
fn targets_narrows_the_candidates_to_the_pods_on_those_instances() {
    let aws = Aws::new();
    aws.register("PodTerminationCrash");
    let tag = team("pod-targets");
    let a = aws.instances(1, &[("team", &tag), OPT_IN]);
    let b = aws.instances(1, &[("team", &tag), OPT_IN]);
    let lab = lab(&a[0], &b[0]);
    // every pod's app container matches; only job-1 is on b
    let out = lab
        .action(
            "pod_termination_crash",
            json!({"container_name_pattern": "k8s_app_", "name_space": "shop",
                   "cluster_name": "shop-cluster", "targets": [b[0]], "test_target_type": "ALL"}),
        )
        .unwrap();
    assert_eq!(out["targets"], json!(["shop/job-1"]), "{out:#}");
    let sent = sent_to(&b);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["DocumentName"], "PodTerminationCrash");
    assert_eq!(sent[0]["Parameters"]["podUid"], json!(["uid-job-1"]));
    assert!(sent_to(&a).is_empty());
    aws.terminate(&a);
    aws.terminate(&b);
}
