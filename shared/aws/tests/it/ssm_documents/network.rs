//! The network documents (BlackholePort, BlackholeIP, PacketLoss, BandwidthLimit,
//! NetworkLatency), each in a network namespace of its own.

use super::*;

#[test]
fn blackhole_port_drops_egress_to_the_port_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7001, 7002]);
    assert_eq!(connect(&ns, "127.0.0.1", 7001), "connected");
    let mut child = case.spawn(
        "BlackholePort",
        &[("duration", "3"), ("port", "7001")],
        Some(&ns),
    );
    until(&mut child, "the DROP rule", Duration::from_secs(10), || {
        !rules_of(&ns.iptables()).is_empty()
    });
    let rules = ns.iptables();
    let token = case.active("BlackholePort").expect("the marker");
    let ours = rules_of(&rules);
    assert!(
        ours.iter().all(|r| r.starts_with("-A OUTPUT")
            && r.contains("--dport 7001")
            && r.contains(&format!("experiment-broker:{token}"))),
        "egress (the default) is OUTPUT only, tagged with the run:\n{rules}"
    );
    assert_ne!(
        connect(&ns, "127.0.0.1", 7001),
        "connected",
        "port 7001 is blackholed"
    );
    assert_eq!(
        connect(&ns, "127.0.0.1", 7002),
        "connected",
        "other ports work"
    );
    finish_reverted(child, &ns);
    assert_eq!(connect(&ns, "127.0.0.1", 7001), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    assert!(case.log("BlackholePort").contains("reverted by foreground"));
    assert!(
        !running(&token),
        "the foreground stopped the sleeper once it had reverted"
    );
}

#[test]
fn a_cancelled_fault_is_reverted_at_once() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let mut child = case.spawn(
        "BlackholeIP",
        &[("duration", "60"), ("ip", "10.1.2.0/24")],
        Some(&ns),
    );
    until(&mut child, "the DROP rule", Duration::from_secs(10), || {
        !rules_of(&ns.iptables()).is_empty()
    });
    let token = case.active("BlackholeIP").expect("the marker");
    // what the SSM agent does first when a command is cancelled or times out
    run("kill", &["-TERM", &child.id().to_string()]);
    let started = Instant::now();
    let out = finish(child);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "reverted at once"
    );
    assert_eq!(out.status.code(), Some(143), "{out}");
    assert!(out.stderr.contains("stopped by a signal"), "{out}");
    assert!(rules_of(&ns.iptables()).is_empty(), "{}", ns.iptables());
    assert!(case.log("BlackholeIP").contains("reverted by signal"));
    assert!(
        case.leftovers().is_empty(),
        "{}",
        case.report("BlackholeIP")
    );
    assert!(
        poll(Duration::from_secs(2), || !running(&token)),
        "the sleeper is stopped"
    );
}

#[test]
fn blackhole_ip_drops_both_directions_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7003]);
    let mut child = case.spawn(
        "BlackholeIP",
        &[
            ("duration", "3"),
            ("ip", "127.0.0.2"),
            ("direction", "both"),
        ],
        Some(&ns),
    );
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || rules_of(&ns.iptables()).len() == 2,
    );
    let rules = ns.iptables();
    assert!(rules.contains("-A OUTPUT -d 127.0.0.2/32"), "{rules}");
    assert!(rules.contains("-A INPUT -s 127.0.0.2/32"), "{rules}");
    assert_ne!(
        connect(&ns, "127.0.0.2", 7003),
        "connected",
        "127.0.0.2 is blackholed"
    );
    assert_eq!(
        connect(&ns, "127.0.0.1", 7003),
        "connected",
        "127.0.0.1 is not"
    );
    finish_reverted(child, &ns);
    assert_eq!(connect(&ns, "127.0.0.2", 7003), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn packet_loss_drops_packets_with_tagged_statistic_rules_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7004]);
    let mut child = case.spawn(
        "PacketLoss",
        &[("duration", "3"), ("interface", "lo"), ("loss", "100")],
        Some(&ns),
    );
    until(&mut child, "the DROP rule", Duration::from_secs(10), || {
        !rules_of(&ns.iptables()).is_empty()
    });
    let rules = ns.iptables();
    for rule in rules_of(&rules) {
        assert!(
            rule.starts_with("-A OUTPUT -o lo") && rule.contains("--mode random --probability 1"),
            "{rules}"
        );
    }
    assert_eq!(
        ns.qdiscs("lo").matches("qdisc").count(),
        1,
        "qdiscs untouched"
    );
    assert_ne!(connect(&ns, "127.0.0.1", 7004), "connected", "100 % loss");
    finish_reverted(child, &ns);
    assert_eq!(connect(&ns, "127.0.0.1", 7004), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn bandwidth_limit_adds_a_tbf_qdisc_that_slows_traffic_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7005]);
    let bytes = 2_000_000;
    let before = transfer(&ns, 7005, bytes);
    let mut child = case.spawn(
        "BandwidthLimit",
        &[("duration", "5"), ("interface", "lo"), ("rate", "8mbit")],
        Some(&ns),
    );
    until(&mut child, "the tbf qdisc", Duration::from_secs(10), || {
        ns.qdiscs("lo").contains("qdisc tbf")
    });
    // 2 MB at 1 MB/s, less the bucket
    let during = transfer(&ns, 7005, bytes);
    assert!(
        during > 0.8 && during > 4.0 * before,
        "2 MB took {during:.3}s under the limit, {before:.3}s without"
    );
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    let qdiscs = ns.qdiscs("lo");
    assert!(
        !qdiscs.contains("tbf") && qdiscs.contains(" 0: root"),
        "reverted to the default:\n{qdiscs}"
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn interface_defaults_to_the_interface_of_the_default_route() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    ns.sh(
        "ip link add ebdef0 type veth peer name ebdef1 && ip addr add 10.77.0.1/24 dev ebdef0 \
         && ip link set ebdef0 up && ip link set ebdef1 up && ip route add default via 10.77.0.2",
    );
    let mut loss = case.spawn("PacketLoss", &[("duration", "2")], Some(&ns));
    let mut limit = case.spawn("BandwidthLimit", &[("duration", "2")], Some(&ns));
    until(
        &mut loss,
        "the DROP rule on ebdef0",
        Duration::from_secs(10),
        || {
            rules_of(&ns.iptables())
                .iter()
                .any(|r| r.contains("-o ebdef0"))
        },
    );
    until(
        &mut limit,
        "the tbf qdisc on ebdef0",
        Duration::from_secs(10),
        || ns.qdiscs("ebdef0").contains("qdisc tbf"),
    );
    assert!(!ns.qdiscs("lo").contains("tbf"));
    let (loss, limit) = (finish(loss), finish(limit));
    assert!(loss.succeeded(), "{loss}");
    assert!(limit.succeeded(), "{limit}");
    assert!(rules_of(&ns.iptables()).is_empty());
    assert!(!ns.qdiscs("ebdef0").contains("tbf"));
}

#[test]
fn network_latency_adds_netem_or_refuses_cleanly_without_it() {
    require(NET_TOOLS);
    require(&[("unshare", "util-linux")]);
    let case = Case::new();
    let ns = Netns::new();
    let netem = Command::new("unshare")
        .args([
            "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ])
        .output()
        .expect("unshare")
        .status
        .success();
    let qdiscs_before = ns.qdiscs("lo");
    if netem {
        let mut child = case.spawn(
            "NetworkLatency",
            &[("duration", "2"), ("interface", "lo"), ("delay", "50")],
            Some(&ns),
        );
        until(
            &mut child,
            "the netem qdisc",
            Duration::from_secs(10),
            || ns.qdiscs("lo").contains("qdisc netem"),
        );
        assert!(ns.qdiscs("lo").contains("delay 50"), "{}", ns.qdiscs("lo"));
        let out = finish(child);
        assert!(out.succeeded(), "{out}");
        assert_eq!(ns.qdiscs("lo"), qdiscs_before, "reverted");
    } else {
        eprintln!("this kernel has no sch_netem: NetworkLatency is only checked to refuse cleanly");
        let out = case.run(
            "NetworkLatency",
            &[("duration", "2"), ("interface", "lo")],
            Some(&ns),
        );
        assert!(!out.succeeded(), "{out}");
        assert!(
            out.stderr.contains("netem"),
            "the message names netem:\n{out}"
        );
        assert!(out.stderr.contains("Nothing was changed"), "{out}");
        assert_eq!(ns.qdiscs("lo"), qdiscs_before, "nothing changed");
        assert!(case.active("NetworkLatency").is_none(), "no marker");
        assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    }
}

#[test]
fn a_second_fault_of_the_same_kind_is_refused_and_the_first_goes_on() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let values = [
        ("duration", "3"),
        ("port", "7006"),
        ("direction", "ingress"),
    ];
    let mut first = case.spawn("BlackholePort", &values, Some(&ns));
    until(
        &mut first,
        "the first fault",
        Duration::from_secs(10),
        || !rules_of(&ns.iptables()).is_empty(),
    );
    let token = case.active("BlackholePort").expect("the marker");
    let rules = ns.iptables();
    let second = case.run(
        "BlackholePort",
        &[("duration", "3"), ("port", "7007")],
        Some(&ns),
    );
    assert!(!second.succeeded(), "{second}");
    assert!(second.stderr.contains("refusing to stack"), "{second}");
    assert!(
        second.stderr.contains(&token),
        "names the active run:\n{second}"
    );
    assert_eq!(ns.iptables(), rules, "the second changed nothing");
    assert_eq!(
        case.active("BlackholePort").as_deref(),
        Some(token.as_str())
    );
    assert!(
        rules_of(&rules)
            .iter()
            .all(|r| r.starts_with("-A INPUT") && r.contains(&token))
    );
    let out = finish(first);
    assert!(out.succeeded(), "the first is unaffected: {out}");
    assert!(rules_of(&ns.iptables()).is_empty());
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn a_killed_blackhole_is_still_reverted_by_its_sleeper() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    // duration 2 + margin 3, measured from the injection
    case.killed_then_reverted(
        "BlackholePort",
        &[("duration", "2"), ("port", "7008"), ("direction", "both")],
        Some(&ns),
        || rules_of(&ns.iptables()).len() >= 2,
        || rules_of(&ns.iptables()).is_empty(),
    );
}

#[test]
fn blackhole_port_takes_both_protocols_as_the_library_s_default_does() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let mut child = case.spawn(
        "BlackholePort",
        &[("duration", "2"), ("port", "7009"), ("protocol", "tcp udp")],
        Some(&ns),
    );
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || rules_of(&ns.iptables()).len() >= 2,
    );
    let rules = ns.iptables();
    for p in ["tcp", "udp"] {
        assert!(
            rules_of(&rules)
                .iter()
                .any(|r| r.contains(&format!("-p {p} ")) && r.contains("--dport 7009")),
            "{p}:\n{rules}"
        );
    }
    finish_reverted(child, &ns);
    let out = case.run(
        "BlackholePort",
        &[("duration", "2"), ("port", "7009"), ("protocol", "icmp")],
        Some(&ns),
    );
    assert!(out.stderr.contains("invalid protocol 'icmp'"), "{out}");
}

#[test]
fn packet_loss_on_a_port_drops_that_port_only() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    let _listener = Listener::start(&ns, &[7010, 7011]);
    let mut child = case.spawn(
        "PacketLoss",
        &[
            ("duration", "3"),
            ("interface", "lo"),
            ("loss", "100"),
            ("port", "7010"),
            ("portType", "dport"),
        ],
        Some(&ns),
    );
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || rules_of(&ns.iptables()).len() >= 2,
    );
    let rules = ns.iptables();
    for p in ["tcp", "udp"] {
        assert!(
            rules_of(&rules)
                .iter()
                .any(|r| r.contains(&format!("-p {p} -m {p} --dport 7010"))),
            "{p}:\n{rules}"
        );
    }
    assert_ne!(
        connect(&ns, "127.0.0.1", 7010),
        "connected",
        "port 7010 loses every packet"
    );
    assert_eq!(
        connect(&ns, "127.0.0.1", 7011),
        "connected",
        "other ports do not"
    );
    finish_reverted(child, &ns);
    assert_eq!(connect(&ns, "127.0.0.1", 7010), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}
