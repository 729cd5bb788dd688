//! The SNS operations, declared once (`sns_operations!`): from that one table come the typed
//! request ([`SnsAction`], one variant per operation sluice implements, with its decoded input),
//! the typed answer ([`SnsReply`]), the [`Operation`] names, the metrics list ([`OPERATIONS`]) and
//! the refusal of the SNS operations sluice knows but does not implement.
//!
//! The inputs and outputs here are protocol-neutral: decoding them from the Query form and
//! rendering them as XML is [`super::wire`]'s job (each input's decoder is derived by
//! `sns_input!` from its field list, in declaration order, so a missing required parameter is
//! reported before any other check, as before). Handlers take these inputs and return these
//! outputs.

use std::collections::BTreeMap;

use super::error::{SnsError, SnsResult};
use super::wire::{Form, FormField, MessageAttributesField};
use crate::query::Node;

/// Declares the SNS operations: `Name(Input) -> Output;` for each one sluice implements, then the
/// names of the ones it refuses with `InvalidAction` ("not supported by sluice").
macro_rules! sns_operations {
    (
        implemented { $( $op:ident($input:ty) -> $output:ty; )* }
        unsupported { $( $un:ident ),* $(,)? }
    ) => {
        /// One decoded SNS request.
        #[derive(Debug)]
        pub enum SnsAction {
            $( $op($input), )*
        }

        /// A handler's answer, rendered by [`super::wire`].
        #[derive(Debug)]
        pub enum SnsReply {
            $( $op($output), )*
        }

        /// The names of the operations sluice implements.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Operation {
            $( $op, )*
        }

        /// The SNS operations sluice serves, as metrics label them (`SNS.<Action>`).
        pub const OPERATIONS: &[&str] = &[ $( concat!("SNS.", stringify!($op)), )* ];

        impl Operation {
            /// The action name (`CreateTopic`).
            pub fn name(self) -> &'static str {
                match self {
                    $( Operation::$op => stringify!($op), )*
                }
            }
        }

        impl SnsAction {
            /// Decodes the request a form holds: its `Action`, then that operation's input.
            pub fn decode(form: &Form) -> SnsResult<SnsAction> {
                match form.action().unwrap_or("") {
                    $( stringify!($op) => Ok(SnsAction::$op(<$input>::decode(&form.root(), "")?)), )*
                    "" => Err(SnsError::invalid("Missing Action")),
                    $( stringify!($un) => Err(SnsError::UnsupportedAction(stringify!($un))), )*
                    other => Err(SnsError::InvalidAction(other.to_string())),
                }
            }

            /// Which operation this is.
            pub fn operation(&self) -> Operation {
                match self {
                    $( SnsAction::$op(_) => Operation::$op, )*
                }
            }
        }

        impl SnsReply {
            /// The content of the `<...Result>` element, or None for operations whose response
            /// has no Result element.
            pub fn result_xml(&self) -> Option<String> {
                match self {
                    $( SnsReply::$op(out) => super::wire::ResultXml::result_xml(out), )*
                }
            }
        }
    };
}

sns_operations! {
    implemented {
        CreateTopic(CreateTopicInput) -> TopicArnOutput;
        DeleteTopic(DeleteTopicInput) -> NoResult;
        ListTopics(ListTopicsInput) -> ListTopicsOutput;
        GetTopicAttributes(GetTopicAttributesInput) -> AttributesOutput;
        SetTopicAttributes(SetTopicAttributesInput) -> NoResult;
        Subscribe(SubscribeInput) -> SubscriptionArnOutput;
        ConfirmSubscription(ConfirmSubscriptionInput) -> SubscriptionArnOutput;
        Unsubscribe(UnsubscribeInput) -> NoResult;
        ListSubscriptions(ListSubscriptionsInput) -> ListSubscriptionsOutput;
        ListSubscriptionsByTopic(ListSubscriptionsByTopicInput) -> ListSubscriptionsOutput;
        GetSubscriptionAttributes(GetSubscriptionAttributesInput) -> AttributesOutput;
        SetSubscriptionAttributes(SetSubscriptionAttributesInput) -> NoResult;
        Publish(PublishInput) -> PublishOutput;
        PublishBatch(PublishBatchInput) -> PublishBatchOutput;
        TagResource(TagResourceInput) -> EmptyResult;
        UntagResource(UntagResourceInput) -> EmptyResult;
        ListTagsForResource(ListTagsForResourceInput) -> ListTagsOutput;
    }
    unsupported {
        AddPermission,
        RemovePermission,
        CheckIfPhoneNumberIsOptedOut,
        CreatePlatformApplication,
        CreatePlatformEndpoint,
        CreateSMSSandboxPhoneNumber,
        DeleteEndpoint,
        DeletePlatformApplication,
        DeleteSMSSandboxPhoneNumber,
        GetDataProtectionPolicy,
        GetEndpointAttributes,
        GetPlatformApplicationAttributes,
        GetSMSAttributes,
        GetSMSSandboxAccountStatus,
        ListEndpointsByPlatformApplication,
        ListOriginationNumbers,
        ListPhoneNumbersOptedOut,
        ListPlatformApplications,
        ListSMSSandboxPhoneNumbers,
        OptInPhoneNumber,
        PutDataProtectionPolicy,
        SetEndpointAttributes,
        SetPlatformApplicationAttributes,
        SetSMSAttributes,
        VerifySMSSandboxPhoneNumber,
    }
}

/// Declares an input struct and derives its decoder: each field from the form parameter named
/// beside it (below a node: the form's root for a request, `PublishBatchRequestEntries.member.N`
/// for a batch entry, whose full name prefixes the names in errors), by the field type's
/// [`FormField`] rule (`String`: required; `Option<String>`:
/// optional; `bool`: "true" or not; maps, lists and tags in the Query flattening). Fields decode
/// in declaration order, so the first missing required parameter is the one reported.
macro_rules! sns_input {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $param:literal => $field:ident: $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $name {
            /// Decodes the input from the form parameters below `node`, whose names start with
            /// `prefix`.
            pub fn decode(node: &Node<'_, '_>, prefix: &str) -> SnsResult<Self> {
                Ok($name {
                    $( $field: <$ty as FormField>::from_form(node.child($param), &|| format!("{prefix}{}", $param))?, )*
                })
            }
        }
    };
}

sns_input! {
    pub struct CreateTopicInput {
        "Name" => name: String,
        "Attributes" => attributes: BTreeMap<String, String>,
        "Tags" => tags: Vec<Tag>,
    }
}

sns_input! {
    pub struct DeleteTopicInput {
        "TopicArn" => topic_arn: String,
    }
}

sns_input! {
    pub struct ListTopicsInput {
        /// A page offset as we hand it out; checked by the handler.
        "NextToken" => next_token: Option<String>,
    }
}

sns_input! {
    pub struct GetTopicAttributesInput {
        "TopicArn" => topic_arn: String,
    }
}

sns_input! {
    pub struct SetTopicAttributesInput {
        "TopicArn" => topic_arn: String,
        "AttributeName" => attribute_name: String,
        "AttributeValue" => attribute_value: Option<String>,
    }
}

sns_input! {
    pub struct SubscribeInput {
        "TopicArn" => topic_arn: String,
        "Protocol" => protocol: String,
        "Endpoint" => endpoint: Option<String>,
        "ReturnSubscriptionArn" => return_subscription_arn: bool,
        "Attributes" => attributes: BTreeMap<String, String>,
    }
}

sns_input! {
    pub struct ConfirmSubscriptionInput {
        "TopicArn" => topic_arn: String,
        "Token" => token: String,
    }
}

sns_input! {
    pub struct UnsubscribeInput {
        "SubscriptionArn" => subscription_arn: String,
    }
}

sns_input! {
    pub struct ListSubscriptionsInput {
        "NextToken" => next_token: Option<String>,
    }
}

sns_input! {
    pub struct ListSubscriptionsByTopicInput {
        "TopicArn" => topic_arn: String,
        "NextToken" => next_token: Option<String>,
    }
}

sns_input! {
    pub struct GetSubscriptionAttributesInput {
        "SubscriptionArn" => subscription_arn: String,
    }
}

sns_input! {
    pub struct SetSubscriptionAttributesInput {
        "SubscriptionArn" => subscription_arn: String,
        "AttributeName" => attribute_name: String,
        "AttributeValue" => attribute_value: Option<String>,
    }
}

sns_input! {
    pub struct PublishInput {
        "TopicArn" => topic_arn: Option<String>,
        "TargetArn" => target_arn: Option<String>,
        "PhoneNumber" => phone_number: Option<String>,
        "Message" => message: Option<String>,
        "Subject" => subject: Option<String>,
        "MessageStructure" => message_structure: Option<String>,
        "MessageAttributes" => message_attributes: MessageAttributesField,
        "MessageGroupId" => message_group_id: Option<String>,
        "MessageDeduplicationId" => message_deduplication_id: Option<String>,
    }
}

sns_input! {
    /// One entry of a PublishBatch (`PublishBatchRequestEntries.member.N.*`).
    pub struct BatchEntryInput {
        "Id" => id: String,
        "Message" => message: Option<String>,
        "Subject" => subject: Option<String>,
        "MessageStructure" => message_structure: Option<String>,
        "MessageAttributes" => message_attributes: MessageAttributesField,
        "MessageGroupId" => message_group_id: Option<String>,
        "MessageDeduplicationId" => message_deduplication_id: Option<String>,
    }
}

sns_input! {
    pub struct PublishBatchInput {
        "TopicArn" => topic_arn: String,
        "PublishBatchRequestEntries" => entries: Vec<BatchEntryInput>,
    }
}

sns_input! {
    pub struct TagResourceInput {
        "ResourceArn" => resource_arn: String,
        "Tags" => tags: Vec<Tag>,
    }
}

sns_input! {
    pub struct UntagResourceInput {
        "ResourceArn" => resource_arn: String,
        "TagKeys" => tag_keys: Vec<String>,
    }
}

sns_input! {
    pub struct ListTagsForResourceInput {
        "ResourceArn" => resource_arn: String,
    }
}

/// A tag of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A message attribute as published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MsgAttr {
    pub data_type: String,
    pub string_value: Option<String>,
    pub binary_value: Option<Vec<u8>>,
}

/// The answer of an operation whose response has no Result element.
#[derive(Debug, Clone, Default)]
pub struct NoResult;

/// The answer of an operation whose response has an empty Result element.
#[derive(Debug, Clone, Default)]
pub struct EmptyResult;

#[derive(Debug, Clone)]
pub struct TopicArnOutput {
    pub topic_arn: String,
}

#[derive(Debug, Clone)]
pub struct SubscriptionArnOutput {
    /// The ARN, or AWS's "pending confirmation" stand-in.
    pub subscription_arn: String,
}

#[derive(Debug, Clone)]
pub struct ListTopicsOutput {
    pub topic_arns: Vec<String>,
    pub next_token: Option<String>,
}

/// Get{Topic,Subscription}Attributes.
#[derive(Debug, Clone)]
pub struct AttributesOutput {
    pub attributes: BTreeMap<String, String>,
}

/// One listed subscription.
#[derive(Debug, Clone)]
pub struct SubscriptionSummary {
    pub topic_arn: String,
    pub protocol: String,
    /// The ARN, or `PendingConfirmation`.
    pub subscription_arn: String,
    pub owner: String,
    pub endpoint: String,
}

#[derive(Debug, Clone)]
pub struct ListSubscriptionsOutput {
    pub subscriptions: Vec<SubscriptionSummary>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PublishOutput {
    pub message_id: String,
    /// FIFO topics only.
    pub sequence_number: Option<String>,
}

/// A PublishBatch entry that was published.
#[derive(Debug, Clone)]
pub struct BatchSuccess {
    pub id: String,
    pub message_id: String,
    pub sequence_number: Option<String>,
}

/// A PublishBatch entry that failed, and why.
#[derive(Debug, Clone)]
pub struct BatchFailure {
    pub id: String,
    pub error: SnsError,
}

/// Each list in entry order.
#[derive(Debug, Clone)]
pub struct PublishBatchOutput {
    pub successful: Vec<BatchSuccess>,
    pub failed: Vec<BatchFailure>,
}

#[derive(Debug, Clone)]
pub struct ListTagsOutput {
    pub tags: Vec<Tag>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> SnsResult<SnsAction> {
        SnsAction::decode(&Form::parse(None, body.as_bytes()))
    }

    #[test]
    fn operations_are_declared_once() {
        assert_eq!(OPERATIONS.len(), 17);
        assert_eq!(OPERATIONS[0], "SNS.CreateTopic");
        assert!(OPERATIONS.contains(&"SNS.ListTagsForResource"));
        let action = decode("Action=ListTopics").unwrap();
        assert_eq!(action.operation(), Operation::ListTopics);
        assert_eq!(action.operation().name(), "ListTopics");
    }

    #[test]
    fn decoding() {
        let SnsAction::CreateTopic(input) = decode(
            "Action=CreateTopic&Name=t&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=x+y&Tags.member.1.Key=k&Tags.member.1.Value=v",
        )
        .unwrap() else {
            panic!("not CreateTopic")
        };
        assert_eq!(input.name, "t");
        assert_eq!(input.attributes.get("DisplayName").map(String::as_str), Some("x y"));
        assert_eq!(input.tags, vec![Tag { key: "k".into(), value: "v".into() }]);

        let SnsAction::PublishBatch(batch) = decode(
            "Action=PublishBatch&TopicArn=a&PublishBatchRequestEntries.member.1.Id=x&PublishBatchRequestEntries.member.1.Message=m&PublishBatchRequestEntries.member.2.Id=y&PublishBatchRequestEntries.member.4.Id=z",
        )
        .unwrap() else {
            panic!("not PublishBatch")
        };
        let ids: Vec<&str> = batch.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, vec!["x", "y"], "entries end at the first missing Id");
        assert_eq!(batch.entries[0].message.as_deref(), Some("m"));

        // Required parameters in declaration order; unknown, unsupported and missing actions.
        let err = |body: &str| decode(body).unwrap_err();
        assert_eq!(err("Action=SetTopicAttributes").to_string(), "Invalid parameter: TopicArn");
        assert_eq!(err("Action=SetTopicAttributes&TopicArn=a").to_string(), "Invalid parameter: AttributeName");
        assert!(matches!(err("Action=AddPermission"), SnsError::UnsupportedAction("AddPermission")));
        assert!(matches!(err("Action=listtopics"), SnsError::InvalidAction(a) if a == "listtopics"));
        assert_eq!(err("Name=x").to_string(), "Missing Action");
    }
}
