//! Runs a decoded [`Action`] against the engine: one `match`, one arm per operation, producing a
//! protocol-neutral [`Reply`] that [`super::render`] writes as JSON or XML.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sluice_engine::message::{ReceivedMessage, SendMessage, SendResult};
use sluice_engine::{batch, Engine, EngineError, ReceiveOptions, TaskRecord};

use super::action::{self, queue_name, required, Action};
use super::error::ApiError;

/// What an operation answers, independent of the wire format.
#[derive(Debug)]
pub enum Reply {
    /// CreateQueue, GetQueueUrl.
    QueueUrl(String),
    ListQueues {
        urls: Vec<String>,
        next_token: Option<String>,
    },
    /// Operations that answer nothing but success.
    Empty,
    Attributes(Vec<(String, String)>),
    SendMessage(SendResult),
    SendMessageBatch {
        successful: Vec<(String, SendResult)>,
        failed: Vec<Failure>,
    },
    Messages(Vec<ReceivedMessage>),
    /// DeleteMessageBatch, ChangeMessageVisibilityBatch.
    BatchIds {
        successful: Vec<String>,
        failed: Vec<Failure>,
    },
    Tags(BTreeMap<String, String>),
    DeadLetterSourceQueues {
        urls: Vec<String>,
        next_token: Option<String>,
    },
    TaskHandle(String),
    MessagesMoved(u64),
    MoveTasks(Vec<TaskRecord>),
}

/// A failed batch entry.
#[derive(Debug)]
pub struct Failure {
    pub id: String,
    pub error: ApiError,
}

/// Per-request facts the dispatcher needs besides the action.
pub struct Context<'a> {
    /// Scheme and authority queue URLs start with, e.g. `http://127.0.0.1:9324`.
    pub base_url: &'a str,
    /// Who signed the request (None when the server runs without authentication): for policy
    /// enforcement, not evaluated yet.
    pub identity: Option<&'a crate::auth::Identity>,
}

fn queue_url(ctx: &Context, engine: &Engine, name: &str) -> String {
    format!("{}/{}/{}", ctx.base_url.trim_end_matches('/'), engine.account_id(), name)
}

/// The queue a request names. A missing QueueUrl is QueueDoesNotExist, as on AWS.
fn queue(url: Option<String>) -> Result<String, ApiError> {
    queue_name(&url.ok_or(ApiError::Engine(EngineError::QueueDoesNotExist))?)
}

/// CreateQueue and GetQueueUrl without a QueueName: AWS answers InvalidParameterValue.
fn queue_name_param(name: Option<String>) -> Result<String, ApiError> {
    name.filter(|n| !n.is_empty()).ok_or_else(|| {
        ApiError::Engine(EngineError::InvalidParameterValue(
            "Value for parameter QueueName is invalid. Reason: Must specify a queue name.".into(),
        ))
    })
}

fn split_batch<T>(ids: Vec<String>, results: Vec<Result<T, EngineError>>) -> (Vec<(String, T)>, Vec<Failure>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (id, r) in ids.into_iter().zip(results) {
        match r {
            Ok(v) => ok.push((id, v)),
            Err(e) => failed.push(Failure { id, error: ApiError::Engine(e) }),
        }
    }
    (ok, failed)
}

fn message(
    body: Option<String>,
    delay_seconds: Option<i64>,
    attributes: BTreeMap<String, action::WireAttributeValue>,
    system_attributes: BTreeMap<String, action::WireAttributeValue>,
    group_id: Option<String>,
    deduplication_id: Option<String>,
) -> Result<SendMessage, ApiError> {
    Ok(SendMessage {
        body: required(body, "MessageBody")?,
        delay_seconds,
        attributes: action::attributes(attributes)?,
        system_attributes: action::attributes(system_attributes)?,
        group_id,
        deduplication_id,
    })
}

/// Pages through sorted names with an opaque token (the last name of the previous page).
fn page(
    names: Vec<String>,
    max_results: Option<i64>,
    next_token: Option<&str>,
) -> Result<(Vec<String>, Option<String>), ApiError> {
    let limit = match max_results {
        None => MAX_LIST_RESULTS,
        Some(n) if (1..=MAX_LIST_RESULTS).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::Engine(EngineError::InvalidParameterValue(format!(
            "Value {n} for parameter MaxResults is invalid. Reason: MaxResults must be an integer between 1 and 1000."
        ))))
        }
    } as usize;
    let after = match next_token {
        None => None,
        Some(t) => {
            Some(URL_SAFE_NO_PAD.decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
                ApiError::Engine(EngineError::InvalidParameterValue("Invalid NextToken value.".into()))
            })?)
        }
    };
    let rest: Vec<String> = names.into_iter().filter(|n| after.as_ref().is_none_or(|a| n > a)).collect();
    let next = (max_results.is_some() && rest.len() > limit).then(|| URL_SAFE_NO_PAD.encode(&rest[limit - 1]));
    Ok((rest.into_iter().take(limit).collect(), next))
}

/// Most queue URLs one ListQueues page returns.
const MAX_LIST_RESULTS: i64 = 1000;

/// Executes one action.
pub async fn dispatch(engine: &Arc<Engine>, ctx: &Context<'_>, action: Action) -> Result<Reply, ApiError> {
    let sender_id = engine.account_id().to_string();
    Ok(match action {
        Action::CreateQueue(a) => {
            let name = queue_name_param(a.queue_name)?;
            engine.create_queue(&name, &a.attributes, &a.tags).await?;
            Reply::QueueUrl(queue_url(ctx, engine, &name))
        }
        Action::GetQueueUrl(a) => {
            let name = queue_name_param(a.queue_name)?;
            engine.queue_exists(&name)?;
            Reply::QueueUrl(queue_url(ctx, engine, &name))
        }
        Action::ListQueues(a) => {
            let names = engine.list_queues(a.queue_name_prefix.as_deref().unwrap_or(""));
            let (names, next_token) = page(names, a.max_results, a.next_token.as_deref())?;
            Reply::ListQueues { urls: names.iter().map(|n| queue_url(ctx, engine, n)).collect(), next_token }
        }
        Action::DeleteQueue(a) => {
            engine.delete_queue(&queue(a.queue_url)?).await?;
            Reply::Empty
        }
        Action::GetQueueAttributes(a) => {
            let name = queue(a.queue_url)?;
            Reply::Attributes(engine.get_queue_attributes(&name, &a.attribute_names)?)
        }
        Action::SetQueueAttributes(a) => {
            let name = queue(a.queue_url)?;
            engine.set_queue_attributes(&name, &required(a.attributes, "Attributes")?).await?;
            Reply::Empty
        }
        Action::SendMessage(a) => {
            let name = queue(a.queue_url)?;
            let msg = message(
                a.message_body,
                a.delay_seconds,
                a.message_attributes,
                a.message_system_attributes,
                a.message_group_id,
                a.message_deduplication_id,
            )?;
            let mut results = engine.send_messages(&name, vec![msg], &sender_id).await?;
            Reply::SendMessage(results.remove(0)?)
        }
        Action::SendMessageBatch(a) => {
            let name = queue(a.queue_url)?;
            let entries = required(a.entries, "Entries")?;
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone().unwrap_or_default()).collect();
            batch::check_entry_ids(ids.iter().map(String::as_str), "SendMessageBatchRequestEntry")?;
            // Entries that fail to decode fail alone; the others are sent.
            let mut prepared = Vec::new();
            let mut failed = Vec::new();
            let mut sent_ids = Vec::new();
            for (id, e) in ids.into_iter().zip(entries) {
                match message(
                    e.message_body,
                    e.delay_seconds,
                    e.message_attributes,
                    e.message_system_attributes,
                    e.message_group_id,
                    e.message_deduplication_id,
                ) {
                    Ok(m) => {
                        prepared.push(m);
                        sent_ids.push(id);
                    }
                    Err(error) => failed.push(Failure { id, error }),
                }
            }
            let results = if prepared.is_empty() {
                Vec::new()
            } else {
                engine.send_message_batch(&name, prepared, &sender_id).await?
            };
            let (successful, mut more) = split_batch(sent_ids, results);
            failed.append(&mut more);
            Reply::SendMessageBatch { successful, failed }
        }
        Action::ReceiveMessage(a) => {
            let name = queue(a.queue_url)?;
            let mut system = a.attribute_names;
            system.extend(a.message_system_attribute_names);
            let opts = ReceiveOptions {
                max_number_of_messages: a.max_number_of_messages,
                visibility_timeout: a.visibility_timeout,
                wait_time_seconds: a.wait_time_seconds,
                system_attribute_names: system,
                message_attribute_names: a.message_attribute_names,
                receive_request_attempt_id: a.receive_request_attempt_id,
            };
            Reply::Messages(engine.receive_messages(&name, &opts).await?)
        }
        Action::DeleteMessage(a) => {
            let name = queue(a.queue_url)?;
            let handle = required(a.receipt_handle, "ReceiptHandle")?;
            engine.delete_messages(&name, &[handle])?.remove(0)?;
            Reply::Empty
        }
        Action::DeleteMessageBatch(a) => {
            let name = queue(a.queue_url)?;
            let entries = required(a.entries, "Entries")?;
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone().unwrap_or_default()).collect();
            batch::check_entry_ids(ids.iter().map(String::as_str), "DeleteMessageBatchRequestEntry")?;
            let handles: Vec<String> = entries.into_iter().map(|e| e.receipt_handle.unwrap_or_default()).collect();
            let results = engine.delete_messages(&name, &handles)?;
            let (ok, failed) = split_batch(ids, results);
            Reply::BatchIds { successful: ok.into_iter().map(|(id, ())| id).collect(), failed }
        }
        Action::ChangeMessageVisibility(a) => {
            let name = queue(a.queue_url)?;
            let handle = required(a.receipt_handle, "ReceiptHandle")?;
            let timeout = required(a.visibility_timeout, "VisibilityTimeout")?;
            engine.change_visibility(&name, &[(handle, timeout)])?.remove(0)?;
            Reply::Empty
        }
        Action::ChangeMessageVisibilityBatch(a) => {
            let name = queue(a.queue_url)?;
            let entries = required(a.entries, "Entries")?;
            let ids: Vec<String> = entries.iter().map(|e| e.id.clone().unwrap_or_default()).collect();
            batch::check_entry_ids(ids.iter().map(String::as_str), "ChangeMessageVisibilityBatchRequestEntry")?;
            let mut changes = Vec::new();
            let mut change_ids = Vec::new();
            let mut failed = Vec::new();
            for (id, e) in ids.into_iter().zip(entries) {
                match (e.receipt_handle, e.visibility_timeout) {
                    (Some(h), Some(t)) => {
                        changes.push((h, t));
                        change_ids.push(id);
                    }
                    (None, _) => {
                        failed.push(Failure { id, error: EngineError::MissingParameter("ReceiptHandle".into()).into() })
                    }
                    (_, None) => failed
                        .push(Failure { id, error: EngineError::MissingParameter("VisibilityTimeout".into()).into() }),
                }
            }
            let results = engine.change_visibility(&name, &changes)?;
            let (ok, mut more) = split_batch(change_ids, results);
            failed.append(&mut more);
            Reply::BatchIds { successful: ok.into_iter().map(|(id, ())| id).collect(), failed }
        }
        Action::PurgeQueue(a) => {
            engine.purge_queue(&queue(a.queue_url)?).await?;
            Reply::Empty
        }
        Action::TagQueue(a) => {
            let name = queue(a.queue_url)?;
            engine.tag_queue(&name, &required(a.tags, "Tags")?).await?;
            Reply::Empty
        }
        Action::UntagQueue(a) => {
            let name = queue(a.queue_url)?;
            engine.untag_queue(&name, &required(a.tag_keys, "TagKeys")?).await?;
            Reply::Empty
        }
        Action::ListQueueTags(a) => Reply::Tags(engine.list_queue_tags(&queue(a.queue_url)?)?),
        Action::AddPermission(a) => {
            let name = queue(a.queue_url)?;
            let label = required(a.label, "Label")?;
            let accounts = required(a.aws_account_ids, "AWSAccountIds")?;
            let actions = required(a.actions, "Actions")?;
            engine.add_permission(&name, &label, &accounts, &actions).await?;
            Reply::Empty
        }
        Action::RemovePermission(a) => {
            let name = queue(a.queue_url)?;
            engine.remove_permission(&name, &required(a.label, "Label")?).await?;
            Reply::Empty
        }
        Action::ListDeadLetterSourceQueues(a) => {
            let names = engine.dead_letter_source_queues(&queue(a.queue_url)?)?;
            let (names, next_token) = page(names, a.max_results, a.next_token.as_deref())?;
            Reply::DeadLetterSourceQueues {
                urls: names.iter().map(|n| queue_url(ctx, engine, n)).collect(),
                next_token,
            }
        }
        Action::StartMessageMoveTask(a) => {
            let source = required(a.source_arn, "SourceArn")?;
            let handle = engine.start_message_move_task(
                &source,
                a.destination_arn.as_deref(),
                a.max_number_of_messages_per_second,
            )?;
            Reply::TaskHandle(handle)
        }
        Action::CancelMessageMoveTask(a) => {
            Reply::MessagesMoved(engine.cancel_message_move_task(&required(a.task_handle, "TaskHandle")?)?)
        }
        Action::ListMessageMoveTasks(a) => {
            let source = required(a.source_arn, "SourceArn")?;
            Reply::MoveTasks(engine.list_message_move_tasks(&source, a.max_results)?)
        }
    })
}
