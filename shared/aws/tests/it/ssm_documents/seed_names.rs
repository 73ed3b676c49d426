//! The seed's SSM document names (`documents::SEED_NAMES`): every one the seed ships or its
//! library sends has a row, each row stands for a document of ours that exists in
//! `ssm-documents/` with the parameters it sends (or says why there is none), and
//! `ssm-documents/README.md` shows the same table.

use super::*;
use aws::faults::ssm::documents::{SEED_NAMES, Stands, seed_name};
use std::collections::BTreeMap;

/// The seed's documents (`cdk/lambda_infra/ssm/*.yml`) and the names its library sends that
/// are not among them (`BlackholeByPort`, `BlackholeByIP`, `PodKillProcessInContainer`).
const SEED_DOCUMENTS: &[&str] = &[
    "BlackHoleByIPAddress",
    "BlackHoleByPort",
    "BlackHoleKafka",
    "BlockNetworkTrafficOnInstance",
    "DeletePod",
    "DetachVolume",
    "DiskVolumeExhaustion",
    "InstallStressNG",
    "KillProcess",
    "KillProcessByName",
    "PodBlackholeByPort",
    "PodHealthCheck",
    "PodStressAllNetworkIO",
    "PodStressCPU",
    "PodStressIO",
    "PodStressMemory",
    "PodStressNetworkUtilization",
    "PodTerminationCrash",
    "ShutDownNetworkInterfaceOnInstance",
    "StressAllNetworkIO",
    "StressCPU",
    "StressIO",
    "StressMemory",
    "StressNetworkLatency",
    "StressNetworkUtilization",
    "StressPacketLoss",
    "gpnBlackHoleByURL",
    "BlackholeByPort",
    "BlackholeByIP",
    "PodKillProcessInContainer",
];

#[test]
fn every_seed_document_name_stands_for_a_document_of_ours_or_says_why_not() {
    for name in SEED_DOCUMENTS {
        assert!(seed_name(name).is_some(), "{name} has a row in SEED_NAMES");
    }
    let mut seen = BTreeSet::new();
    for row in SEED_NAMES {
        assert!(seen.insert(row.seed), "{} has one row", row.seed);
        match row.stands {
            Stands::For(ours) => {
                assert!(
                    documents_dir()
                        .join(format!("{}.yaml", ours.name))
                        .is_file(),
                    "{} → {}: ssm-documents/{}.yaml exists",
                    row.seed,
                    ours.name,
                    ours.name
                );
                let parameters = load(ours.name)["parameters"].clone();
                let sent = row
                    .parameters
                    .iter()
                    .map(|p| p.1)
                    .chain(row.fixed.iter().map(|f| f.0))
                    .filter(|p| !p.is_empty());
                for p in sent {
                    assert!(
                        parameters.get(p).is_some(),
                        "{} → {}: {p} is a parameter of ours",
                        row.seed,
                        ours.name
                    );
                }
            }
            Stands::Not(why) => assert!(!why.is_empty(), "{}", row.seed),
        }
    }
}

#[test]
fn the_readme_shows_the_table() {
    let readme = std::fs::read_to_string(documents_dir().join("README.md")).unwrap();
    let table = readme
        .split("<!-- seed-names: start -->")
        .nth(1)
        .and_then(|t| t.split("<!-- seed-names: end -->").next())
        .expect("README.md has the seed-names table between its markers");
    let rows: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = SEED_NAMES
        .iter()
        .map(|row| match row.stands {
            Stands::For(ours) => format!("| `{}` | `{}` |", row.seed, ours.name),
            Stands::Not(why) => format!("| `{}` | none: {why} |", row.seed),
        })
        .collect();
    assert_eq!(rows, expected, "README.md's table against SEED_NAMES");
}

#[test]
fn seed_parameters_become_ours_and_the_unknown_ones_are_named() {
    let given = |pairs: &[(&str, &str)]| -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect()
    };
    let row = seed_name("StressPacketLoss").unwrap();
    let ours = row
        .parameters(&given(&[
            ("duration", "30"),
            ("loss", "7"),
            ("interface", "eth0"),
            ("portNumber", "0"),
            ("portType", "sport"),
            ("installDependencies", "True"),
        ]))
        .unwrap();
    assert_eq!(
        ours,
        given(&[
            ("duration", "30"),
            ("interface", "eth0"),
            ("loss", "7"),
            ("portType", "sport")
        ])
    );
    let e = row
        .parameters(&given(&[("portNumber", "http")]))
        .unwrap_err();
    assert!(
        e.contains("parameter portNumber of StressPacketLoss: is \"http\""),
        "{e}"
    );
    let e = seed_name("StressNetworkLatency")
        .unwrap()
        .parameters(&given(&[("ports", "443")]))
        .unwrap_err();
    assert!(e.contains("only 0 (every port)"), "{e}");
    let e = row.parameters(&given(&[("speed", "1")])).unwrap_err();
    assert!(
        e.contains("parameter speed of the seed's StressPacketLoss"),
        "{e}"
    );
    let port = seed_name("BlackHoleByPort")
        .unwrap()
        .parameters(&given(&[("duration", "5"), ("destinationPorts", "443")]))
        .unwrap();
    assert_eq!(
        port,
        given(&[
            ("direction", "both"),
            ("duration", "5"),
            ("port", "443"),
            ("protocol", "tcp")
        ])
    );
    // a name both use: our parameters are ours, the seed's are translated
    let kill = seed_name("KillProcessByName").unwrap();
    let ours = given(&[("name", "nginx"), ("duration", "0")]);
    assert_eq!(kill.parameters(&ours).unwrap(), ours);
    assert_eq!(
        kill.parameters(&given(&[("processName", "nginx")]))
            .unwrap(),
        given(&[("duration", "0"), ("name", "nginx"), ("signal", "SIGTERM")])
    );
    let e = seed_name("DeletePod")
        .unwrap()
        .parameters(&BTreeMap::new())
        .unwrap_err();
    assert!(e.contains("see experimentvr.k8s"), "{e}");
}
