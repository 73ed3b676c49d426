//! A stored object whose answer was lost: the SDK's retry is told "exists", and the suite
//! still completes with one event per job.

use super::*;

/// A proxy on 127.0.0.1 in front of moto that loses the answer to the first conditional
/// `PutObject` (`If-None-Match`) of each key ending in one of `suffixes`: the request reaches
/// moto and is stored, the connection is then closed without an answer, so the SDK retries and
/// is answered 412 ("exists"). One request per connection (moto answers and closes); bytes are
/// relayed as they come, whatever the body's encoding. Returns its URL and the keys it lost.
fn losing_proxy(
    upstream: String,
    suffixes: &'static [&'static str],
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let lost: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = lost.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let (upstream, lost) = (upstream.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut chunk = [0u8; 8192];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match client.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                let raw = String::from_utf8_lossy(&head).into_owned();
                let text = raw.to_ascii_lowercase();
                let mut line = raw.lines().next().unwrap_or("").split(' ');
                let (method, target) = (line.next().unwrap_or(""), line.next().unwrap_or(""));
                let path = target.split('?').next().unwrap_or("").to_string();
                let lose = method == "PUT"
                    && text.contains("\r\nif-none-match:")
                    && suffixes.iter().any(|s| path.ends_with(s))
                    && {
                        let mut lost = lost.lock().unwrap();
                        let first = !lost.contains(&path);
                        if first {
                            lost.push(path.clone());
                        }
                        first
                    };
                let Ok(mut server) = TcpStream::connect(&upstream) else {
                    return;
                };
                if server.write_all(&head).is_err() {
                    return;
                }
                // the rest of the request (its body) as it comes
                let (mut from, mut to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                });
                let mut answer = Vec::new();
                let _ = server.read_to_end(&mut answer);
                if !lose {
                    let _ = client.write_all(&answer);
                }
                let _ = client.shutdown(Shutdown::Both);
                let _ = server.shutdown(Shutdown::Both);
            });
        }
    });
    (address, lost)
}

#[test]
fn a_journal_stored_whose_answer_was_lost_still_completes_the_suite_with_one_event_per_job() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dep = Deployment::moto("lost");
    let endpoint = std::env::var("BROKER_TEST_AWS_ENDPOINT").unwrap();
    let upstream = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    // the workers talk to moto through the proxy: the first journal of every job, and the
    // first started marker, is stored by S3 and its answer lost
    let (proxy, lost) = losing_proxy(upstream, &["/journal.json", "/started"]);
    let quick = experiment(d, "quick.json", "true", "no-flag", "true");
    std::fs::write(
        d.join("s.yaml"),
        format!(
            "name: lost\nwaves:\n  - experiments: [{quick}, {quick}]\n  - experiments: [{quick}]\n"
        ),
    )
    .unwrap();
    let serving = producer_serve(&dep, d);
    let workers: Vec<_> = (0..2)
        .map(|_| {
            dep.command(util::worker_bin(), d)
                .args(["serve", "--visibility-timeout", "10", "--grace", "2"])
                .env("AWS_ENDPOINT_URL", &proxy)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    let out = dep.producer(&["submit", "s.yaml"], d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut events = wait_for_suite(&dep, "the suite's completion", |e| {
        e["detail"]["suite_run_id"] == id.as_str()
    });
    // a late duplicate would come within a lease: look a little longer
    let quiet = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < quiet {
        use shared::ports::JobQueue;
        let got = dep
            .rt
            .block_on(
                dep.audit
                    .receive(10, Duration::from_secs(600), Duration::from_secs(1)),
            )
            .unwrap();
        events.extend(
            got.iter()
                .map(|m| serde_json::from_str::<Value>(&m.body).unwrap()),
        );
    }
    let done = events
        .iter()
        .find(|e| e["detail-type"] == "Suite Completed")
        .unwrap();
    assert_eq!(
        (&done["detail"]["status"], &done["detail"]["outcome"]),
        (&Value::from("completed"), &Value::from("held")),
        "{done}"
    );
    assert_eq!(
        completed_runs(&events, &id),
        ["w0-j0", "w0-j1", "w1-j0"],
        "exactly one completion event per job"
    );
    let mut lost = lost.lock().unwrap().clone();
    lost.sort();
    let bucket = &dep.aws.as_ref().unwrap().1.bucket;
    let expected: Vec<String> = ["w0-j0", "w0-j1", "w1-j0"]
        .iter()
        .flat_map(|job| {
            ["journal.json", "started"].map(|k| format!("/{bucket}/runs/{id}/{job}/{k}"))
        })
        .collect();
    assert_eq!(lost, expected, "every create's first answer was lost");
    stop(workers.into_iter().chain([serving]).collect());
}
