//! Run an SSM command document on instances and wait for it: send, put the command id on
//! record at once, poll every invocation with backoff until each one ends, and cancel the
//! command if the run is stopped while it waits (the documents also revert on their own).
//!
//! The result carries each invocation's status, exit code and output, for the journal.

use super::clients::{failed, ssm};
use aws_sdk_ssm::types::CommandInvocationStatus as S;
use broker::providers::ActivityError;
use broker::providers::registry::NativeCall;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What to send.
#[derive(Debug, Clone)]
pub struct Command {
    pub document: String,
    pub instance_ids: Vec<String>,
    pub parameters: BTreeMap<String, Vec<String>>,
    /// How long to wait for every invocation to end before cancelling the command.
    pub wait: Duration,
}

/// Cancels the command when dropped while still armed: the run was stopped mid-wait.
struct CancelOnDrop {
    client: aws_sdk_ssm::Client,
    command_id: String,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let client = self.client.clone();
        let id = self.command_id.clone();
        tracing::warn!("the run stopped while SSM command {id} ran: cancelling it");
        broker::cleanup::spawn(&format!("cancel SSM command {id}"), async move {
            if let Err(e) = client.cancel_command().command_id(&id).send().await {
                tracing::error!(
                    "could not cancel SSM command {id} (the document's scheduled revert still ends the fault): {}",
                    crate::sdk::explain("CancelCommand", &id, "ssm:CancelCommand permission", &e)
                );
            }
        });
    }
}

/// The command's comment: who sent it, for which activity, and the token of this one send
/// (SendCommand takes no idempotency token, so the comment carries it). At most 100 chars.
pub fn comment(activity: &str, token: &str) -> String {
    let head = "experiment-broker: ";
    let room = 100 - head.len() - token.len() - 2;
    let activity: String = activity.chars().take(room).collect();
    format!("{head}{activity} #{token}")
}

/// How many times a SendCommand that got no answer, or was throttled, is tried.
const SEND_ATTEMPTS: u32 = 4;

/// Send the command exactly once and return its id. The SDK's own retries are off for this
/// call: a retry after a lost answer would start the fault twice. Instead, when SendCommand
/// gets no answer (a timeout, a dropped connection, a 5xx), SSM is asked whether a command
/// with this send's token exists; only if none does is it sent again. Throttling is retried
/// with backoff (the request was refused, not run); any other refusal fails at once.
async fn send_once(
    client: &aws_sdk_ssm::Client,
    command: &Command,
    comment: &str,
    token: &str,
) -> Result<String, ActivityError> {
    use aws_sdk_ssm::error::SdkError;
    let mut delay = Duration::from_millis(500);
    for attempt in 1..=SEND_ATTEMPTS {
        let result = client
            .send_command()
            .document_name(&command.document)
            .set_instance_ids(Some(command.instance_ids.clone()))
            .set_parameters(Some(command.parameters.clone().into_iter().collect()))
            .comment(comment)
            .cloud_watch_output_config(
                aws_sdk_ssm::types::CloudWatchOutputConfig::builder()
                    .cloud_watch_output_enabled(true)
                    .build(),
            )
            .customize()
            .config_override(
                aws_sdk_ssm::config::Builder::default()
                    .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled()),
            )
            .send()
            .await;
        let e = match result {
            Ok(sent) => {
                return sent
                    .command()
                    .and_then(|c| c.command_id())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        ActivityError::Failed("SendCommand returned no command id".into())
                    });
            }
            Err(e) => e,
        };
        let last = attempt == SEND_ATTEMPTS;
        match &e {
            SdkError::ServiceError(s) if !s.raw().status().is_server_error() => {
                let throttled = s.err().meta().code().is_some_and(|c| c.contains("Throttl"));
                if !throttled || last {
                    return Err(failed("SendCommand", &command.document, &e));
                }
                tracing::warn!("SendCommand {} throttled: trying again", command.document);
            }
            SdkError::ConstructionFailure(_) => {
                return Err(failed("SendCommand", &command.document, &e));
            }
            // no answer: SSM may or may not have created the command
            _ => match find(client, command, token).await {
                Ok(Some(id)) => {
                    tracing::warn!(
                        "SendCommand {} got no answer, but SSM has its command {id}: not sending it again",
                        command.document
                    );
                    return Ok(id);
                }
                Ok(None) if !last => tracing::warn!(
                    "SendCommand {} got no answer and SSM has no such command: sending it again ({})",
                    command.document,
                    crate::sdk::explain("SendCommand", &command.document, "the network", &e)
                ),
                Ok(None) => return Err(failed("SendCommand", &command.document, &e)),
                Err(lookup) => {
                    return Err(ActivityError::Failed(format!(
                        "SendCommand {} got no answer ({}), and whether SSM ran it cannot be checked ({lookup}): not sending it again",
                        command.document,
                        crate::sdk::explain("SendCommand", &command.document, "the network", &e)
                    )));
                }
            },
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the last attempt returns")
}

/// The id of the command this send (`token`) created, if SSM has one: commands on the first
/// target for this document, matched by the token in their comment.
async fn find(
    client: &aws_sdk_ssm::Client,
    command: &Command,
    token: &str,
) -> Result<Option<String>, String> {
    let Some(instance) = command.instance_ids.first() else {
        return Ok(None);
    };
    let filter = aws_sdk_ssm::types::CommandFilter::builder()
        .key(aws_sdk_ssm::types::CommandFilterKey::DocumentName)
        .value(&command.document)
        .build()
        .map_err(|e| e.to_string())?;
    let mut pages = client
        .list_commands()
        .instance_id(instance)
        .filters(filter)
        .into_paginator()
        .send();
    let mark = format!(" #{token}");
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            crate::sdk::explain("ListCommands", instance, "ssm:ListCommands permission", &e)
        })?;
        if let Some(id) = page
            .commands()
            .iter()
            .find(|c| c.comment().is_some_and(|m| m.ends_with(&mark)))
            .and_then(|c| c.command_id())
        {
            return Ok(Some(id.to_string()));
        }
    }
    Ok(None)
}

/// An invocation status SSM will not change any more.
fn finished(status: &S) -> bool {
    !matches!(
        status,
        S::Pending | S::InProgress | S::Delayed | S::Cancelling
    )
}

/// Send `command` and wait for every invocation to end. Fails if any did not succeed, naming
/// the instance, its status and the end of its error output.
pub async fn run(call: &NativeCall, command: &Command) -> Result<Value, ActivityError> {
    let client = ssm(call).await;
    let token = broker::ids::random_id()[..16].to_string();
    let command_id = send_once(&client, command, &comment(&call.activity, &token), &token).await?;
    // the command is running whatever happens to the record: wait for it (and cancel it if
    // the run stops) either way
    let recorded = call.recorder.record(json!({
        "kind": "ssm_command",
        "activity": call.activity,
        "at": broker::engine::activity::now_iso(),
        "command_id": command_id,
        "document": command.document,
        "instance_ids": command.instance_ids,
        "parameters": command.parameters,
    }));
    let mut guard = CancelOnDrop {
        client: client.clone(),
        command_id: command_id.clone(),
        armed: true,
    };
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
                                "stdout": inv.standard_output_content(),
                                "stderr": inv.standard_error_content(),
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
