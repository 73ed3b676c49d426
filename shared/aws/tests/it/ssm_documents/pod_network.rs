//! The pod network documents (PodBlackholePort, PodBlackholeIP, PodPacketLoss,
//! PodBandwidthLimit, PodNetworkLatency) against a stand-in pod in a network namespace of its
//! own: the fault acts in the pod's namespace only (the host's firewall and qdiscs stay as they
//! were), is reverted at the end and after a SIGKILL of the command, and a second fault of the
//! same document on the same pod is refused.

use super::pod_harness::*;
use super::*;

#[test]
fn pod_blackhole_port_drops_in_the_pod_only_and_reverts() {
    require(NET_TOOLS);
    require(&[("nsenter", "util-linux"), ("mount", "mount")]);
    let case = Case::new();
    let ns = Netns::new();
    let pod = Pod::new(Layout::Cgroupfs, Some(&ns));
    let _listener = Listener::start(&ns, &[7101, 7102]);
    let host_before = host_iptables();
    let mut child = case.spawn(
        "PodBlackholePort",
        &[
            ("duration", "3"),
            ("podUid", &pod.uid),
            ("destinationPorts", "7101"),
            ("direction", "egress"),
        ],
        None,
    );
    until(&mut child, "the DROP rule", Duration::from_secs(10), || {
        !rules_of(&ns.iptables()).is_empty()
    });
    let token = pod_active(&case, "PodBlackholePort", &pod).expect("the pod's marker");
    let rules = ns.iptables();
    assert!(
        rules_of(&rules).iter().all(|r| r.starts_with("-A OUTPUT")
            && r.contains("--dports 7101")
            && r.contains(&format!("experiment-broker:{token}"))),
        "{rules}"
    );
    assert_ne!(
        connect(&ns, "127.0.0.1", 7101),
        "connected",
        "7101 is blackholed in the pod"
    );
    assert_eq!(
        connect(&ns, "127.0.0.1", 7102),
        "connected",
        "other ports work"
    );
    assert_eq!(
        host_iptables(),
        host_before,
        "the host's firewall is untouched"
    );
    assert!(
        mounted_under(&case.state()),
        "the pod's namespace is held while the fault lasts"
    );
    finish_reverted(child, &ns);
    assert_eq!(connect(&ns, "127.0.0.1", 7101), "connected");
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodBlackholePort")
    );
    assert!(!mounted_under(&case.state()), "the namespace is released");
    assert!(
        case.log("PodBlackholePort")
            .contains("reverted by foreground")
    );
}

#[test]
fn a_killed_pod_fault_is_reverted_by_its_sleeper_and_stacking_is_refused() {
    require(NET_TOOLS);
    require(&[("nsenter", "util-linux"), ("mount", "mount")]);
    let case = Case::new();
    let ns = Netns::new();
    let pod = Pod::new(Layout::Systemd, Some(&ns));
    let other_ns = Netns::new();
    let other = Pod::new(Layout::Cgroupfs, Some(&other_ns));
    let _listener = Listener::start(&ns, &[7103]);
    let values = |pod: &Pod| {
        vec![
            ("duration".to_string(), "3".to_string()),
            ("podUid".to_string(), pod.uid.clone()),
            ("loss".to_string(), "100".to_string()),
            ("interface".to_string(), "lo".to_string()),
        ]
    };
    let owned = values(&pod);
    let args: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut child = case.spawn("PodPacketLoss", &args, None);
    until(&mut child, "the loss rule", Duration::from_secs(10), || {
        !rules_of(&ns.iptables()).is_empty()
    });
    let token = pod_active(&case, "PodPacketLoss", &pod).expect("the marker");
    assert_ne!(
        connect(&ns, "127.0.0.1", 7103),
        "connected",
        "100 % loss in the pod"
    );

    // the same document on the same pod: refused, changing nothing
    let second = case.run("PodPacketLoss", &args, None);
    assert!(!second.succeeded(), "{second}");
    assert!(second.stderr.contains("refusing to stack"), "{second}");
    assert_eq!(
        pod_active(&case, "PodPacketLoss", &pod).as_deref(),
        Some(token.as_str())
    );
    // on another pod of the node it is its own fault
    let owned = values(&other);
    let other_args: Vec<(&str, &str)> = owned
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut parallel = case.spawn("PodPacketLoss", &other_args, None);
    until(
        &mut parallel,
        "the other pod's rule",
        Duration::from_secs(10),
        || !rules_of(&other_ns.iptables()).is_empty(),
    );

    // SIGKILL halfway: the rule stays until the sleeper reverts it at duration + 3 s
    kill_group(&mut child);
    assert!(
        !rules_of(&ns.iptables()).is_empty(),
        "killed: nothing reverted it yet"
    );
    assert!(
        poll(Duration::from_secs(12), || rules_of(&ns.iptables())
            .is_empty()),
        "the sleeper reverted the killed fault:\n{}",
        case.report("PodPacketLoss")
    );
    assert!(poll(Duration::from_secs(2), || pod_active(
        &case,
        "PodPacketLoss",
        &pod
    )
    .is_none()));
    assert!(
        case.log("PodPacketLoss")
            .contains(&format!("{token} reverted by sleeper"))
    );
    assert_eq!(connect(&ns, "127.0.0.1", 7103), "connected");
    finish_reverted(parallel, &other_ns);
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodPacketLoss")
    );
    assert!(
        !mounted_under(&case.state()),
        "both namespaces are released"
    );
}

#[test]
fn pod_blackhole_ip_takes_a_list_and_a_protocol() {
    require(NET_TOOLS);
    require(&[("nsenter", "util-linux"), ("mount", "mount")]);
    let case = Case::new();
    let ns = Netns::new();
    let pod = Pod::new(Layout::Cgroupfs, Some(&ns));
    let _listener = Listener::start(&ns, &[7104]);
    let mut child = case.spawn(
        "PodBlackholeIP",
        &[
            ("duration", "3"),
            ("podUid", &pod.uid),
            ("ip", "127.0.0.2,10.9.0.0/16"),
            ("protocol", "tcp udp"),
        ],
        None,
    );
    // both directions (the default), two protocols, two addresses
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || rules_of(&ns.iptables()).len() == 8,
    );
    let rules = ns.iptables();
    assert!(
        rules.contains("-A OUTPUT -d 127.0.0.2/32 -p tcp"),
        "{rules}"
    );
    assert!(rules.contains("-A INPUT -s 10.9.0.0/16 -p udp"), "{rules}");
    assert_ne!(connect(&ns, "127.0.0.2", 7104), "connected");
    assert_eq!(connect(&ns, "127.0.0.1", 7104), "connected");
    assert!(rules_of(&host_iptables()).is_empty(), "{}", host_iptables());
    finish_reverted(child, &ns);
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodBlackholeIP")
    );
}

#[test]
fn pod_bandwidth_limit_shapes_the_pod_interface_only() {
    require(NET_TOOLS);
    require(&[("nsenter", "util-linux"), ("mount", "mount")]);
    let case = Case::new();
    let ns = Netns::new();
    let pod = Pod::new(Layout::Cgroupfs, Some(&ns));
    let host_lo = run("tc", &["qdisc", "show", "dev", "lo"]);
    let mut child = case.spawn(
        "PodBandwidthLimit",
        &[
            ("duration", "3"),
            ("podUid", &pod.uid),
            ("interface", "lo"),
            ("rate", "8mbit"),
        ],
        None,
    );
    until(&mut child, "the tbf qdisc", Duration::from_secs(10), || {
        ns.qdiscs("lo").contains("tbf")
    });
    assert_eq!(
        run("tc", &["qdisc", "show", "dev", "lo"]),
        host_lo,
        "the host's lo is untouched"
    );
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(!ns.qdiscs("lo").contains("tbf"), "{}", ns.qdiscs("lo"));
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodBandwidthLimit")
    );
}

#[test]
fn pod_network_latency_adds_netem_in_the_pod_or_refuses_cleanly() {
    require(NET_TOOLS);
    require(&[
        ("nsenter", "util-linux"),
        ("mount", "mount"),
        ("unshare", "util-linux"),
    ]);
    let case = Case::new();
    let ns = Netns::new();
    let pod = Pod::new(Layout::Cgroupfs, Some(&ns));
    let values = [
        ("duration", "2"),
        ("podUid", pod.uid.as_str()),
        ("interface", "lo"),
        ("delay", "50"),
    ];
    let netem = Command::new("unshare")
        .args([
            "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output()
        .unwrap()
        .status
        .success();
    if netem {
        let mut child = case.spawn("PodNetworkLatency", &values, None);
        until(
            &mut child,
            "the netem qdisc",
            Duration::from_secs(10),
            || ns.qdiscs("lo").contains("netem"),
        );
        let out = finish(child);
        assert!(out.succeeded(), "{out}");
        assert!(!ns.qdiscs("lo").contains("netem"));
    } else {
        // this kernel has no sch_netem (see mod.rs): the document says so and changes nothing
        let out = case.run("PodNetworkLatency", &values, None);
        assert!(!out.succeeded() && out.stderr.contains("netem"), "{out}");
    }
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("PodNetworkLatency")
    );
}

#[test]
fn a_pod_that_is_not_here_or_uses_the_host_network_is_refused() {
    require(NET_TOOLS);
    require(&[("nsenter", "util-linux"), ("mount", "mount")]);
    let case = Case::new();
    let out = case.run(
        "PodBlackholeIP",
        &[
            ("duration", "3"),
            ("podUid", "00000000-0000-4000-8000-00000000dead"),
            ("ip", "10.1.2.3"),
        ],
        None,
    );
    assert!(!out.succeeded(), "{out}");
    assert!(out.stderr.contains("no process of pod"), "{out}");
    // a pod whose process is in the host's network namespace (hostNetwork)
    let host_pod = Pod::new(Layout::Cgroupfs, None);
    let out = case.run(
        "PodBlackholeIP",
        &[
            ("duration", "3"),
            ("podUid", &host_pod.uid),
            ("ip", "10.1.2.3"),
        ],
        None,
    );
    assert!(!out.succeeded(), "{out}");
    assert!(out.stderr.contains("host's network namespace"), "{out}");
    assert!(rules_of(&host_iptables()).is_empty(), "{}", host_iptables());
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

/// A document, the values given to it, and what its refusal says.
type Bad<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn the_pod_documents_refuse_bad_values_before_they_change_anything() {
    require(NET_TOOLS);
    let case = Case::new();
    let canary = case.dir.path().join("pwned");
    let attack = format!("$(touch {})", canary.display());
    let uid = "00000000-0000-4000-8000-000000000001";
    let cases: &[Bad] = &[
        (
            "PodBlackholeIP",
            &[("duration", "5"), ("podUid", &attack), ("ip", "10.0.0.1")],
            "invalid podUid",
        ),
        (
            "PodBlackholeIP",
            &[
                ("duration", "5"),
                ("podUid", "ABCDEF00-0000-4000-8000-000000000001"),
                ("ip", "10.0.0.1"),
            ],
            "invalid podUid",
        ),
        (
            "PodBlackholeIP",
            &[
                ("duration", "5"),
                ("podUid", uid),
                ("ip", "10.0.0.1,10.0.0.300"),
            ],
            "invalid ip",
        ),
        (
            "PodBlackholePort",
            &[
                ("duration", "5"),
                ("podUid", uid),
                ("destinationPorts", "70000"),
            ],
            "invalid destinationPorts",
        ),
        (
            "PodBlackholePort",
            &[("duration", "5"), ("podUid", uid)],
            "give sourcePorts or destinationPorts",
        ),
        (
            "PodStressCPU",
            &[("duration", "5"), ("podUid", uid), ("containerId", "abc")],
            "invalid containerId",
        ),
        (
            "PodTerminationCrash",
            &[("duration", "5"), ("podUid", uid), ("containerId", "")],
            "invalid containerId",
        ),
        (
            "PodDiskFill",
            &[("duration", "5"), ("podUid", uid), ("path", "/a/../etc")],
            "no .. component",
        ),
        (
            "PodKillProcess",
            &[("duration", "5"), ("podUid", uid), ("name", &attack)],
            "invalid name",
        ),
    ];
    for (name, values, message) in cases {
        let out = case.run(name, values, None);
        assert!(!out.succeeded(), "{name} {values:?} ran:\n{out}");
        assert!(
            out.stderr.contains(message),
            "{name} {values:?} should say {message:?}:\n{out}"
        );
        assert!(
            case.leftovers().is_empty(),
            "{name} left {:?}",
            case.leftovers()
        );
    }
    assert!(!canary.exists(), "a parameter value was run as code");
}
