//! A thin Kubernetes API client on the workspace's `reqwest` (one HTTP client, one TLS stack):
//! GET, list (every page), DELETE, strategic-merge PATCH and `watch=true` streams, with the
//! cluster's CA as the only trusted root, a bearer token (fixed, or the EKS token refreshed
//! before it expires) or a client certificate, and the API's `Status` body as the error.
//!
//! Only the calls the fault library makes are here; the objects are `objects.rs`'s structs,
//! which hold only the fields it reads.

use super::auth::Auth;
use super::objects::{List, Status, WatchEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;
use url::Url;

/// How long one API call may take (a watch has its own bound).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Items per page of a list.
const PAGE: &str = "500";
/// The most pages a list reads (100,000 items at 500 a page): a server that keeps answering
/// with a `continue` token cannot keep a fault waiting for ever.
const MAX_PAGES: usize = 200;
/// The largest answer read (a list page of 500 pods is a few MB).
const MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("{what}: cannot reach the Kubernetes API at {url}: {source}")]
    Http {
        what: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: the Kubernetes API answered {code} {reason}: {message}")]
    Api {
        what: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error("{what}: the Kubernetes API's answer is not the JSON expected: {source}")]
    Decode {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{what}: the answer is over {MAX_BODY} bytes")]
    TooLarge { what: String },
    /// A list that does not end: over [`MAX_PAGES`] pages, or a `continue` token repeated.
    #[error("{what}: {reason}")]
    Paging { what: String, reason: String },
    /// The cluster could not be reached as configured (kubeconfig, EKS, certificates).
    #[error("{0}")]
    Config(String),
    /// No credentials for the API (the EKS token could not be made).
    #[error("{0}")]
    Auth(String),
}

impl KubeError {
    /// The API's HTTP status, when it answered with one.
    pub fn code(&self) -> Option<u16> {
        match self {
            KubeError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// The `continue` token to ask the next page with, after `pages` pages read: refused past
/// [`MAX_PAGES`], or when the server repeats the token it was just given (it would loop).
fn next_page(pages: usize, asked: Option<&str>, token: String) -> Result<String, String> {
    if asked == Some(token.as_str()) {
        return Err(format!(
            "the API answered page {pages} with the continue token it was asked with: stopped"
        ));
    }
    if pages >= MAX_PAGES {
        return Err(format!(
            "more than {MAX_PAGES} pages of {PAGE}: narrow the selection (namespace, labels)"
        ));
    }
    Ok(token)
}

/// How a PATCH body is read: strategic merge (lists of containers merge by `name`, as
/// `kubectl set image` does) or JSON merge (RFC 7386).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    StrategicMerge,
    JsonMerge,
}

impl PatchKind {
    fn content_type(self) -> &'static str {
        match self {
            PatchKind::StrategicMerge => "application/strategic-merge-patch+json",
            PatchKind::JsonMerge => "application/merge-patch+json",
        }
    }
}

/// One cluster's API.
pub struct Kube {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
}

/// How to trust and identify to the API server.
#[derive(Default)]
pub struct Tls {
    /// PEM of the cluster's CA: then the only trusted root.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM of a client certificate and its key.
    pub identity_pem: Option<Vec<u8>>,
    /// kubeconfig's `insecure-skip-tls-verify`.
    pub insecure: bool,
}

impl Kube {
    /// A client for the API at `server` (`https://...`; `http://` only for 127.0.0.1).
    pub fn new(server: &str, tls: Tls, auth: Auth) -> Result<Kube, KubeError> {
        let base = Url::parse(server)
            .map_err(|e| KubeError::Config(format!("cluster server {server:?}: {e}")))?;
        let local = matches!(base.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        if base.scheme() != "https" && !(base.scheme() == "http" && local) {
            return Err(KubeError::Config(format!(
                "cluster server {server:?}: expected an https:// URL (plain http only on 127.0.0.1)"
            )));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(10));
        if let Some(pem) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                KubeError::Config(format!(
                    "the cluster's certificate authority data is not a PEM certificate: {e}"
                ))
            })?;
            if certs.is_empty() {
                return Err(KubeError::Config(
                    "the cluster's certificate authority data holds no PEM certificate".into(),
                ));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some(pem) = &tls.identity_pem {
            let identity = reqwest::Identity::from_pem(pem).map_err(|e| {
                KubeError::Config(format!(
                    "the client certificate and key are not PEM the TLS stack accepts: {e}"
                ))
            })?;
            builder = builder.identity(identity);
        }
        if tls.insecure {
            tracing::warn!("{server}: insecure-skip-tls-verify is set: the server is not verified");
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| KubeError::Config(format!("cluster server {server:?}: {e}")))?;
        Ok(Kube { http, base, auth })
    }

    /// The API server's URL.
    pub fn server(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` (each percent-encoded) with `query`.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    async fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<(&'static str, Vec<u8>)>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, KubeError> {
        let what = format!("{method} {}", url.path());
        let mut request = self
            .http
            .request(method, url.clone())
            .header("Accept", "application/json");
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        if let Some(token) = self.auth.token().await? {
            request = request.bearer_auth(token);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("Content-Type", content_type).body(bytes);
        }
        let response = request.send().await.map_err(|source| KubeError::Http {
            what: what.clone(),
            url: self.base.to_string(),
            source,
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let code = response.status().as_u16();
        let text = read(response, &what).await.unwrap_or_default();
        let status: Status = serde_json::from_slice(&text).unwrap_or_default();
        Err(KubeError::Api {
            what,
            code,
            reason: if status.reason.is_empty() {
                reqwest::StatusCode::from_u16(code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("")
                    .to_string()
            } else {
                status.reason
            },
            message: if status.message.is_empty() {
                String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned()
            } else {
                status.message
            },
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<(&'static str, Vec<u8>)>,
    ) -> Result<T, KubeError> {
        let what = format!("{method} {}", url.path());
        let response = self.send(method, url, body, None).await?;
        let bytes = read(response, &what).await?;
        serde_json::from_slice(&bytes).map_err(|source| KubeError::Decode { what, source })
    }

    /// GET `segments` as `T`.
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, KubeError> {
        self.json(reqwest::Method::GET, self.url(segments, &[]), None)
            .await
    }

    /// GET `segments` as `T`; `None` when the API says 404.
    pub async fn get_opt<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<Option<T>, KubeError> {
        match self.get(segments).await {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.code() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every item of the list at `segments` with `query`, page by page; and the list's
    /// `resourceVersion` (where a watch starts).
    pub async fn list<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<(Vec<T>, Option<String>), KubeError> {
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        let mut pages = 0;
        loop {
            pages += 1;
            let mut q: Vec<(&str, &str)> = query.to_vec();
            q.push(("limit", PAGE));
            if let Some(token) = &next {
                q.push(("continue", token));
            }
            let page: List<T> = self
                .json(reqwest::Method::GET, self.url(segments, &q), None)
                .await?;
            items.extend(page.items);
            match page.metadata.next.filter(|t| !t.is_empty()) {
                Some(token) => {
                    next = Some(next_page(pages, next.as_deref(), token).map_err(|reason| {
                        KubeError::Paging {
                            what: format!("listing {}", segments.join("/")),
                            reason,
                        }
                    })?)
                }
                None => return Ok((items, page.metadata.resource_version)),
            }
        }
    }

    /// DELETE `segments` (with `gracePeriodSeconds` when given); the API's answer.
    pub async fn delete(&self, segments: &[&str], grace: Option<u64>) -> Result<Value, KubeError> {
        let grace = grace.map(|g| g.to_string());
        let query: Vec<(&str, &str)> = grace
            .as_deref()
            .map(|g| vec![("gracePeriodSeconds", g)])
            .unwrap_or_default();
        self.json(reqwest::Method::DELETE, self.url(segments, &query), None)
            .await
    }

    /// PATCH `segments` with `body`; the object as patched.
    pub async fn patch<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &Value,
        kind: PatchKind,
    ) -> Result<T, KubeError> {
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        self.json(
            reqwest::Method::PATCH,
            self.url(segments, &[]),
            Some((kind.content_type(), bytes)),
        )
        .await
    }

    /// Watch the list at `segments` (`watch=true`, from `resource_version`) for at most `limit`,
    /// handing each event to `seen` until it returns true. True when it did; false when the
    /// time ran out or the server ended the stream first.
    pub async fn watch(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        resource_version: Option<&str>,
        limit: Duration,
        mut seen: impl FnMut(WatchEvent) -> bool,
    ) -> Result<bool, KubeError> {
        let seconds = limit.as_secs().max(1).to_string();
        let mut q: Vec<(&str, &str)> = query.to_vec();
        q.push(("watch", "true"));
        q.push(("timeoutSeconds", &seconds));
        if let Some(rv) = resource_version {
            q.push(("resourceVersion", rv));
        }
        let url = self.url(segments, &q);
        let what = format!("watch {}", url.path());
        let stream = async {
            let mut response = self
                .send(
                    reqwest::Method::GET,
                    url,
                    None,
                    Some(limit + Duration::from_secs(5)),
                )
                .await?;
            let mut pending: Vec<u8> = Vec::new();
            loop {
                let chunk = response.chunk().await.map_err(|source| KubeError::Http {
                    what: what.clone(),
                    url: self.base.to_string(),
                    source,
                })?;
                let Some(chunk) = chunk else { return Ok(false) };
                pending.extend_from_slice(&chunk);
                if pending.len() > MAX_BODY {
                    return Err(KubeError::TooLarge { what: what.clone() });
                }
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let event: WatchEvent =
                        serde_json::from_slice(&line).map_err(|source| KubeError::Decode {
                            what: what.clone(),
                            source,
                        })?;
                    if event.kind == "ERROR" {
                        let status: Status =
                            serde_json::from_value(event.object.clone()).unwrap_or_default();
                        return Err(KubeError::Api {
                            what: what.clone(),
                            code: status.code,
                            reason: status.reason,
                            message: status.message,
                        });
                    }
                    if seen(event) {
                        return Ok(true);
                    }
                }
            }
        };
        match tokio::time::timeout(limit, stream).await {
            Ok(r) => r,
            Err(_) => Ok(false),
        }
    }
}

/// The whole body, at most `MAX_BODY` bytes.
async fn read(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, KubeError> {
    let mut out = Vec::new();
    let url = response.url().to_string();
    while let Some(chunk) = response.chunk().await.map_err(|source| KubeError::Http {
        what: what.to_string(),
        url: url.clone(),
        source,
    })? {
        out.extend_from_slice(&chunk);
        if out.len() > MAX_BODY {
            return Err(KubeError::TooLarge {
                what: what.to_string(),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_stops_on_a_repeated_token_and_past_its_page_limit() {
        assert_eq!(next_page(1, None, "a".into()), Ok("a".into()));
        assert_eq!(next_page(2, Some("a"), "b".into()), Ok("b".into()));
        let repeated = next_page(2, Some("a"), "a".into()).unwrap_err();
        assert!(
            repeated.contains("continue token it was asked with"),
            "{repeated}"
        );
        assert_eq!(
            next_page(MAX_PAGES - 1, Some("a"), "b".into()),
            Ok("b".into())
        );
        let long = next_page(MAX_PAGES, Some("a"), "b".into()).unwrap_err();
        assert!(long.contains("more than 200 pages"), "{long}");
    }
}
