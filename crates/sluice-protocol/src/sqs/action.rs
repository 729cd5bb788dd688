//! The typed requests: one [`Action`] per SQS operation, decoded from either wire protocol.
//!
//! Both protocols end in the same serde DTOs: a JSON 1.0 body deserialises into them directly, a
//! Query-protocol form is first unflattened into the same JSON shape (`Form::into_json` in
//! `crate::query`). Required
//! members are `Option`s checked here, so a missing one is AWS's `MissingParameter`, not a serde error.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use sluice_engine::message::{AttributeValue, Attributes};
use sluice_engine::EngineError;

use super::error::ApiError;
use crate::query::{Kind, Member};

/// Every SQS operation, each declared once: its name is the `Action` variant, and its input is the
/// shape beside it (declared with `shape!` below). The enum, the list of names, decoding from either
/// protocol and the Query members all derive from this table; `dispatch` holds each handler.
macro_rules! operations {
    ($($op:ident($input:ident)),* $(,)?) => {
        /// One decoded request.
        #[derive(Debug)]
        pub enum Action {
            $($op($input),)*
        }

        /// Every operation of the SQS service model, in the table's order.
        pub const OPERATIONS: &[&str] = &[$(stringify!($op)),*];

        /// The operation named `name`, as a static name (metrics label requests with it).
        pub fn operation(name: &str) -> Option<&'static str> {
            OPERATIONS.iter().copied().find(|op| *op == name)
        }

        impl Action {
            /// The operation's name, as both protocols spell it.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Action::$op(_) => stringify!($op),)*
                }
            }

            /// Decodes the members of operation `name`.
            pub fn decode(name: &str, input: Input<'_>) -> Result<Action, ApiError> {
                Ok(match name {
                    $(stringify!($op) => Action::$op(input.parse()?),)*
                    other => return Err(unknown_operation(other)),
                })
            }

            /// The input members of operation `name` as the Query protocol flattens them (None: no such operation).
            pub(crate) fn query_members(name: &str) -> Option<&'static [Member]> {
                match name {
                    $(stringify!($op) => Some($input::MEMBERS),)*
                    _ => None,
                }
            }
        }
    };
}

/// AWS's answer to an `Action` that names no operation.
pub(crate) fn unknown_operation(name: &str) -> ApiError {
    ApiError::UnknownOperation(format!("The action {name} is not valid for this endpoint."))
}

/// Declares an input shape once: the serde DTO both protocols decode into (a JSON 1.0 body directly,
/// a Query form after [`crate::query`] unflattens it with [`Member`]s), and those members:
/// `field: Type = "JsonName" / "QueryName": Kind`. Required members are `Option`s checked by the
/// handler ([`required`]), so a missing one is AWS's `MissingParameter`, not a serde error.
macro_rules! shape {
    ($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty = $json:literal / $query:literal: $kind:expr),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize)]
        pub struct $name {
            $(#[serde(rename = $json, default)] pub $field: $ty,)*
        }

        impl $name {
            /// The members as the Query protocol names and flattens them.
            pub(crate) const MEMBERS: &'static [Member] = &[$(($json, $query, $kind)),*];
        }
    };
}

operations! {
    AddPermission(AddPermission),
    CancelMessageMoveTask(CancelMessageMoveTask),
    ChangeMessageVisibility(ChangeMessageVisibility),
    ChangeMessageVisibilityBatch(ChangeMessageVisibilityBatch),
    CreateQueue(CreateQueue),
    DeleteMessage(DeleteMessage),
    DeleteMessageBatch(DeleteMessageBatch),
    DeleteQueue(QueueRef),
    GetQueueAttributes(GetQueueAttributes),
    GetQueueUrl(GetQueueUrl),
    ListDeadLetterSourceQueues(ListDeadLetterSourceQueues),
    ListMessageMoveTasks(ListMessageMoveTasks),
    ListQueueTags(QueueRef),
    ListQueues(ListQueues),
    PurgeQueue(QueueRef),
    ReceiveMessage(ReceiveMessage),
    RemovePermission(RemovePermission),
    SendMessage(SendMessage),
    SendMessageBatch(SendMessageBatch),
    SetQueueAttributes(SetQueueAttributes),
    StartMessageMoveTask(StartMessageMoveTask),
    TagQueue(TagQueue),
    UntagQueue(UntagQueue),
}

type Attrs = BTreeMap<String, WireAttributeValue>;
type Strings = BTreeMap<String, String>;

shape!(CreateQueue {
    queue_name: Option<String> = "QueueName" / "QueueName": Kind::Str,
    attributes: Strings = "Attributes" / "Attribute": Kind::StrMap("Name", "Value"),
    tags: Strings = "tags" / "Tag": Kind::StrMap("Key", "Value"),
});
shape!(GetQueueUrl {
    queue_name: Option<String> = "QueueName" / "QueueName": Kind::Str,
    queue_owner_aws_account_id: Option<String> = "QueueOwnerAWSAccountId" / "QueueOwnerAWSAccountId": Kind::Str,
});
shape!(ListQueues {
    queue_name_prefix: Option<String> = "QueueNamePrefix" / "QueueNamePrefix": Kind::Str,
    next_token: Option<String> = "NextToken" / "NextToken": Kind::Str,
    max_results: Option<i64> = "MaxResults" / "MaxResults": Kind::Int,
});
shape!(
    /// Operations whose only member is the queue.
    QueueRef { queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str }
);
shape!(GetQueueAttributes {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    attribute_names: Vec<String> = "AttributeNames" / "AttributeName": Kind::StrList,
});
shape!(SetQueueAttributes {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    attributes: Option<Strings> = "Attributes" / "Attribute": Kind::StrMap("Name", "Value"),
});
shape!(SendMessage {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    message_body: Option<String> = "MessageBody" / "MessageBody": Kind::Str,
    delay_seconds: Option<i64> = "DelaySeconds" / "DelaySeconds": Kind::Int,
    message_attributes: Attrs = "MessageAttributes" / "MessageAttribute": Kind::AttrMap,
    message_system_attributes: Attrs = "MessageSystemAttributes" / "MessageSystemAttribute": Kind::AttrMap,
    message_deduplication_id: Option<String> = "MessageDeduplicationId" / "MessageDeduplicationId": Kind::Str,
    message_group_id: Option<String> = "MessageGroupId" / "MessageGroupId": Kind::Str,
});
shape!(SendMessageBatchEntry {
    id: Option<String> = "Id" / "Id": Kind::Str,
    message_body: Option<String> = "MessageBody" / "MessageBody": Kind::Str,
    delay_seconds: Option<i64> = "DelaySeconds" / "DelaySeconds": Kind::Int,
    message_attributes: Attrs = "MessageAttributes" / "MessageAttribute": Kind::AttrMap,
    message_system_attributes: Attrs = "MessageSystemAttributes" / "MessageSystemAttribute": Kind::AttrMap,
    message_deduplication_id: Option<String> = "MessageDeduplicationId" / "MessageDeduplicationId": Kind::Str,
    message_group_id: Option<String> = "MessageGroupId" / "MessageGroupId": Kind::Str,
});
shape!(SendMessageBatch {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    entries: Option<Vec<SendMessageBatchEntry>> = "Entries" / "SendMessageBatchRequestEntry":
        Kind::EntryList(SendMessageBatchEntry::MEMBERS),
});
shape!(ReceiveMessage {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    attribute_names: Vec<String> = "AttributeNames" / "AttributeName": Kind::StrList,
    message_system_attribute_names: Vec<String> = "MessageSystemAttributeNames" / "MessageSystemAttributeName": Kind::StrList,
    message_attribute_names: Vec<String> = "MessageAttributeNames" / "MessageAttributeName": Kind::StrList,
    max_number_of_messages: Option<i64> = "MaxNumberOfMessages" / "MaxNumberOfMessages": Kind::Int,
    visibility_timeout: Option<i64> = "VisibilityTimeout" / "VisibilityTimeout": Kind::Int,
    wait_time_seconds: Option<i64> = "WaitTimeSeconds" / "WaitTimeSeconds": Kind::Int,
    receive_request_attempt_id: Option<String> = "ReceiveRequestAttemptId" / "ReceiveRequestAttemptId": Kind::Str,
});
shape!(DeleteMessage {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    receipt_handle: Option<String> = "ReceiptHandle" / "ReceiptHandle": Kind::Str,
});
shape!(DeleteMessageBatchEntry {
    id: Option<String> = "Id" / "Id": Kind::Str,
    receipt_handle: Option<String> = "ReceiptHandle" / "ReceiptHandle": Kind::Str,
});
shape!(DeleteMessageBatch {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    entries: Option<Vec<DeleteMessageBatchEntry>> = "Entries" / "DeleteMessageBatchRequestEntry":
        Kind::EntryList(DeleteMessageBatchEntry::MEMBERS),
});
shape!(ChangeMessageVisibility {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    receipt_handle: Option<String> = "ReceiptHandle" / "ReceiptHandle": Kind::Str,
    visibility_timeout: Option<i64> = "VisibilityTimeout" / "VisibilityTimeout": Kind::Int,
});
shape!(ChangeMessageVisibilityBatchEntry {
    id: Option<String> = "Id" / "Id": Kind::Str,
    receipt_handle: Option<String> = "ReceiptHandle" / "ReceiptHandle": Kind::Str,
    visibility_timeout: Option<i64> = "VisibilityTimeout" / "VisibilityTimeout": Kind::Int,
});
shape!(ChangeMessageVisibilityBatch {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    entries: Option<Vec<ChangeMessageVisibilityBatchEntry>> = "Entries" / "ChangeMessageVisibilityBatchRequestEntry":
        Kind::EntryList(ChangeMessageVisibilityBatchEntry::MEMBERS),
});
shape!(TagQueue {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    tags: Option<Strings> = "Tags" / "Tag": Kind::StrMap("Key", "Value"),
});
shape!(UntagQueue {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    tag_keys: Option<Vec<String>> = "TagKeys" / "TagKey": Kind::StrList,
});
shape!(AddPermission {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    label: Option<String> = "Label" / "Label": Kind::Str,
    aws_account_ids: Option<Vec<String>> = "AWSAccountIds" / "AWSAccountId": Kind::StrList,
    actions: Option<Vec<String>> = "Actions" / "ActionName": Kind::StrList,
});
shape!(RemovePermission {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    label: Option<String> = "Label" / "Label": Kind::Str,
});
shape!(ListDeadLetterSourceQueues {
    queue_url: Option<String> = "QueueUrl" / "QueueUrl": Kind::Str,
    next_token: Option<String> = "NextToken" / "NextToken": Kind::Str,
    max_results: Option<i64> = "MaxResults" / "MaxResults": Kind::Int,
});
shape!(StartMessageMoveTask {
    source_arn: Option<String> = "SourceArn" / "SourceArn": Kind::Str,
    destination_arn: Option<String> = "DestinationArn" / "DestinationArn": Kind::Str,
    max_number_of_messages_per_second: Option<i64> = "MaxNumberOfMessagesPerSecond" / "MaxNumberOfMessagesPerSecond": Kind::Int,
});
shape!(CancelMessageMoveTask {
    task_handle: Option<String> = "TaskHandle" / "TaskHandle": Kind::Str,
});
shape!(ListMessageMoveTasks {
    source_arn: Option<String> = "SourceArn" / "SourceArn": Kind::Str,
    max_results: Option<i64> = "MaxResults" / "MaxResults": Kind::Int,
});

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
                serde_json::from_slice(bytes)
                    .map_err(|e| ApiError::Serialization(format!("Malformed request body: {e}")))
            }
            Input::Value(v) => {
                serde_json::from_value(v).map_err(|e| ApiError::Serialization(format!("Malformed request: {e}")))
            }
        }
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
                return Err(ApiError::UnsupportedOperation(format!(
                    "Message attribute list values in attribute '{name}'"
                )));
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
