//! What the loader finds beyond the reference's verdict: located warnings on stderr, in the
//! journal under `broker.warnings`, and errors under `--strict` (or `strict: true` in the
//! experiment-broker extension).

use crate::util::Sandbox;

/// Misspelled keys (a near miss and a far one), a repeated key and a configuration probe whose
/// arguments do not match its function: all accepted by the reference.
const WARNED: &str = "title: t
description: d
configuration:
  computed:
    type: probe
    name: compute
    provider: {type: python, module: os.path, func: basename, arguments: {p: /x, nope: 1}}
steady-state-hypotesis:
  title: h
  probes: []
method:
  - type: action
    name: a
    tolerence: true
    owner: me
    provider:
      type: process
      path: echo
      arguments: [first]
      arguments: [last]
";

fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect()
}

#[test]
fn warnings_are_located_on_stderr_and_keep_the_verdict() {
    let sb = Sandbox::new();
    let path = sb.write("warned.yaml", WARNED);
    let out = sb.validate(&path, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("valid experiment (5 warnings)"),
        "{}",
        out.stdout
    );
    let found = warnings(&out.stderr);
    let expected = [
        "warned.yaml:7:82: configuration.computed.provider.arguments.nope: argument 'nope' is not part of the function signature",
        "warned.yaml:8:1: steady-state-hypotesis: unknown key `steady-state-hypotesis` in the experiment: did you mean `steady-state-hypothesis`?",
        "warned.yaml:14:5: method[0].tolerence: unknown key `tolerence` in the activity: did you mean `tolerance`?",
        "warned.yaml:15:5: method[0].owner: unknown key `owner` in the activity (the Chaos Toolkit ignores it)",
        "warned.yaml:20:7: method[0].provider.arguments: key `arguments` is written twice in this mapping (line 19, column 7 and line 20, column 7)",
    ];
    assert_eq!(found.len(), expected.len(), "{}", out.stderr);
    for (line, e) in found.iter().zip(expected) {
        assert!(line.contains(e), "expected `{e}` in:\n{line}");
    }
}

#[test]
fn the_journal_keeps_the_warnings_and_the_run_uses_the_last_value() {
    let sb = Sandbox::new();
    let path = sb.write("warned.yaml", WARNED);
    let out = sb.run(&path, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(warnings(&out.stderr).len(), 5, "{}", out.stderr);
    let journal = out.journal();
    assert_eq!(journal["run"][0]["output"]["stdout"], "last\n");
    let kept = journal["broker"]["warnings"]
        .as_array()
        .expect("broker.warnings");
    assert_eq!(kept.len(), 5, "{kept:#?}");
    assert_eq!(kept[2]["field"], "method[0].tolerence");
    assert_eq!(kept[2]["line"], 14);
    assert_eq!(kept[2]["column"], 5);
    assert!(
        kept[2]["text"]
            .as_str()
            .unwrap()
            .contains("did you mean `tolerance`?")
    );
}

#[test]
fn strict_turns_warnings_into_errors_and_nothing_runs() {
    let sb = Sandbox::new();
    let path = sb.write("warned.yaml", WARNED);
    for (command, out) in [
        ("validate", sb.validate(&path, &["--strict"])),
        ("run", sb.run(&path, &["--strict"])),
    ] {
        assert_eq!(out.code, 1, "{command}: {}", out.stderr);
        assert!(
            warnings(&out.stderr).is_empty(),
            "{command}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("error: ")
                && out
                    .stderr
                    .contains("warned.yaml:14:5: method[0].tolerence: unknown key"),
            "{command}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("5 problems found"),
            "{command}: {}",
            out.stderr
        );
        assert!(
            out.journal.is_none(),
            "{command}: nothing runs under --strict"
        );
    }
    // the same from the experiment itself
    let strict = WARNED.replace(
        "description: d\n",
        "description: d\nextensions:\n  - name: experiment-broker\n    strict: true\n",
    );
    let path = sb.write("strict.yaml", &strict);
    assert_eq!(sb.validate(&path, &[]).code, 1);
    // and a clean experiment stays valid under --strict
    let clean = sb.write(
        "clean.yaml",
        "title: t\ndescription: d\nmethod:\n  - type: action\n    name: a\n    provider: {type: process, path: \"true\"}\n",
    );
    let out = sb.validate(&clean, &["--strict"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn structural_and_signature_problems_come_in_one_round_at_the_argument() {
    let sb = Sandbox::new();
    let path = sb.write(
        "round.yaml",
        "title: t\ndescription: d\nmethod:\n  - type: action\n    provider: {type: python, module: os.path, func: isdir, arguments: {s: /, bogus: 1}}\n  - type: action\n    name: stress\n    provider:\n      type: python\n      module: experimentvr.ec2.actions\n      func: stress_memory\n      arguments:\n        test_target_type: SOME\n        targets: [1]\n        tag_key: [a]\n        duration: -5\n",
    );
    let out = sb.validate(&path, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    for e in [
        "round.yaml:4:5: method[0].name: missing",
        "method[0].provider.arguments.bogus: argument 'bogus' is not part of the function signature",
        "round.yaml:13:9: method[1].provider.arguments.test_target_type: unknown selection mode \"SOME\" (expected RANDOM, ALL, NAMED_LIST, COUNT(n) or PERCENT(n))",
        "round.yaml:14:9: method[1].provider.arguments.targets: holds a number (expected a string or a list of strings)",
        "round.yaml:15:9: method[1].provider.arguments.tag_key: is a list (expected a string or a number)",
        "round.yaml:16:9: method[1].provider.arguments.duration: is -5: a duration cannot be negative",
        "6 problems found",
    ] {
        assert!(out.stderr.contains(e), "missing `{e}` in:\n{}", out.stderr);
    }
}

#[test]
fn what_the_reference_stops_on_when_it_runs_is_a_warning_to_validate_and_refused_by_run() {
    let sb = Sandbox::new();
    let path = sb.write(
        "at-run.yaml",
        "title: t\ndescription: d\nruntime: {hypothesis: {strategy: sometimes}}\nmethod:\n  - type: action\n    name: a\n    provider: {type: process, path: \"true\"}\nrollbacks:\n  - ref: nowhere\n",
    );
    let out = sb.validate(&path, &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let found = warnings(&out.stderr);
    assert_eq!(found.len(), 2, "{}", out.stderr);
    assert!(found[0].contains("at-run.yaml:3:"), "{}", found[0]);
    assert!(found[0].contains("runtime.hypothesis.strategy: unknown strategy 'sometimes'"));
    assert!(
        found[1].contains("rollbacks[0].ref: referenced activity 'nowhere' could not be found")
    );
    assert!(found[1].contains("(a run refuses this before it starts)"));
    let out = sb.run(&path, &[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.journal.is_none(), "like `chaos run`, nothing runs");
    assert!(out.stderr.contains("2 problems found"), "{}", out.stderr);
}
