//! Reports of real suite runs on the embedded backend: `producer history` and the score in
//! `status`, `producer report` in each format, the HTML one rendered by headless Chromium
//! (Debian's `chromium`, which scripts/test.sh installs) with a proxy on 127.0.0.1 that fails
//! the test if the page makes any request, and `submit --wait` appending its Markdown summary
//! to `$GITHUB_STEP_SUMMARY`.

use crate::util::scenarios::{producer_serve, stop, worker};
use crate::util::{Deployment, PRODUCER};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A title with markup and a URL a browser would fetch if it were not escaped.
const HELD: &str =
    "Checkout <b>holds</b> & recovers <img src=\"http://report-test.invalid/t.png\">";
const FLAKY: &str = "Cache warms | twice";

/// An experiment titled `title`: its method runs `action`, its hypothesis holds while `flag`
/// does not exist, its rollback removes `flag`.
fn experiment(dir: &Path, file: &str, title: &str, action: &str, flag: &str) {
    let doc = json!({"title": title, "description": "d",
        "steady-state-hypothesis": {"title": "h", "probes": [{"type": "probe", "name": "up", "tolerance": 0,
            "provider": {"type": "process", "path": "sh", "arguments": ["-c", format!("test ! -e {flag}")]}}]},
        "method": [{"type": "action", "name": "act", "provider": {"type": "process", "path": "sh", "arguments": ["-c", action]}}],
        "rollbacks": [{"type": "action", "name": "revert", "provider": {"type": "process", "path": "sh", "arguments": ["-c", format!("rm -f {flag}")]}}]});
    std::fs::write(dir.join(file), doc.to_string()).unwrap();
}

/// The suite "nightly": one experiment that holds, one that deviates on its first run only.
fn nightly(dir: &Path) {
    experiment(dir, "a.json", HELD, "true", "a-flag");
    experiment(
        dir,
        "b.json",
        FLAKY,
        "test -e ran-once || { touch ran-once b-flag; }",
        "b-flag",
    );
    std::fs::write(
        dir.join("s.yaml"),
        "name: nightly <&>\nwaves:\n  - experiments: [a.json]\n  - experiments: [b.json]\n",
    )
    .unwrap();
}

fn producer(dir: &Path, args: &[&str]) -> Output {
    Command::new(PRODUCER)
        .args(args)
        .current_dir(dir)
        .env("BROKER_STATE_DIR", dir.join("state"))
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn history_status_and_reports_of_a_suite_run_in_each_format() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    nightly(d);
    assert_eq!(
        producer(d, &["run", "s.yaml"]).status.code(),
        Some(1),
        "deviates first"
    );
    assert_eq!(
        producer(d, &["run", "s.yaml"]).status.code(),
        Some(0),
        "holds then"
    );

    let history: Value =
        serde_json::from_str(&ok(&producer(d, &["history", "--json", "nightly <&>"]))).unwrap();
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{history:#}");
    assert_eq!(
        runs.iter()
            .map(|r| (r["outcome"].clone(), r["score"].clone()))
            .collect::<Vec<_>>(),
        [(json!("held"), json!(100)), (json!("deviated"), json!(50))],
        "newest first: {history:#}"
    );
    let (newest, oldest) = (
        runs[0]["suite_run_id"].as_str().unwrap(),
        runs[1]["suite_run_id"].as_str().unwrap(),
    );
    let table = ok(&producer(d, &["history", "nightly <&>"]));
    assert!(
        table.find(newest) < table.find(oldest) && table.contains(" 50 "),
        "{table}"
    );
    assert!(
        ok(&producer(d, &["history", "--json", "nightly"])).trim() == "[]",
        "another suite"
    );

    assert!(
        ok(&producer(d, &["status", oldest]))
            .contains("resilience score 50/100 (1 held, 1 deviated)")
    );
    let status: Value =
        serde_json::from_str(&ok(&producer(d, &["status", "--json", oldest]))).unwrap();
    assert_eq!(status["score"], 50);
    // the times: each job's start, end and duration from its journal, the suite run's span
    for job in status["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["jobs"].as_array().unwrap())
    {
        assert!(
            job["start"].is_string() && job["end"].is_string(),
            "{job:#}"
        );
        assert!(
            job["duration"].as_f64().is_some_and(|s| s >= 0.0),
            "{job:#}"
        );
    }
    assert!(
        status["created"].is_string() && status["ended"].is_string(),
        "{status:#}"
    );
    let took = status["duration"].as_f64().unwrap();
    let jobs: f64 = status["waves"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["jobs"].as_array().unwrap())
        .map(|j| j["duration"].as_f64().unwrap())
        .sum();
    assert!(
        took >= jobs * 0.5 && took < 600.0,
        "the suite run took {took} s for {jobs} s of jobs"
    );
    let text = ok(&producer(d, &["status", oldest]));
    assert!(
        text.contains(&format!(
            "created {}, ended {}",
            status["created"].as_str().unwrap(),
            status["ended"].as_str().unwrap()
        )),
        "{text}"
    );

    let xml = ok(&producer(d, &["report", "--format", "junit", oldest]));
    assert!(
        xml.contains(r#"tests="2" failures="1" errors="0" skipped="0""#),
        "{xml}"
    );
    assert!(
        xml.contains("Checkout &lt;b&gt;holds&lt;/b&gt; &amp; recovers &lt;img src=&quot;http://report-test.invalid/t.png&quot;&gt; (w0-j0)"),
        "{xml}"
    );
    let md = ok(&producer(d, &["report", "--format", "md", oldest]));
    assert!(
        md.contains("## nightly &lt;&amp;&gt; — deviated") && md.contains("section Wave 2"),
        "{md}"
    );

    let out = producer(d, &["report", oldest, "-o", "report.html"]);
    ok(&out);
    let html = std::fs::read_to_string(d.join("report.html")).unwrap();
    let link = format!("/state/store/runs/{oldest}/w1-j0/journal.json\"");
    assert!(
        html.contains("href=\"file://") && html.contains(&link),
        "links to the journals: {html}"
    );
    the_report_fetches_nothing(&html);
    let dom = chromium_dump(&d.join("report.html"));
    for text in [
        "nightly &lt;&amp;&gt;",
        "Checkout &lt;b&gt;holds&lt;/b&gt; &amp; recovers &lt;img src=\"http://report-test.invalid/t.png\"&gt;",
        FLAKY,
    ] {
        assert!(
            dom.contains(text),
            "{text} not in the rendered page:\n{dom}"
        );
    }
    assert!(
        !dom.contains("<b>holds</b>") && !dom.contains("<img"),
        "a title is text, never markup"
    );
    assert!(dom.contains("<svg class=\"timeline\""), "{dom}");
}

#[test]
fn submit_wait_appends_its_markdown_summary_for_github() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    nightly(d);
    let dep = Deployment::embedded(&d.join("state"));
    let children = vec![producer_serve(&dep, d), worker(&dep, d)];
    let summary = d.join("step-summary.md");
    std::fs::write(&summary, "an earlier step\n").unwrap();
    let out = dep
        .command(PRODUCER, d)
        .args(["submit", "--wait", "--timeout", "120", "s.yaml"])
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    stop(children);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.starts_with("an earlier step\n## nightly &lt;&amp;&gt; — deviated"),
        "appended: {text}"
    );
    assert!(
        text.contains("**Resilience score: 50/100**") && text.contains("```mermaid"),
        "{text}"
    );
}

/// Chromium, or a failure saying how to get it.
fn chromium() -> &'static str {
    for bin in ["chromium", "chromium-browser"] {
        if Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return bin;
        }
    }
    panic!(
        "headless Chromium is needed to test the HTML report and is not installed: \
         apt-get install -y chromium (scripts/test.sh installs it)"
    );
}

/// A proxy on 127.0.0.1 that answers 502 and keeps the first line of every request.
fn proxy() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let n = stream.read(&mut buf).unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            log.lock().unwrap().push(line);
            let _ = stream.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, seen)
}

/// Render `page` in headless Chromium, every request routed to a proxy on 127.0.0.1: the
/// DOM, and the requests the proxy saw.
fn render(page: &Path) -> (String, Vec<String>) {
    let bin = chromium();
    let (port, seen) = proxy();
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--disable-domain-reliability",
            "--disable-client-side-phishing-detection",
            "--no-pings",
            "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate",
            "--proxy-bypass-list=<-loopback>",
        ])
        .arg(format!("--proxy-server=http://127.0.0.1:{port}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(90);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            let _ = child.kill();
            panic!("chromium did not render {} within 90 s", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut dom = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut dom)
        .unwrap();
    let requests = seen.lock().unwrap().clone();
    (dom, requests)
}

/// The host a proxied request line names (`GET http://host/...`, `CONNECT host:443`).
fn host(request: &str) -> &str {
    let target = request.split(' ').nth(1).unwrap_or("");
    let target = target.split("://").nth(1).unwrap_or(target);
    target.split(['/', ':']).next().unwrap_or("")
}

/// Chromium's own background services (updates, time, accounts), which it calls whatever the
/// page: not the page's requests. A page's request to them would still need a URL in the page,
/// which `the_report_fetches_nothing` rules out.
fn chromium_itself(request: &str) -> bool {
    let h = host(request);
    ["google.com", "googleapis.com"]
        .iter()
        .any(|d| h == *d || h.ends_with(&format!(".{d}")))
}

/// The rendered DOM of `page`, failing if the page made any request.
fn chromium_dump(page: &Path) -> String {
    let (dom, requests) = render(page);
    assert!(dom.contains("</html>"), "chromium rendered nothing: {dom}");
    let from_page: Vec<&String> = requests.iter().filter(|r| !chromium_itself(r)).collect();
    assert!(
        from_page.is_empty(),
        "the report made requests: {from_page:?}"
    );
    dom
}

/// No URL a browser could fetch in the page's markup or style: every tag is free of http(s)
/// and protocol-relative URLs (a URL in a title is text, escaped, so in no tag), and the
/// stylesheet refers to nothing outside the page. Journal links (`<a href="file://...">`) are
/// followed only when clicked.
fn the_report_fetches_nothing(html: &str) {
    for piece in html.split('<').skip(1) {
        let tag = piece.split('>').next().unwrap_or("").to_ascii_lowercase();
        for bad in ["http:", "https:", "=\"//", "='//", "url("] {
            assert!(!tag.contains(bad), "`{bad}` in the tag <{tag}>");
        }
    }
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next())
        .expect("an inline stylesheet");
    assert!(!style.contains("@import"), "the stylesheet imports");
    for (i, _) in style.match_indices("url(") {
        assert!(
            style[i..].starts_with("url(#"),
            "the stylesheet fetches {}",
            &style[i..(i + 40).min(style.len())]
        );
    }
}

#[test]
fn the_request_check_sees_a_page_that_loads_something() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("leaky.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><p>leaky</p><img src=\"http://report-test.invalid/pixel.png\"></body></html>",
    )
    .unwrap();
    let (dom, requests) = render(&page);
    assert!(dom.contains("leaky"), "{dom}");
    assert_eq!(
        host("GET http://report-test.invalid/pixel.png HTTP/1.1"),
        "report-test.invalid"
    );
    assert_eq!(
        host("CONNECT update.googleapis.com:443 HTTP/1.1"),
        "update.googleapis.com"
    );
    assert!(!chromium_itself(
        "GET http://report-test.invalid/p.png HTTP/1.1"
    ));
    assert!(
        requests.iter().any(|r| r.contains("report-test.invalid")),
        "the proxy saw no request: {requests:?}"
    );
}
