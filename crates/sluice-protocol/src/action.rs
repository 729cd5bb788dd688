//! The typed requests: one [`Action`] per SQS operation, decoded from either wire protocol.
//!
//! Both protocols end in the same serde DTOs: a JSON 1.0 body deserialises into them directly, a
//! Query-protocol form is first unflattened into the same JSON shape (see [`crate::query`]). Required
//! members are `Option`s checked here, so a missing one is AWS's `MissingParameter`, not a serde error.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sluice_engine::message::{AttributeValue, Attributes};
use sluice_engine::EngineError;

use crate::error::ApiError;


/// Every operation of the SQS service model (metrics use it to bound label values).
pub const OPERATIONS: &[&str] = &[
    "AddPermission",
    "CancelMessageMoveTask",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "CreateQueue",
    "DeleteMessage",
    "DeleteMessageBatch",
    "DeleteQueue",
    "GetQueueAttributes",
    "GetQueueUrl",
    "ListDeadLetterSourceQueues",
    "ListMessageMoveTasks",
    "ListQueueTags",
    "ListQueues",
    "PurgeQueue",
    "ReceiveMessage",
    "RemovePermission",
    "SendMessage",
    "SendMessageBatch",
    "SetQueueAttributes",
    "StartMessageMoveTask",
    "TagQueue",
    "UntagQueue",
];

/// One decoded request.
#[derive(Debug)]
pub enum Action {
    CreateQueue(CreateQueue),
    GetQueueUrl(GetQueueUrl),
    ListQueues(ListQueues),
    DeleteQueue(QueueRef),
    GetQueueAttributes(GetQueueAttributes),
    SetQueueAttributes(SetQueueAttributes),
    SendMessage(SendMessage),
    SendMessageBatch(SendMessageBatch),
    ReceiveMessage(ReceiveMessage),
    DeleteMessage(DeleteMessage),
    DeleteMessageBatch(DeleteMessageBatch),
    ChangeMessageVisibility(ChangeMessageVisibility),
    ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatch),
    PurgeQueue(QueueRef),
    TagQueue(TagQueue),
    UntagQueue(UntagQueue),
    ListQueueTags(QueueRef),
    AddPermission(AddPermission),
    RemovePermission(RemovePermission),
    ListDeadLetterSourceQueues(ListDeadLetterSourceQueues),
    StartMessageMoveTask(StartMessageMoveTask),
    CancelMessageMoveTask(CancelMessageMoveTask),
    ListMessageMoveTasks(ListMessageMoveTasks),
}

/// Where a request's members come from.
pub enum Input<'a> {
    /// A JSON 1.0 body (empty means `{}`).
    Json(&'a [u8]),
    /// A Query-protocol form, already unflattened into the JSON shape.
    Value(serde_json::Value),
}

impl Input<'_> {
    fn parse<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        match self {
            Input::Json(bytes) => {
                let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { bytes };
                serde_json::from_slice(bytes).map_err(|e| ApiError::Serialization(format!("Malformed request body: {e}")))
            }
            Input::Value(v) => serde_json::from_value(v).map_err(|e| ApiError::Serialization(format!("Malformed request: {e}"))),
        }
    }
}

impl Action {
    /// Decodes the members of operation `name`.
    pub fn decode(name: &str, input: Input<'_>) -> Result<Action, ApiError> {
        Ok(match name {
            "CreateQueue" => Action::CreateQueue(input.parse()?),
            "GetQueueUrl" => Action::GetQueueUrl(input.parse()?),
            "ListQueues" => Action::ListQueues(input.parse()?),
            "DeleteQueue" => Action::DeleteQueue(input.parse()?),
            "GetQueueAttributes" => Action::GetQueueAttributes(input.parse()?),
            "SetQueueAttributes" => Action::SetQueueAttributes(input.parse()?),
            "SendMessage" => Action::SendMessage(input.parse()?),
            "SendMessageBatch" => Action::SendMessageBatch(input.parse()?),
            "ReceiveMessage" => Action::ReceiveMessage(input.parse()?),
            "DeleteMessage" => Action::DeleteMessage(input.parse()?),
            "DeleteMessageBatch" => Action::DeleteMessageBatch(input.parse()?),
            "ChangeMessageVisibility" => Action::ChangeMessageVisibility(input.parse()?),
            "ChangeMessageVisibilityBatch" => Action::ChangeMessageVisibilityBatch(input.parse()?),
            "PurgeQueue" => Action::PurgeQueue(input.parse()?),
            "TagQueue" => Action::TagQueue(input.parse()?),
            "UntagQueue" => Action::UntagQueue(input.parse()?),
            "ListQueueTags" => Action::ListQueueTags(input.parse()?),
            "AddPermission" => Action::AddPermission(input.parse()?),
            "RemovePermission" => Action::RemovePermission(input.parse()?),
            "ListDeadLetterSourceQueues" => Action::ListDeadLetterSourceQueues(input.parse()?),
            "StartMessageMoveTask" => Action::StartMessageMoveTask(input.parse()?),
            "CancelMessageMoveTask" => Action::CancelMessageMoveTask(input.parse()?),
            "ListMessageMoveTasks" => Action::ListMessageMoveTasks(input.parse()?),
            other => return Err(ApiError::UnknownOperation(format!("The action {other} is not valid for this endpoint."))),
        })
    }
}

/// Returns a required member or AWS's MissingParameter.
pub fn required<T>(value: Option<T>, name: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ApiError::Engine(EngineError::MissingParameter(name.to_string())))
}

/// The queue name a QueueUrl points at: its last path segment.
pub fn queue_name(url: &str) -> Result<String, ApiError> {
    let url = url.split(['?', '#']).next().unwrap_or("");
    // Drop scheme and authority: only the path names the queue.
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("", |i| &rest[i..]),
        None => url,
    };
    match path.trim_end_matches('/').rsplit('/').next() {
        Some(name) if !name.is_empty() && !name.contains(':') => Ok(name.to_string()),
        _ => Err(ApiError::Engine(EngineError::QueueDoesNotExist)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateQueue {
    pub queue_name: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, rename = "tags")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueUrl {
    pub queue_name: Option<String>,
    #[serde(rename = "QueueOwnerAWSAccountId")]
    pub queue_owner_aws_account_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListQueues {
    pub queue_name_prefix: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

/// Operations whose only member is the queue.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueRef {
    pub queue_url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetQueueAttributes {
    pub queue_url: Option<String>,
    #[serde(default)]
    pub attribute_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetQueueAttributes {
    pub queue_url: Option<String>,
    pub attributes: Option<BTreeMap<String, String>>,
}

/// A message attribute value as it travels (binary values are base64 strings on the wire).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WireAttributeValue {
    pub data_type: Option<String>,
    pub string_value: Option<String>,
    pub binary_value: Option<String>,
    /// Reserved by AWS ("not implemented"); a non-empty list is UnsupportedOperation.
    #[serde(default)]
    pub string_list_values: Vec<String>,
    #[serde(default)]
    pub binary_list_values: Vec<String>,
}

/// Converts wire attribute values into the engine's form.
pub fn attributes(map: BTreeMap<String, WireAttributeValue>) -> Result<Attributes, ApiError> {
    map.into_iter()
        .map(|(name, v)| {
            if !v.string_list_values.is_empty() || !v.binary_list_values.is_empty() {
                return Err(ApiError::UnsupportedOperation(format!("Message attribute list values in attribute '{name}'")));
            }
            let data_type = v.data_type.ok_or_else(|| {
                ApiError::Engine(EngineError::InvalidParameterValue(format!(
                    "The message attribute '{name}' must contain non-empty message attribute type."
                )))
            })?;
            let binary_value = match v.binary_value {
                None => None,
                Some(b) => Some(BASE64.decode(b.trim()).map_err(|_| {
                    ApiError::Engine(EngineError::InvalidParameterValue(format!(
                        "The message attribute '{name}' has an invalid base64 Binary value."
                    )))
                })?),
            };
            Ok((name, AttributeValue { data_type, string_value: v.string_value, binary_value }))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessage {
    pub queue_url: Option<String>,
    pub message_body: Option<String>,
    pub delay_seconds: Option<i64>,
    #[serde(default)]
    pub message_attributes: BTreeMap<String, WireAttributeValue>,
    #[serde(default)]
    pub message_system_attributes: BTreeMap<String, WireAttributeValue>,
    pub message_deduplication_id: Option<String>,
    pub message_group_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatchEntry {
    pub id: Option<String>,
    pub message_body: Option<String>,
    pub delay_seconds: Option<i64>,
    #[serde(default)]
    pub message_attributes: BTreeMap<String, WireAttributeValue>,
    #[serde(default)]
    pub message_system_attributes: BTreeMap<String, WireAttributeValue>,
    pub message_deduplication_id: Option<String>,
    pub message_group_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SendMessageBatch {
    pub queue_url: Option<String>,
    pub entries: Option<Vec<SendMessageBatchEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReceiveMessage {
    pub queue_url: Option<String>,
    #[serde(default)]
    pub attribute_names: Vec<String>,
    #[serde(default)]
    pub message_system_attribute_names: Vec<String>,
    #[serde(default)]
    pub message_attribute_names: Vec<String>,
    pub max_number_of_messages: Option<i64>,
    pub visibility_timeout: Option<i64>,
    pub wait_time_seconds: Option<i64>,
    pub receive_request_attempt_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessage {
    pub queue_url: Option<String>,
    pub receipt_handle: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatchEntry {
    pub id: Option<String>,
    pub receipt_handle: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeleteMessageBatch {
    pub queue_url: Option<String>,
    pub entries: Option<Vec<DeleteMessageBatchEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibility {
    pub queue_url: Option<String>,
    pub receipt_handle: Option<String>,
    pub visibility_timeout: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatchEntry {
    pub id: Option<String>,
    pub receipt_handle: Option<String>,
    pub visibility_timeout: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChangeMessageVisibilityBatch {
    pub queue_url: Option<String>,
    pub entries: Option<Vec<ChangeMessageVisibilityBatchEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TagQueue {
    pub queue_url: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UntagQueue {
    pub queue_url: Option<String>,
    pub tag_keys: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddPermission {
    pub queue_url: Option<String>,
    pub label: Option<String>,
    #[serde(rename = "AWSAccountIds")]
    pub aws_account_ids: Option<Vec<String>>,
    pub actions: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RemovePermission {
    pub queue_url: Option<String>,
    pub label: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListDeadLetterSourceQueues {
    pub queue_url: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartMessageMoveTask {
    pub source_arn: Option<String>,
    pub destination_arn: Option<String>,
    pub max_number_of_messages_per_second: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CancelMessageMoveTask {
    pub task_handle: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMessageMoveTasks {
    pub source_arn: Option<String>,
    pub max_results: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_name_is_the_last_path_segment() {
        assert_eq!(queue_name("http://localhost:9324/000000000000/my-q").unwrap(), "my-q");
        assert_eq!(queue_name("/000000000000/my-q/").unwrap(), "my-q");
        assert!(queue_name("").is_err());
        assert!(queue_name("http://host/").is_err());
    }

    #[test]
    fn missing_members_and_bad_types() {
        let a = Action::decode("SendMessage", Input::Json(br#"{"QueueUrl":"/1/q"}"#)).unwrap();
        let Action::SendMessage(s) = a else { panic!() };
        assert!(required(s.message_body, "MessageBody").is_err());
        assert!(matches!(
            Action::decode("ReceiveMessage", Input::Json(br#"{"QueueUrl":"/1/q","MaxNumberOfMessages":"x"}"#)),
            Err(ApiError::Serialization(_))
        ));
        assert!(matches!(Action::decode("CreateQueue", Input::Json(b"[1]")), Err(ApiError::Serialization(_))));
        assert!(matches!(Action::decode("Nope", Input::Json(b"{}")), Err(ApiError::UnknownOperation(_))));
    }
}
