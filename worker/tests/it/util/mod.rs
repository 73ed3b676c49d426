//! Test harness: run the real `worker` binary on experiment files in a temp dir, and a small
//! HTTP server on 127.0.0.1 for http probes. `aws`: the AWS emulator, for the AWS tests.
#![allow(dead_code)]

pub mod hostile;
pub mod kube;
pub mod moto;
pub mod redelivery;

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The binary under test: `BROKER_WORKER_BIN` (e.g. the release build), else cargo's build.
pub fn worker_bin() -> PathBuf {
    std::env::var_os("BROKER_WORKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_worker")))
}

/// A temp working directory holding experiment files and journals.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

/// The outcome of one `worker` invocation.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub journal: Option<Value>,
}

impl Outcome {
    pub fn journal(&self) -> &Value {
        self.journal
            .as_ref()
            .unwrap_or_else(|| panic!("no journal written; stderr:\n{}", self.stderr))
    }

    /// stdout, then stderr.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// `[name, status]` of each entry of `run` or `rollbacks`.
    pub fn names(&self, list: &str) -> Vec<(String, String)> {
        self.journal()[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["activity"]["name"].as_str().unwrap_or("").to_string(),
                    r["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn write_json(&self, name: &str, value: &Value) -> PathBuf {
        self.write(name, &serde_json::to_string_pretty(value).unwrap())
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(worker_bin());
        c.args(args)
            .current_dir(self.dir.path())
            .env("RUST_LOG", "info");
        c
    }

    fn outcome(&self, output: Output, journal: &Path) -> Outcome {
        let journal = std::fs::read_to_string(journal)
            .ok()
            .map(|t| serde_json::from_str(&t).expect("journal is JSON"));
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            journal,
        }
    }

    /// `worker run --journal-path J [extra...] EXPERIMENT`.
    pub fn run(&self, experiment: &Path, extra: &[&str]) -> Outcome {
        self.run_with(experiment, extra, |_| {})
    }

    /// `run`, the command set up further by `setup` first (e.g. its environment).
    pub fn run_with(
        &self,
        experiment: &Path,
        extra: &[&str],
        setup: impl FnOnce(&mut Command),
    ) -> Outcome {
        let journal = self.path("journal.json");
        let _ = std::fs::remove_file(&journal);
        let mut args = vec!["run", "--journal-path", journal.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(experiment.to_str().unwrap());
        let mut command = self.command(&args);
        setup(&mut command);
        let output = command.output().unwrap();
        self.outcome(output, &journal)
    }

    pub fn validate(&self, experiment: &Path, extra: &[&str]) -> Outcome {
        let mut args = vec!["validate"];
        args.extend_from_slice(extra);
        args.push(experiment.to_str().unwrap());
        let output = self.command(&args).output().unwrap();
        self.outcome(output, &self.path("no-journal-for-validate.json"))
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1, one thread per connection.
///   GET /health → 200 text "OK"; /json → 200 JSON document; /status/N → N;
///   /slow/MS → sleeps then 200; /echo → JSON of method, path, query, body, headers;
///   /hits → the number of requests served so far;
///   /echo-ascii?q=V[&as=json] → `{"V": "V"}` written as Python's `json.dumps` does
///   (`ensure_ascii`), as text/plain (or application/json with `as=json`).
pub struct TestServer {
    pub base: String,
    pub hits: Arc<AtomicUsize>,
}

impl TestServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let _ = handle(stream, &counter);
                });
            }
        });
        TestServer { base, hits }
    }
}

fn handle(stream: TcpStream, hits: &AtomicUsize) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = serde_json::Map::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            }
            headers.insert(k, Value::String(v));
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    let served = hits.fetch_add(1, Ordering::SeqCst) + 1;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, ctype, text) = match path {
        "/health" => (200, "text/plain", "OK".to_string()),
        "/json" => (
            200,
            "application/json",
            r#"{"status": "up", "version": 3, "items": [1, 2, 3]}"#.to_string(),
        ),
        "/hits" => (200, "text/plain", served.to_string()),
        p if p.starts_with("/status/") => {
            let code: u16 = p[8..].parse().unwrap_or(400);
            (code, "text/plain", format!("status {code}"))
        }
        p if p.starts_with("/slow/") => {
            std::thread::sleep(Duration::from_millis(p[6..].parse().unwrap_or(0)));
            (200, "text/plain", "slept".to_string())
        }
        "/echo" => {
            let raw = String::from_utf8_lossy(&body).into_owned();
            let body: Value = serde_json::from_str(&raw).unwrap_or(if raw.is_empty() {
                Value::Null
            } else {
                Value::String(raw)
            });
            let doc = serde_json::json!({"method": method, "path": path, "query": query, "body": body, "headers": headers});
            (200, "application/json; charset=utf-8", doc.to_string())
        }
        "/echo-ascii" => {
            let pairs = query_pairs(query);
            let q = pairs.iter().find(|(k, _)| k == "q").map(|(_, v)| v.clone());
            let q = q.unwrap_or_default();
            let as_json = pairs.iter().any(|(k, v)| k == "as" && v == "json");
            let mut doc = serde_json::Map::new();
            doc.insert(q.clone(), Value::String(q));
            let text = ensure_ascii(&Value::Object(doc).to_string());
            let ctype = if as_json {
                "application/json"
            } else {
                "text/plain"
            };
            (200, ctype, text)
        }
        _ => (404, "text/plain", "not found".to_string()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

/// `a=1&b=x+y%21` → pairs, form-decoded.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Compact JSON with every non-ASCII character as `\uXXXX` (surrogate pairs beyond the BMP),
/// as Python's `json.dumps` writes it by default.
pub fn ensure_ascii(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}
