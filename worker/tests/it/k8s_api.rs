//! The Kubernetes actions and probes against the in-process API server (`util::kube`), called
//! through the fault library's registry as `worker run` calls them: what the server was asked
//! (deletes, patches) is read back from its state and request log, and the journal records
//! from the recorder, so "on record before acting" is checked by order.

use crate::util::kube::{self, Server};
use aws::faults::FaultContext;
use aws::faults::safety::FaultSettings;
use serde_json::{Value, json};
use shared::cleanup::Cleanup;
use shared::providers::ActivityError;
use shared::providers::registry::{NativeCall, Recorder, Registry};
use std::sync::{Arc, Mutex};

const TOKEN: &str = "s3cr3t-token";
const OPTED: (&str, &str) = ("experiment-broker/opt-in", "true");

/// One server, one fault context (locks in a temp dir), one registry.
pub struct Lab {
    pub server: Arc<Server>,
    pub ctx: Arc<FaultContext>,
    pub dir: tempfile::TempDir,
    pub registry: Registry,
    pub rt: tokio::runtime::Runtime,
    /// Each record, with how many DELETE and PATCH requests the server had seen when it was made.
    pub records: Arc<Mutex<Vec<(Value, usize, usize)>>>,
}

impl Lab {
    pub fn new() -> Lab {
        Lab::on_sdk(None)
    }

    /// A lab whose fault context calls AWS on `sdk` (the emulator's), when given.
    pub fn on_sdk(sdk: Option<aws_config::SdkConfig>) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let ctx = FaultContext::new(
            FaultSettings::default(),
            aws::Store::Dir(shared::adapters::embedded::DirStore::new(
                dir.path().join("locks"),
            )),
            Cleanup::new(),
        );
        let ctx = match sdk {
            Some(sdk) => ctx.with_sdk(sdk),
            None => ctx,
        };
        Lab::in_dir(ctx, dir)
    }

    fn in_dir(ctx: FaultContext, dir: tempfile::TempDir) -> Lab {
        let server = Arc::new(Server::start(TOKEN));
        server.with(|s| {
            s.namespaces
                .push(kube::namespace("shop", json!({OPTED.0: OPTED.1})));
            s.namespaces.push(kube::namespace("other", json!({})));
            for name in ["web-1", "web-2", "web-3"] {
                s.pods
                    .push(kube::pod("shop", name, json!({"app": "web"}), "node-a"));
            }
            s.pods
                .push(kube::pod("shop", "api-1", json!({"app": "api"}), "node-a"));
            s.pods
                .push(kube::pod("other", "db-1", json!({"app": "db"}), "node-a"));
            s.pods.push(kube::pod(
                "other",
                "cache-1",
                json!({"app": "cache", OPTED.0: OPTED.1}),
                "node-a",
            ));
        });
        let ctx = Arc::new(ctx);
        Lab {
            registry: aws::faults::registry(ctx.clone()),
            ctx,
            server,
            dir,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            records: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn kubeconfig(&self) -> String {
        self.server
            .kubeconfig(self.dir.path(), "shop-cluster", TOKEN)
            .display()
            .to_string()
    }

    /// Call `module.func` with `args` (plus this server's kubeconfig); `plan_only` as `--dry actions`.
    pub fn call(
        &self,
        module: &str,
        func: &str,
        mut args: Value,
        plan_only: bool,
    ) -> Result<Value, ActivityError> {
        if args.get("kubeconfig").is_none() {
            args["kubeconfig"] = json!(self.kubeconfig());
        }
        let (records, server) = (self.records.clone(), self.server.clone());
        let recorder = Recorder::new(move |v| {
            let seen = (server.count("DELETE", "/"), server.count("PATCH", "/"));
            records.lock().unwrap().push((v, seen.0, seen.1));
            Box::pin(async { Ok(()) })
        });
        let call = NativeCall {
            arguments: args.as_object().unwrap().clone(),
            activity: func.to_string(),
            plan_only,
            recorder,
            ..NativeCall::default()
        };
        let activity = self
            .registry
            .get(module, func)
            .unwrap_or_else(|| panic!("{module}.{func} registered"));
        self.rt.block_on(activity.call(call))
    }

    pub fn action(&self, func: &str, args: Value) -> Result<Value, ActivityError> {
        self.call("experimentvr.k8s.actions", func, args, false)
    }

    pub fn probe(&self, func: &str, args: Value) -> Result<Value, ActivityError> {
        self.call("experimentvr.k8s.probes", func, args, false)
    }
}

fn refused_rule(r: Result<Value, ActivityError>) -> String {
    match r {
        Err(ActivityError::Refused(r)) => r.rule.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn kill_pods_deletes_the_chosen_pods_after_putting_them_on_record() {
    let lab = Lab::new();
    let out = lab
        .action("kill_pods", json!({"cluster_name": "shop-cluster", "name_space": "shop", "pod_name_pattern": "^web-", "num_pods_to_kill": "2"}))
        .unwrap();
    let killed: Vec<String> = serde_json::from_value(out["pods_terminated"].clone()).unwrap();
    assert_eq!(killed.len(), 2, "{out:#}");
    let left = lab.server.pod_names("shop");
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.contains(&"api-1".to_string()),
        "the pattern keeps api-1: {left:?}"
    );
    assert!(
        killed
            .iter()
            .all(|k| k.starts_with("web-") && !left.contains(k))
    );
    assert_eq!(
        lab.server.count("DELETE", "/api/v1/namespaces/shop/pods/"),
        2
    );
    // the list came in pages of two (four pods: a continue token)
    assert!(lab.server.count("GET", "/api/v1/namespaces/shop/pods?") >= 2);
    let records = lab.records.lock().unwrap();
    let targets = records
        .iter()
        .find(|(r, _, _)| r["kind"] == "targets")
        .expect("targets on record");
    assert_eq!(
        targets.1, 0,
        "the targets were on record before any delete: {:?}",
        targets.0
    );
    let mut chosen: Vec<String> = serde_json::from_value(targets.0["chosen"].clone()).unwrap();
    chosen.sort();
    let mut expected: Vec<String> = killed.iter().map(|k| format!("shop/{k}")).collect();
    expected.sort();
    assert_eq!(chosen, expected);
    let locks = records
        .iter()
        .find(|(r, _, _)| r["kind"] == "locks")
        .expect("locks on record");
    assert_eq!(locks.1, 0, "locked before any delete");
    assert!(
        locks.0["targets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().starts_with("pod:shop/web-"))
    );
}

#[test]
fn all_mode_takes_every_match_and_a_dry_run_deletes_nothing() {
    let lab = Lab::new();
    let plan = lab
        .call(
            "experimentvr.k8s.actions",
            "kill_pods",
            json!({"name_space": "shop", "pod_name_pattern": "web", "test_target_type": "ALL"}),
            true,
        )
        .unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["targets"],
        json!(["shop/web-1", "shop/web-2", "shop/web-3"])
    );
    assert_eq!(plan["pods_terminated"], json!([]));
    assert_eq!(
        lab.server.count("DELETE", "/"),
        0,
        "a dry run deletes nothing"
    );
    let out = lab
        .action(
            "kill_pods",
            json!({"name_space": "shop", "pod_name_pattern": "web", "test_target_type": "ALL"}),
        )
        .unwrap();
    assert_eq!(out["pods_terminated"], json!(["web-1", "web-2", "web-3"]));
    assert_eq!(lab.server.pod_names("shop"), ["api-1"]);
}

#[test]
fn a_pod_is_a_target_only_if_it_or_its_namespace_opted_in_and_caps_hold() {
    let lab = Lab::new();
    // namespace "other" has no label: db-1 is refused, cache-1 carries the label itself
    let r = lab.action(
        "kill_pods",
        json!({"name_space": "other", "pod_name_pattern": "db"}),
    );
    assert_eq!(refused_rule(r), "opt_in");
    let out = lab
        .action(
            "kill_pods",
            json!({"name_space": "other", "pod_name_pattern": "cache"}),
        )
        .unwrap();
    assert_eq!(out["pods_terminated"], json!(["cache-1"]));
    assert_eq!(lab.server.pod_names("other"), ["db-1"]);
    // the experiment's caps count pods
    let mut call =
        json!({"name_space": "shop", "pod_name_pattern": "web", "test_target_type": "ALL"});
    call["kubeconfig"] = json!(lab.kubeconfig());
    let capped = NativeCall {
        arguments: call.as_object().unwrap().clone(),
        activity: "kill".into(),
        extension: json!({"max_targets": 2}).as_object().unwrap().clone(),
        ..NativeCall::default()
    };
    let activity = lab
        .registry
        .get("experimentvr.k8s.actions", "kill_pods")
        .unwrap();
    match lab.rt.block_on(activity.call(capped)) {
        Err(ActivityError::Refused(r)) => assert_eq!(r.rule, "max_targets"),
        other => panic!("{other:?}"),
    }
    // nothing matches: refused, not silently done
    assert_eq!(
        refused_rule(lab.action(
            "kill_pods",
            json!({"name_space": "shop", "pod_name_pattern": "nothing"})
        )),
        "empty_selection"
    );
    assert_eq!(lab.server.count("DELETE", "/api/v1/namespaces/shop"), 0);
    let e = lab
        .action(
            "kill_pods",
            json!({"name_space": "nope", "pod_name_pattern": "x"}),
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("namespace nope does not exist"),
        "{e}"
    );
}

#[test]
fn a_missing_or_wrong_token_gets_401_as_from_the_api() {
    let lab = Lab::new();
    let bad = lab
        .server
        .kubeconfig(lab.dir.path(), "shop-cluster", "wrong");
    let e = lab
        .action("kill_pods", json!({"name_space": "shop", "pod_name_pattern": "web", "kubeconfig": bad.display().to_string()}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("401") && e.contains("Unauthorized"), "{e}");
    assert!(!e.contains("wrong"), "the token is not in the error: {e}");
    let resolved = aws::faults::k8s::kubeconfig::load(&bad, None, None).unwrap();
    let none = aws::faults::k8s::client::Kube::new(
        &resolved.server,
        Default::default(),
        aws::faults::k8s::auth::Auth::None,
    )
    .unwrap();
    let r = lab
        .rt
        .block_on(none.get::<Value>(&["api", "v1", "namespaces", "shop"]));
    assert_eq!(r.unwrap_err().code(), Some(401));
    assert_eq!(lab.server.pod_names("shop").len(), 4);
}

#[test]
fn eks_update_image_tag_records_the_previous_image_and_the_restore_puts_it_back() {
    let lab = Lab::new();
    lab.server.with(|s| {
        s.deployments.push(kube::deployment(
            "shop",
            "web-shop",
            json!({}),
            "repo/web:shop-v1",
        ))
    });
    let image = |lab: &Lab| {
        lab.server
            .with(|s| s.deployments[0]["spec"]["template"]["spec"]["containers"].clone())
    };
    let args = json!({"cluster_name": "shop-cluster", "failed_image_tag": "broken", "pod_name_pattern": "web", "name_space": "shop"});
    let plan = lab
        .call(
            "experimentvr.k8s.actions",
            "eks_update_image_tag",
            args.clone(),
            true,
        )
        .unwrap();
    assert_eq!(
        (plan["previous_image"].as_str(), plan["image"].as_str()),
        (Some("repo/web:shop-v1"), Some("repo/web:shop-broken"))
    );
    assert_eq!(
        lab.server.count("PATCH", "/"),
        0,
        "a dry run patches nothing"
    );

    let out = lab.action("eks_update_image_tag", args.clone()).unwrap();
    assert_eq!(out["previous_image"], "repo/web:shop-v1");
    let containers = image(&lab);
    assert_eq!(containers[0]["image"], "repo/web:shop-broken");
    assert_eq!(
        containers[0]["ports"],
        json!([{"containerPort": 80}]),
        "strategic merge keeps the rest"
    );
    assert_eq!(
        containers[1]["image"], "proxy:1",
        "the sidecar is untouched"
    );
    let records = lab.records.lock().unwrap().clone();
    let recorded = records
        .iter()
        .find(|(r, _, _)| r["kind"] == "k8s_image" && r["dry_run"] == false)
        .expect("on record");
    assert_eq!(
        (recorded.0["previous_image"].as_str(), recorded.2),
        (Some("repo/web:shop-v1"), 0),
        "recorded before the patch"
    );

    // never stacked: a second injection is refused while the first is in place
    assert_eq!(
        refused_rule(lab.action("eks_update_image_tag", args.clone())),
        "already_injected"
    );

    let mut restore = args.clone();
    restore.as_object_mut().unwrap().remove("failed_image_tag");
    let back = lab
        .action("eks_restore_image_tag", restore.clone())
        .unwrap();
    assert_eq!(back["restored"][0]["image"], "repo/web:shop-v1");
    assert_eq!(image(&lab)[0]["image"], "repo/web:shop-v1");
    assert!(lab.server.with(|s| {
        s.deployments[0]["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .is_empty()
    }));
    // nothing left to restore: a no-op, not a failure
    assert_eq!(
        lab.action("eks_restore_image_tag", restore).unwrap()["restored"],
        json!([])
    );

    // a redelivered job's revert restores from the dead owner's records
    lab.action("eks_update_image_tag", args.clone()).unwrap();
    let mut dead: Vec<Value> = lab
        .records
        .lock()
        .unwrap()
        .iter()
        .map(|(r, _, _)| r.clone())
        .collect();
    for r in dead.iter_mut().filter(|r| r["kind"] == "k8s_image") {
        r["kubeconfig"] = json!(lab.kubeconfig());
    }
    let ctx = FaultContext::for_checking(Cleanup::new());
    let out = lab
        .rt
        .block_on(aws::faults::k8s::image::restore_recorded(&ctx, &dead));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(image(&lab)[0]["image"], "repo/web:shop-v1", "{out:?}");
}

#[test]
fn the_pod_probes_read_readiness_and_assert_pod_rebuilt_watches_for_the_replacement() {
    let lab = Lab::new();
    let args =
        |name: &str| json!({"cluster_name": "shop-cluster", "pod_name": name, "namespace": "shop"});
    assert_eq!(lab.probe("assert_pod_healthy", args("web")).unwrap(), true);
    assert_eq!(
        lab.probe("assert_pod_healthy", args("nothing")).unwrap(),
        false
    );
    lab.server.with(|s| {
        for p in s.pods.iter_mut() {
            p["status"]["containerStatuses"][0]["ready"] = json!(false);
            p["status"]["conditions"][0]["status"] = json!("False");
        }
    });
    assert_eq!(lab.probe("assert_pod_healthy", args("web")).unwrap(), false);
    let mut once = args("web");
    once["timeout"] = json!(0);
    assert_eq!(lab.probe("assert_pod_rebuilt", once).unwrap(), false);

    // one ready web pod left; a deleted one comes back ready: the watch sees it
    let lab = Lab::new();
    lab.server.with(|s| {
        s.pods.retain(|p| p["metadata"]["name"] != "web-3");
        s.rebuild_after = Some(std::time::Duration::from_millis(300));
    });
    lab.action(
        "kill_pods",
        json!({"name_space": "shop", "pod_name_pattern": "web-1"}),
    )
    .unwrap();
    let mut wait = args("web");
    wait["timeout"] = json!(20);
    assert_eq!(lab.probe("assert_pod_rebuilt", wait).unwrap(), true);
    assert!(
        lab.server
            .pod_names("shop")
            .contains(&"web-rebuilt1".to_string())
    );
    assert!(lab.server.count("GET", "/api/v1/namespaces/shop/pods?") > 0);
    assert!(lab.server.with(|s| {
        s.requests
            .iter()
            .any(|(_, p)| p.contains("watch=true") && p.contains("resourceVersion="))
    }));
}

#[test]
fn pod_healthy_checks_readiness_and_the_health_endpoint() {
    let lab = Lab::new();
    let server = crate::util::TestServer::start();
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let args = |path: &str| {
        json!({"cluster_name": "shop-cluster", "name_space": "shop", "pod_name_pattern": "web",
        "health_check_port": port.to_string(), "health_check_path": path, "tag_key": "tag:Name", "tag_value": "x",
        "output_s3_bucket_name": "b", "region": "us-east-1"})
    };
    assert_eq!(lab.probe("pod_healthy", args("health")).unwrap(), true);
    let hits = server.hits.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(hits, 3, "each of the three web pods was asked");
    assert_eq!(lab.probe("pod_healthy", args("status/503")).unwrap(), false);
    let ok = lab.probe("assert_service_on_pod_running", json!({"cluster_name": "shop-cluster", "process_name": "java",
        "container_name_pattern": "^app$", "region": "us-east-1", "output_s3_bucket_name": "b", "tag_value": "x", "namespace": "shop"}));
    assert_eq!(ok.unwrap(), true);
    let e = lab
        .probe(
            "assert_service_on_pod_running",
            json!({"cluster_name": "shop-cluster", "container_name_pattern": "^nope$"}),
        )
        .unwrap_err();
    assert!(e.to_string().contains("no container matches"), "{e}");
}

#[test]
fn a_pod_another_fault_holds_is_refused_and_free_again_once_released() {
    let lab = Lab::new();
    let holder = NativeCall {
        activity: "other-fault".into(),
        ..NativeCall::default()
    };
    let held = lab
        .rt
        .block_on(aws::faults::target_locks::lock(
            &lab.ctx,
            &holder,
            &["pod:shop/web-2".to_string()],
            std::time::Duration::from_secs(60),
        ))
        .unwrap();
    let kill = json!({"name_space": "shop", "pod_name_pattern": "web", "test_target_type": "NAMED_LIST", "pod_names": "web-2"});
    assert_eq!(
        refused_rule(lab.action("kill_pods", kill.clone())),
        "target_locked"
    );
    assert_eq!(lab.server.count("DELETE", "/"), 0);
    lab.rt.block_on(held.release());
    assert_eq!(
        lab.action("kill_pods", kill).unwrap()["pods_terminated"],
        json!(["web-2"])
    );
}

#[test]
fn delete_pod_takes_the_seeds_arguments_and_finds_the_cluster_in_its_tag() {
    let lab = Lab::new();
    // tc-042's arguments: no cluster_name; the EKS cluster tag names it
    let args = |cluster: &str| {
        json!({"region": "us-east-1", "name_space": "shop", "pod_name_pattern": "web",
               "tag_key": "tag:aws:eks:cluster-name", "tag_value": cluster,
               "output_s3_bucket_name": "bucket"})
    };
    let out = lab.action("delete_pod", args("shop-cluster")).unwrap();
    let gone = out["pods_terminated"].as_array().unwrap();
    assert_eq!(gone.len(), 1, "{out}");
    assert_eq!(lab.server.pod_names("shop").len(), 3);
    let e = lab
        .action("delete_pod", args("another-cluster"))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("no context for cluster \"another-cluster\""),
        "{e}"
    );
    assert_eq!(lab.server.count("DELETE", "/"), 1);
}
