//! CloudWatch metrics: `chaosaws.cloudwatch.probes.get_metric_statistics` and
//! `get_metric_data`, natively, with chaosaws's argument names, defaults and outputs, so an
//! experiment can read the metrics a fault should move (latency, errors, CPU...).
//!
//! - `get_metric_statistics(namespace, metric_name, dimension_name, dimension_value,
//!   dimensions, duration=60, offset=0, statistic, extended_statistic, unit)`: one
//!   `GetMetricStatistics` over `[now - offset - duration, now - offset]` with a period of
//!   `duration`; the output is the first datapoint's `statistic` (or `extended_statistic`, e.g.
//!   `p99`) as a number, `0` when there is no datapoint (as chaosaws).
//! - `get_metric_data(namespace, metric_name, dimension_name, dimension_value, dimensions,
//!   statistic, duration=300, period=60, offset=0, unit)`: one `GetMetricData` query (`m1`,
//!   labelled with the metric name) over `[now - duration, now - offset]`, every page read; the
//!   output is the values folded by `statistic` (`Sum` → sum, `Minimum` → min, `Maximum` →
//!   max, anything else → mean), rounded to 2 decimals, `0` when there are none (as chaosaws).
//!
//! Dimensions: `dimensions` (a list of `{Name, Value}`) or `dimension_name` with
//! `dimension_value`; neither is a failed probe, as in chaosaws. The region is
//! `configuration.aws_region`, else the standard chain (chaosaws has no `region` argument).
//! Differences: chaosaws needs `statistic` or `extended_statistic` only at run time; here a
//! `statistic` outside CloudWatch's five is a located problem at validation.

use super::super::FaultContext;
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{
    Dimension, Metric, MetricDataQuery, MetricStat, StandardUnit, Statistic,
};
use serde_json::{Map, Value, json};
use shared::providers::ActivityError;
use shared::providers::registry::{ArgKind, NativeActivity, NativeCall, Param, Registry};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const CHAOSAWS: &str = "chaosaws.cloudwatch.probes";

/// The statistics `GetMetricStatistics` computes.
pub const STATISTICS: [&str; 5] = ["SampleCount", "Average", "Sum", "Minimum", "Maximum"];

/// The longest window read, seconds (CloudWatch keeps 15 months; 455 days).
const MAX_SECONDS: u64 = 455 * 86_400;

const STATISTIC: ArgKind = ArgKind::Parsed {
    expected: "one of SampleCount, Average, Sum, Minimum, Maximum",
    parse: |s| {
        if STATISTICS.contains(&s) {
            Ok(())
        } else {
            Err(format!("is {s:?}"))
        }
    },
};

const DIMENSIONS: ArgKind = ArgKind::Checked {
    expected: "a list of {Name: ..., Value: ...} mappings",
    check: |v| dimension_list(v).map(drop),
};

const SECONDS: ArgKind = ArgKind::Seconds { max: MAX_SECONDS };

fn common() -> Vec<Param> {
    vec![
        Param::required("namespace").of(ArgKind::Scalar),
        Param::required("metric_name").of(ArgKind::Scalar),
        Param::optional("dimension_name").of(ArgKind::Scalar),
        Param::optional("dimension_value").of(ArgKind::Scalar),
        Param::optional("dimensions").of(DIMENSIONS),
        Param::optional("duration").of(SECONDS),
        Param::optional("offset").of(SECONDS),
        Param::optional("unit").of(ArgKind::Scalar),
    ]
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let mut params = common();
    params.push(Param::optional("statistic").of(STATISTIC));
    params.push(Param::optional("extended_statistic").of(ArgKind::Scalar));
    let c = ctx.clone();
    registry.register(
        CHAOSAWS,
        "get_metric_statistics",
        NativeActivity::new(params, move |call| {
            let ctx = c.clone();
            async move { get_metric_statistics(&ctx, &call).await }
        }),
    );
    let mut params = common();
    params.push(Param::optional("statistic").of(ArgKind::Scalar));
    params.push(Param::optional("period").of(SECONDS));
    let c = ctx.clone();
    registry.register(
        CHAOSAWS,
        "get_metric_data",
        NativeActivity::new(params, move |call| {
            let ctx = c.clone();
            async move { get_metric_data(&ctx, &call).await }
        }),
    );
}

fn failed(message: impl Into<String>) -> ActivityError {
    ActivityError::Failed(message.into())
}

/// A text argument (a number is written out), or `None` when absent or null.
fn text(args: &Map<String, Value>, name: &str) -> Option<String> {
    match args.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.into()),
        _ => None,
    }
}

fn seconds(args: &Map<String, Value>, name: &str, default: u64) -> Result<u64, ActivityError> {
    match args.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => {
            let n = match v {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            n.filter(|n| *n <= MAX_SECONDS).ok_or_else(|| {
                failed(format!(
                    "{name} is {v}: expected a whole number of seconds from 0 to {MAX_SECONDS}"
                ))
            })
        }
    }
}

/// `[{Name, Value}, ...]` → dimensions.
fn dimension_list(value: &Value) -> Result<Vec<Dimension>, String> {
    let Value::Array(items) = value else {
        return Err(format!("is {value}, not a list"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = |key: &str| item.get(key).and_then(Value::as_str);
            match (field("Name"), field("Value")) {
                (Some(name), Some(value)) => {
                    Ok(Dimension::builder().name(name).value(value).build())
                }
                _ => Err(format!(
                    "item {i} is {item}, not {{Name: ..., Value: ...}} with text values"
                )),
            }
        })
        .collect()
}

/// The dimensions chaosaws would send: `dimensions` when given and not empty, else the one
/// `dimension_name`/`dimension_value` pair; neither is an error.
fn dimensions(args: &Map<String, Value>) -> Result<Vec<Dimension>, ActivityError> {
    let listed = args.get("dimensions").filter(|v| !v.is_null());
    let (name, value) = (text(args, "dimension_name"), text(args, "dimension_value"));
    match listed {
        Some(list) if list.as_array().is_some_and(|a| !a.is_empty()) => {
            dimension_list(list).map_err(|e| failed(format!("dimensions {e}")))
        }
        _ if name.is_none() && value.is_none() && listed.is_none() => {
            Err(failed("You must supply argument for dimensions"))
        }
        _ => match (name, value) {
            (Some(n), Some(v)) => Ok(vec![Dimension::builder().name(n).value(v).build()]),
            // chaosaws sends no dimension when one half of the pair is missing
            _ => Ok(Vec::new()),
        },
    }
}

fn required(args: &Map<String, Value>, name: &str) -> Result<String, ActivityError> {
    text(args, name)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| failed(format!("{name} must be a non-empty string")))
}

fn period(secs: u64) -> Result<i32, ActivityError> {
    i32::try_from(secs).ok().filter(|p| *p > 0).ok_or_else(|| {
        failed(format!(
            "a period of {secs} s: CloudWatch needs at least 1 s"
        ))
    })
}

fn at(t: SystemTime) -> DateTime {
    DateTime::from(t)
}

async fn get_metric_statistics(
    ctx: &FaultContext,
    call: &NativeCall,
) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let (namespace, metric) = (required(args, "namespace")?, required(args, "metric_name")?);
    let statistic = text(args, "statistic").filter(|s| !s.is_empty());
    let extended = text(args, "extended_statistic").filter(|s| !s.is_empty());
    if statistic.is_none() && extended.is_none() {
        return Err(failed(
            "You must supply argument for statistic or extended_statistic",
        ));
    }
    let dims = dimensions(args)?;
    let duration = seconds(args, "duration", 60)?;
    let offset = seconds(args, "offset", 0)?;
    let end = SystemTime::now() - Duration::from_secs(offset);
    let start = end - Duration::from_secs(duration);
    let mut request = ctx
        .cloudwatch(call)
        .await
        .get_metric_statistics()
        .namespace(&namespace)
        .metric_name(&metric)
        .set_dimensions(Some(dims))
        .start_time(at(start))
        .end_time(at(end))
        .period(period(duration)?);
    if let Some(s) = &statistic {
        request = request.statistics(Statistic::from(s.as_str()));
    }
    if let Some(e) = &extended {
        request = request.extended_statistics(e);
    }
    if let Some(u) = text(args, "unit").filter(|s| !s.is_empty()) {
        request = request.unit(StandardUnit::from(u.as_str()));
    }
    let response = request.send().await.map_err(|e| {
        failed(crate::sdk::explain(
            "GetMetricStatistics",
            "CloudWatch",
            "the namespace, metric, dimensions, the region and the AWS credentials",
            &e,
        ))
    })?;
    let Some(point) = response.datapoints().first() else {
        return Ok(json!(0));
    };
    let value = match (&statistic, &extended) {
        (Some(s), _) => match s.as_str() {
            "SampleCount" => point.sample_count(),
            "Average" => point.average(),
            "Sum" => point.sum(),
            "Minimum" => point.minimum(),
            "Maximum" => point.maximum(),
            _ => None,
        },
        (None, Some(e)) => point
            .extended_statistics()
            .and_then(|m| m.get(e.as_str()).copied()),
        (None, None) => None,
    };
    value.map(|v| json!(v)).ok_or_else(|| {
        failed(format!(
            "Unable to parse response: the datapoint of {namespace}/{metric} holds no {}",
            statistic.or(extended).unwrap_or_default()
        ))
    })
}

async fn get_metric_data(ctx: &FaultContext, call: &NativeCall) -> Result<Value, ActivityError> {
    let args = &call.arguments;
    let (namespace, metric) = (required(args, "namespace")?, required(args, "metric_name")?);
    let dims = dimensions(args)?;
    let statistic = text(args, "statistic")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| failed("statistic is required by GetMetricData (e.g. Average, Sum, p99)"))?;
    let duration = seconds(args, "duration", 300)?;
    let offset = seconds(args, "offset", 0)?;
    let now = SystemTime::now();
    let (start, end) = (
        now - Duration::from_secs(duration),
        now - Duration::from_secs(offset),
    );
    let mut stat = MetricStat::builder()
        .metric(
            Metric::builder()
                .namespace(&namespace)
                .metric_name(&metric)
                .set_dimensions(Some(dims))
                .build(),
        )
        .period(period(seconds(args, "period", 60)?)?)
        .stat(&statistic);
    if let Some(u) = text(args, "unit").filter(|s| !s.is_empty()) {
        stat = stat.unit(StandardUnit::from(u.as_str()));
    }
    let query = MetricDataQuery::builder()
        .id("m1")
        .metric_stat(stat.build())
        .label(&metric)
        .build();
    let mut pages = ctx
        .cloudwatch(call)
        .await
        .get_metric_data()
        .metric_data_queries(query)
        .start_time(at(start))
        .end_time(at(end))
        .into_paginator()
        .send();
    let mut values = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            failed(crate::sdk::explain(
                "GetMetricData",
                "CloudWatch",
                "the namespace, metric, dimensions, statistic, the region and the AWS credentials",
                &e,
            ))
        })?;
        for result in page.metric_data_results() {
            values.extend_from_slice(result.values());
        }
    }
    Ok(json!(fold(&statistic, &values)))
}

/// chaosaws's fold of the values: `Sum`, `Minimum`, `Maximum`, else the mean; 2 decimals; 0
/// when there are none.
pub fn fold(statistic: &str, values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let v = match statistic {
        "Sum" => values.iter().sum(),
        "Minimum" => values.iter().copied().fold(f64::INFINITY, f64::min),
        "Maximum" => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        _ => values.iter().sum::<f64>() / values.len() as f64,
    };
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn values_fold_as_chaosaws_folds_them() {
        let v = [1.0, 2.5, 4.125];
        assert_eq!(fold("Sum", &v), 7.63);
        assert_eq!(fold("Minimum", &v), 1.0);
        assert_eq!(fold("Maximum", &v), 4.13);
        assert_eq!(fold("Average", &v), 2.54);
        assert_eq!(fold("p99", &v), 2.54);
        assert_eq!(fold("Sum", &[]), 0.0);
    }

    #[test]
    fn dimensions_come_from_the_list_or_the_pair_and_one_is_needed() {
        let d = dimensions(&map(json!({"dimensions": [{"Name": "A", "Value": "1"},
            {"Name": "B", "Value": "2"}], "dimension_name": "C", "dimension_value": "3"})))
        .unwrap();
        let names: Vec<_> = d.iter().map(|d| d.name().unwrap_or_default()).collect();
        assert_eq!(names, ["A", "B"], "the list wins over the pair");
        let d = dimensions(&map(
            json!({"dimension_name": "InstanceId", "dimension_value": "i-1"}),
        ))
        .unwrap();
        assert_eq!(
            (d[0].name(), d[0].value()),
            (Some("InstanceId"), Some("i-1"))
        );
        let err = dimensions(&Map::new()).unwrap_err().to_string();
        assert_eq!(err, "You must supply argument for dimensions");
        let err = dimension_list(&json!([{"Name": "A"}])).unwrap_err();
        assert!(err.starts_with("item 0 is {\"Name\":\"A\"}"), "{err}");
        assert!(STATISTIC.check(&json!("p99")).is_err());
        assert!(STATISTIC.check(&json!("Average")).is_ok());
    }
}
