//! The steady-state hypothesis in a run: an interruption during the after-hypothesis, tolerances
//! that are references, the continuous hypothesis measuring at least once.

use super::*;

#[test]
fn an_interruption_during_the_after_hypothesis_still_rolls_back() {
    let sb = Sandbox::new();
    let mut e = exp(json!([process("inject", "action", "touch fault")]));
    e["steady-state-hypothesis"] = json!({"title": "h", "probes": [
        process("slow-when-fault", "probe", "if [ -f fault ]; then sleep 10; fi; exit 0")]});
    e["steady-state-hypothesis"]["probes"][0]["tolerance"] = json!(0);
    e["rollbacks"] = json!([process("revert", "action", "rm -f fault")]);
    let path = sb.write_json("e.json", &e);
    let mut child = sb
        .command(&["run", "--journal-path", "j.json", path.to_str().unwrap()])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let j: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.path("j.json")).unwrap()).unwrap();
    assert_eq!(j["status"], "interrupted");
    assert_eq!(
        j["deviated"], false,
        "an interrupted check is not a deviation"
    );
    assert_eq!(j["rollbacks"][0]["status"], "succeeded");
    assert!(!sb.path("fault").exists(), "the fault was reverted");
}

#[test]
fn hypothesis_refs_use_the_tolerance_written_beside_them() {
    let sb = Sandbox::new();
    let mut e = exp(
        json!([{"type": "probe", "name": "check", "provider": {"type": "process", "path": "/bin/true"}}]),
    );
    e["steady-state-hypothesis"] =
        json!({"title": "h", "probes": [{"ref": "check", "tolerance": 1}]});
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(
        out.journal()["steady_states"]["before"]["probes"][0]["tolerance_met"],
        false
    );
    e["steady-state-hypothesis"] = json!({"title": "h", "probes": [{"ref": "check"}]});
    let out = sb.validate(&sb.write_json("e2.json", &e), &[]);
    assert!(
        out.stderr
            .contains("steady-state-hypothesis.probes[0].tolerance: missing"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_tolerance_that_is_a_reference_takes_the_kind_of_its_value() {
    let sb = Sandbox::new();
    let mut e = exp(json!([]));
    e["configuration"] = json!({"code": 0, "codes": [0, 1], "pattern": {"type": "regex", "pattern": "^hi", "target": "stdout"}});
    e["steady-state-hypothesis"] = json!({"title": "h", "probes": [
        {"type": "probe", "name": "int", "tolerance": "${code}", "provider": {"type": "process", "path": "/bin/true"}},
        {"type": "probe", "name": "list", "tolerance": "${codes}", "provider": {"type": "process", "path": "/bin/false"}},
        {"type": "probe", "name": "regex", "tolerance": "${pattern}", "provider": {"type": "process", "path": "echo", "arguments": ["hi there"]}}
    ]});
    let out = sb.run(&sb.write_json("e.json", &e), &[]);
    assert_eq!(
        out.journal()["steady_states"]["before"]["steady_state_met"],
        true,
        "{}",
        out.stderr
    );
}

#[test]
fn the_continuous_hypothesis_measures_at_least_once_and_skip_skips_it_all() {
    let sb = Sandbox::new();
    let mut e = exp(json!([]));
    e["steady-state-hypothesis"] = json!({"title": "h", "probes": [
        {"type": "probe", "name": "p", "tolerance": 0, "provider": {"type": "process", "path": "/bin/true"}}]});
    let path = sb.write_json("e.json", &e);
    let out = sb.run(&path, &["--hypothesis-strategy", "during-method-only"]);
    assert_eq!(
        out.journal()["steady_states"]["during"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    e["runtime"] = json!({"hypothesis": {"strategy": "skip"}});
    let out = sb.run(&sb.write_json("skip.json", &e), &[]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.journal()["steady_states"]["before"], Value::Null);
    assert_eq!(out.journal()["steady_states"]["after"], Value::Null);
}
