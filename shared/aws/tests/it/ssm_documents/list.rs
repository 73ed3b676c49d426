//! The documents on disk are exactly the shared list, and their shell refuses bad values.

use super::*;

#[test]
fn the_documents_are_exactly_the_shared_list_with_its_parameters() {
    let mut files: BTreeSet<String> = BTreeSet::new();
    for entry in std::fs::read_dir(documents_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".yaml") {
            files.insert(stem.to_string());
        }
    }
    let listed: BTreeSet<String> = DOCUMENTS.iter().map(|d| d.name.to_string()).collect();
    assert_eq!(
        files, listed,
        "ssm-documents/*.yaml against documents::DOCUMENTS"
    );

    for document in DOCUMENTS {
        let name = document.name;
        let doc = load(name);
        assert_eq!(doc["schemaVersion"], "2.2", "{name}");
        assert!(
            doc["description"].as_str().is_some_and(|d| d.len() > 80),
            "{name} says what it injects, how it reverts and what it needs"
        );
        let parameters = doc["parameters"].as_object().expect("parameters");
        let keys: BTreeSet<&str> = parameters.keys().map(String::as_str).collect();
        let expected: BTreeSet<&str> = document.parameters.iter().copied().collect();
        assert_eq!(keys, expected, "{name}'s parameters");
        let referenced: BTreeSet<String> = references(name);
        let expected_refs: BTreeSet<String> =
            document.parameters.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            referenced, expected_refs,
            "{name}'s script uses every parameter, and only those"
        );

        for (key, p) in parameters {
            assert_eq!(p["type"], "String", "{name}.{key}");
            assert!(
                p["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}.{key}"
            );
            let pattern = p["allowedPattern"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}.{key} has an allowedPattern"));
            assert!(
                pattern.starts_with('^') && pattern.ends_with('$'),
                "{name}.{key}: anchored"
            );
            // the script checks the value again, with the same pattern
            let script = script_text(name);
            let again = script
                .lines()
                .find(|l| l.starts_with(&format!("check {key} ")))
                .and_then(|l| l.split('\'').nth(1))
                .unwrap_or_else(|| panic!("{name}'s script does not check {key}"));
            assert_eq!(again, pattern, "{name}.{key}: the script's pattern");
            let regex = shared::pyregex::compile(pattern).unwrap();
            if let Some(default) = p.get("default") {
                let default = default
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}.{key}: a string default"));
                assert!(
                    regex.is_match(default).unwrap(),
                    "{name}.{key}: default {default:?} ∉ {pattern}"
                );
            }
            for bad in [
                "1; reboot",
                "$(reboot)",
                "`reboot`",
                "1'",
                "a b",
                "1\n2",
                "-1",
            ] {
                assert!(
                    !regex.is_match(bad).unwrap(),
                    "{name}.{key} lets {bad:?} through"
                );
            }
        }

        let steps = doc["mainSteps"].as_array().expect("mainSteps");
        assert_eq!(steps.len(), 1, "{name}: one step");
        assert_eq!(steps[0]["action"], "aws:runShellScript", "{name}");
        assert_eq!(
            steps[0]["precondition"],
            serde_json::json!({"StringEquals": ["platformType", "Linux"]}),
            "{name}"
        );
    }

    // a few boundaries of the shared patterns
    let pattern = |doc: &str, key: &str| {
        shared::pyregex::compile(
            load(doc)["parameters"][key]["allowedPattern"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    let duration = pattern("StressCPU", "duration");
    for ok in ["1", "60", "86400"] {
        assert!(duration.is_match(ok).unwrap(), "{ok}");
    }
    for bad in ["0", "86401", "99999", "01"] {
        assert!(!duration.is_match(bad).unwrap(), "{bad}");
    }
    assert!(pattern("KillProcess", "duration").is_match("0").unwrap());
    let port = pattern("BlackholePort", "port");
    assert!(
        port.is_match("65535").unwrap()
            && !port.is_match("65536").unwrap()
            && !port.is_match("0").unwrap()
    );
    let ip = pattern("BlackholeIP", "ip");
    for ok in ["10.0.0.1", "10.0.0.0/16", "fd00::1", "fd00::/8"] {
        assert!(ip.is_match(ok).unwrap(), "{ok}");
    }
    let signal = pattern("KillProcessByName", "signal");
    for ok in ["SIGKILL", "KILL", "TERM", "SIGTERM"] {
        assert!(signal.is_match(ok).unwrap(), "{ok}");
    }
    assert!(!signal.is_match("STOP").unwrap() && !signal.is_match("9").unwrap());
}

/// A document, the values given to it, and what its refusal says.
type BadValue<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn the_shell_refuses_bad_values_before_it_changes_anything() {
    require(NET_TOOLS);
    require(&[("unshare", "util-linux")]);
    let case = Case::new();
    let canary = case.dir.path().join("pwned");
    let attack = format!("1'; touch {} #", canary.display());
    let attack2 = format!("$(touch {})", canary.display());
    let cases: &[BadValue] = &[
        ("StressCPU", &[("duration", "0")], "invalid duration"),
        ("StressCPU", &[("duration", &attack)], "invalid duration"),
        (
            "StressMemory",
            &[("duration", "5"), ("percent", "101")],
            "invalid percent",
        ),
        (
            "DiskFill",
            &[("duration", "5"), ("path", "relative/dir")],
            "invalid path",
        ),
        (
            "PacketLoss",
            &[("duration", "5"), ("loss", "0")],
            "invalid loss",
        ),
        (
            "BandwidthLimit",
            &[("duration", "5"), ("rate", "fast")],
            "invalid rate",
        ),
        (
            "BlackholePort",
            &[("duration", "5"), ("port", "70000")],
            "invalid port",
        ),
        (
            "BlackholePort",
            &[("duration", "5"), ("port", &attack2)],
            "invalid port",
        ),
        (
            "BlackholeIP",
            &[("duration", "5"), ("ip", "10.0.0.300")],
            "invalid ip",
        ),
        (
            "BlackholeIP",
            &[("duration", "5"), ("ip", "10.0.0.0/33")],
            "invalid ip",
        ),
        (
            "KillProcess",
            &[("duration", "5"), ("pid", "1")],
            "refusing to signal process 1",
        ),
        (
            "KillProcess",
            &[("duration", "5"), ("pid", "2"), ("signal", "STOP")],
            "invalid signal",
        ),
        (
            "KillProcessByName",
            &[("duration", "5"), ("name", "a/b")],
            "invalid name",
        ),
        (
            "NetworkLatency",
            &[("duration", "5"), ("interface", "no-such-if0")],
            "no network interface",
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
