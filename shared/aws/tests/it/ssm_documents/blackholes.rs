//! The documents of the seed's network blackholes: `BlackholeAddresses` (addresses, CIDRs and
//! host names resolved on the host; in a network namespace of its own) and `PointInactiveDNS`
//! (a copy of the hosts file of the test's host root bind-mounted over it; the machine's own
//! `/etc/hosts` is never touched).

use super::*;

/// The rule specifications of the run (`-A CHAIN -d ADDRESS ...`), sorted.
fn ours(ns: &Netns) -> Vec<String> {
    let mut rules: Vec<String> = rules_of(&ns.iptables())
        .into_iter()
        .map(str::to_string)
        .collect();
    rules.sort();
    rules
}

/// Host names for one namespace only: `ip netns exec` bind-mounts `/etc/netns/<name>/hosts`
/// over `/etc/hosts` for what it runs (the machine's own `/etc/hosts` is untouched). Removed on
/// drop.
struct NetnsHosts {
    dir: PathBuf,
}

impl NetnsHosts {
    fn new(ns: &Netns, content: &str) -> NetnsHosts {
        let dir = Path::new("/etc/netns").join(&ns.name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts"), content).unwrap();
        NetnsHosts { dir }
    }
}

impl Drop for NetnsHosts {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn blackhole_addresses_drops_addresses_cidrs_and_resolved_names_then_reverts() {
    require(NET_TOOLS);
    require(&[("getent", "libc-bin")]);
    let case = Case::new();
    let ns = Netns::new();
    let _hosts = NetnsHosts::new(&ns, "127.0.0.1 localhost\n127.0.0.5 svc.test\n");
    let _listener = Listener::start(&ns, &[7011]);
    let mut child = case.spawn(
        "BlackholeAddresses",
        &[
            ("duration", "10"),
            ("addresses", "127.0.0.2,10.9.0.0/16,svc.test"),
        ],
        Some(&ns),
    );
    until(
        &mut child,
        "the DROP rules",
        Duration::from_secs(10),
        || ours(&ns).len() >= 6,
    );
    let token = case.active("BlackholeAddresses").expect("the marker");
    let rules = ours(&ns);
    for (chain, address) in [
        ("OUTPUT", "127.0.0.2/32"),
        ("FORWARD", "127.0.0.2/32"),
        ("OUTPUT", "10.9.0.0/16"),
        ("FORWARD", "10.9.0.0/16"),
        ("OUTPUT", "127.0.0.5/32"),
        ("FORWARD", "127.0.0.5/32"),
    ] {
        let rule = format!("-A {chain} -d {address} ");
        assert!(
            rules
                .iter()
                .any(|r| r.starts_with(&rule) && r.contains(&format!("experiment-broker:{token}"))),
            "{rule} (svc.test resolved in the namespace) tagged with the run:\n{rules:#?}"
        );
    }
    assert_eq!(rules.len(), 6, "egress only, nothing else:\n{rules:#?}");
    assert_ne!(connect(&ns, "127.0.0.2", 7011), "connected", "an address");
    assert_ne!(connect(&ns, "127.0.0.5", 7011), "connected", "a name");
    assert_eq!(
        connect(&ns, "127.0.0.3", 7011),
        "connected",
        "other addresses work"
    );
    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert!(
        out.stdout.contains("svc.test resolves to 127.0.0.5"),
        "{out}"
    );
    assert!(ours(&ns).is_empty(), "reverted:\n{}", ns.iptables());
    assert_eq!(connect(&ns, "127.0.0.2", 7011), "connected");
    assert_eq!(connect(&ns, "127.0.0.5", 7011), "connected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    assert!(
        case.log("BlackholeAddresses")
            .contains("reverted by foreground")
    );
}

#[test]
fn blackhole_addresses_refuses_a_name_that_does_not_resolve_and_a_second_fault() {
    require(NET_TOOLS);
    require(&[("getent", "libc-bin")]);
    let case = Case::new();
    let ns = Netns::new();
    let out = case.run(
        "BlackholeAddresses",
        &[
            ("duration", "3"),
            ("addresses", "10.1.0.0/16,no-such-host.invalid"),
        ],
        Some(&ns),
    );
    assert!(!out.succeeded(), "{out}");
    assert!(
        out.stderr.contains("cannot resolve 'no-such-host.invalid'"),
        "{out}"
    );
    assert!(ours(&ns).is_empty(), "nothing was injected");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    for (bad, needle) in [
        ("1.2.3.999", "octet"),
        ("10.0.0.0/40", "prefix"),
        ("1234", "dotted"),
    ] {
        let out = case.run(
            "BlackholeAddresses",
            &[("duration", "3"), ("addresses", bad)],
            Some(&ns),
        );
        assert!(
            !out.succeeded() && out.stderr.contains(needle),
            "{bad}: {out}"
        );
    }

    let mut first = case.spawn(
        "BlackholeAddresses",
        &[("duration", "8"), ("addresses", "10.2.0.0/16")],
        Some(&ns),
    );
    until(
        &mut first,
        "the first fault",
        Duration::from_secs(10),
        || !ours(&ns).is_empty(),
    );
    let token = case.active("BlackholeAddresses").expect("the marker");
    let before = ours(&ns);
    let second = case.run(
        "BlackholeAddresses",
        &[("duration", "3"), ("addresses", "10.3.0.0/16")],
        Some(&ns),
    );
    assert!(!second.succeeded(), "{second}");
    assert!(
        second.stderr.contains("refusing to stack") && second.stderr.contains(&token),
        "{second}"
    );
    assert_eq!(ours(&ns), before, "the second changed nothing");
    let out = finish(first);
    assert!(out.succeeded(), "the first is unaffected: {out}");
    assert!(ours(&ns).is_empty());
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}

#[test]
fn a_killed_address_blackhole_is_still_reverted_by_its_sleeper() {
    require(NET_TOOLS);
    let case = Case::new();
    let ns = Netns::new();
    case.killed_then_reverted(
        "BlackholeAddresses",
        &[("duration", "2"), ("addresses", "10.4.0.0/16,10.5.0.1")],
        Some(&ns),
        || ours(&ns).len() == 4,
        || ours(&ns).is_empty(),
    );
}

/// The test host's hosts file, with the content the documents start from.
fn hosts_file(case: &Case) -> PathBuf {
    let etc = case.host().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let hosts = etc.join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n10.0.0.7 db.internal\n").unwrap();
    hosts
}

/// Whether anything is mounted on `path` (in this mount namespace).
fn mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let path = path.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(path))
}

#[test]
fn point_inactive_dns_points_names_at_the_address_and_unmounts_after() {
    require(&[
        ("mount", "mount"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    let hosts = hosts_file(&case);
    let original = std::fs::read_to_string(&hosts).unwrap();
    for (values, needle) in [
        (
            [("names", "db.internal"), ("address", "10.0.0.300")],
            "invalid address '10.0.0.300' (an IPv4 octet",
        ),
        (
            [("names", "db.internal,-x"), ("address", "192.0.2.1")],
            "invalid names",
        ),
    ] {
        let mut all = vec![("duration", "3")];
        all.extend(values);
        let out = case.run("PointInactiveDNS", &all, None);
        assert!(!out.succeeded() && out.stderr.contains(needle), "{out}");
        assert!(
            !mounted(&hosts) && case.leftovers().is_empty(),
            "nothing changed"
        );
    }
    let mut child = case.spawn(
        "PointInactiveDNS",
        &[("duration", "8"), ("names", "db.internal,api.example.com")],
        None,
    );
    until(
        &mut child,
        "the hosts entry",
        Duration::from_secs(10),
        || std::fs::read_to_string(&hosts).unwrap() != original,
    );
    let token = case.active("PointInactiveDNS").expect("the marker");
    let during = std::fs::read_to_string(&hosts).unwrap();
    assert!(
        during.starts_with(&original),
        "the host's entries stay:\n{during}"
    );
    assert!(
        during.contains(&format!(
            "192.0.2.1 db.internal api.example.com # experiment-broker:{token}"
        )),
        "{during}"
    );
    assert!(mounted(&hosts), "a bind mount, not an edit of the file");

    // a second one is refused and changes nothing
    let second = case.run(
        "PointInactiveDNS",
        &[("duration", "3"), ("names", "other.internal")],
        None,
    );
    assert!(second.stderr.contains("refusing to stack"), "{second}");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), during);

    let out = finish(child);
    assert!(out.succeeded(), "{out}");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), original);
    assert!(!mounted(&hosts), "unmounted");
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
    assert!(
        case.log("PointInactiveDNS")
            .contains("reverted by foreground")
    );
}

#[test]
fn a_killed_inactive_dns_fault_is_still_reverted_by_its_sleeper() {
    require(&[
        ("mount", "mount"),
        ("setsid", "util-linux"),
        ("flock", "util-linux"),
    ]);
    let case = Case::new();
    let hosts = hosts_file(&case);
    let original = std::fs::read_to_string(&hosts).unwrap();
    let mut child = case.spawn(
        "PointInactiveDNS",
        &[
            ("duration", "2"),
            ("names", "db.internal"),
            ("address", "127.0.0.9"),
        ],
        None,
    );
    until(
        &mut child,
        "the hosts entry",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&hosts)
                .unwrap()
                .contains("127.0.0.9 db.internal # experiment-broker:")
        },
    );
    kill_group(&mut child);
    assert!(mounted(&hosts), "killing the command does not revert");
    assert!(
        poll(Duration::from_secs(12), || !mounted(&hosts)),
        "the sleeper did not unmount: {}",
        case.report("PointInactiveDNS")
    );
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), original);
    assert!(
        poll(Duration::from_secs(2), || case
            .active("PointInactiveDNS")
            .is_none()),
        "{}",
        case.report("PointInactiveDNS")
    );
    assert!(case.log("PointInactiveDNS").contains("reverted by sleeper"));
}

#[test]
fn an_ipv6_only_list_is_blackholed_with_ip6tables() {
    require(NET_TOOLS);
    require(&[("ip6tables", "iptables")]);
    let case = Case::new();
    let ns = Netns::new();
    let out = case.run(
        "BlackholeAddresses",
        &[("duration", "1"), ("addresses", "fd00::7,fd01::/64")],
        Some(&ns),
    );
    assert!(out.succeeded(), "{out}");
    for rule in [
        "ip6tables -I OUTPUT -d fd00::7 ",
        "ip6tables -I FORWARD -d fd00::7 ",
        "ip6tables -I OUTPUT -d fd01::/64 ",
        "ip6tables -I FORWARD -d fd01::/64 ",
    ] {
        assert!(out.stdout.contains(rule), "{rule}: {out}");
    }
    assert!(!out.stdout.contains("iptables -I"), "no IPv4 rule: {out}");
    assert!(ours(&ns).is_empty(), "reverted:\n{}", ns.iptables());
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}
