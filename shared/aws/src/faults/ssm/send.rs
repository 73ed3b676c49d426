//! Send an SSM command exactly once. SendCommand takes no idempotency token, and a retry
//! after a lost answer would start a fault twice: so the SDK's retries are off for it, each
//! send carries a token in its comment, and after a lost answer SSM is asked (`ListCommands`)
//! for the command with that token before anything is sent again.

use super::command::Command;
use crate::faults::context::failed;
use shared::providers::ActivityError;
use std::time::Duration;

/// The command's comment: who sent it, for which activity, and the token of this one send
/// (SendCommand takes no idempotency token, so the comment carries it). At most 100 chars.
pub fn comment(activity: &str, token: &str) -> String {
    let head = "experiment-broker: ";
    let room = 100 - head.len() - token.len() - 2;
    let activity: String = activity.chars().take(room).collect();
    format!("{head}{activity} #{token}")
}

/// A send that did not return a command id.
#[derive(Debug)]
pub struct NotSent {
    pub error: ActivityError,
    /// The answer was lost and SSM could not be asked: the command may be running.
    pub maybe_running: bool,
}

impl NotSent {
    fn refused(error: ActivityError) -> NotSent {
        NotSent {
            error,
            maybe_running: false,
        }
    }
}

/// How many times a SendCommand that got no answer, or was throttled, is tried.
const SEND_ATTEMPTS: u32 = 4;

/// Send the command exactly once and return its id. The SDK's own retries are off for this
/// call: a retry after a lost answer would start the fault twice. Instead, when SendCommand
/// gets no answer (a timeout, a dropped connection, a 5xx), SSM is asked whether a command
/// with this send's token exists; only if none does is it sent again. Throttling is retried
/// with backoff (the request was refused, not run); any other refusal fails at once.
pub async fn send_once(
    client: &aws_sdk_ssm::Client,
    command: &Command,
    comment: &str,
    token: &str,
) -> Result<String, NotSent> {
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
                        NotSent::refused(ActivityError::Failed(
                            "SendCommand returned no command id".into(),
                        ))
                    });
            }
            Err(e) => e,
        };
        let last = attempt == SEND_ATTEMPTS;
        match &e {
            SdkError::ServiceError(s) if !s.raw().status().is_server_error() => {
                let throttled = s.err().meta().code().is_some_and(|c| c.contains("Throttl"));
                if !throttled || last {
                    return Err(NotSent::refused(failed(
                        "SendCommand",
                        &command.document,
                        &e,
                    )));
                }
                tracing::warn!("SendCommand {} throttled: trying again", command.document);
            }
            SdkError::ConstructionFailure(_) => {
                return Err(NotSent::refused(failed(
                    "SendCommand",
                    &command.document,
                    &e,
                )));
            }
            // no answer: SSM may or may not have created the command
            _ => match find_eventually(client, &command.document, &command.instance_ids, token)
                .await
            {
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
                Ok(None) => {
                    return Err(NotSent::refused(failed(
                        "SendCommand",
                        &command.document,
                        &e,
                    )));
                }
                Err(lookup) => {
                    return Err(NotSent {
                        maybe_running: true,
                        error: ActivityError::Failed(format!(
                            "SendCommand {} got no answer ({}), and whether SSM ran it cannot be checked ({lookup}): not sending it again",
                            command.document,
                            crate::sdk::explain(
                                "SendCommand",
                                &command.document,
                                "the network",
                                &e
                            )
                        )),
                    });
                }
            },
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the last attempt returns")
}

/// How many times, and how far apart, SSM is asked for a command whose SendCommand got no
/// answer: a request still in flight when the client gave up may land a moment later.
const LOOKUPS: u32 = 3;
const LOOKUP_PAUSE: Duration = Duration::from_secs(2);

/// `find`, asked `LOOKUPS` times `LOOKUP_PAUSE` apart while the answer is "no such command".
pub async fn find_eventually(
    client: &aws_sdk_ssm::Client,
    document: &str,
    instance_ids: &[String],
    token: &str,
) -> Result<Option<String>, String> {
    for lookup in 1..=LOOKUPS {
        if let Some(id) = find(client, document, instance_ids, token).await? {
            return Ok(Some(id));
        }
        if lookup < LOOKUPS {
            tokio::time::sleep(LOOKUP_PAUSE).await;
        }
    }
    Ok(None)
}

/// The id of the command this send (`token`) created, if SSM has one: commands on the first
/// target for this document, matched by the token in their comment.
async fn find(
    client: &aws_sdk_ssm::Client,
    document: &str,
    instance_ids: &[String],
    token: &str,
) -> Result<Option<String>, String> {
    let Some(instance) = instance_ids.first() else {
        return Ok(None);
    };
    let filter = aws_sdk_ssm::types::CommandFilter::builder()
        .key(aws_sdk_ssm::types::CommandFilterKey::DocumentName)
        .value(document)
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
