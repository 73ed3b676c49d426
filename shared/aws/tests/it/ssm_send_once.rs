//! SendCommand has no idempotency token, and an SDK retry after a lost answer would start a
//! fault twice. `ssm_command::run` sends with the SDK's retries off and, when an answer is
//! lost, asks SSM whether its command exists before sending again. These tests put a proxy
//! on 127.0.0.1 between the worker and the moto server that loses exactly one SendCommand:
//! once after moto ran it (the answer is lost), once before (the request is lost). And a run
//! stopped while its SendCommand has not answered still finds, stops and follows its command,
//! and only then unlocks the targets.

use crate::util::endpoint;
use aws::native::ssm_command::{Command, run};
use aws::native::target_locks;
use shared::providers::registry::NativeCall;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the next SendCommand.
const PASS: u8 = 0;
const LOSE_ANSWER: u8 = 1;
const LOSE_REQUEST: u8 = 2;
/// Forward it, then hold the answer back for 3 s.
const SLOW_ANSWER: u8 = 3;

/// Every CancelCommand is answered this much later (so a test can look at the locks while a
/// stopped command's clean-up is still stopping it).
const CANCEL_DELAY: Duration = Duration::from_millis(1500);

/// Read one HTTP request: headers, then `Content-Length` bytes of body.
async fn read_request(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

/// One request per connection: forwarded to moto (which answers and closes, HTTP/1.0), its
/// answer relayed back, unless `mode` says to lose this SendCommand.
async fn proxy(upstream: String, mode: Arc<AtomicU8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (upstream, mode) = (upstream.clone(), mode.clone());
            tokio::spawn(async move {
                let Some(request) = read_request(&mut client).await else {
                    return;
                };
                let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                let is_send = text.contains("x-amz-target: amazonssm.sendcommand");
                if text.contains("x-amz-target: amazonssm.cancelcommand") {
                    tokio::time::sleep(CANCEL_DELAY).await;
                }
                let lose = if is_send {
                    mode.swap(PASS, Ordering::SeqCst)
                } else {
                    PASS
                };
                if lose == LOSE_REQUEST {
                    return; // dropped: moto never sees it
                }
                let mut server = TcpStream::connect(&upstream).await.unwrap();
                server.write_all(&request).await.unwrap();
                let mut answer = Vec::new();
                server.read_to_end(&mut answer).await.unwrap();
                if lose == LOSE_ANSWER {
                    return; // moto ran it; the worker never hears back
                }
                if lose == SLOW_ANSWER {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                let _ = client.write_all(&answer).await;
            });
        }
    });
    address
}

async fn moto_ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&aws::sdk::emulator(&endpoint()).await)
}

/// Commands moto holds for `instance` sent by the activity `name`.
async fn commands_for(instance: &str, name: &str) -> Vec<String> {
    let prefix = format!("experiment-broker: {name} #");
    moto_ssm()
        .await
        .list_commands()
        .instance_id(instance)
        .send()
        .await
        .unwrap()
        .commands()
        .iter()
        .filter(|c| c.comment().is_some_and(|m| m.starts_with(&prefix)))
        .filter_map(|c| c.command_id().map(str::to_string))
        .collect()
}

async fn instance() -> String {
    let ec2 = aws_sdk_ec2::Client::new(&aws::sdk::emulator(&endpoint()).await);
    let out = ec2
        .run_instances()
        .image_id("ami-12c6146b")
        .min_count(1)
        .max_count(1)
        .send()
        .await
        .unwrap();
    out.instances()[0].instance_id().unwrap().to_string()
}

fn command(instance: &str) -> Command {
    Command {
        document: "AWS-RunShellScript".into(),
        instance_ids: vec![instance.to_string()],
        parameters: BTreeMap::from([("commands".to_string(), vec!["true".to_string()])]),
        wait: Duration::from_secs(60),
    }
}

fn call(activity: &str) -> NativeCall {
    NativeCall {
        activity: activity.into(),
        ..NativeCall::default()
    }
}

// One test: the worker's SDK configuration is loaded once per process, from the environment
// this test sets (the proxy's address).
#[tokio::test]
async fn a_lost_send_runs_exactly_once_and_a_stop_mid_send_unlocks_only_after_the_stop() {
    // in a process of its own: it sets the environment every SDK client of the process reads
    let name = "ssm_send_once::a_lost_send_runs_exactly_once_and_a_stop_mid_send_unlocks_only_after_the_stop";
    if !crate::util::alone(name) {
        return;
    }
    let mode = Arc::new(AtomicU8::new(PASS));
    let upstream = endpoint()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let address = proxy(upstream, mode.clone()).await;
    let state = tempfile::tempdir().unwrap();
    // SAFETY: set before any client exists, in a process that runs nothing but this test
    unsafe {
        std::env::set_var("AWS_ENDPOINT_URL", &address);
        std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::remove_var("AWS_PROFILE");
        std::env::set_var("BROKER_STATE_DIR", state.path());
    }
    let target = instance().await;

    // the answer is lost after moto created the command: found by its token, not resent;
    // the request is lost before moto saw it: SSM has no such command, so it is sent again
    for (loss, what) in [(LOSE_ANSWER, "lost-answer"), (LOSE_REQUEST, "lost-request")] {
        mode.store(loss, Ordering::SeqCst);
        let name = format!("{what}-{}", std::process::id());
        let result = run(&call(&name), &command(&target), None)
            .await
            .unwrap_or_else(|e| panic!("{what}: the command is followed: {e}"));
        assert_eq!(mode.load(Ordering::SeqCst), PASS, "{what}: it was lost");
        let sent = commands_for(&target, &name).await;
        assert_eq!(sent.len(), 1, "{what}: exactly one command: {sent:?}");
        assert_eq!(result["command_id"], sent[0].as_str());
        assert_eq!(result["invocations"][0]["status"], "Success");
    }

    // and a send that loses nothing is sent once, with its token in the comment
    let name = format!("plain-{}", std::process::id());
    run(&call(&name), &command(&target), None).await.unwrap();
    assert_eq!(commands_for(&target, &name).await.len(), 1);

    // stopped while SendCommand has not answered: the clean-up finds the command by its
    // token and stops it; the targets stay locked until then, and are unlocked after
    let name = format!("stopped-{}", std::process::id());
    let held = target_locks::lock(
        &call(&name),
        std::slice::from_ref(&target),
        Duration::from_secs(600),
    )
    .await
    .unwrap();
    let lock = state.path().join("store/locks").join(&target);
    assert!(lock.exists(), "locked: {}", lock.display());
    mode.store(SLOW_ANSWER, Ordering::SeqCst);
    let cut = tokio::time::timeout(
        Duration::from_millis(500),
        run(&call(&name), &command(&target), Some(&held)),
    )
    .await;
    assert!(cut.is_err(), "the run was stopped mid-send");
    drop(held); // the action's own hold goes, as it does when a run is stopped
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        lock.exists(),
        "the targets stay locked while the stopped command is being stopped"
    );
    assert_eq!(shared::cleanup::drain(Duration::from_secs(30)).await, 0);
    assert!(!lock.exists(), "unlocked once the command was stopped");
    assert_eq!(
        commands_for(&target, &name).await.len(),
        1,
        "the command moto ran was found, not sent again"
    );
}

#[test]
fn the_comment_names_the_activity_and_carries_the_token_within_100_characters() {
    use aws::native::ssm_send::comment;
    assert_eq!(
        comment("stress-memory", "0123456789abcdef"),
        "experiment-broker: stress-memory #0123456789abcdef"
    );
    let long = comment(&"é".repeat(300), "0123456789abcdef");
    assert!(long.chars().count() <= 100, "{long}");
    assert!(long.ends_with(" #0123456789abcdef"));
}
