//! The flow every redelivery test shares: a job run by a `worker serve` on the embedded backend
//! (its faults on the emulator) killed with SIGKILL once its checkpoint shows the fault acting,
//! then reverted by a second worker; the journal that reverter writes.

use super::Sandbox;
use super::moto::{self, Aws, Env};
use serde_json::Value;
use shared::config::Embedded;
use shared::model::suite::Job;
use shared::ports::{JobQueue, ObjectStore};
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

/// `worker serve` on the embedded backend in `state`, no Python, none of the environment's
/// deployment guard-rail settings (the tests' experiments say what they allow).
pub fn serve(sandbox: &Sandbox, state: &Path) -> Child {
    let env = Env {
        unset: moto::DEPLOYMENT_GUARD_RAILS,
        ..Env::default()
    };
    moto::command(
        sandbox,
        &[
            "serve",
            "--state-dir",
            state.to_str().unwrap(),
            "--visibility-timeout",
            "2",
            "--grace",
            "5",
        ],
        env,
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap()
}

/// Run `experiment` as a job of a `worker serve`, SIGKILL it once `acted` holds (given the
/// checkpoint, once the first activity is in it), let a second worker revert the job; the
/// journal and the embedded backend.
pub fn crash_and_revert(
    aws: &Aws,
    sandbox: &Sandbox,
    experiment: &Value,
    mut acted: impl FnMut(&Value) -> bool,
) -> (Value, Embedded) {
    let file = sandbox.write_json("dies.json", experiment);
    let state = sandbox.path("state");
    let e = aws.rt.block_on(Embedded::open(&state)).unwrap();
    let job = serde_json::to_string(&Job {
        version: Job::VERSION,
        suite_run_id: "sr-crash".into(),
        wave: 0,
        run_id: "dies".into(),
        experiment_source: file.to_str().unwrap().into(),
        bucket_name: None,
        experiment_version: None,
        traceparent: None,
        settings: Default::default(),
    })
    .unwrap();
    let mut owner = serve(sandbox, &state);
    aws.rt.block_on(e.jobs.send_batch(&[job])).unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let checkpoint = aws
            .rt
            .block_on(e.store.get("runs/sr-crash/dies/checkpoint.json"))
            .unwrap()
            .map(|b| serde_json::from_slice::<Value>(&b).unwrap());
        if let Some(c) = &checkpoint
            && c["run"].as_array().is_some_and(|r| r.len() == 1)
            && acted(c)
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "the fault never acted: {checkpoint:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    owner.kill().unwrap(); // SIGKILL: nothing of the owner's own clean-up runs
    owner.wait().unwrap();

    let mut reverter = serve(sandbox, &state);
    let until = Instant::now() + Duration::from_secs(120);
    let journal: Value = loop {
        if let Some(bytes) = aws
            .rt
            .block_on(e.store.get("runs/sr-crash/dies/journal.json"))
            .unwrap()
        {
            break serde_json::from_slice(&bytes).unwrap();
        }
        assert!(Instant::now() < until, "the job was never reverted");
        std::thread::sleep(Duration::from_millis(200));
    };
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(reverter.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    reverter.wait().unwrap();
    assert_eq!(journal["broker"]["revert_only"], true, "{journal:#}");
    (journal, e)
}
