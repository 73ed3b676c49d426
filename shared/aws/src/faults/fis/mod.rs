//! AWS FIS from an experiment, with the seed's names: `experimentvr.fis.actions.start_experiment(
//! experiment_template_id, client_token=None, tags=None)`, `stop_experiment(experiment_id)` and
//! the probe `experimentvr.fis.probes.get_experiment(experiment_id)`, each returning boto3's
//! `{"experiment": {...}}` (the fields experiments read: `id`, `experimentTemplateId`,
//! `state`, `tags`, `startTime`, `endTime`).
//!
//! A template is the target: it must carry the opt-in tag (read with `GetExperimentTemplate`),
//! the caps count it as one target, it is locked while the experiment starts, and a dry run
//! returns the plan. Before `StartExperiment` the way back is on record (`reverts`); the started
//! experiment is tagged `experiment-broker:revert=<its record id>` (so a redelivery finds it even
//! if the start's answer was lost) and its id goes on record. The experiment runs on after the
//! action returns: `stop_experiment` (a rollback) or the redelivery of a dead worker's job stops
//! it, and `stop_experiment` marks the record done. An experiment's rollbacks cannot know the id
//! `start_experiment` returned, so `stop_experiment` also takes `experiment_template_id` (ours,
//! instead of `experiment_id`): every running experiment the broker started from that template
//! is stopped (`{"experiments": [...]}`).

use super::ec2::instances::choose;
use super::family_args::{required, text};
use super::plan::{LOCK_TTL, stops_here};
use super::{FaultContext, reverts, target_locks};
use aws_sdk_fis::Client;
use aws_sdk_fis::types::{Experiment, ExperimentStatus};
use serde_json::{Map, Value, json};
use shared::fleet::safety::targets::{Candidate, Mode, Selector};
use shared::providers::ActivityError;
use shared::providers::registry::{ArgKind, NativeActivity, NativeCall, Param, Registry};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The family name on a revert record.
pub const FAMILY: &str = "fis";
/// The tag a started experiment carries: the id of its revert record.
const REVERT_TAG: &str = "experiment-broker:revert";

async fn client(ctx: &FaultContext, call: &NativeCall) -> Client {
    let mut conf = aws_sdk_fis::config::Builder::from(ctx.sdk().await);
    if let Some(r) = super::context::region(call) {
        conf = conf.region(aws_config::Region::new(r));
    }
    Client::from_conf(conf.build())
}

fn failed<E, R>(what: &str, id: &str, e: &aws_sdk_fis::error::SdkError<E, R>) -> ActivityError
where
    E: aws_sdk_fis::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    ActivityError::Failed(crate::sdk::explain(
        what,
        id,
        "the experiment template or experiment id, and the AWS credentials",
        e,
    ))
}

/// An experiment as boto3 returns it, with the fields experiments read.
fn shape(e: &Experiment) -> Value {
    json!({
        "experiment": {
            "id": e.id(),
            "arn": e.arn(),
            "experimentTemplateId": e.experiment_template_id(),
            "state": {
                "status": e.state().and_then(|s| s.status()).map(|s| s.as_str()),
                "reason": e.state().and_then(|s| s.reason()),
            },
            "tags": e.tags(),
            "startTime": e.start_time().map(|t| t.to_string()),
            "endTime": e.end_time().map(|t| t.to_string()),
        }
    })
}

/// `tags` as FIS takes them: a mapping of strings.
fn tag_map(args: &Map<String, Value>) -> Result<HashMap<String, String>, String> {
    match args.get("tags") {
        None | Some(Value::Null) => Ok(HashMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(format!("tags.{k}: expected a string, got {other}")),
            })
            .collect(),
        Some(v) => Err(format!("tags: expected a mapping of strings, got {v}")),
    }
}

async fn start_experiment(
    ctx: &Arc<FaultContext>,
    call: NativeCall,
) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let template = required(&call.arguments, "experiment_template_id").map_err(fail)?;
    let client_token = text(&call.arguments, "client_token").map_err(fail)?;
    let mut tags = tag_map(&call.arguments).map_err(fail)?;
    let fis = client(ctx, &call).await;
    let found = fis
        .get_experiment_template()
        .id(&template)
        .send()
        .await
        .map_err(|e| failed("GetExperimentTemplate", &template, &e))?;
    let template_tags: BTreeMap<String, String> = found
        .experiment_template()
        .and_then(|t| t.tags())
        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let candidate = Candidate {
        id: template.clone(),
        tags: template_tags,
        attributes: BTreeMap::new(),
    };
    let selector = Selector {
        tags: Vec::new(),
        filters: Vec::new(),
        mode: Mode::Ids(vec![template.clone()]),
        within: Vec::new(),
        allow_empty: false,
    };
    let selection = choose(ctx, &call, selector, &[candidate], false).await?;
    if stops_here(&call, &selection) {
        return Ok(
            json!({"action": "start_experiment", "experiment_template_id": template, "targets": selection.chosen, "dry_run": call.plan_only}),
        );
    }
    let held = target_locks::lock(ctx, &call, &selection.chosen, LOCK_TTL).await?;
    let undo = json!({"experiment_template_id": template, "experiment_id": null});
    let mut armed = reverts::on_record(ctx, &call, FAMILY, undo, Some(&held)).await?;
    tags.insert(REVERT_TAG.into(), armed.id().to_string());
    let started = fis
        .start_experiment()
        .experiment_template_id(&template)
        .client_token(client_token.unwrap_or_else(|| armed.id().to_string()))
        .set_tags(Some(tags))
        .send()
        .await;
    let experiment = match started {
        Ok(out) => out.experiment().cloned(),
        Err(e) => {
            // an answer lost after FIS started it: the revert finds it by its tag
            let error = failed("StartExperiment", &template, &e);
            let stopped = armed.revert(&call).await;
            held.release().await;
            tracing::info!("  after the failed start: {stopped:?}");
            return Err(error);
        }
    };
    let id = experiment.as_ref().and_then(|e| e.id()).unwrap_or_default();
    let undo = json!({"experiment_template_id": template, "experiment_id": id});
    if let Err(e) = armed.update(&call, undo).await {
        tracing::error!(
            "FIS experiment {id} is running but its id may not be on record (its tag {REVERT_TAG}={} is): {e}",
            armed.id()
        );
    }
    armed.leave_on();
    held.release().await;
    Ok(experiment.as_ref().map(shape).unwrap_or(Value::Null))
}

async fn stop_experiment(
    ctx: &Arc<FaultContext>,
    call: NativeCall,
) -> Result<Value, ActivityError> {
    let fail = ActivityError::Failed;
    let id = text(&call.arguments, "experiment_id").map_err(fail)?;
    let template = text(&call.arguments, "experiment_template_id").map_err(fail)?;
    let fis = client(ctx, &call).await;
    let ids = match (&id, &template) {
        (Some(id), _) => vec![id.clone()],
        (None, Some(t)) => {
            let mut running = Vec::new();
            for id in started_from(&fis, t, None).await.map_err(fail)? {
                let now = fis
                    .get_experiment()
                    .id(&id)
                    .send()
                    .await
                    .map_err(|e| failed("GetExperiment", &id, &e))?;
                if now.experiment().is_some_and(is_running) {
                    running.push(id);
                }
            }
            running
        }
        (None, None) => {
            return Err(fail(
                "experiment_id is missing: expected the id of the experiment to stop (or experiment_template_id, to stop every running experiment the broker started from that template)".into(),
            ));
        }
    };
    if call.plan_only {
        return Ok(json!({"action": "stop_experiment", "experiment_ids": ids, "dry_run": true}));
    }
    let mut stopped = Vec::new();
    for id in &ids {
        let out = fis
            .stop_experiment()
            .id(id)
            .send()
            .await
            .map_err(|e| failed("StopExperiment", id, &e))?;
        let experiment = out.experiment();
        if let Some(revert) = experiment
            .and_then(|e| e.tags())
            .and_then(|t| t.get(REVERT_TAG))
        {
            reverts::mark_reverted(
                &call,
                revert,
                &json!({"experiment_id": id, "stopped": true}),
            )
            .await;
        }
        stopped.push(experiment.map(shape).unwrap_or(Value::Null));
    }
    Ok(match id {
        Some(_) => stopped.pop().unwrap_or(Value::Null),
        None => {
            json!({"experiments": stopped.iter().map(|e| e["experiment"].clone()).collect::<Vec<_>>()})
        }
    })
}

/// The experiments of `template` the broker started (tagged [`REVERT_TAG`]; with `token`, that
/// one record's only).
async fn started_from(
    fis: &Client,
    template: &str,
    token: Option<&str>,
) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut pages = fis.list_experiments().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| failed("ListExperiments", template, &e).to_string())?;
        for e in page.experiments() {
            let tagged = e.tags().and_then(|t| t.get(REVERT_TAG)).map(String::as_str);
            if e.experiment_template_id() == Some(template)
                && tagged.is_some()
                && token.is_none_or(|t| tagged == Some(t))
            {
                ids.extend(e.id().map(str::to_string));
            }
        }
    }
    Ok(ids)
}

async fn get_experiment(ctx: &Arc<FaultContext>, call: NativeCall) -> Result<Value, ActivityError> {
    let id = required(&call.arguments, "experiment_id").map_err(ActivityError::Failed)?;
    let out = client(ctx, &call)
        .await
        .get_experiment()
        .id(&id)
        .send()
        .await
        .map_err(|e| failed("GetExperiment", &id, &e))?;
    Ok(out.experiment().map(shape).unwrap_or(Value::Null))
}

fn is_running(e: &Experiment) -> bool {
    matches!(
        e.state().and_then(|s| s.status()),
        Some(ExperimentStatus::Pending | ExperimentStatus::Initiating | ExperimentStatus::Running)
    )
}

/// Stop the recorded experiment (or, with no id on record, every one tagged with the record's
/// id), unless it has ended already.
pub async fn undo(ctx: &FaultContext, region: Option<&str>, undo: &Value) -> Result<Value, String> {
    let fis = client(ctx, &reverts::call_in(region)).await;
    let mut ids: Vec<String> = undo["experiment_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(|s| vec![s.to_string()])
        .unwrap_or_default();
    if ids.is_empty() {
        let template = undo["experiment_template_id"].as_str().unwrap_or_default();
        let token = undo["revert_id"].as_str().filter(|t| !t.is_empty());
        ids = started_from(&fis, template, token).await?;
    }
    let mut said = Vec::new();
    for id in ids {
        let now = fis
            .get_experiment()
            .id(&id)
            .send()
            .await
            .map_err(|e| failed("GetExperiment", &id, &e).to_string())?;
        if now.experiment().is_some_and(is_running) {
            fis.stop_experiment()
                .id(&id)
                .send()
                .await
                .map_err(|e| failed("StopExperiment", &id, &e).to_string())?;
            said.push(json!({"experiment_id": id, "stopped": true}));
        } else {
            said.push(json!({"experiment_id": id, "stopped": false, "already": "ended"}));
        }
    }
    Ok(json!(said))
}

pub fn register(registry: &mut Registry, ctx: &Arc<FaultContext>) {
    let c = ctx.clone();
    registry.register(
        "experimentvr.fis.actions",
        "start_experiment",
        NativeActivity::new(
            vec![
                Param::required("experiment_template_id").of(ArgKind::Scalar),
                Param::optional("client_token").of(ArgKind::Scalar),
                Param::optional("tags"),
                Param::optional("region").of(ArgKind::Scalar),
            ],
            move |call| {
                let ctx = c.clone();
                async move { start_experiment(&ctx, call).await }
            },
        )
        .fault(),
    );
    let c = ctx.clone();
    registry.register(
        "experimentvr.fis.actions",
        "stop_experiment",
        NativeActivity::new(
            vec![
                Param::optional("experiment_id").of(ArgKind::Scalar),
                Param::optional("experiment_template_id").of(ArgKind::Scalar),
                Param::optional("region").of(ArgKind::Scalar),
            ],
            move |call| {
                let ctx = c.clone();
                async move { stop_experiment(&ctx, call).await }
            },
        )
        .fault(),
    );
    let c = ctx.clone();
    registry.register(
        "experimentvr.fis.probes",
        "get_experiment",
        NativeActivity::new(
            vec![
                Param::required("experiment_id").of(ArgKind::Scalar),
                Param::optional("region").of(ArgKind::Scalar),
            ],
            move |call| {
                let ctx = c.clone();
                async move { get_experiment(&ctx, call).await }
            },
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_a_mapping_of_strings() {
        let args = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            tag_map(&args(json!({"tags": {"a": "b"}}))).unwrap(),
            HashMap::from([("a".to_string(), "b".to_string())])
        );
        assert!(tag_map(&args(json!({}))).unwrap().is_empty());
        assert!(
            tag_map(&args(json!({"tags": {"a": 1}})))
                .unwrap_err()
                .contains("tags.a")
        );
        assert!(
            tag_map(&args(json!({"tags": ["a"]})))
                .unwrap_err()
                .starts_with("tags:")
        );
    }
}
