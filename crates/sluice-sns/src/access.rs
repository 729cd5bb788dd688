//! Policies on SNS: a topic's `Policy` attribute (and the key's identity policy) on every signed
//! SNS request, and the queue's policy on every SQS copy a topic delivers, checked as AWS checks
//! it: principal `sns.amazonaws.com`, action `sqs:SendMessage`, `aws:SourceArn` the topic,
//! `aws:SourceAccount` its owner. A topic without a `Policy` has AWS's default one in effect
//! (the owner's account only), which is what [`sluice_engine::iam::authorize`] gives with no
//! resource policy.

use sluice_engine::iam::{self, Principal};
use sluice_protocol::auth::access::{Access, Caller, PolicyMode};

use crate::action::SnsAction;
use crate::error::{SnsError, SnsResult};
use crate::Inner;

/// The topic a subscription ARN (`TOPIC_ARN:uuid`) belongs to.
fn topic_of_subscription(arn: &str) -> &str {
    arn.rsplit_once(':').map_or(arn, |(topic, _)| topic)
}

impl Inner {
    /// The action's IAM name and the topic ARN it is about (None: an account-level action).
    fn target(&self, action: &SnsAction) -> (&'static str, Option<String>) {
        use SnsAction as A;
        let name = action.operation().name();
        let topic = match action {
            A::CreateTopic(i) => Some(self.topic_arn(&i.name)),
            A::ListTopics(_) | A::ListSubscriptions(_) => None,
            A::DeleteTopic(i) => Some(i.topic_arn.clone()),
            A::GetTopicAttributes(i) => Some(i.topic_arn.clone()),
            A::SetTopicAttributes(i) => Some(i.topic_arn.clone()),
            A::Subscribe(i) => Some(i.topic_arn.clone()),
            A::ConfirmSubscription(i) => Some(i.topic_arn.clone()),
            A::ListSubscriptionsByTopic(i) => Some(i.topic_arn.clone()),
            A::Unsubscribe(i) => Some(topic_of_subscription(&i.subscription_arn).to_string()),
            A::GetSubscriptionAttributes(i) => Some(topic_of_subscription(&i.subscription_arn).to_string()),
            A::SetSubscriptionAttributes(i) => Some(topic_of_subscription(&i.subscription_arn).to_string()),
            A::Publish(i) => i.topic_arn.clone().or_else(|| i.target_arn.clone()),
            A::PublishBatch(i) => Some(i.topic_arn.clone()),
            A::TagResource(i) => Some(i.resource_arn.clone()),
            A::UntagResource(i) => Some(i.resource_arn.clone()),
            A::ListTagsForResource(i) => Some(i.resource_arn.clone()),
        };
        (name, topic)
    }

    /// Whether `caller` may run `action`: `AuthorizationError` with AWS's message if not.
    pub(crate) fn authorize(&self, caller: &Caller<'_>, action: &SnsAction) -> SnsResult<()> {
        if caller.unrestricted(&self.account) {
            return Ok(());
        }
        let (operation, topic) = self.target(action);
        let policy = topic.as_deref().and_then(|t| self.lock().topics.get(t).and_then(|t| t.policy.clone()));
        let resource = topic.unwrap_or_else(|| format!("arn:aws:sns:{}:{}:*", self.region, self.account));
        let iam_action = format!("sns:{operation}");
        let access = Access {
            action: &iam_action,
            resource: &resource,
            resource_account: &self.account,
            policy: policy.as_deref(),
            now_ms: self.clock.now_ms(),
        };
        caller.check(&access).map_err(SnsError::AuthorizationError)
    }

    /// Whether the queue's policy lets `topic_arn` deliver to `queue` (a queue of this server).
    /// Refusals are counted, and logged once per topic and queue.
    pub(crate) fn delivery_allowed(&self, topic_arn: &str, queue: &str) -> bool {
        let Ok(policy) = self.engine.queue_policy(queue) else { return true }; // gone: the send reports it
        if policy.is_none() && !self.auth {
            return true;
        }
        let resource = self.engine.queue_arn(queue);
        let req = iam::Request {
            principal: Principal::Service("sns.amazonaws.com"),
            action: "sqs:SendMessage",
            resource: &resource,
            resource_account: self.engine.account_id(),
            source_arn: Some(topic_arn),
            source_account: Some(&self.account),
            secure_transport: Some(true),
            source_ip: None,
            now_ms: self.clock.now_ms(),
        };
        let Err(denial) = iam::authorize(None, policy.as_deref(), &req) else { return true };
        self.denied_deliveries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let first = self
            .denied_logged
            .lock()
            .map(|mut seen| seen.insert((topic_arn.to_string(), queue.to_string())))
            .unwrap_or(true);
        if first {
            let message = denial.message("sns.amazonaws.com", "sqs:sendmessage", &resource);
            let outcome = match self.policy_mode {
                PolicyMode::Enforce => "its SQS copies are dropped, as on AWS (logged once)",
                PolicyMode::Log => "policy mode log: delivered anyway (logged once)",
            };
            tracing::warn!(topic = topic_arn, queue, %message, "the queue's policy does not allow the topic to send: {outcome}");
        }
        self.policy_mode == PolicyMode::Log
    }
}
