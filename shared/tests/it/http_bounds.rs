//! The HTTP provider's bounds against real local servers on 127.0.0.1: redirects stay within
//! the origin (custom headers and bodies never reach another host), a request without a
//! `timeout` is bounded, and a body beyond the cap is kept in part with a marker.

use serde_json::{Value, json};
use shared::engine::substitute::Scope;
use shared::model::HttpProvider;
use shared::providers::ActivityError;
use shared::providers::http::HttpClients;
use shared::providers::output::OUTPUT_CAP;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request as a server saw it: request line, lower-cased header lines, body.
#[derive(Debug, Clone)]
struct Seen {
    line: String,
    headers: Vec<String>,
    body: String,
}

/// path → (status, extra header lines, body).
type Answer = Arc<dyn Fn(&str) -> (u16, String, Vec<u8>) + Send + Sync>;

/// A server answering every request with `answer`, after `delay`; it keeps what it saw.
struct Server {
    base: String,
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    fn start(
        answer: impl Fn(&str) -> (u16, String, Vec<u8>) + Send + Sync + 'static,
        delay: Duration,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let answer: Answer = Arc::new(answer);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, answer) = (log.clone(), answer.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &answer, delay, &log);
                });
            }
        });
        Server {
            base: format!("http://127.0.0.1:{port}"),
            port,
            seen,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    answer: &Answer,
    delay: Duration,
    log: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut headers = Vec::new();
    let mut length = 0;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h)?;
        let h = h.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        headers.push(h);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    log.lock().unwrap().push(Seen {
        line: line.trim_end().to_string(),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    std::thread::sleep(delay);
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, extra, text) = answer(&path);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    )?;
    stream.write_all(&text)?;
    stream.flush()
}

fn provider(url: String, method: &str, timeout: Value) -> HttpProvider {
    HttpProvider {
        url: json!(url),
        method: method.into(),
        headers: json!({
            "Authorization": "Bearer tok-secret",
            "X-Api-Key": "key-secret",
            "Content-Type": "application/json",
        }),
        arguments: json!({"password": "body-secret"}),
        timeout,
        expected_status: None,
        verify_tls: true,
        max_retries: 0,
    }
}

async fn call(clients: &HttpClients, p: &HttpProvider) -> Result<Value, ActivityError> {
    clients.run(p, &Scope::default()).await
}

#[tokio::test]
async fn a_redirect_to_another_origin_is_not_followed_and_nothing_reaches_it() {
    let elsewhere = Server::start(|_| (200, String::new(), b"stolen".to_vec()), Duration::ZERO);
    // another port is another origin; `localhost` is another host for the same machine
    for code in [301u16, 302, 303, 307, 308] {
        for host in ["127.0.0.1", "localhost"] {
            let target = format!("http://{host}:{}/steal", elsewhere.port);
            let location = format!("Location: {target}\r\n");
            let origin = Server::start(
                move |_| (code, location.clone(), Vec::new()),
                Duration::ZERO,
            );
            let out = call(
                &HttpClients::default(),
                &provider(format!("{}/go", origin.base), "POST", Value::Null),
            )
            .await
            .unwrap();
            assert_eq!(out["status"], code, "the 3xx answer as received: {out}");
            assert_eq!(out["headers"]["Location"], target.as_str());
            let seen = origin.seen();
            assert_eq!(seen.len(), 1);
            assert!(
                seen[0]
                    .headers
                    .contains(&"x-api-key: key-secret".to_string())
            );
            assert!(seen[0].body.contains("body-secret"));
        }
    }
    assert!(
        elsewhere.seen().is_empty(),
        "the other host saw {:?}",
        elsewhere.seen()
    );
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed() {
    let origin = Server::start(
        |path| match path {
            "/go" => (307, "Location: /there\r\n".into(), Vec::new()),
            "/there" => (302, "Location: /final?x=1\r\n".into(), Vec::new()),
            _ => (200, String::new(), b"arrived".to_vec()),
        },
        Duration::ZERO,
    );
    let out = call(
        &HttpClients::default(),
        &provider(format!("{}/go", origin.base), "POST", Value::Null),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(out["body"], "arrived");
    let lines: Vec<String> = origin.seen().into_iter().map(|s| s.line).collect();
    assert_eq!(
        lines,
        [
            "POST /go HTTP/1.1",
            "POST /there HTTP/1.1",
            "GET /final?x=1 HTTP/1.1"
        ]
    );
}

#[tokio::test]
async fn endless_redirects_within_the_origin_fail() {
    let origin = Server::start(
        |_| (302, "Location: /again\r\n".into(), Vec::new()),
        Duration::ZERO,
    );
    let err = call(
        &HttpClients::default(),
        &provider(format!("{}/go", origin.base), "GET", Value::Null),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("more than 10 redirects"), "{err}");
    assert_eq!(
        origin.seen().len(),
        11,
        "the first request and 10 redirects"
    );
}

#[tokio::test]
async fn a_request_without_a_timeout_is_bounded_by_the_default() {
    let slow = Server::start(
        |_| (200, String::new(), b"late".to_vec()),
        Duration::from_secs(2),
    );
    // the default (30 s) shortened for the test; the code path is the same
    let clients = HttpClients::with_default_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let err = call(&clients, &provider(slow.base.clone(), "GET", Value::Null))
        .await
        .unwrap_err();
    assert!(matches!(err, ActivityError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // an activity's own timeout replaces the default
    let out = call(&clients, &provider(slow.base.clone(), "GET", json!(10)))
        .await
        .unwrap();
    assert_eq!(out["body"], "late");
    assert_eq!(
        shared::providers::http::DEFAULT_TIMEOUT,
        Duration::from_secs(30)
    );
}

#[tokio::test]
async fn a_body_beyond_the_cap_is_kept_in_part_with_a_marker() {
    let big = Server::start(
        |_| (200, String::new(), vec![b'x'; OUTPUT_CAP + 12345]),
        Duration::ZERO,
    );
    let out = call(
        &HttpClients::default(),
        &provider(big.base.clone(), "GET", Value::Null),
    )
    .await
    .unwrap();
    let body = out["body"].as_str().unwrap();
    assert_eq!(
        body,
        format!(
            "{}…[truncated: 12345 bytes dropped]",
            "x".repeat(OUTPUT_CAP)
        )
    );
    let exact = Server::start(
        |_| (200, String::new(), vec![b'y'; OUTPUT_CAP]),
        Duration::ZERO,
    );
    let out = call(
        &HttpClients::default(),
        &provider(exact.base.clone(), "GET", Value::Null),
    )
    .await
    .unwrap();
    assert_eq!(
        out["body"].as_str().unwrap().len(),
        OUTPUT_CAP,
        "no marker at the cap"
    );
}
