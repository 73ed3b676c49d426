//! `stress_eks_api(api_stress_duration, intensity, region="us-east-1")`: load on the EKS
//! control plane's AWS API, as the seed (`DescribeCluster` calls on the cluster, the first of
//! `ListClusters` unless `cluster_name` names it), but bounded: `intensity` is requests per
//! second, capped at `MAX_RATE`; `api_stress_duration` is minutes (or `duration_seconds`),
//! refused past `MAX_DURATION`; the cluster must carry the opt-in tag; it is locked while
//! stressed. The seed ran `intensity` threads calling as fast as they could, with no bound.

use crate::faults::FaultContext;
use crate::faults::target_locks;
use serde_json::{Value, json};
use shared::providers::registry::{NativeActivity, NativeCall, Param, Registry};
use shared::providers::{ActivityError, Refusal};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests per second, at most.
pub const MAX_RATE: u64 = 20;
/// How long, at most.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 60);

fn fail(e: impl std::fmt::Display) -> ActivityError {
    ActivityError::Failed(e.to_string())
}

/// The duration and rate the arguments ask for, and the rate used (capped). Pure.
pub fn bounds(
    args: &serde_json::Map<String, Value>,
) -> Result<(Duration, u64, u64), ActivityError> {
    use super::args::whole;
    let duration = match args.get("duration_seconds") {
        Some(v) if !v.is_null() => {
            Duration::from_secs(whole(args, "duration_seconds", 0).map_err(fail)?)
        }
        _ => Duration::from_secs(
            whole(args, "api_stress_duration", 0)
                .map_err(fail)?
                .saturating_mul(60),
        ),
    };
    if duration.is_zero() {
        return Err(fail(
            "api_stress_duration is missing: expected minutes (a whole number)",
        ));
    }
    if duration > MAX_DURATION {
        return Err(ActivityError::Refused(Refusal::new(
            "max_duration",
            format!(
                "stress_eks_api for {} s is over the cap of {} s",
                duration.as_secs(),
                MAX_DURATION.as_secs()
            ),
        )));
    }
    let asked = whole(args, "intensity", 1).map_err(fail)?.max(1);
    Ok((duration, asked, asked.min(MAX_RATE)))
}

async fn stress(ctx: &FaultContext, call: NativeCall) -> Result<Value, ActivityError> {
    let (duration, asked, rate) = bounds(&call.arguments)?;
    let region = crate::faults::context::region(&call).unwrap_or_else(|| "us-east-1".into());
    let conf = aws_sdk_eks::config::Builder::from(ctx.sdk().await)
        .region(aws_config::Region::new(region.clone()))
        .build();
    let eks = aws_sdk_eks::Client::from_conf(conf);
    let cluster = match super::args::text(&call.arguments, "cluster_name").map_err(fail)? {
        Some(c) => c,
        None => eks
            .list_clusters()
            .send()
            .await
            .map_err(|e| {
                fail(crate::sdk::explain(
                    "ListClusters",
                    &region,
                    "the region and the AWS credentials",
                    &e,
                ))
            })?
            .clusters()
            .first()
            .cloned()
            .ok_or_else(|| fail(format!("no EKS cluster in {region} to stress")))?,
    };
    let described = eks
        .describe_cluster()
        .name(&cluster)
        .send()
        .await
        .map_err(|e| {
            fail(crate::sdk::explain(
                "DescribeCluster",
                &cluster,
                "the cluster name and the AWS credentials",
                &e,
            ))
        })?;
    if let Some((k, v)) = &ctx.settings().opt_in {
        let tags = described.cluster().and_then(|c| c.tags());
        if tags.and_then(|t| t.get(k)) != Some(v) {
            return Err(ActivityError::Refused(
                Refusal::new(
                    "opt_in",
                    format!("EKS cluster {cluster} does not carry the opt-in tag {k}={v}"),
                )
                .on(cluster.clone()),
            ));
        }
    }
    let mut out = json!({
        "action": "stress_eks_api",
        "cluster": cluster,
        "region": region,
        "duration_seconds": duration.as_secs(),
        "intensity": asked,
        "requests_per_second": rate,
        "dry_run": call.plan_only,
    });
    call.recorder
        .record(
            json!({"kind": "targets", "activity": call.activity, "at": shared::clock::now_iso(),
                       "chosen": [format!("eks:{cluster}")], "requests_per_second": rate,
                       "duration_seconds": duration.as_secs(), "dry_run": call.plan_only}),
        )
        .await
        .map_err(|e| {
            fail(format!(
                "the target could not be put on record, so nothing was done: {e}"
            ))
        })?;
    if call.plan_only {
        return Ok(out);
    }
    let held = target_locks::lock(
        ctx,
        &call,
        &[format!("eks:{cluster}")],
        duration + Duration::from_secs(60),
    )
    .await?;
    let (mut sent, mut ok, mut errors, mut throttled) = (0u64, 0u64, 0u64, 0u64);
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let end = Instant::now() + duration;
    // each call ends as OK, THROTTLED or an error
    const OK: u8 = 0;
    const THROTTLED: u8 = 1;
    let mut tally = |r: Result<u8, tokio::task::JoinError>| match r {
        Ok(OK) => ok += 1,
        Ok(THROTTLED) => throttled += 1,
        _ => errors += 1,
    };
    while Instant::now() < end {
        tick.tick().await;
        // never more in flight than one second's worth: a slow API does not pile calls up
        if tasks.len() as u64 >= rate {
            if let Some(r) = tasks.join_next().await {
                tally(r);
            }
            continue;
        }
        let (eks, cluster) = (eks.clone(), cluster.clone());
        sent += 1;
        tasks.spawn(async move {
            match eks.describe_cluster().name(cluster).send().await {
                Ok(_) => OK,
                Err(e) => {
                    let code = e.as_service_error().and_then(|s| {
                        use aws_sdk_eks::error::ProvideErrorMetadata;
                        s.code().map(str::to_string)
                    });
                    if code
                        .as_deref()
                        .is_some_and(|c| c.contains("Throttl") || c.contains("TooManyRequests"))
                    {
                        THROTTLED
                    } else {
                        2
                    }
                }
            }
        });
        while let Some(r) = tasks.try_join_next() {
            tally(r);
        }
    }
    while let Some(r) = tasks.join_next().await {
        tally(r);
    }
    held.release().await;
    out["requests"] = json!(sent);
    out["succeeded"] = json!(ok);
    out["throttled"] = json!(throttled);
    out["errors"] = json!(errors);
    Ok(out)
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let c = ctx.clone();
    registry.register(
        super::actions::MODULE,
        "stress_eks_api",
        NativeActivity::new(
            vec![
                Param::optional("api_stress_duration"),
                Param::optional("intensity"),
                Param::optional("region"),
                Param::optional("cluster_name"),
                Param::optional("duration_seconds"),
            ],
            move |call| {
                let ctx = c.clone();
                async move { stress(&ctx, call).await }
            },
        )
        .fault(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_stress_is_bounded_in_rate_and_duration() {
        let (d, asked, rate) =
            bounds(&args(json!({"api_stress_duration": "2", "intensity": 500}))).unwrap();
        assert_eq!((d.as_secs(), asked, rate), (120, 500, MAX_RATE));
        let (d, _, rate) = bounds(&args(json!({"duration_seconds": 3, "intensity": "4"}))).unwrap();
        assert_eq!((d.as_secs(), rate), (3, 4));
        match bounds(&args(json!({"api_stress_duration": 31}))) {
            Err(ActivityError::Refused(r)) => assert_eq!(r.rule, "max_duration"),
            other => panic!("{other:?}"),
        }
        assert!(
            bounds(&args(json!({})))
                .unwrap_err()
                .to_string()
                .contains("api_stress_duration is missing")
        );
    }
}
