//! Run an SSM command document on instances and wait for it: send, put the command id on
//! record at once, poll every invocation with backoff until each one ends, and cancel the
//! command if the run is stopped while it waits (the documents also revert on their own).
//!
//! The result carries each invocation's status, exit code and output, for the journal. The
//! output is masked with the run's secrets as soon as it is read (before any log line or error
//! message is made of it), in every form `shared::redact` knows; SSM keeps only the first
//! 24,000 characters, so a secret cut there is masked in part too.
//!
//! A command whose worker died is stopped by the worker that reverts the job, with `stop`
//! (see `orphans`).

use super::command::Command;
use super::send;
use crate::faults::FaultContext;
use crate::faults::context::{failed, region};
use crate::faults::target_locks::{Held, LockSet};
use aws_sdk_ssm::types::CommandInvocationStatus as S;
use serde_json::{Value, json};
use shared::cleanup::Cleanup;
use shared::providers::ActivityError;
use shared::providers::registry::NativeCall;
use shared::redact::Redactor;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A command on its way or running. Dropped while armed (the run was stopped, or the wait
/// timed out), it stops the command from the process's `Cleanup`: finds it by its token if the send
/// had not answered yet, cancels it, waits (bounded) until every invocation has ended, and
/// only then lets go of its share of the targets' locks (so they are released after that).
struct InFlight {
    client: aws_sdk_ssm::Client,
    document: String,
    instance_ids: Vec<String>,
    token: String,
    command_id: Option<String>,
    locks: Option<Arc<LockSet>>,
    cleanup: Cleanup,
    armed: bool,
}

/// How long a stopped command's clean-up waits for its invocations to end.
const STOP_WAIT: Duration = Duration::from_secs(60);

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.armed {
            return; // the action still holds the locks and releases them
        }
        let client = self.client.clone();
        let (document, instance_ids, token) = (
            self.document.clone(),
            self.instance_ids.clone(),
            self.token.clone(),
        );
        let known = self.command_id.clone();
        let locks = self.locks.take();
        tracing::warn!(
            "the run stopped while SSM command {} ({document}) ran: cancelling it",
            known.as_deref().unwrap_or("(not answered yet)")
        );
        self.cleanup.spawn(
            &format!("stop SSM command {document} #{token}"),
            async move {
                let id = match known {
                    Some(id) => Some(id),
                    None => send::find_eventually(&client, &document, &instance_ids, &token)
                        .await
                        .unwrap_or_else(|e| {
                            tracing::error!("cannot tell whether SSM ran {document} #{token}: {e}");
                            None
                        }),
                };
                if let Some(id) = id {
                    stop(&client, &id, &instance_ids).await;
                }
                // the last share of the locks goes here: they are released after the stop
                drop(locks);
            },
        );
    }
}

/// Cancel `id` and wait up to `STOP_WAIT` for its invocations to end. Returns the cancel's
/// error, if any, and the instances on which the command had still not ended.
pub async fn stop(
    client: &aws_sdk_ssm::Client,
    id: &str,
    instance_ids: &[String],
) -> (Option<String>, Vec<String>) {
    let mut cancel_error = None;
    if let Err(e) = client.cancel_command().command_id(id).send().await {
        let why = crate::sdk::explain("CancelCommand", id, "ssm:CancelCommand permission", &e);
        tracing::error!(
            "could not cancel SSM command {id} (the document's scheduled revert still ends the fault): {why}"
        );
        cancel_error = Some(why);
    }
    let deadline = Instant::now() + STOP_WAIT;
    let mut pending = instance_ids.to_vec();
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for instance in pending {
            let status = client
                .get_command_invocation()
                .command_id(id)
                .instance_id(&instance)
                .send()
                .await
                .ok()
                .and_then(|inv| inv.status().cloned());
            if !status.is_some_and(|s| finished(&s)) {
                still.push(instance);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    if !pending.is_empty() {
        tracing::error!(
            "SSM command {id} had not ended on {} {}s after its cancel: releasing their locks anyway (the documents revert on their own)",
            pending.join(", "),
            STOP_WAIT.as_secs()
        );
    }
    (cancel_error, pending)
}

/// How much of an invocation's output GetCommandInvocation returns, in characters.
const SSM_OUTPUT_LIMIT: usize = 24_000;

/// An invocation's stdout or stderr as read from SSM, masked: `None` stays `None`.
fn masked_output(text: Option<&str>, redactor: &Redactor) -> Value {
    match text {
        None => Value::Null,
        Some(t) if t.chars().count() >= SSM_OUTPUT_LIMIT => Value::String(redactor.text_cut(t)),
        Some(t) => Value::String(redactor.text(t)),
    }
}

/// An invocation status SSM will not change any more.
fn finished(status: &S) -> bool {
    !matches!(
        status,
        S::Pending | S::InProgress | S::Delayed | S::Cancelling
    )
}

/// Send `command` and wait for every invocation to end. Fails if any did not succeed, naming
/// the instance, its status and the end of its error output. `locks`: the targets' locks,
/// released by this command's clean-up if the run stops while it runs (see `InFlight`).
pub async fn run(
    ctx: &FaultContext,
    call: &NativeCall,
    command: &Command,
    locks: Option<&Held>,
) -> Result<Value, ActivityError> {
    let client = ctx.ssm(call).await;
    let redactor = Redactor::new(shared::scope::secret_values(&call.secrets));
    let token = shared::ids::random_id()[..16].to_string();
    // armed from before the send: a run stopped mid-send still finds and stops its command
    let mut guard = InFlight {
        client: client.clone(),
        document: command.document.clone(),
        instance_ids: command.instance_ids.clone(),
        token: token.clone(),
        command_id: None,
        locks: locks.and_then(Held::share),
        cleanup: ctx.cleanup().clone(),
        armed: true,
    };
    let sent = send::send_once(
        &client,
        command,
        &send::comment(&call.activity, &token),
        &token,
    )
    .await;
    let command_id = match sent {
        Ok(id) => id,
        Err(not_sent) => {
            // refused: nothing runs, unless the answer was lost and SSM could not be asked
            guard.armed = not_sent.maybe_running;
            return Err(not_sent.error);
        }
    };
    guard.command_id = Some(command_id.clone());
    // the command is running whatever happens to the record: wait for it (and cancel it if
    // the run stops) either way
    let recorded = call.recorder.record(json!({
        "kind": "ssm_command",
        "activity": call.activity,
        "at": shared::clock::now_iso(),
        "command_id": command_id,
        "document": command.document,
        "instance_ids": command.instance_ids,
        "parameters": command.parameters,
        "region": region(call),
    }));
    if let Err(e) = recorded.await {
        tracing::error!(
            "SSM command {command_id} ({}) is running but may not be on record: {e}",
            command.document
        );
    }
    let deadline = Instant::now()
        .checked_add(command.wait)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 7));
    let mut pending: Vec<String> = command.instance_ids.clone();
    let mut done: BTreeMap<String, Value> = BTreeMap::new();
    let mut delay = Duration::from_millis(500);
    while !pending.is_empty() {
        let mut still = Vec::new();
        for id in pending {
            match client
                .get_command_invocation()
                .command_id(&command_id)
                .instance_id(&id)
                .send()
                .await
            {
                Ok(inv) => match inv.status() {
                    Some(s) if finished(s) => {
                        done.insert(
                            id.clone(),
                            json!({
                                "instance_id": id,
                                "status": s.as_str(),
                                "response_code": inv.response_code(),
                                "stdout": masked_output(inv.standard_output_content(), &redactor),
                                "stderr": masked_output(inv.standard_error_content(), &redactor),
                            }),
                        );
                    }
                    _ => still.push(id),
                },
                // right after SendCommand the invocation may not exist yet
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_invocation_does_not_exist()) =>
                {
                    still.push(id)
                }
                Err(e) => return Err(failed("GetCommandInvocation", &command_id, &e)),
            }
        }
        pending = still;
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(ActivityError::Timeout(format!(
                "SSM command {command_id} ({}) had not ended on {} after {}s: cancelling it",
                command.document,
                pending.join(", "),
                command.wait.as_secs()
            )));
        }
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(Duration::from_secs(15));
    }
    guard.armed = false;
    let invocations: Vec<Value> = done.into_values().collect();
    let failures: Vec<String> = invocations
        .iter()
        .filter(|i| i["status"] != "Success")
        .map(|i| {
            let err = i["stderr"].as_str().unwrap_or("");
            let tail: String = err.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
            format!(
                "{} {} (exit {}): {tail}",
                i["instance_id"].as_str().unwrap_or("?"),
                i["status"].as_str().unwrap_or("?"),
                i["response_code"]
            )
        })
        .collect();
    let result = json!({
        "command_id": command_id,
        "document": command.document,
        "invocations": invocations,
    });
    if failures.is_empty() {
        Ok(result)
    } else {
        Err(ActivityError::Failed(format!(
            "SSM command {command_id} ({}) did not succeed on every instance: {}",
            command.document,
            failures.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// moto's SSM does not run documents (its invocations have empty output), so the masking
    /// applied where the output is read is tested here, on the function that path uses.
    #[test]
    fn command_output_is_masked_as_it_is_read() {
        let r = Redactor::new(vec!["tok\"ä".into(), "hunter2".into()]);
        let cases: &[(Option<&str>, Value)] = &[
            (None, Value::Null),
            (Some("plain\n"), json!("plain\n")),
            (Some("pw=hunter2\n"), json!("pw=***\n")),
            (Some(r#"{"t": "tok\"\u00e4"}"#), json!(r#"{"t": "***"}"#)),
            (Some(r#"{"t": "tok\"ä"}"#), json!(r#"{"t": "***"}"#)),
        ];
        for (text, masked) in cases {
            assert_eq!(&masked_output(*text, &r), masked, "{text:?}");
        }
        // SSM cut the output at 24,000 characters, in the middle of a secret
        let cut = format!("{}hunt", "x".repeat(SSM_OUTPUT_LIMIT - 4));
        let out = masked_output(Some(&cut), &r);
        assert_eq!(
            out,
            json!(format!("{}***", "x".repeat(SSM_OUTPUT_LIMIT - 4)))
        );
    }
}
