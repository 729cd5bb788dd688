//! What SNS persists and how it is recovered: topics and subscriptions as JSON records in the
//! store's SNS namespace ([`Namespace::Sns`], a key space no queue can reach), keys
//! `sns/topic/<arn>` and `sns/sub/<arn>`, and the pending HTTP deliveries (`sns/pending/<id>`, see
//! [`crate::delivery::retry`]). Every change is committed durably before the answer.
//!
//! Stores written before the namespace existed kept these records as raw kv records under queue
//! id 0 by convention; the namespace is that same space, now reserved, so they load as they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_engine::Engine;
use sluice_store::{Namespace, Op};

use crate::delivery::PendingDelivery;
use crate::error::{SnsError, SnsResult};
use crate::filter::{FilterPolicy, Scope};
use crate::Inner;

const TOPIC_PREFIX: &str = "sns/topic/";
const SUB_PREFIX: &str = "sns/sub/";
/// Key prefix of pending HTTP deliveries.
pub(crate) const PENDING_PREFIX: &str = "sns/pending/";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Topic {
    pub(crate) arn: String,
    pub(crate) name: String,
    pub(crate) fifo: bool,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) tags: BTreeMap<String, String>,
    /// The `Policy` attribute, parsed once when set or loaded ([`Topic::refresh_policy`]).
    #[serde(skip)]
    pub(crate) policy: Option<std::sync::Arc<sluice_engine::iam::Policy>>,
}

impl Topic {
    /// Parses the `Policy` attribute into [`Topic::policy`]. A stored policy that does not parse
    /// (kept by a sluice that did not enforce policies) enforces nothing, as for queues.
    pub(crate) fn refresh_policy(&mut self) {
        self.policy = self
            .attributes
            .get("Policy")
            .filter(|p| !p.is_empty())
            .map(|p| sluice_engine::iam::StoredPolicy::load(p.clone()).policy().clone());
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Subscription {
    pub(crate) arn: String,
    pub(crate) topic_arn: String,
    pub(crate) protocol: String,
    pub(crate) endpoint: String,
    pub(crate) owner: String,
    pub(crate) attributes: BTreeMap<String, String>,
    pub(crate) confirmed: bool,
    pub(crate) token: Option<String>,
}

impl Subscription {
    pub(crate) fn raw(&self) -> bool {
        self.attributes.get("RawMessageDelivery").is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
    pub(crate) fn filter(&self) -> Option<FilterPolicy> {
        let text = self.attributes.get("FilterPolicy").filter(|t| !t.is_empty())?;
        let scope = self
            .attributes
            .get("FilterPolicyScope")
            .and_then(|s| Scope::parse(s).ok())
            .unwrap_or(Scope::MessageAttributes);
        FilterPolicy::parse(text, scope).ok()
    }
    pub(crate) fn dead_letter_arn(&self) -> Option<String> {
        let rp: serde_json::Value = serde_json::from_str(self.attributes.get("RedrivePolicy")?).ok()?;
        rp.get("deadLetterTargetArn")?.as_str().map(str::to_string)
    }
}

/// The in-memory state: every topic and subscription, by ARN.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) topics: BTreeMap<String, Topic>,
    pub(crate) subs: BTreeMap<String, Subscription>,
}

pub(crate) fn topic_key(arn: &str) -> Vec<u8> {
    format!("{TOPIC_PREFIX}{arn}").into_bytes()
}

pub(crate) fn sub_key(arn: &str) -> Vec<u8> {
    format!("{SUB_PREFIX}{arn}").into_bytes()
}

/// The kv key of a pending delivery.
pub(crate) fn pending_key(id: &str) -> Vec<u8> {
    format!("{PENDING_PREFIX}{id}").into_bytes()
}

/// Reads every SNS record of the store: the topics and subscriptions, and the HTTP deliveries
/// still pending. Records that do not decode are skipped (and logged).
pub(crate) fn recover(engine: &Engine) -> Result<(State, Vec<PendingDelivery>), String> {
    let mut state = State::default();
    let mut pending = Vec::new();
    let mut bad = 0usize;
    engine
        .store()
        .scan_namespace(Namespace::Sns, &mut |key, value| {
            if key.starts_with(TOPIC_PREFIX.as_bytes()) {
                match serde_json::from_slice::<Topic>(value) {
                    Ok(mut t) => {
                        t.refresh_policy();
                        state.topics.insert(t.arn.clone(), t);
                    }
                    Err(_) => bad += 1,
                }
            } else if key.starts_with(SUB_PREFIX.as_bytes()) {
                match serde_json::from_slice::<Subscription>(value) {
                    Ok(s) => {
                        state.subs.insert(s.arn.clone(), s);
                    }
                    Err(_) => bad += 1,
                }
            } else if key.starts_with(PENDING_PREFIX.as_bytes()) {
                match serde_json::from_slice::<PendingDelivery>(value) {
                    Ok(p) => pending.push(p),
                    Err(_) => bad += 1,
                }
            }
        })
        .map_err(|e| e.to_string())?;
    if bad > 0 {
        tracing::error!(bad, "SNS records could not be decoded and were skipped");
    }
    tracing::info!(
        topics = state.topics.len(),
        subscriptions = state.subs.len(),
        pending_deliveries = pending.len(),
        "SNS recovered"
    );
    Ok((state, pending))
}

impl Inner {
    pub(crate) async fn commit(&self, ops: Vec<Op>) -> SnsResult<()> {
        self.engine.store().commit(ops).await.map_err(|e| SnsError::internal(e.to_string()))
    }

    /// Persists a changed topic (durably), then makes it the current one.
    pub(crate) async fn save_topic(&self, arn: String, t: Topic) -> SnsResult<()> {
        let bytes = serde_json::to_vec(&t).map_err(|e| SnsError::internal(e.to_string()))?;
        self.commit(vec![Namespace::Sns.put(topic_key(&arn), bytes)]).await?;
        self.lock().topics.insert(arn, t);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    use crate::delivery::RetryPolicy;
    use crate::test_support::*;
    use crate::{Sns, SnsOptions};

    /// Stores written before the SNS namespace kept topics and subscriptions as raw kv records
    /// under queue id 0; they load as they are, and later changes land beside them.
    #[tokio::test]
    async fn records_written_under_queue_id_0_before_the_namespace_still_load() {
        let engine = engine();
        let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:old");
        let old = |key: String, value: String| Op::PutKv { queue: 0, key: key.into_bytes(), value: value.into_bytes() };
        engine
            .store()
            .commit(vec![
                old(
                    format!("sns/topic/{topic}"),
                    format!(r#"{{"arn":"{topic}","name":"old","fifo":false,"attributes":{{"DisplayName":"Old"}},"tags":{{"team":"a"}}}}"#),
                ),
                old(
                    format!("sns/sub/{topic}:22222222-2222-2222-2222-222222222222"),
                    format!(
                        r#"{{"arn":"{topic}:22222222-2222-2222-2222-222222222222","topic_arn":"{topic}","protocol":"sqs","endpoint":"arn:aws:sqs:us-east-1:{ACCOUNT}:q","owner":"{ACCOUNT}","attributes":{{}},"confirmed":true,"token":null}}"#
                    ),
                ),
            ])
            .await
            .unwrap();
        engine.create_queue("q", &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
        let sns = Sns::open(engine.clone(), SnsOptions::default()).unwrap();
        let (status, body) =
            call(&sns, &format!("Action=GetTopicAttributes&Version=2010-03-31&TopicArn={}", enc(&topic))).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<key>DisplayName</key><value>Old</value>"), "{body}");
        assert!(body.contains("<key>SubscriptionsConfirmed</key><value>1</value>"), "{body}");
        let (status, body) =
            call(&sns, &format!("Action=Publish&Version=2010-03-31&TopicArn={}&Message=still+here", enc(&topic))).await;
        assert_eq!(status, 200, "{body}");
        let [got] = receive_all(&engine, "q").await.try_into().unwrap();
        assert!(got.contains("still here"), "{got}");
        // A change is written to the same records: a restart sees it.
        let (status, _) = call(
            &sns,
            &format!(
                "Action=SetTopicAttributes&Version=2010-03-31&TopicArn={}&AttributeName=DisplayName&AttributeValue=New",
                enc(&topic)
            ),
        )
        .await;
        assert_eq!(status, 200);
        let (state, _) = recover(&engine).unwrap();
        assert_eq!(state.topics[&topic].attributes["DisplayName"], "New");
        assert_eq!(state.subs.len(), 1);
    }

    #[tokio::test]
    async fn recorded_deliveries_resume_at_open_and_are_deleted_when_done() {
        let engine = engine();
        let (url, mut posts) = http_sink().await;
        let topic_arn = format!("arn:aws:sns:us-east-1:{ACCOUNT}:t");
        let sub = Subscription {
            arn: format!("{topic_arn}:11111111-1111-1111-1111-111111111111"),
            topic_arn: topic_arn.clone(),
            protocol: "http".into(),
            endpoint: url.clone(),
            owner: ACCOUNT.into(),
            attributes: BTreeMap::new(),
            confirmed: true,
            token: None,
        };
        let job = PendingDelivery::new(
            url.clone(),
            vec![],
            "left over".into(),
            RetryPolicy::default(),
            None,
            sub.arn.clone(),
            engine.shared_clock().now_ms(),
        );
        // A delivery for a subscription that is gone since: dropped without a POST.
        let orphan = PendingDelivery::new(
            url.clone(),
            vec![],
            "orphan".into(),
            RetryPolicy::default(),
            None,
            format!("{topic_arn}:gone"),
            engine.shared_clock().now_ms(),
        );
        let ops = vec![
            Namespace::Sns.put(sub_key(&sub.arn), serde_json::to_vec(&sub).unwrap()),
            job.put_op(),
            orphan.put_op(),
        ];
        engine.store().commit(ops).await.unwrap();
        assert_eq!(pending_ids(&engine).len(), 2);

        let _sns = Sns::open(engine.clone(), local_subscribers()).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), posts.recv()).await.unwrap();
        assert_eq!(got.as_deref(), Some("left over"));
        // Both records go (lazy deletes: wait for the writer).
        wait_until(|| pending_ids(&engine).is_empty()).await;
        assert!(posts.try_recv().is_err(), "the orphan must not be delivered");
    }
}
