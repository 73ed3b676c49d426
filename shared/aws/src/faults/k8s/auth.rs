//! How the client proves who it is to the API server: a fixed bearer token (kubeconfig), or
//! the EKS token, made the standard way (`aws eks get-token`, aws-iam-authenticator): a
//! presigned STS `GetCallerIdentity` URL, signed with the header `x-k8s-aws-id: <cluster>`
//! and a 60 s expiry, base64url without padding, after `k8s-aws-v1.`. EKS checks it by
//! calling that URL; it is made again before it expires, so a long action never sends a stale
//! one.

use super::client::KubeError;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use base64::Engine;
use std::time::{Duration, Instant, SystemTime};

/// What every EKS token starts with.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The header that binds the token to one cluster.
pub const CLUSTER_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL is valid (what `aws eks get-token` signs).
pub const TOKEN_EXPIRY: Duration = Duration::from_secs(60);
/// A token older than this is made again before use (well inside `TOKEN_EXPIRY`).
pub const REFRESH_AFTER: Duration = Duration::from_secs(40);

/// The credentials of API calls.
pub enum Auth {
    /// None beyond TLS (a client certificate, or a test server).
    None,
    /// A fixed bearer token (kubeconfig `token`/`tokenFile`).
    Bearer(String),
    /// The EKS token for a cluster, remade before it expires.
    Eks(EksToken),
}

impl Auth {
    /// The bearer token to send, if any.
    pub async fn token(&self) -> Result<Option<String>, KubeError> {
        match self {
            Auth::None => Ok(None),
            Auth::Bearer(t) => Ok(Some(t.clone())),
            Auth::Eks(e) => e.current().await.map(Some),
        }
    }
}

/// The EKS token of one cluster, with the one made last.
pub struct EksToken {
    cluster: String,
    region: String,
    credentials: SharedCredentialsProvider,
    made: tokio::sync::Mutex<Option<(String, Instant)>>,
}

impl EksToken {
    pub fn new(cluster: &str, region: &str, credentials: SharedCredentialsProvider) -> EksToken {
        EksToken {
            cluster: cluster.to_string(),
            region: region.to_string(),
            credentials,
            made: tokio::sync::Mutex::new(None),
        }
    }

    /// A token that is younger than `REFRESH_AFTER`.
    pub async fn current(&self) -> Result<String, KubeError> {
        let mut made = self.made.lock().await;
        if let Some((token, at)) = made.as_ref()
            && at.elapsed() < REFRESH_AFTER
        {
            return Ok(token.clone());
        }
        let credentials = self.credentials.provide_credentials().await.map_err(|e| {
            KubeError::Auth(format!(
                "the EKS token for cluster {}: no AWS credentials: {e}",
                self.cluster
            ))
        })?;
        let token = token(&self.cluster, &self.region, &credentials, SystemTime::now())
            .map_err(KubeError::Auth)?;
        *made = Some((token.clone(), Instant::now()));
        Ok(token)
    }
}

/// The STS URL a token presigns.
pub fn sts_url(region: &str) -> String {
    format!("https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15")
}

/// The presigned `GetCallerIdentity` URL for `cluster`, signed at `now`. Pure.
pub fn presigned_url(
    cluster: &str,
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<String, String> {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    let url = sts_url(region);
    let host = format!("sts.{region}.amazonaws.com");
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_EXPIRY);
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing the EKS token: {e}"))?
        .into();
    let headers = [("host", host.as_str()), (CLUSTER_HEADER, cluster)];
    let request = SignableRequest::new(
        "GET",
        url.as_str(),
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| format!("signing the EKS token: {e}"))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| format!("signing the EKS token: {e}"))?
        .into_parts();
    let mut signed = url::Url::parse(&url).map_err(|e| format!("signing the EKS token: {e}"))?;
    {
        let mut query = signed.query_pairs_mut();
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
    }
    Ok(signed.to_string())
}

/// The EKS bearer token for `cluster`: `k8s-aws-v1.` + base64url (no padding) of the
/// presigned URL. Pure.
pub fn token(
    cluster: &str,
    region: &str,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<String, String> {
    let url = presigned_url(cluster, region, credentials, now)?;
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url)
    ))
}

/// The presigned URL inside an EKS token (what the API server calls), or why it is not one.
pub fn token_url(token: &str) -> Result<String, String> {
    let body = token
        .strip_prefix(TOKEN_PREFIX)
        .ok_or_else(|| format!("an EKS token starts with {TOKEN_PREFIX}"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|e| format!("an EKS token is base64url without padding: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("an EKS token holds a URL: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> Vec<(String, String)> {
        url::Url::parse(url)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn the_eks_token_is_a_presigned_get_caller_identity_bound_to_the_cluster() {
        let creds = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let t = token("shop", "eu-west-1", &creds, at).unwrap();
        assert!(t.starts_with(TOKEN_PREFIX), "{t}");
        assert!(
            !t.contains('=') && !t.contains('+') && !t.contains('/'),
            "{t}"
        );
        let url = token_url(&t).unwrap();
        assert!(
            url.starts_with(
                "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"
            ),
            "{url}"
        );
        let q = query(&url);
        let get = |k: &str| {
            q.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("{k} in {url}"))
        };
        assert_eq!(get("X-Amz-Expires"), "60");
        assert_eq!(get("X-Amz-Algorithm"), "AWS4-HMAC-SHA256");
        assert_eq!(get("X-Amz-Date"), "20231114T221320Z");
        assert_eq!(
            get("X-Amz-Credential"),
            "AKIDEXAMPLE/20231114/eu-west-1/sts/aws4_request"
        );
        assert_eq!(get("X-Amz-SignedHeaders"), "host;x-k8s-aws-id");
        assert_eq!(get("X-Amz-Signature").len(), 64);
        // the same inputs sign the same; another cluster signs differently
        assert_eq!(token("shop", "eu-west-1", &creds, at).unwrap(), t);
        assert_ne!(token("other", "eu-west-1", &creds, at).unwrap(), t);
        // a session token goes along
        let session = Credentials::new("AKID", "secret", Some("sess".into()), None, "test");
        let q = query(&token_url(&token("shop", "us-east-1", &session, at).unwrap()).unwrap());
        assert!(
            q.contains(&("X-Amz-Security-Token".into(), "sess".into())),
            "{q:?}"
        );
    }

    #[test]
    fn what_is_not_an_eks_token_is_named() {
        assert!(token_url("Bearer x").unwrap_err().contains("k8s-aws-v1."));
        assert!(
            token_url("k8s-aws-v1.***")
                .unwrap_err()
                .contains("base64url")
        );
    }
}
