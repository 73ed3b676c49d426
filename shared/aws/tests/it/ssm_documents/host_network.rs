//! The documents that cut a host off the network (DropNewConnections, BlockAllTraffic,
//! InterfaceDown), run for real between two network namespaces of the test's own joined by a
//! veth pair: the fault runs in the first, on its end of the pair (never on an interface of
//! the machine running the tests), and a listener answers in each.

use super::*;

/// Two namespaces joined by `v0` (10.9.0.1, in `a`, default route via `b`) and `v1` (10.9.0.2,
/// in `b`), with a static route 10.20.0.0/16 via `b` as well.
struct Pair {
    a: Netns,
    b: Netns,
}

impl Pair {
    fn new() -> Pair {
        let a = Netns::new();
        let b = Netns::new();
        a.sh(&format!(
            "ip link add v0 type veth peer name v1 netns {} && ip addr add 10.9.0.1/24 dev v0 \
             && ip link set v0 up && ip route add default via 10.9.0.2 \
             && ip route add 10.20.0.0/16 via 10.9.0.2",
            b.name
        ));
        b.sh("ip addr add 10.9.0.2/24 dev v1 && ip link set v1 up");
        let pair = Pair { a, b };
        assert!(
            poll(Duration::from_secs(5), || connect(&pair.b, "10.9.0.1", 1)
                != "timeout"),
            "the veth pair comes up"
        );
        pair
    }

    /// `v0`'s link flags, e.g. `BROADCAST,MULTICAST,UP,LOWER_UP`.
    fn flags(&self) -> String {
        let out = self.a.sh("ip -o link show dev v0");
        out.split('<')
            .nth(1)
            .and_then(|s| s.split('>').next())
            .unwrap_or_default()
            .to_string()
    }

    fn up(&self) -> bool {
        self.flags().split(',').any(|f| f == "UP")
    }

    fn routes(&self) -> String {
        self.a.sh("ip route show")
    }
}

#[test]
fn block_all_traffic_cuts_the_interface_only_and_reverts() {
    require(NET_TOOLS);
    let case = Case::new();
    let pair = Pair::new();
    let _far = Listener::start(&pair.b, &[7101]);
    let _near = Listener::start(&pair.a, &[7102]);
    assert_eq!(connect(&pair.a, "10.9.0.2", 7101), "connected");
    let mut child = case.spawn(
        "BlockAllTraffic",
        &[("duration", "3"), ("interface", "v0")],
        Some(&pair.a),
    );
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || rules_of(&pair.a.iptables()).len() >= 4,
    );
    let rules = pair.a.iptables();
    for chain in [
        "INPUT -i v0",
        "OUTPUT -o v0",
        "FORWARD -i v0",
        "FORWARD -o v0",
    ] {
        assert!(
            rules_of(&rules)
                .iter()
                .any(|r| r.starts_with(&format!("-A {chain}"))),
            "{chain}:\n{rules}"
        );
    }
    assert_ne!(connect(&pair.a, "10.9.0.2", 7101), "connected", "out");
    assert_ne!(connect(&pair.b, "10.9.0.1", 7102), "connected", "in");
    assert_eq!(
        connect(&pair.a, "127.0.0.1", 7102),
        "connected",
        "the host's own loopback traffic goes on"
    );
    finish_reverted(child, &pair.a);
    assert_eq!(connect(&pair.a, "10.9.0.2", 7101), "connected");
    assert_eq!(connect(&pair.b, "10.9.0.1", 7102), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn block_all_traffic_takes_the_default_route_s_interface_and_refuses_lo() {
    require(NET_TOOLS);
    let case = Case::new();
    let pair = Pair::new();
    let out = case.run(
        "BlockAllTraffic",
        &[("duration", "2"), ("interface", "lo")],
        Some(&pair.a),
    );
    assert!(!out.succeeded(), "{out}");
    assert!(
        out.stderr.contains("refusing the loopback interface lo"),
        "{out}"
    );
    assert!(rules_of(&pair.a.iptables()).is_empty());
    assert!(case.active("BlockAllTraffic").is_none());
    let mut child = case.spawn("BlockAllTraffic", &[("duration", "2")], Some(&pair.a));
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || !rules_of(&pair.a.iptables()).is_empty(),
    );
    let rules = pair.a.iptables();
    assert!(
        rules_of(&rules).iter().all(|r| r.contains(" v0 ")),
        "v0 carries the default route:\n{rules}"
    );
    finish_reverted(child, &pair.a);
}

#[test]
fn a_killed_block_all_traffic_is_still_reverted_by_its_sleeper() {
    require(NET_TOOLS);
    let case = Case::new();
    let pair = Pair::new();
    case.killed_then_reverted(
        "BlockAllTraffic",
        &[("duration", "2"), ("interface", "v0")],
        Some(&pair.a),
        || rules_of(&pair.a.iptables()).len() >= 4,
        || rules_of(&pair.a.iptables()).is_empty(),
    );
    let _far = Listener::start(&pair.b, &[7103]);
    assert_eq!(connect(&pair.a, "10.9.0.2", 7103), "connected");
}

#[test]
fn drop_new_connections_refuses_new_ones_both_ways_but_not_on_loopback() {
    require(NET_TOOLS);
    let case = Case::new();
    let pair = Pair::new();
    let _far = Listener::start(&pair.b, &[7104]);
    let _near = Listener::start(&pair.a, &[7105]);
    let mut child = case.spawn("DropNewConnections", &[("duration", "3")], Some(&pair.a));
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || rules_of(&pair.a.iptables()).len() >= 3,
    );
    let rules = pair.a.iptables();
    assert!(
        rules_of(&rules)
            .iter()
            .all(|r| r.contains("--ctstate NEW") && r.contains("-j DROP")),
        "{rules}"
    );
    assert_ne!(connect(&pair.a, "10.9.0.2", 7104), "connected", "out");
    assert_ne!(connect(&pair.b, "10.9.0.1", 7105), "connected", "in");
    assert_eq!(connect(&pair.a, "127.0.0.1", 7105), "connected", "loopback");
    finish_reverted(child, &pair.a);
    assert_eq!(connect(&pair.a, "10.9.0.2", 7104), "connected");
    assert_eq!(connect(&pair.b, "10.9.0.1", 7105), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn a_killed_drop_new_connections_is_still_reverted_by_its_sleeper() {
    require(NET_TOOLS);
    let case = Case::new();
    let pair = Pair::new();
    case.killed_then_reverted(
        "DropNewConnections",
        &[("duration", "2")],
        Some(&pair.a),
        || rules_of(&pair.a.iptables()).len() >= 3,
        || rules_of(&pair.a.iptables()).is_empty(),
    );
}

#[test]
fn interface_down_takes_the_link_down_and_restores_it_with_its_routes() {
    require(NET_TOOLS);
    let case = Case::new();
    let pair = Pair::new();
    let _far = Listener::start(&pair.b, &[7106]);
    let before = pair.routes();
    assert!(before.contains("default via 10.9.0.2"), "{before}");
    let mut child = case.spawn(
        "InterfaceDown",
        &[("duration", "3"), ("interface", "v0")],
        Some(&pair.a),
    );
    until(&mut child, "v0 down", Duration::from_secs(10), || {
        !pair.up()
    });
    let during = pair.routes();
    assert!(
        !during.contains("default via"),
        "the kernel dropped the routes with the link:\n{during}"
    );
    assert_ne!(connect(&pair.a, "10.9.0.2", 7106), "connected");
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(pair.up(), "v0 is up again: {}", pair.flags());
    let after = pair.routes();
    for route in ["default via 10.9.0.2", "10.20.0.0/16 via 10.9.0.2"] {
        assert!(after.contains(route), "{route} is back:\n{after}");
    }
    assert_eq!(connect(&pair.a, "10.9.0.2", 7106), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    assert!(case.log("InterfaceDown").contains("reverted by foreground"));
}

#[test]
fn interface_down_refuses_lo_and_an_interface_already_down() {
    require(NET_TOOLS);
    let case = Case::new();
    let pair = Pair::new();
    let out = case.run(
        "InterfaceDown",
        &[("duration", "2"), ("interface", "lo")],
        Some(&pair.a),
    );
    assert!(
        out.stderr.contains("refusing the loopback interface lo"),
        "{out}"
    );
    pair.a.sh("ip link add v8 type veth peer name v9");
    let out = case.run(
        "InterfaceDown",
        &[("duration", "2"), ("interface", "v9")],
        Some(&pair.a),
    );
    assert!(!out.succeeded(), "{out}");
    assert!(out.stderr.contains("interface v9 is already down"), "{out}");
    assert!(case.active("InterfaceDown").is_none());
    assert!(pair.up(), "nothing touched v0");
}

#[test]
fn a_killed_interface_down_is_still_reverted_by_its_sleeper() {
    require(NET_TOOLS);
    let case = Case::new();
    let pair = Pair::new();
    case.killed_then_reverted(
        "InterfaceDown",
        &[("duration", "2"), ("interface", "v0")],
        Some(&pair.a),
        || !pair.up(),
        || pair.up() && pair.routes().contains("default via 10.9.0.2"),
    );
    assert!(pair.routes().contains("10.20.0.0/16 via 10.9.0.2"));
}
