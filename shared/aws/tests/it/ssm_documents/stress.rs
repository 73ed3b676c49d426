//! The stress documents (StressCPU, StressMemory, StressIO).

use super::*;

#[test]
fn stress_cpu_runs_stress_ng_for_the_duration() {
    stress(
        "StressCPU",
        &[("duration", "2"), ("workers", "1"), ("load", "50")],
    );
}

#[test]
fn stress_memory_runs_stress_ng_for_the_duration() {
    stress(
        "StressMemory",
        &[("duration", "2"), ("workers", "1"), ("percent", "1")],
    );
}

#[test]
fn stress_io_runs_stress_ng_in_a_directory_it_deletes() {
    let _turn = stress_io_turn();
    let (_case, stdout) = stress(
        "StressIO",
        &[("duration", "2"), ("workers", "1"), ("percent", "1")],
    );
    let token = stdout
        .split("run ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .expect("the run token")
        .to_string();
    assert!(!Path::new(&format!("/var/tmp/experiment-broker-stressio-{token}")).exists());
}

#[test]
fn a_killed_cpu_stress_is_still_reverted_by_its_sleeper() {
    require(STRESS_TOOLS);
    let case = Case::new();
    let mut child = case.spawn(
        "StressCPU",
        &[("duration", "2"), ("workers", "1"), ("load", "30")],
        None,
    );
    let mut session = String::new();
    until(&mut child, "stress-ng", Duration::from_secs(10), || {
        let Some(token) = case.active("StressCPU") else {
            return false;
        };
        session = std::fs::read_to_string(case.state().join(format!("StressCPU.{token}/session")))
            .unwrap_or_default()
            .trim()
            .to_string();
        !session.is_empty() && pgrep_session(&session)
    });
    kill_group(&mut child);
    assert!(
        pgrep_session(&session),
        "stress-ng runs in its own session: the kill did not reach it"
    );
    assert!(
        poll(Duration::from_secs(12), || case
            .active("StressCPU")
            .is_none()),
        "the sleeper did not revert"
    );
    assert!(!pgrep_session(&session), "stress-ng is gone");
    assert!(
        case.log("StressCPU").contains("reverted by sleeper"),
        "{}",
        case.log("StressCPU")
    );
    assert!(case.leftovers().is_empty(), "{:?}", case.leftovers());
}
