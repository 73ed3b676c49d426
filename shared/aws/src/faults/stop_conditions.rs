//! The AWS tripwires (see `shared::fleet::safety::guard`): stop conditions, the CloudWatch alarms an
//! experiment names in its `experiment-broker` extension, and the kill switch's SSM parameter.
//!
//! ```yaml
//! extensions:
//!   - name: experiment-broker
//!     stop_conditions:
//!       - alarm_name: checkout-5xx-rate      # ALARM stops the run; rollbacks run
//!     stop_condition_interval: 10            # seconds between two reads (1 to 3600, default 10)
//!     unreadable_grace_intervals: 3          # failed reads in a row before the run stops (1 to 10)
//! ```
//!
//! The alarms are read in the experiment's `configuration.aws_region` (a plain string), else
//! the process's region. An alarm that cannot be read (missing, no permission), or a malformed
//! declaration, keeps the run from starting; during the run, reads that keep failing stop it
//! after the grace (`shared::fleet::safety::guard`). The SSM parameter holds `true` or `false`;
//! anything else counts as halted.

use super::FaultContext;
use aws_config::SdkConfig;
use serde_json::Value;
use shared::fleet::safety::guard::{self, CheckFuture, Tripwire};
use shared::model::Experiment;
use shared::model::broker_extension;
use std::sync::Arc;
use std::time::Duration;

/// Default seconds between two reads of the stop-condition alarms.
const DEFAULT_INTERVAL: f64 = 10.0;

/// The alarm names and poll interval an experiment declares. Pure.
pub fn declared(experiment: &Experiment) -> Result<(Vec<String>, Duration), String> {
    let ext = broker_extension(experiment);
    let names = match ext.get("stop_conditions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c["alarm_name"].as_str().filter(|s| !s.is_empty()).map(str::to_string).ok_or_else(|| {
                    format!("extensions[experiment-broker].stop_conditions[{i}]: expected {{alarm_name: <CloudWatch alarm>}}")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err("extensions[experiment-broker].stop_conditions: expected a list of {alarm_name: ...}".into());
        }
    };
    let seconds = guard::stop_condition_interval(&ext)
        .map_err(|e| e.to_string())?
        .unwrap_or(DEFAULT_INTERVAL);
    Ok((names, Duration::from_secs_f64(seconds)))
}

/// Stops a run when one of its stop-condition alarms is in ALARM (read with the context's SDK
/// configuration).
pub struct AlarmStop(pub Arc<FaultContext>);

impl Tripwire for AlarmStop {
    fn check<'a>(&'a self, experiment: &'a Experiment) -> CheckFuture<'a> {
        Box::pin(async move {
            let (names, _) = declared(experiment)?;
            if names.is_empty() {
                return Ok(None);
            }
            let region = experiment
                .configuration
                .get("aws_region")
                .and_then(Value::as_str)
                .map(str::to_string);
            let states = super::cloudwatch::alarm_states(&self.0, region, &names).await?;
            Ok(states
                .into_iter()
                .find(|(_, state)| state == "ALARM")
                .map(|(name, _)| format!("stop condition: CloudWatch alarm {name} is in ALARM")))
        })
    }

    fn interval(&self, experiment: &Experiment) -> Option<Duration> {
        match declared(experiment) {
            Ok((names, every)) if !names.is_empty() => Some(every),
            Ok(_) => None,
            // watched, so the check's error keeps the run from starting
            Err(_) => Some(Duration::from_secs_f64(DEFAULT_INTERVAL)),
        }
    }
}

/// The kill switch's SSM parameter (`BROKER_HALT_PARAMETER`): `true` means halted.
pub struct SsmHalt {
    pub parameter: String,
    pub ctx: Arc<FaultContext>,
}

impl Tripwire for SsmHalt {
    fn check<'a>(&'a self, _: &'a Experiment) -> CheckFuture<'a> {
        Box::pin(async move {
            let client = aws_sdk_ssm::Client::new(self.ctx.sdk().await);
            let out = client
                .get_parameter()
                .name(&self.parameter)
                .send()
                .await
                .map_err(|e| {
                    crate::sdk::explain(
                        "GetParameter",
                        &self.parameter,
                        "--halt-parameter (BROKER_HALT_PARAMETER) and ssm:GetParameter",
                        &e,
                    )
                })?;
            Ok(ssm_halt_reason(
                &self.parameter,
                out.parameter().and_then(|p| p.value()),
            ))
        })
    }

    fn interval(&self, _: &Experiment) -> Option<Duration> {
        Some(shared::fleet::safety::guard::HALT_INTERVAL)
    }
}

/// Why the kill switch's SSM parameter `parameter`, holding `value`, stops runs (`None`: it
/// holds `false`). `true` is on; anything else is not understood and counts as on. Pure.
pub fn ssm_halt_reason(parameter: &str, value: Option<&str>) -> Option<String> {
    match value.map(str::trim) {
        Some(v) if v.eq_ignore_ascii_case("false") => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(format!(
            "the kill switch is on (SSM parameter {parameter} is true)"
        )),
        other => Some(format!(
            "the kill switch's SSM parameter {parameter} holds {}, not true or false, so it counts as on; `producer halt` or `producer resume` rewrites it",
            other.map_or_else(|| "no value".to_string(), |v| format!("{v:?}"))
        )),
    }
}

/// Write the kill switch's SSM parameter, with the SDK configuration `sdk`.
pub async fn set_ssm_halt(sdk: &SdkConfig, parameter: &str, halted: bool) -> Result<(), String> {
    let client = aws_sdk_ssm::Client::new(sdk);
    client
        .put_parameter()
        .name(parameter)
        .value(if halted { "true" } else { "false" })
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            crate::sdk::explain(
                "PutParameter",
                parameter,
                "--halt-parameter (BROKER_HALT_PARAMETER) and ssm:PutParameter",
                &e,
            )
        })
}

/// Every tripwire a worker or an in-process fleet watches: the kill switch in `store`, its SSM
/// parameter when one is configured, and the experiments' stop-condition alarms (both read
/// with `ctx`'s SDK configuration).
pub fn tripwires(
    ctx: &Arc<FaultContext>,
    store: crate::Store,
    halt_parameter: Option<String>,
) -> Vec<Arc<dyn Tripwire>> {
    let mut wires: Vec<Arc<dyn Tripwire>> =
        vec![Arc::new(shared::fleet::safety::guard::StoreHalt(store))];
    if let Some(parameter) = halt_parameter.filter(|p| !p.is_empty()) {
        wires.push(Arc::new(SsmHalt {
            parameter,
            ctx: ctx.clone(),
        }));
    }
    wires.push(Arc::new(AlarmStop(ctx.clone())));
    wires
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm_stop() -> AlarmStop {
        AlarmStop(Arc::new(FaultContext::new(
            Default::default(),
            crate::faults::target_locks::lone_store(),
            Default::default(),
        )))
    }

    fn experiment(ext: Value) -> Experiment {
        Experiment {
            extensions: vec![ext],
            ..Experiment::default()
        }
    }

    #[test]
    fn stop_conditions_are_read_from_the_extension() {
        let e = experiment(serde_json::json!({"name": "experiment-broker",
            "stop_conditions": [{"alarm_name": "a"}, {"alarm_name": "b"}], "stop_condition_interval": 1.5}));
        let (names, every) = declared(&e).unwrap();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(every, Duration::from_millis(1500));
        let (names, every) = declared(&Experiment::default()).unwrap();
        assert!(names.is_empty());
        assert_eq!(every, Duration::from_secs(10));
        assert_eq!(
            alarm_stop().interval(&Experiment::default()),
            None,
            "nothing to watch"
        );
        let other = experiment(serde_json::json!({"name": "someone-else", "stop_conditions": 3}));
        assert!(
            declared(&other).unwrap().0.is_empty(),
            "only the broker's entry is read"
        );
    }

    #[test]
    fn malformed_stop_conditions_name_the_field() {
        for (bad, needle) in [
            (
                serde_json::json!({"stop_conditions": {"alarm_name": "a"}}),
                "expected a list",
            ),
            (
                serde_json::json!({"stop_conditions": [{"alarm": "a"}]}),
                "stop_conditions[0]",
            ),
            (
                serde_json::json!({"stop_conditions": [], "stop_condition_interval": 0}),
                "stop_condition_interval",
            ),
            (
                serde_json::json!({"stop_conditions": [], "stop_condition_interval": 0.5}),
                "stop_condition_interval: expected seconds from 1 to 3600, got 0.5",
            ),
        ] {
            let mut ext = bad.clone();
            ext["name"] = "experiment-broker".into();
            let e = declared(&experiment(ext)).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn an_ssm_halt_value_not_understood_means_halted() {
        for (value, halted, needle) in [
            (Some("false"), false, ""),
            (Some(" FALSE\n"), false, ""),
            (Some("true"), true, "is true"),
            (Some("True "), true, "is true"),
            (Some(""), true, "not true or false"),
            (Some("yes"), true, "\"yes\", not true or false"),
            (Some("{\"halted\": false}"), true, "not true or false"),
            (None, true, "no value"),
        ] {
            match ssm_halt_reason("/broker/halt", value) {
                None => assert!(!halted, "{value:?} must halt"),
                Some(why) => {
                    assert!(halted, "{value:?} must not halt: {why}");
                    assert!(
                        why.contains("/broker/halt") && why.contains(needle),
                        "{why}"
                    );
                }
            }
        }
    }
}
