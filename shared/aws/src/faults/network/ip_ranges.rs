//! AWS's published IP ranges (the `ip-ranges.json` document), the addresses the service
//! blackholes drop: fetched at run time from `BROKER_IP_RANGES_URL` (default
//! <https://ip-ranges.amazonaws.com/ip-ranges.json>; the tests serve a small copy on 127.0.0.1),
//! kept in memory per process for an hour (`IpRanges`, held by the `FaultContext`), and filtered
//! by service and region (pure: `prefixes_of`).

use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the document is fetched, unless `BROKER_IP_RANGES_URL` says otherwise.
pub const DEFAULT_URL: &str = "https://ip-ranges.amazonaws.com/ip-ranges.json";
/// The variable naming another URL (a mirror, or a test server).
pub const URL_VARIABLE: &str = "BROKER_IP_RANGES_URL";
/// How long a fetched document is used before it is fetched again (AWS updates it a few times
/// a week; a run of many faults fetches it once).
pub const TTL: Duration = Duration::from_secs(3600);
/// The largest document accepted (today's is about 2 MB).
const MAX_BYTES: usize = 32 * 1024 * 1024;

/// Why the ranges could not be had.
#[derive(Debug, thiserror::Error)]
pub enum RangesError {
    #[error("cannot fetch the AWS IP ranges from {url}: {source}")]
    Fetch {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot fetch the AWS IP ranges from {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("the AWS IP ranges at {url} are larger than {MAX_BYTES} bytes")]
    TooLarge { url: String },
    #[error(
        "the AWS IP ranges at {url} are not the ip-ranges.json shape (\"prefixes\": [{{\"ip_prefix\", \"region\", \"service\"}}]): {source}"
    )]
    Shape {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

/// One IPv4 prefix of the document.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Prefix {
    pub ip_prefix: String,
    pub region: String,
    pub service: String,
}

#[derive(Debug, Deserialize)]
struct Document {
    prefixes: Vec<Prefix>,
}

/// A fetched document's prefixes and when they were fetched.
type Fetched = (Instant, Arc<Vec<Prefix>>);

/// The documents fetched by this process, by URL.
#[derive(Debug, Default)]
pub struct IpRanges {
    cache: tokio::sync::Mutex<HashMap<String, Fetched>>,
}

/// The URL the ranges come from: `BROKER_IP_RANGES_URL`, else AWS's.
pub fn url() -> String {
    std::env::var(URL_VARIABLE)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

impl IpRanges {
    /// The prefixes of the document at `url`: the copy fetched less than `TTL` ago, else a
    /// fresh one (one fetch at a time: concurrent faults wait for it rather than fetch twice).
    pub async fn prefixes(&self, url: &str) -> Result<Arc<Vec<Prefix>>, RangesError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, prefixes)) = cache.get(url)
            && at.elapsed() < TTL
        {
            return Ok(prefixes.clone());
        }
        let prefixes = Arc::new(fetch(url).await?);
        cache.insert(url.to_string(), (Instant::now(), prefixes.clone()));
        Ok(prefixes)
    }
}

async fn fetch(url: &str) -> Result<Vec<Prefix>, RangesError> {
    let fetch_error = |source| RangesError::Fetch {
        url: url.to_string(),
        source,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(fetch_error)?;
    let mut response = client.get(url).send().await.map_err(fetch_error)?;
    if !response.status().is_success() {
        return Err(RangesError::Status {
            url: url.to_string(),
            status: response.status().as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        if body.len() + chunk.len() > MAX_BYTES {
            return Err(RangesError::TooLarge {
                url: url.to_string(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    parse(url, &body)
}

/// The document's IPv4 prefixes.
pub fn parse(url: &str, body: &[u8]) -> Result<Vec<Prefix>, RangesError> {
    serde_json::from_slice::<Document>(body)
        .map(|d| d.prefixes)
        .map_err(|source| RangesError::Shape {
            url: url.to_string(),
            source,
        })
}

/// The prefixes of `service` (as the document spells it, any case) in `region`, sorted and
/// without repeats. Pure.
pub fn prefixes_of(all: &[Prefix], service: &str, region: &str) -> Vec<String> {
    let mut out: Vec<String> = all
        .iter()
        .filter(|p| p.service.eq_ignore_ascii_case(service) && p.region == region)
        .map(|p| p.ip_prefix.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"syncToken": "1", "createDate": "2026-01-01-00-00-00",
      "prefixes": [
        {"ip_prefix": "52.94.0.0/22", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"},
        {"ip_prefix": "52.94.0.0/22", "region": "us-east-1", "service": "DYNAMODB", "network_border_group": "us-east-1"},
        {"ip_prefix": "3.218.180.0/22", "region": "us-east-1", "service": "DYNAMODB", "network_border_group": "us-east-1"},
        {"ip_prefix": "3.218.180.0/22", "region": "us-east-1", "service": "DYNAMODB", "network_border_group": "us-east-1"},
        {"ip_prefix": "35.71.64.0/22", "region": "eu-west-1", "service": "DYNAMODB", "network_border_group": "eu-west-1"},
        {"ip_prefix": "52.216.0.0/15", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"}],
      "ipv6_prefixes": [{"ipv6_prefix": "2600:1f18::/33", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"}]}"#;

    #[test]
    fn the_service_s_prefixes_in_the_region_are_chosen() {
        let all = parse("u", SAMPLE.as_bytes()).unwrap();
        assert_eq!(
            prefixes_of(&all, "dynamodb", "us-east-1"),
            ["3.218.180.0/22", "52.94.0.0/22"],
            "any case, sorted, once each; the AMAZON duplicate and eu-west-1 left out"
        );
        assert_eq!(prefixes_of(&all, "S3", "us-east-1"), ["52.216.0.0/15"]);
        assert!(prefixes_of(&all, "S3", "eu-west-1").is_empty());
        assert!(prefixes_of(&all, "secretsmanager", "us-east-1").is_empty());
    }

    /// A server on 127.0.0.1 answering every request with `status` and `body`; its URL and
    /// how many requests it has had.
    fn serve(
        status: &'static str,
        body: &'static str,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ip-ranges.json", listener.local_addr().unwrap());
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut head = [0u8; 4096];
                let _ = stream.read(&mut head);
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn a_fetched_document_is_kept_and_a_failed_fetch_is_named() {
        let (url, hits) = serve("200 OK", SAMPLE);
        let ranges = IpRanges::default();
        let first = ranges.prefixes(&url).await.unwrap();
        let again = ranges.prefixes(&url).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(prefixes_of(&first, "S3", "us-east-1"), ["52.216.0.0/15"]);
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "fetched once"
        );

        let (url, _) = serve("503 Service Unavailable", "busy");
        let e = ranges.prefixes(&url).await.unwrap_err().to_string();
        assert_eq!(
            e,
            format!("cannot fetch the AWS IP ranges from {url}: HTTP status 503")
        );
        let (url, _) = serve("200 OK", "<html>");
        let e = ranges.prefixes(&url).await.unwrap_err().to_string();
        assert!(e.contains("not the ip-ranges.json shape"), "{e}");
    }

    #[test]
    fn a_document_of_another_shape_is_named() {
        let e = parse("http://x/r.json", br#"{"prefixes": [{"ip": 1}]}"#).unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("http://x/r.json") && text.contains("not the ip-ranges.json shape"),
            "{text}"
        );
    }
}
