//! What the AWS adapter tests share: the moto server's address, and a way to run a test that
//! sets process-wide state alone in a process of its own.

use std::process::Command;

/// Fails loudly when the emulator is not there: these tests never skip.
pub fn endpoint() -> String {
    std::env::var("BROKER_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "BROKER_TEST_AWS_ENDPOINT is not set: run the tests through scripts/test.sh, which \
             installs and starts the moto server on 127.0.0.1"
        )
    })
}

/// Set in the child process `alone` starts: the name of the one test it runs.
const ALONE: &str = "BROKER_TEST_ALONE";

/// For a test that changes what the whole process shares (environment variables, the one SDK
/// configuration a process loads): true in a child process of this test binary that runs
/// only the test `name` (its path in the binary, e.g. `ssm_send_once::a_test`), where the
/// caller goes on with the test's body; in the calling process, runs that child, fails when
/// the test failed or did not run there, and returns false.
pub fn alone(name: &str) -> bool {
    if std::env::var(ALONE).is_ok_and(|running| running == name) {
        return true;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(ALONE, name)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{name}, alone in a process of its own: {}",
        output.status
    );
    false
}
