//! The `http` provider: one request, output `{status, headers, body}`.
//!
//! As in the reference (Python `requests`): GET sends `arguments` as query parameters; other
//! methods send them as JSON when the `Content-Type` header is `application/json`, else as a
//! form; a number `timeout` bounds connecting and each read, `[connect, read]` sets both; 4xx
//! and 5xx are outputs, not failures; connection errors and timeouts fail the activity. A JSON
//! response body is parsed. Two deliberate additions: `expected_status`, when set, fails the
//! activity on any other status, and JSON is recognised with parameters (`; charset=utf-8`),
//! where the reference only parses the exact `application/json`.
//!
//! Bounded where the reference is not (an unattended run must neither hang on a silent server
//! nor leak a request to another host):
//! - With no `timeout`, the whole request (connect, answer, body) is bounded by
//!   `DEFAULT_TIMEOUT` (30 s); the reference (`requests` with `timeout=None`) waits forever.
//! - Redirects are followed only within the request's origin (scheme, host and port), at most
//!   `MAX_REDIRECTS` times. A redirect elsewhere (another host or port, https → http) is not
//!   followed: the output is the 3xx answer as received, its `Location` in `headers`. The
//!   reference follows it and sends the custom headers and (on 307/308) the body to the other
//!   host; `requests` strips only `Authorization`.
//! - At most `output::OUTPUT_CAP` (1 MiB) of the body is kept, ending with a marker saying how
//!   much was dropped; the rest is read and dropped (up to `DRAIN_LIMIT`, then the connection
//!   is closed).

use super::ActivityError;
use crate::model::HttpProvider;
use crate::pyvalue::py_str;
use crate::scope::Scope;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The bound on a whole request whose activity gives no `timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Redirects followed (within the origin) before the request fails.
pub const MAX_REDIRECTS: usize = 10;

/// How much of a body beyond the cap is read and dropped before the connection is closed.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Clients keyed by their TLS and timeout settings, built on first use: building one loads the
/// platform's trust store, which costs milliseconds a run without HTTP should not pay.
#[derive(Debug)]
pub struct HttpClients {
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
    /// `DEFAULT_TIMEOUT`, shorter in tests.
    default_timeout: Duration,
}

impl Default for HttpClients {
    fn default() -> Self {
        Self::with_default_timeout(DEFAULT_TIMEOUT)
    }
}

/// (verify TLS, connect timeout ms, read timeout ms, whole-request timeout ms).
type ClientKey = (bool, Option<u64>, Option<u64>, Option<u64>);

/// Whether a redirect from `from` to `to` stays within the origin (scheme, host, port): the
/// only redirects followed.
pub fn same_origin(from: &url::Url, to: &url::Url) -> bool {
    from.origin() == to.origin() && from.origin().is_tuple()
}

/// Follow a redirect only within the first request's origin, at most `MAX_REDIRECTS` times.
fn redirect_policy() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first().cloned();
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else if first.is_some_and(|f| same_origin(&f, attempt.url())) {
            attempt.follow()
        } else {
            tracing::warn!(
                "not following a redirect to another origin ({}): the 3xx answer is the output",
                attempt.url().origin().ascii_serialization()
            );
            attempt.stop()
        }
    })
}

/// `timeout` → (connect, read) in milliseconds.
pub fn timeouts(timeout: &Value) -> (Option<u64>, Option<u64>) {
    let ms = |v: &Value| {
        v.as_f64()
            .filter(|f| *f >= 0.0)
            .map(|f| (f * 1000.0).round() as u64)
    };
    match timeout {
        Value::Array(pair) if pair.len() == 2 => (ms(&pair[0]), ms(&pair[1])),
        other => (ms(other), ms(other)),
    }
}

/// Python-`requests` style encoding of a mapping into key/value pairs (`None` dropped, lists
/// repeated, other values as `str()`).
pub fn form_pairs(arguments: &Value) -> Vec<(String, String)> {
    let Value::Object(map) = arguments else {
        return Vec::new();
    };
    let mut pairs = Vec::new();
    for (k, v) in map {
        match v {
            Value::Null => {}
            Value::Array(items) => {
                pairs.extend(
                    items
                        .iter()
                        .filter(|i| !i.is_null())
                        .map(|i| (k.clone(), py_str(i))),
                );
            }
            other => pairs.push((k.clone(), py_str(other))),
        }
    }
    pairs
}

fn is_json_media_type(content_type: &str) -> bool {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

impl HttpClients {
    /// Clients whose requests without a `timeout` are bounded by `default_timeout`.
    pub fn with_default_timeout(default_timeout: Duration) -> Self {
        HttpClients {
            clients: Mutex::default(),
            default_timeout,
        }
    }

    fn client(&self, key: ClientKey) -> Result<reqwest::Client, ActivityError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let (verify_tls, connect, read, total) = key;
        let mut builder = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(!verify_tls)
            .redirect(redirect_policy());
        if let Some(ms) = connect {
            builder = builder.connect_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = read {
            builder = builder.read_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = total {
            builder = builder.timeout(Duration::from_millis(ms));
        }
        let client = builder
            .build()
            .map_err(|e| ActivityError::Failed(format!("cannot build HTTP client: {e}")))?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    pub async fn run(&self, p: &HttpProvider, scope: &Scope) -> Result<Value, ActivityError> {
        let url = py_str(&scope.substitute(&p.url));
        let headers = scope.substitute(&p.headers);
        let timeout = scope.substitute(&p.timeout);
        let arguments = if scope.is_empty() {
            p.arguments.clone()
        } else {
            scope.substitute(&p.arguments)
        };
        let (connect, read) = timeouts(&timeout);
        let total = (connect.is_none() && read.is_none())
            .then(|| u64::try_from(self.default_timeout.as_millis()).unwrap_or(u64::MAX));
        let client = self.client((p.verify_tls, connect, read, total))?;
        let method = reqwest::Method::from_bytes(p.method.as_bytes())
            .map_err(|_| ActivityError::Failed(format!("invalid HTTP method '{}'", p.method)))?;
        let mut parsed = url::Url::parse(&url)
            .map_err(|e| ActivityError::Failed(format!("invalid URL '{url}': {e}")))?;
        let mut request_headers = reqwest::header::HeaderMap::new();
        let mut json_body = false;
        if let Value::Object(h) = &headers {
            for (name, value) in h {
                let value = py_str(value);
                if name == "Content-Type" && value == "application/json" {
                    json_body = true;
                }
                let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| ActivityError::Failed(format!("invalid header name '{name}'")))?;
                let value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                    ActivityError::Failed(format!("invalid value for header '{name}'"))
                })?;
                request_headers.insert(name, value);
            }
        }
        let mut body: Option<(Vec<u8>, Option<&'static str>)> = None;
        if method == reqwest::Method::GET {
            if let Value::String(query) = &arguments {
                // a string is sent as the query string itself, as `requests` does
                if !query.is_empty() {
                    let joined = match parsed.query() {
                        Some(q) if !q.is_empty() => format!("{q}&{query}"),
                        _ => query.clone(),
                    };
                    parsed.set_query(Some(&joined));
                }
            } else {
                let pairs = form_pairs(&arguments);
                if !pairs.is_empty() {
                    parsed.query_pairs_mut().extend_pairs(pairs);
                }
            }
        } else if json_body && !arguments.is_null() {
            body = Some((serde_json::to_vec(&arguments).unwrap_or_default(), None));
        } else {
            match &arguments {
                Value::String(s) => body = Some((s.clone().into_bytes(), None)),
                Value::Object(_) => {
                    let pairs = form_pairs(&arguments);
                    if !pairs.is_empty() {
                        let encoded = url::form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(pairs)
                            .finish();
                        body = Some((
                            encoded.into_bytes(),
                            Some("application/x-www-form-urlencoded"),
                        ));
                    }
                }
                _ => {}
            }
        }
        let mut request = client
            .request(method, parsed)
            .headers(request_headers.clone());
        if let Some((bytes, content_type)) = body {
            if let Some(ct) = content_type
                && !request_headers.contains_key(reqwest::header::CONTENT_TYPE)
            {
                request = request.header(reqwest::header::CONTENT_TYPE, ct);
            }
            request = request.body(bytes);
        }
        // `max_retries`, as `requests`' adapter: connection failures only, immediately
        let mut attempts_left = p.max_retries;
        let response = loop {
            let attempt = request.try_clone().map(|r| r.send());
            let result = match attempt {
                Some(send) => send.await,
                None => break request.send().await.map_err(|e| classify(&url, e))?,
            };
            match result {
                Ok(r) => break r,
                Err(e) if e.is_connect() && attempts_left > 0 => {
                    attempts_left -= 1;
                    tracing::debug!("connection to the HTTP endpoint failed; retrying");
                }
                Err(e) => return Err(classify(&url, e)),
            }
        };
        let status = response.status().as_u16();
        let mut out_headers = Map::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            let key = canonical_header(name.as_str());
            match out_headers.get_mut(&key) {
                Some(Value::String(existing)) => {
                    existing.push_str(", ");
                    existing.push_str(&value);
                }
                _ => {
                    out_headers.insert(key, Value::String(value));
                }
            }
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let is_json = is_json_media_type(&content_type);
        let text = read_body(response, &content_type, &url).await?;
        let body = if is_json {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        } else {
            Value::String(text)
        };
        if let Some(expected) = p.expected_status
            && expected != status
        {
            return Err(ActivityError::Failed(format!(
                "{url} answered HTTP {status}, expected {expected}"
            )));
        }
        Ok(json!({"status": status, "headers": out_headers, "body": body}))
    }
}

/// The body as text in its charset (UTF-8 by default), at most `OUTPUT_CAP` bytes of it kept.
async fn read_body(
    mut response: reqwest::Response,
    content_type: &str,
    url: &str,
) -> Result<String, ActivityError> {
    use super::output::{Capped, OUTPUT_CAP};
    let mut body = Capped::default();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.push(&chunk, OUTPUT_CAP);
                if body.dropped > DRAIN_LIMIT {
                    body.unfinished = true;
                    break;
                }
            }
            Ok(None) => break,
            // what is kept is whole; only the dropped part could not be read to its end
            Err(_) if body.dropped > 0 => {
                body.unfinished = true;
                break;
            }
            Err(e) => return Err(classify(url, e)),
        }
    }
    let encoding = charset(content_type)
        .and_then(|label| encoding_rs::Encoding::for_label(label.as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    Ok(body.text_decoded(|bytes| encoding.decode(bytes).0.into_owned()))
}

/// The `charset` parameter of a `Content-Type`.
fn charset(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// `content-type` → `Content-Type`, the casing `requests` reports.
fn canonical_header(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn classify(url: &str, e: reqwest::Error) -> ActivityError {
    if e.is_timeout() {
        ActivityError::Timeout("activity took too long to complete".into())
    } else if e.is_connect() {
        let mut cause = String::new();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        ActivityError::Failed(format!("failed to connect to {url}: {cause}"))
    } else if e.is_redirect() {
        let cause = std::error::Error::source(&e).map(|s| s.to_string());
        ActivityError::Failed(format!(
            "request to {url} failed: {}",
            cause.unwrap_or_else(|| "redirect refused".into())
        ))
    } else {
        // `without_url`: reqwest's text repeats the URL percent-encoded; ours is already there
        ActivityError::Failed(format!("request to {url} failed: {}", e.without_url()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_forms() {
        assert_eq!(timeouts(&json!(2)), (Some(2000), Some(2000)));
        assert_eq!(timeouts(&json!([0.5, 3])), (Some(500), Some(3000)));
        assert_eq!(timeouts(&Value::Null), (None, None));
    }

    #[test]
    fn form_encoding_follows_requests() {
        assert_eq!(
            form_pairs(&json!({"a": 1, "b": [true, "x"], "c": null, "d": "v"})),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "True".into()),
                ("b".into(), "x".into()),
                ("d".into(), "v".into())
            ]
        );
    }

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("application/json; charset=utf-8"));
        assert!(is_json_media_type("application/problem+json"));
        assert!(!is_json_media_type("text/plain"));
    }

    #[test]
    fn redirects_stay_within_the_origin() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        let cases = [
            ("http://a:80/x", "http://a/y", true),
            ("https://a/x", "https://a:443/y?q", true),
            ("https://a/x", "http://a/x", false),
            ("http://a/x", "https://a/x", false),
            ("http://a:8080/", "http://a:8081/", false),
            ("http://a/", "http://b/", false),
            ("http://a/", "http://a.evil/", false),
            ("http://127.0.0.1:5/", "http://localhost:5/", false),
        ];
        for (from, to, same) in cases {
            assert_eq!(same_origin(&u(from), &u(to)), same, "{from} → {to}");
        }
    }

    #[test]
    fn charsets() {
        assert_eq!(
            charset("text/plain; charset=ISO-8859-1"),
            Some("ISO-8859-1")
        );
        assert_eq!(charset("text/plain;Charset=\"utf-8\""), Some("utf-8"));
        assert_eq!(charset("text/plain"), None);
    }

    #[test]
    fn header_casing() {
        assert_eq!(canonical_header("content-type"), "Content-Type");
        assert_eq!(canonical_header("x-request-id"), "X-Request-Id");
    }
}
