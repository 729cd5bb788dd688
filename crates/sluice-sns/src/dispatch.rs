//! Routing: the action name of a request to the handler that answers it, and the lists of
//! the operations sluice serves and the ones it knows but does not implement.

use std::sync::Arc;

use crate::wire::{Params, SnsError, SnsResult};
use crate::Inner;

/// The SNS operations sluice serves, as metrics label them (`SNS.<Action>`).
pub const OPERATIONS: &[&str] = &[
    "SNS.CreateTopic",
    "SNS.DeleteTopic",
    "SNS.ListTopics",
    "SNS.GetTopicAttributes",
    "SNS.SetTopicAttributes",
    "SNS.Subscribe",
    "SNS.ConfirmSubscription",
    "SNS.Unsubscribe",
    "SNS.ListSubscriptions",
    "SNS.ListSubscriptionsByTopic",
    "SNS.GetSubscriptionAttributes",
    "SNS.SetSubscriptionAttributes",
    "SNS.Publish",
    "SNS.PublishBatch",
    "SNS.TagResource",
    "SNS.UntagResource",
    "SNS.ListTagsForResource",
];

const UNSUPPORTED: &[&str] = &[
    "AddPermission",
    "RemovePermission",
    "CheckIfPhoneNumberIsOptedOut",
    "CreatePlatformApplication",
    "CreatePlatformEndpoint",
    "CreateSMSSandboxPhoneNumber",
    "DeleteEndpoint",
    "DeletePlatformApplication",
    "DeleteSMSSandboxPhoneNumber",
    "GetDataProtectionPolicy",
    "GetEndpointAttributes",
    "GetPlatformApplicationAttributes",
    "GetSMSAttributes",
    "GetSMSSandboxAccountStatus",
    "ListEndpointsByPlatformApplication",
    "ListOriginationNumbers",
    "ListPhoneNumbersOptedOut",
    "ListPlatformApplications",
    "ListSMSSandboxPhoneNumbers",
    "OptInPhoneNumber",
    "PutDataProtectionPolicy",
    "SetEndpointAttributes",
    "SetPlatformApplicationAttributes",
    "SetSMSAttributes",
    "VerifySMSSandboxPhoneNumber",
];

impl Inner {
    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        action: &str,
        p: &Params,
        base_url: &str,
    ) -> SnsResult<Option<String>> {
        match action {
            "CreateTopic" => self.create_topic(p).await.map(Some),
            "DeleteTopic" => self.delete_topic(p).await.map(|_| None),
            "ListTopics" => self.list_topics(p).map(Some),
            "GetTopicAttributes" => self.get_topic_attributes(p).map(Some),
            "SetTopicAttributes" => self.set_topic_attributes(p).await.map(|_| None),
            "Subscribe" => self.subscribe(p, base_url).await.map(Some),
            "ConfirmSubscription" => self.confirm_subscription(p).await.map(Some),
            "Unsubscribe" => self.unsubscribe(p).await.map(|_| None),
            "ListSubscriptions" => self.list_subscriptions(p, None).map(Some),
            "ListSubscriptionsByTopic" => {
                let arn = p.required("TopicArn")?.to_string();
                self.topic(&arn)?;
                self.list_subscriptions(p, Some(&arn)).map(Some)
            }
            "GetSubscriptionAttributes" => self.get_subscription_attributes(p).map(Some),
            "SetSubscriptionAttributes" => self.set_subscription_attributes(p).await.map(|_| None),
            "Publish" => self.publish(p, base_url).await.map(Some),
            "PublishBatch" => self.publish_batch(p, base_url).await.map(Some),
            "TagResource" => self.tag_resource(p).await.map(|_| Some(String::new())),
            "UntagResource" => self.untag_resource(p).await.map(|_| Some(String::new())),
            "ListTagsForResource" => self.list_tags(p).map(Some),
            "" => Err(SnsError::invalid("Missing Action")),
            a if UNSUPPORTED.contains(&a) => Err(SnsError::new(
                "InvalidAction",
                400,
                format!("The action {a} is not supported by sluice (SMS, mobile push and permissions are not implemented)."),
            )),
            a => Err(SnsError::new("InvalidAction", 400, format!("The action {a} is not valid for this endpoint."))),
        }
    }
}
