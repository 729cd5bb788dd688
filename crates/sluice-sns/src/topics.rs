//! Topics: CreateTopic, DeleteTopic, ListTopics, GetTopicAttributes, SetTopicAttributes.

use std::collections::BTreeMap;

use sluice_store::Namespace;

use crate::action::{
    AttributesOutput, CreateTopicInput, DeleteTopicInput, GetTopicAttributesInput, ListTopicsInput, ListTopicsOutput,
    NoResult, SetTopicAttributesInput, TopicArnOutput,
};
use crate::error::{SnsError, SnsResult};
use crate::records::{sub_key, topic_key, Topic};
use crate::validation::{check_arn, page_start, valid_topic_name, validate_bool, validate_tags, validate_topic_attrs};
use crate::Inner;

/// Page size of the List* actions.
pub(crate) const PAGE: usize = 100;

pub(crate) const DEFAULT_EFFECTIVE_DELIVERY_POLICY: &str = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#;

impl Inner {
    pub(crate) fn topic_arn(&self, name: &str) -> String {
        format!("arn:aws:sns:{}:{}:{}", self.region, self.account, name)
    }

    pub(crate) fn topic(&self, arn: &str) -> SnsResult<Topic> {
        self.lock().topics.get(arn).cloned().ok_or(SnsError::TopicNotFound)
    }

    pub(crate) async fn create_topic(&self, input: CreateTopicInput) -> SnsResult<TopicArnOutput> {
        let name = input.name.as_str();
        let mut attrs = input.attributes;
        let tags: BTreeMap<String, String> = input.tags.into_iter().map(|t| (t.key, t.value)).collect();
        let fifo = match attrs.remove("FifoTopic") {
            Some(v) => {
                validate_bool("FifoTopic", &v)?;
                v.eq_ignore_ascii_case("true")
            }
            None => false,
        };
        if fifo && !valid_topic_name(name, true) {
            return Err(SnsError::invalid("Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long."));
        }
        if !fifo && (!valid_topic_name(name, false)) {
            return Err(SnsError::invalid("Invalid parameter: Topic Name"));
        }
        validate_topic_attrs(&attrs, fifo)?;
        validate_tags(&tags)?;
        let _w = self.writes.lock().await;
        let arn = self.topic_arn(name);
        if let Some(existing) = self.lock().topics.get(&arn) {
            if attrs.iter().any(|(k, v)| existing.attributes.get(k) != Some(v)) {
                return Err(SnsError::invalid(
                    "Invalid parameter: Attributes Reason: Topic already exists with different attributes",
                ));
            }
            if !tags.is_empty() && tags != existing.tags {
                return Err(SnsError::invalid(
                    "Invalid parameter: Tags Reason: Topic already exists with different tags",
                ));
            }
            return Ok(TopicArnOutput { topic_arn: arn });
        }
        if fifo && !attrs.contains_key("ContentBasedDeduplication") {
            attrs.insert("ContentBasedDeduplication".into(), "false".into());
        }
        let mut topic = Topic { arn: arn.clone(), name: name.to_string(), fifo, attributes: attrs, tags, policy: None };
        topic.refresh_policy();
        let value = serde_json::to_vec(&topic).map_err(|e| SnsError::internal(e.to_string()))?;
        self.commit(vec![Namespace::Sns.put(topic_key(&arn), value)]).await?;
        self.lock().topics.insert(arn.clone(), topic);
        Ok(TopicArnOutput { topic_arn: arn })
    }

    pub(crate) async fn delete_topic(&self, input: DeleteTopicInput) -> SnsResult<NoResult> {
        let arn = input.topic_arn;
        check_arn(&arn, "TopicArn")?;
        let _w = self.writes.lock().await;
        let subs: Vec<String> = {
            let st = self.lock();
            if !st.topics.contains_key(&arn) {
                return Ok(NoResult); // Deleting a topic that does not exist is not an error.
            }
            st.subs.values().filter(|s| s.topic_arn == arn).map(|s| s.arn.clone()).collect()
        };
        let mut ops = vec![Namespace::Sns.delete(topic_key(&arn))];
        ops.extend(subs.iter().map(|s| Namespace::Sns.delete(sub_key(s))));
        self.commit(ops).await?;
        let mut st = self.lock();
        st.topics.remove(&arn);
        for s in subs {
            st.subs.remove(&s);
        }
        Ok(NoResult)
    }

    pub(crate) fn list_topics(&self, input: ListTopicsInput) -> SnsResult<ListTopicsOutput> {
        let start = page_start(input.next_token.as_deref())?;
        let st = self.lock();
        let mut topic_arns: Vec<String> = st.topics.keys().skip(start).take(PAGE + 1).cloned().collect();
        let next_token = (topic_arns.len() > PAGE).then(|| (start + PAGE).to_string());
        topic_arns.truncate(PAGE);
        Ok(ListTopicsOutput { topic_arns, next_token })
    }

    pub(crate) fn get_topic_attributes(&self, input: GetTopicAttributesInput) -> SnsResult<AttributesOutput> {
        let arn = input.topic_arn.as_str();
        check_arn(arn, "TopicArn")?;
        let st = self.lock();
        let t = st.topics.get(arn).ok_or(SnsError::TopicNotFound)?;
        let (mut confirmed, mut pending) = (0, 0);
        for s in st.subs.values().filter(|s| s.topic_arn == t.arn) {
            if s.confirmed {
                confirmed += 1
            } else {
                pending += 1
            }
        }
        let mut a = BTreeMap::new();
        a.insert("TopicArn".to_string(), t.arn.clone());
        a.insert("Owner".into(), self.account.clone());
        a.insert("DisplayName".into(), String::new());
        a.insert("Policy".into(), self.default_policy(&t.arn));
        a.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
        a.insert("SubscriptionsPending".into(), pending.to_string());
        a.insert("SubscriptionsDeleted".into(), "0".into());
        a.insert(
            "EffectiveDeliveryPolicy".into(),
            t.attributes
                .get("DeliveryPolicy")
                .filter(|d| !d.is_empty())
                .cloned()
                .unwrap_or_else(|| DEFAULT_EFFECTIVE_DELIVERY_POLICY.into()),
        );
        if t.fifo {
            a.insert("FifoTopic".into(), "true".into());
            a.insert("ContentBasedDeduplication".into(), "false".into());
        }
        for (k, v) in &t.attributes {
            a.insert(k.clone(), v.clone());
        }
        Ok(AttributesOutput { attributes: a })
    }

    fn default_policy(&self, arn: &str) -> String {
        serde_json::json!({
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [{
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
                           "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
                "Resource": arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": self.account}}
            }]
        })
        .to_string()
    }

    pub(crate) async fn set_topic_attributes(&self, input: SetTopicAttributesInput) -> SnsResult<NoResult> {
        let arn = input.topic_arn;
        let name = input.attribute_name;
        let value = input.attribute_value.unwrap_or_default();
        check_arn(&arn, "TopicArn")?;
        let _w = self.writes.lock().await;
        let mut t = self.topic(&arn)?;
        let mut one = BTreeMap::new();
        one.insert(name.clone(), value.clone());
        validate_topic_attrs(&one, t.fifo)?;
        t.attributes.insert(name, value);
        t.refresh_policy();
        self.save_topic(arn, t).await.map(|_| NoResult)
    }
}
