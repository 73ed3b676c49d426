//! The seed library's network blackholes, under its module and function names and with its
//! argument names: `experimentvr.dynamodb.actions.blackhole_dynamodb`,
//! `experimentvr.s3.actions.blackhole_s3`, and in `experimentvr.network.actions`
//! `blackhole_secrets_manager`, `blackhole_by_url` and `point_inactive_dns`. Each reads what to
//! blackhole (AWS's published ranges of the service in the region, a URL's host, names), then
//! runs the shared pipeline (`inject`) with its document.
//!
//! Where the seed differs and we do not follow it: the ranges are those of the call's region
//! (the seed's dynamodb and secrets-manager functions always read us-east-1's); Secrets Manager
//! has no prefixes of its own in `ip-ranges.json` (the seed's filter finds none and sends an
//! empty list), so its regional endpoint's addresses are blackholed instead, resolved on each
//! target; every function takes a `duration` (seconds), defaulting to the seed document's.

use super::inject::{
    Injection, entries, inject, is_address, is_host_name, joined, seconds, seed_selector,
};
use super::ip_ranges::{self, prefixes_of};
use crate::faults::FaultContext;
use crate::faults::context::region;
use crate::faults::ec2::fault_table::SELECTION;
use crate::faults::ssm::documents::{BLACKHOLE_ADDRESSES, POINT_INACTIVE_DNS};
use serde_json::{Map, Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{ArgKind, NativeActivity, NativeCall, Param, Registry};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

/// The seed's `BlackholeByIPAddress` default duration, for the service blackholes.
const SERVICE_DEFAULT_SECONDS: u64 = 180;
/// For the functions whose seed document never used its duration.
const DEFAULT_SECONDS: u64 = 60;

/// A service whose regional ranges a function blackholes.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub module: &'static str,
    pub func: &'static str,
    /// As `ip-ranges.json` spells it.
    pub ranges_name: &'static str,
    /// The regional endpoint (`{region}` replaced), blackholed when the document publishes no
    /// prefix of the service.
    pub endpoint: Option<&'static str>,
}

pub const SERVICES: &[Service] = &[
    Service {
        module: "experimentvr.dynamodb.actions",
        func: "blackhole_dynamodb",
        ranges_name: "DYNAMODB",
        endpoint: None,
    },
    Service {
        module: "experimentvr.s3.actions",
        func: "blackhole_s3",
        ranges_name: "S3",
        endpoint: None,
    },
    Service {
        module: "experimentvr.network.actions",
        func: "blackhole_secrets_manager",
        ranges_name: "SECRETSMANAGER",
        endpoint: Some("secretsmanager.{region}.amazonaws.com"),
    },
];

pub const NETWORK: &str = "experimentvr.network.actions";

fn duration_param() -> Param {
    Param::optional("duration").of(ArgKind::Seconds { max: 86_400 })
}

/// The seed's selection arguments and `duration`, and `more`.
fn params(more: &[Param]) -> Vec<Param> {
    let mut p = SELECTION.to_vec();
    p.push(duration_param());
    p.extend_from_slice(more);
    p
}

/// Register `f` as a fault under `module.func`.
pub fn fault<F, Fut>(
    registry: &mut Registry,
    ctx: &Arc<FaultContext>,
    module: &str,
    func: &str,
    params: Vec<Param>,
    f: F,
) where
    F: Fn(Arc<FaultContext>, NativeCall) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = Result<Value, ActivityError>> + Send + 'static,
{
    let c = ctx.clone();
    registry.register(
        module,
        func,
        NativeActivity::new(params, move |call| f(c.clone(), call)).fault(),
    );
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    for service in SERVICES {
        let s = *service;
        let c = ctx.clone();
        registry.register(
            s.module,
            s.func,
            NativeActivity::new(params(&[]), move |call| {
                let ctx = c.clone();
                async move { blackhole_service(&ctx, &s, call).await }
            })
            .fault(),
        );
    }
    fault(
        registry,
        ctx,
        NETWORK,
        "blackhole_by_url",
        params(&[Param::optional("urls").of(ArgKind::StringOrList)]),
        |ctx, call| async move { blackhole_by_url(&ctx, call).await },
    );
    fault(
        registry,
        ctx,
        NETWORK,
        "point_inactive_dns",
        params(&[
            Param::optional("names").of(ArgKind::StringOrList),
            Param::optional("address").of(ArgKind::Scalar),
        ]),
        |ctx, call| async move { point_inactive_dns(&ctx, call).await },
    );
}

fn failed(e: String) -> ActivityError {
    ActivityError::Failed(e)
}

/// The region whose ranges apply: the call's (`region`, `configuration.aws_region`), else
/// the SDK's, else the seed's default `us-east-1`.
async fn ranges_region(ctx: &FaultContext, call: &NativeCall) -> String {
    match region(call) {
        Some(r) => r,
        None => ctx
            .sdk()
            .await
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into()),
    }
}

/// What a service blackhole drops: the service's prefixes in the region, else its endpoint.
/// Pure over the fetched prefixes.
pub fn service_addresses(
    service: &Service,
    all: &[ip_ranges::Prefix],
    region: &str,
    url: &str,
) -> Result<(Vec<String>, Value), String> {
    let prefixes = prefixes_of(all, service.ranges_name, region);
    if !prefixes.is_empty() {
        let source = json!({"ip_ranges": url, "service": service.ranges_name, "region": region});
        return Ok((prefixes, source));
    }
    match service.endpoint {
        Some(endpoint) => {
            let host = endpoint.replace("{region}", region);
            if !is_host_name(&host) {
                return Err(format!("region {region:?}: not a region name"));
            }
            let source = json!({"endpoint": host, "region": region, "why": format!(
                "{url} publishes no {} prefix in {region}: the regional endpoint's addresses are blackholed, resolved on each target",
                service.ranges_name)});
            Ok((vec![host], source))
        }
        None => Err(format!(
            "{url} lists no {} prefix in region {region}: nothing to blackhole (is the region right?)",
            service.ranges_name
        )),
    }
}

async fn blackhole_service(
    ctx: &FaultContext,
    service: &Service,
    call: NativeCall,
) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let seconds = seconds(args, "duration", SERVICE_DEFAULT_SECONDS).map_err(failed)?;
    let selector = seed_selector(args)?;
    let region = ranges_region(ctx, &call).await;
    let url = ip_ranges::url();
    let all = ctx
        .ip_ranges()
        .prefixes(&url)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let (addresses, source) = service_addresses(service, &all, &region, &url).map_err(failed)?;
    let injection = addresses_injection(seconds, &addresses, source)?;
    inject(ctx, &call, selector, injection).await
}

/// `BlackholeAddresses` for `addresses`, with what they came from.
pub fn addresses_injection(
    seconds: u64,
    addresses: &[String],
    source: Value,
) -> Result<Injection, ActivityError> {
    let list = joined("addresses", addresses).map_err(failed)?;
    let mut detail = Map::new();
    detail.insert("addresses".into(), json!(addresses));
    detail.insert("source".into(), source);
    Ok(Injection {
        document: BLACKHOLE_ADDRESSES,
        parameters: BTreeMap::from([
            ("duration".to_string(), seconds.to_string()),
            ("addresses".to_string(), list),
        ]),
        seconds,
        detail,
    })
}

/// The host of a URL (`https://h:443/p`), of `h:port/path`, or a bare host or address. Pure.
pub fn url_host(entry: &str) -> Result<String, String> {
    let with_scheme = if entry.contains("://") {
        entry.to_string()
    } else {
        format!("http://{entry}")
    };
    let parsed = url::Url::parse(&with_scheme)
        .map_err(|e| format!("urls: {entry:?} is not a URL or host ({e})"))?;
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(format!("urls: {entry:?} names no host")),
    };
    if is_host_name(&host) || is_address(&host) {
        Ok(host)
    } else {
        Err(format!(
            "urls: {entry:?}: host {host:?} is not a host name or address"
        ))
    }
}

async fn blackhole_by_url(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let seconds = seconds(args, "duration", DEFAULT_SECONDS).map_err(failed)?;
    let urls = entries(args, "urls").map_err(failed)?;
    if urls.is_empty() {
        return Err(failed(
            "urls is required: the URLs or hosts to blackhole, separated by spaces".into(),
        ));
    }
    let mut hosts: Vec<String> = urls
        .iter()
        .map(|u| url_host(u))
        .collect::<Result<_, _>>()
        .map_err(failed)?;
    hosts.dedup();
    let selector = seed_selector(args)?;
    let injection = addresses_injection(seconds, &hosts, json!({"urls": urls}))?;
    inject(ctx, &call, selector, injection).await
}

async fn point_inactive_dns(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let seconds = seconds(args, "duration", DEFAULT_SECONDS).map_err(failed)?;
    let names = entries(args, "names").map_err(failed)?;
    if names.is_empty() {
        return Err(failed(
            "names is required: the host names to point at an inactive address (the seed's \
             BlackholeDNS document is not published, so there is no default)"
                .into(),
        ));
    }
    if names.len() > 64 {
        return Err(failed(format!("names: {} names, at most 64", names.len())));
    }
    if let Some(bad) = names.iter().find(|n| !is_host_name(n) || n.ends_with('.')) {
        return Err(failed(format!("names: {bad:?} is not a host name")));
    }
    let address = match args.get("address") {
        None | Some(Value::Null) => "192.0.2.1".to_string(),
        Some(Value::String(a)) if is_address(a) && !a.contains('/') => a.clone(),
        Some(v) => {
            return Err(failed(format!(
                "address: expected an IPv4 or IPv6 address, got {v}"
            )));
        }
    };
    let selector = seed_selector(args)?;
    let mut detail = Map::new();
    detail.insert("names".into(), json!(names));
    detail.insert("address".into(), json!(address));
    let injection = Injection {
        document: POINT_INACTIVE_DNS,
        parameters: BTreeMap::from([
            ("duration".to_string(), seconds.to_string()),
            ("names".to_string(), names.join(",")),
            ("address".to_string(), address),
        ]),
        seconds,
        detail,
    };
    inject(ctx, &call, selector, injection).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::network::ip_ranges::parse;

    #[test]
    fn a_url_s_host_is_what_is_blackholed() {
        for (entry, host) in [
            ("https://api.example.com/v1?x=1", "api.example.com"),
            ("api.example.com:8443/path", "api.example.com"),
            ("example.org", "example.org"),
            ("http://10.0.0.5:80/", "10.0.0.5"),
            ("https://[fd00::1]:443/", "fd00::1"),
        ] {
            assert_eq!(url_host(entry).unwrap(), host, "{entry}");
        }
        for bad in ["https://", "http://a b/", "ftp://"] {
            assert!(url_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_manager_falls_back_to_its_endpoint_and_the_others_refuse_without_prefixes() {
        let all = parse(
            "u",
            br#"{"prefixes": [{"ip_prefix": "52.94.0.0/22", "region": "us-west-2", "service": "DYNAMODB"}]}"#,
        )
        .unwrap();
        let (dynamodb, s3, secrets) = (&SERVICES[0], &SERVICES[1], &SERVICES[2]);
        let (a, source) = service_addresses(dynamodb, &all, "us-west-2", "u").unwrap();
        assert_eq!(a, ["52.94.0.0/22"]);
        assert_eq!(source["service"], "DYNAMODB");
        let e = service_addresses(s3, &all, "us-west-2", "u").unwrap_err();
        assert!(e.contains("lists no S3 prefix in region us-west-2"), "{e}");
        let (a, source) = service_addresses(secrets, &all, "us-west-2", "u").unwrap();
        assert_eq!(a, ["secretsmanager.us-west-2.amazonaws.com"]);
        assert!(
            source["why"]
                .as_str()
                .unwrap()
                .contains("no SECRETSMANAGER prefix")
        );
    }
}
