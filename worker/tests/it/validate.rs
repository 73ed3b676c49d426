//! `worker validate`: every problem at once, each with file, line, column, field and expectation.

use crate::util;

use util::Sandbox;

#[test]
fn reports_every_problem_with_its_location() {
    let sb = Sandbox::new();
    let path = sb.write(
        "bad.json",
        r#"{
  "title": "several problems",
  "method": [
    {"type": "action", "name": "ok", "provider": {"type": "process", "path": "/bin/true"}},
    {"type": "check", "name": "x", "provider": {"type": "process", "path": "/bin/true"}},
    {"type": "action", "name": "nopath", "provider": {"type": "process"}},
    {"type": "probe", "name": "p", "provider": {"type": "ssh"}},
    {"ref": "missing"}
  ],
  "steady-state-hypothesis": {"title": "h", "probes": [
    {"type": "probe", "name": "t", "provider": {"type": "process", "path": "/bin/true"}, "tolerance": {"type": "range", "range": [1]}},
    {"type": "probe", "name": "r", "provider": {"type": "process", "path": "/bin/true"}, "tolerance": {"type": "regex", "pattern": "(unclosed"}},
    {"type": "probe", "name": "no-tolerance", "provider": {"type": "process", "path": "/bin/true"}}
  ]}
}
"#,
    );
    let out = sb.validate(&path, &[]);
    assert_eq!(out.code, 1);
    let expected = [
        "bad.json:2:3: description: missing (expected a non-empty string)",
        "bad.json:5:6: method[1].type: 'check' is not a supported activity type (expected action or probe)",
        "bad.json:6:42: method[2].provider.path: missing (expected the path or name of an executable)",
        "bad.json:7:49: method[3].provider.type: unknown provider type 'ssh' (expected python, process or http)",
        "bad.json:8:6: method[4].ref: referenced activity 'missing' could not be found in the experiment",
        "bad.json:11:121: steady-state-hypothesis.probes[0].tolerance.range: must be made of two values, not 1",
        "bad.json:12:121: steady-state-hypothesis.probes[1].tolerance.pattern: invalid regular expression",
        "bad.json:13:6: steady-state-hypothesis.probes[2].tolerance: missing (expected a tolerance for every hypothesis probe)",
    ];
    for e in expected {
        assert!(out.stderr.contains(e), "missing `{e}` in:\n{}", out.stderr);
    }
    assert!(out.stderr.contains("8 problems found"), "{}", out.stderr);
}

#[test]
fn yaml_problems_point_at_yaml_lines() {
    let sb = Sandbox::new();
    let path = sb.write(
        "bad.yaml",
        "title: t\ndescription: d\nmethod:\n  - type: action\n    name: a\n    provider:\n      type: http\n      timeout: soon\n",
    );
    let out = sb.validate(&path, &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("bad.yaml:6:5: method[0].provider.url: missing (expected the URL to call)"),
        "{}",
        out.stderr
    );
    // `chaos validate` accepts the timeout and `chaos run` stops on it: a run refuses it
    let out = sb.run(&path, &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("bad.yaml:8:7: method[0].provider.timeout: is \"soon\" (`chaos run` stops on it) (expected a number of seconds or [connect, read])"), "{}", out.stderr);
}

#[test]
fn documents_the_reference_crashes_on_get_plain_errors() {
    let sb = Sandbox::new();
    let cases = [
        ("empty.json", "", "empty.json: the file is empty"),
        (
            "list.yaml",
            "- a\n- b\n",
            "list.yaml:1:1: the document is a list (expected a mapping with title, description and method)",
        ),
        (
            "method.json",
            r#"{"title": "t", "description": "d", "method": {"a": 1}}"#,
            "method.json:1:36: method: is a mapping (expected a list of activities)",
        ),
        (
            "activity.json",
            r#"{"title": "t", "description": "d", "method": ["x"]}"#,
            "activity.json:1:47: method[0]: is a string",
        ),
        (
            "syntax.json",
            "{\"title\": \"t\",\n \"description\": }",
            "syntax.json:2:17: invalid JSON",
        ),
        (
            "syntax.yaml",
            "title: t\ndescription: [unclosed\nmethod:\n",
            "syntax.yaml:3:",
        ),
    ];
    for (name, text, expected) in cases {
        let out = sb.validate(&sb.write(name, text), &[]);
        assert_eq!(out.code, 1, "{name}");
        assert!(
            out.stderr.contains(expected),
            "{name}: expected `{expected}` in:\n{}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{name}");
    }
}

#[test]
fn environment_configuration_is_checked_and_var_satisfies_it() {
    let sb = Sandbox::new();
    let path = sb.write(
        "e.json",
        r#"{"title": "t", "description": "d", "method": [],
            "configuration": {"needed": {"type": "env", "key": "EB_TEST_SURELY_UNSET"}}}"#,
    );
    let out = sb.validate(&path, &[]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("configuration.needed: refers to environment variable `EB_TEST_SURELY_UNSET`, which is not set"), "{}", out.stderr);
    assert_eq!(sb.validate(&path, &["--var", "needed=x"]).code, 0);
}

#[test]
fn a_valid_experiment_exits_0() {
    let sb = Sandbox::new();
    let path = sb.write("ok.yaml", "title: t\ndescription: d\nmethod: []\n");
    let out = sb.validate(&path, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("valid experiment"));
}

#[test]
fn run_refuses_an_invalid_experiment_without_writing_a_journal() {
    let sb = Sandbox::new();
    let path = sb.write("bad.json", r#"{"description": "d", "method": []}"#);
    let out = sb.run(&path, &[]);
    assert_eq!(out.code, 1);
    assert!(out.journal.is_none());
    assert!(out.stderr.contains("title: missing"), "{}", out.stderr);
}

#[test]
fn odd_documents_never_panic() {
    let sb = Sandbox::new();
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("null.json", b"null".to_vec()),
        ("number.yaml", b"42".to_vec()),
        ("binary.json", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("deep.json", deep.clone().into_bytes()),
        ("deep.yaml", deep.into_bytes()),
        ("huge-number.json", br#"{"title": "t", "description": "d", "method": [], "version": 1e999}"#.to_vec()),
        ("types.json", br#"{"title": 1, "description": [], "method": [{"type": "probe", "name": 3, "provider": []}], "tags": "x"}"#.to_vec()),
        ("tolerances.json", br#"{"title": "t", "description": "d", "method": [], "steady-state-hypothesis": {"title": "h", "probes": [
            {"type": "probe", "name": "a", "provider": {"type": "process", "path": "true"}, "tolerance": null},
            {"type": "probe", "name": "b", "provider": {"type": "process", "path": "true"}, "tolerance": 1.5},
            {"type": "probe", "name": "c", "provider": {"type": "process", "path": "true"}, "tolerance": {"type": "jsonpath", "path": "$[?"}},
            {"type": "probe", "name": "d", "provider": {"type": "process", "path": "true"}, "tolerance": {"type": "range", "range": ["a", true]}}
        ]}}"#.to_vec()),
        ("anchors.yaml", b"a: &a [*a]\ntitle: t\n".to_vec()),
    ];
    for (name, bytes) in cases {
        let path = sb.path(name);
        std::fs::write(&path, bytes).unwrap();
        let out = sb.validate(&path, &[]);
        assert_eq!(out.code, 1, "{name} must be invalid:\n{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{name}:\n{}", out.stderr);
        assert!(
            out.stderr.contains(name),
            "{name}: the error names the file:\n{}",
            out.stderr
        );
    }
}

#[test]
fn a_fault_outside_the_method_and_rollbacks_actions_is_refused_with_its_location() {
    let sb = Sandbox::new();
    let path = sb.write(
        "faults.yaml",
        r#"title: a fault where a probe belongs
description: d
configuration:
  dyn:
    type: probe
    name: dyn
    provider: {type: python, module: chaosaws.ec2.actions, func: stop_instances, arguments: {instance_ids: [i-1]}}
steady-state-hypothesis:
  title: h
  probes:
    - type: probe
      name: stress-as-probe
      tolerance: true
      provider:
        type: python
        module: experimentvr.ec2.actions
        func: stress_memory
        arguments: {targets: [i-1], test_target_type: NAMED_LIST, duration: 10, number_of_workers: 1, memory_percentage_per_worker: 10}
method:
  - type: probe
    name: terminate-as-probe
    provider: {type: python, module: chaosaws.ec2.actions, func: terminate_instances, arguments: {instance_ids: [i-1]}}
  - type: action
    name: unguarded
    provider: {type: python, module: chaosaws.rds.actions, func: reboot_db_instance, arguments: {db_instance_identifier: db}}
"#,
    );
    let expected = [
        "faults.yaml:4:3: configuration.dyn: `chaosaws.ec2.actions.stop_instances` is a fault and cannot run as a dynamic-configuration probe",
        "faults.yaml:11:7: steady-state-hypothesis.probes[0]: `experimentvr.ec2.actions.stress_memory` is a fault and cannot run as a steady-state probe",
        "faults.yaml:20:5: method[0].type: `chaosaws.ec2.actions.terminate_instances` is a fault and cannot run as a probe",
        "method[1].provider.func: `chaosaws.rds.actions.reboot_db_instance` has no native implementation",
        "(expected a fault only as an action of the method or the rollbacks)",
    ];
    // the reference, with the fault library installed, accepts the file: `validate` warns
    // and a run refuses it before anything runs (issue 14); --strict refuses it at once
    let out = sb.validate(&path, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("error: "), "{}", out.stderr);
    for e in expected {
        assert!(
            out.stderr.contains(e),
            "missing warning `{e}` in:\n{}",
            out.stderr
        );
    }
    for out in [sb.validate(&path, &["--strict"]), sb.run(&path, &[])] {
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.journal.is_none(), "nothing runs: {}", out.stderr);
        for e in expected {
            assert!(out.stderr.contains(e), "missing `{e}` in:\n{}", out.stderr);
        }
    }
}

#[test]
fn a_substitution_in_string_process_arguments_is_a_located_warning_not_an_error() {
    let sb = Sandbox::new();
    let path = sb.write(
        "shell.yaml",
        "title: t\ndescription: d\nconfiguration:\n  target: staging\nmethod:\n  - type: action\n    name: a\n    provider:\n      type: process\n      path: echo\n      arguments: restart ${target}\n  - type: action\n    name: b\n    provider:\n      type: process\n      path: echo\n      arguments: [\"${target}\"]\n",
    );
    let out = sb.validate(&path, &[]);
    assert_eq!(
        out.code, 0,
        "a warning keeps the exit status: {}",
        out.stderr
    );
    assert!(out.stdout.contains("valid experiment"), "{}", out.stdout);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].contains("shell.yaml:11:7: method[0].provider.arguments: arguments given as one string run through the shell and substitute `${target}`"),
        "{}",
        warnings[0]
    );
}
