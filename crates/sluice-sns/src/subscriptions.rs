//! Subscriptions: Subscribe (with the SubscriptionConfirmation of HTTP(S) endpoints),
//! ConfirmSubscription, Unsubscribe, ListSubscriptions(ByTopic), Get/SetSubscriptionAttributes.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_store::Namespace;

use crate::action::{
    AttributesOutput, ConfirmSubscriptionInput, GetSubscriptionAttributesInput, ListSubscriptionsByTopicInput,
    ListSubscriptionsOutput, NoResult, SetSubscriptionAttributesInput, SubscribeInput, SubscriptionArnOutput,
    SubscriptionSummary, UnsubscribeInput,
};
use crate::delivery::{self, PendingDelivery, RetryPolicy};
use crate::error::{SnsError, SnsResult};
use crate::records::{sub_key, Subscription};
use crate::topics::{DEFAULT_EFFECTIVE_DELIVERY_POLICY, PAGE};
use crate::validation::{check_arn, page_start, validate_sub_attrs};
use crate::wire;
use crate::Inner;

impl Inner {
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        input: SubscribeInput,
        base_url: &str,
    ) -> SnsResult<SubscriptionArnOutput> {
        let topic_arn = input.topic_arn;
        let protocol = input.protocol;
        let endpoint = input.endpoint.unwrap_or_default();
        let return_arn = input.return_subscription_arn;
        let mut attrs = input.attributes;
        check_arn(&topic_arn, "TopicArn")?;
        match protocol.as_str() {
            "sqs" => {
                if delivery::queue_name_of_arn(&endpoint).is_none() {
                    return Err(SnsError::invalid("Invalid parameter: SQS endpoint ARN"));
                }
            }
            "http" | "https" => {
                if !endpoint.starts_with(&format!("{protocol}://")) {
                    return Err(SnsError::invalid("Invalid parameter: Endpoint must match the specified protocol"));
                }
                // The SSRF guard: no loopback, private or link-local subscriber unless allowed.
                self.endpoints.check_endpoint(&endpoint).await.map_err(SnsError::invalid)?;
            }
            "email" | "email-json" | "sms" | "application" | "lambda" | "firehose" => {
                return Err(SnsError::invalid(format!(
                    "Invalid parameter: Protocol: {protocol} subscriptions are not supported by sluice (only sqs, http, https)"
                )))
            }
            _ => return Err(SnsError::invalid(format!("Invalid parameter: Amazon SNS does not support this protocol string: {protocol}"))),
        }
        validate_sub_attrs(&attrs, &protocol, &BTreeMap::new(), true)?;
        if attrs.contains_key("FilterPolicy") && !attrs.contains_key("FilterPolicyScope") {
            attrs.insert("FilterPolicyScope".into(), "MessageAttributes".into());
        }
        let _w = self.writes.lock().await;
        let topic = self.topic(&topic_arn)?;
        if protocol == "sqs" && endpoint.ends_with(".fifo") && !topic.fifo {
            return Err(SnsError::invalid(
                "Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics",
            ));
        }
        let existing = self
            .lock()
            .subs
            .values()
            .find(|s| s.topic_arn == topic_arn && s.protocol == protocol && s.endpoint == endpoint)
            .cloned();
        if let Some(s) = existing {
            if attrs.iter().any(|(k, v)| s.attributes.get(k) != Some(v)) {
                return Err(SnsError::invalid(
                    "Invalid parameter: Attributes Reason: Subscription already exists with different attributes",
                ));
            }
            let shown = if s.confirmed || return_arn { s.arn.clone() } else { "pending confirmation".into() };
            return Ok(SubscriptionArnOutput { subscription_arn: shown });
        }
        let arn = format!("{topic_arn}:{}", uuid::Uuid::new_v4());
        let is_http = protocol.starts_with("http");
        let token = is_http.then(|| {
            let a = uuid::Uuid::new_v4().simple().to_string();
            let b = uuid::Uuid::new_v4().simple().to_string();
            format!("{a}{b}{a}{b}")
        });
        let sub = Subscription {
            arn: arn.clone(),
            topic_arn: topic_arn.clone(),
            protocol: protocol.clone(),
            endpoint: endpoint.clone(),
            owner: self.account.clone(),
            attributes: attrs,
            confirmed: !is_http,
            token: token.clone(),
        };
        let value = serde_json::to_vec(&sub).map_err(|e| SnsError::internal(e.to_string()))?;
        let mut ops = vec![Namespace::Sns.put(sub_key(&arn), value)];
        // The SubscriptionConfirmation is recorded with the subscription (one commit), so a restart
        // still sends it.
        let now_ms = self.clock.now_ms();
        let confirmation = token.map(|token| {
            let (message_id, body) = delivery::confirmation_json(base_url, &topic_arn, &token, &wire::iso8601(now_ms));
            let headers = vec![
                ("x-amz-sns-message-type".to_string(), "SubscriptionConfirmation".to_string()),
                ("x-amz-sns-message-id".to_string(), message_id),
                ("x-amz-sns-topic-arn".to_string(), topic_arn.clone()),
            ];
            let policy = RetryPolicy {
                num_retries: 2,
                num_no_delay_retries: 0,
                num_min_delay_retries: 2,
                min_delay: 1.0,
                max_delay: 1.0,
            };
            PendingDelivery::new(endpoint.clone(), headers, body, policy, None, arn.clone(), now_ms)
        });
        if let Some(job) = &confirmation {
            ops.push(job.put_op());
        }
        self.commit(ops).await?;
        self.lock().subs.insert(arn.clone(), sub);
        if let Some(job) = confirmation {
            self.spawn_delivery(job);
            let shown = if return_arn { arn } else { "pending confirmation".into() };
            return Ok(SubscriptionArnOutput { subscription_arn: shown });
        }
        Ok(SubscriptionArnOutput { subscription_arn: arn })
    }

    pub(crate) async fn confirm_subscription(
        &self,
        input: ConfirmSubscriptionInput,
    ) -> SnsResult<SubscriptionArnOutput> {
        let topic_arn = input.topic_arn;
        let token = input.token;
        let _w = self.writes.lock().await;
        self.topic(&topic_arn)?;
        let found = self
            .lock()
            .subs
            .values()
            .find(|s| s.topic_arn == topic_arn && s.token.as_deref() == Some(token.as_str()))
            .cloned();
        let mut sub = found.ok_or_else(|| SnsError::invalid("Invalid token"))?;
        if !sub.confirmed {
            sub.confirmed = true;
            let value = serde_json::to_vec(&sub).map_err(|e| SnsError::internal(e.to_string()))?;
            self.commit(vec![Namespace::Sns.put(sub_key(&sub.arn), value)]).await?;
            self.lock().subs.insert(sub.arn.clone(), sub.clone());
        }
        Ok(SubscriptionArnOutput { subscription_arn: sub.arn })
    }

    pub(crate) async fn unsubscribe(&self, input: UnsubscribeInput) -> SnsResult<NoResult> {
        let arn = input.subscription_arn;
        if arn.split(':').count() != 7 || !arn.starts_with("arn:aws:sns:") {
            return Err(SnsError::invalid(
                "Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 1",
            ));
        }
        let _w = self.writes.lock().await;
        if !self.lock().subs.contains_key(&arn) {
            return Err(SnsError::SubscriptionNotFound);
        }
        self.commit(vec![Namespace::Sns.delete(sub_key(&arn))]).await?;
        self.lock().subs.remove(&arn);
        Ok(NoResult)
    }

    /// ListSubscriptionsByTopic: the topic must exist (checked before the page token).
    pub(crate) fn list_subscriptions_by_topic(
        &self,
        input: ListSubscriptionsByTopicInput,
    ) -> SnsResult<ListSubscriptionsOutput> {
        self.topic(&input.topic_arn)?;
        self.list_subscriptions(input.next_token.as_deref(), Some(&input.topic_arn))
    }

    /// ListSubscriptions, or those of one topic.
    pub(crate) fn list_subscriptions(
        &self,
        next_token: Option<&str>,
        topic: Option<&str>,
    ) -> SnsResult<ListSubscriptionsOutput> {
        let start = page_start(next_token)?;
        let st = self.lock();
        let subs: Vec<&Subscription> =
            st.subs.values().filter(|s| topic.is_none_or(|t| s.topic_arn == t)).skip(start).take(PAGE + 1).collect();
        let next_token = (subs.len() > PAGE).then(|| (start + PAGE).to_string());
        let subscriptions = subs
            .iter()
            .take(PAGE)
            .map(|s| SubscriptionSummary {
                topic_arn: s.topic_arn.clone(),
                protocol: s.protocol.clone(),
                subscription_arn: if s.confirmed { s.arn.clone() } else { "PendingConfirmation".into() },
                owner: s.owner.clone(),
                endpoint: s.endpoint.clone(),
            })
            .collect();
        Ok(ListSubscriptionsOutput { subscriptions, next_token })
    }

    pub(crate) fn subscription(&self, arn: &str) -> SnsResult<Subscription> {
        if arn.split(':').count() != 7 || !arn.starts_with("arn:aws:sns:") {
            return Err(SnsError::invalid("Invalid parameter: SubscriptionArn"));
        }
        self.lock().subs.get(arn).cloned().ok_or(SnsError::SubscriptionNotFound)
    }

    pub(crate) fn get_subscription_attributes(
        &self,
        input: GetSubscriptionAttributesInput,
    ) -> SnsResult<AttributesOutput> {
        let s = self.subscription(&input.subscription_arn)?;
        let mut a = BTreeMap::new();
        a.insert("SubscriptionArn".to_string(), s.arn.clone());
        a.insert("TopicArn".into(), s.topic_arn.clone());
        a.insert("Owner".into(), s.owner.clone());
        a.insert("Protocol".into(), s.protocol.clone());
        a.insert("Endpoint".into(), s.endpoint.clone());
        a.insert("ConfirmationWasAuthenticated".into(), s.confirmed.to_string());
        a.insert("PendingConfirmation".into(), (!s.confirmed).to_string());
        a.insert("RawMessageDelivery".into(), "false".into());
        if s.protocol.starts_with("http") {
            let topic_policy =
                self.lock().topics.get(&s.topic_arn).and_then(|t| t.attributes.get("DeliveryPolicy").cloned());
            let eff = s
                .attributes
                .get("DeliveryPolicy")
                .filter(|d| !d.is_empty())
                .cloned()
                .or(topic_policy.filter(|d| !d.is_empty()))
                .unwrap_or_else(|| DEFAULT_EFFECTIVE_DELIVERY_POLICY.into());
            a.insert("EffectiveDeliveryPolicy".into(), eff);
        }
        for (k, v) in &s.attributes {
            if !v.is_empty() {
                a.insert(k.clone(), v.clone());
            }
        }
        if !a.contains_key("FilterPolicy") {
            a.remove("FilterPolicyScope");
        }
        Ok(AttributesOutput { attributes: a })
    }

    pub(crate) async fn set_subscription_attributes(
        &self,
        input: SetSubscriptionAttributesInput,
    ) -> SnsResult<NoResult> {
        let arn = input.subscription_arn;
        let name = input.attribute_name;
        let value = input.attribute_value.unwrap_or_default();
        let _w = self.writes.lock().await;
        let mut s = self.subscription(&arn)?;
        let mut one = BTreeMap::new();
        one.insert(name.clone(), value.clone());
        validate_sub_attrs(&one, &s.protocol, &s.attributes, false)?;
        if value.is_empty() {
            s.attributes.remove(&name);
        } else {
            s.attributes.insert(name.clone(), value);
        }
        if name == "FilterPolicy"
            && s.attributes.contains_key("FilterPolicy")
            && !s.attributes.contains_key("FilterPolicyScope")
        {
            s.attributes.insert("FilterPolicyScope".into(), "MessageAttributes".into());
        }
        let bytes = serde_json::to_vec(&s).map_err(|e| SnsError::internal(e.to_string()))?;
        self.commit(vec![Namespace::Sns.put(sub_key(&arn), bytes)]).await?;
        self.lock().subs.insert(arn, s);
        Ok(NoResult)
    }

    pub(crate) fn confirmed_subscriptions(&self, topic_arn: &str) -> Vec<Subscription> {
        self.lock().subs.values().filter(|s| s.topic_arn == topic_arn && s.confirmed).cloned().collect()
    }
}
