//! What a dead worker may have left acting. A fault action puts what it does on record
//! (`broker.records` in the journal checkpoint: targets, locks, SSM command ids) before it
//! acts; when its worker dies, the job comes back and the new owner reads those records first
//! and has what they name stopped (a recorded command cancelled and seen to end) before it
//! plays the rollbacks. Otherwise an orphaned command would run on, and neither
//! `producer halt` nor a stop condition could stop it (they stop runs, not commands).
//!
//! The fleet does not know what a record means on a cloud: it hands every record to the
//! native activity registered as `experiment_broker.redelivery.stop_recorded` (the AWS fault
//! library registers one that cancels `ssm_command` records). The native registry is the hook
//! because every binary that can inject a fault already builds it and hands it to `serve`:
//! whoever registers a fault also registers how to stop it, and no call site changes.

use crate::clock::now_iso;
use crate::providers::Providers;
use crate::providers::registry::NativeCall;
use serde_json::{Map, Value, json};

/// The native activity that stops what records name: `MODULE.FUNC`, taking `records`.
pub const MODULE: &str = "experiment_broker.redelivery";
pub const FUNC: &str = "stop_recorded";

/// Have what `records` name stopped, and say how it went, as a record of its own
/// (`kind: orphans_stopped`) for the journal. `None` when there is nothing on record.
pub async fn stop_recorded(providers: &Providers, records: &[Value]) -> Option<Value> {
    if records.is_empty() {
        return None;
    }
    let outcome = match providers.registry.get(MODULE, FUNC) {
        Some(stopper) => {
            let mut arguments = Map::new();
            arguments.insert("records".into(), Value::Array(records.to_vec()));
            let call = NativeCall {
                arguments,
                activity: format!("{MODULE}.{FUNC}"),
                ..NativeCall::default()
            };
            match stopper.call(call).await {
                Ok(stopped) => json!({"stopped": stopped}),
                Err(e) => {
                    tracing::error!(
                        "what the dead owner left running could not all be stopped: {e}"
                    );
                    json!({"error": e.to_string()})
                }
            }
        }
        None => {
            tracing::error!(
                "the dead owner's records name {} thing(s), and this worker has no `{MODULE}.{FUNC}` to stop them",
                records.len()
            );
            json!({"error": format!("no `{MODULE}.{FUNC}` is registered in this worker")})
        }
    };
    let mut record = json!({"kind": "orphans_stopped", "at": now_iso()});
    if let (Value::Object(r), Value::Object(o)) = (&mut record, outcome) {
        r.extend(o);
    }
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::registry::{NativeActivity, Param, Registry};
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn the_records_go_to_the_registered_stopper_and_its_answer_is_on_record() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new();
        let got = seen.clone();
        registry.register(
            MODULE,
            FUNC,
            NativeActivity::new(vec![Param::required("records")], move |call| {
                got.lock().unwrap().push(call.arguments["records"].clone());
                async { Ok(json!([{"command_id": "c-1", "ended": true}])) }
            }),
        );
        let providers = Providers::new(registry);
        let records = [json!({"kind": "ssm_command", "command_id": "c-1"})];
        let record = stop_recorded(&providers, &records).await.unwrap();
        assert_eq!(record["kind"], "orphans_stopped");
        assert_eq!(
            record["stopped"],
            json!([{"command_id": "c-1", "ended": true}])
        );
        assert_eq!(*seen.lock().unwrap(), vec![json!(records)]);
        assert_eq!(
            stop_recorded(&providers, &[]).await,
            None,
            "nothing on record"
        );
    }

    #[tokio::test]
    async fn without_a_stopper_the_journal_says_nothing_was_stopped() {
        let providers = Providers::new(Registry::new());
        let record = stop_recorded(&providers, &[json!({"kind": "ssm_command"})])
            .await
            .unwrap();
        assert!(
            record["error"]
                .as_str()
                .unwrap()
                .contains("no `experiment_broker.redelivery.stop_recorded`"),
            "{record}"
        );
    }
}
