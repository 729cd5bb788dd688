//! Publish and PublishBatch. Every entry is first *prepared* (validation, filter policies,
//! message structure, per-subscriber bodies), then the prepared entries are *delivered* together:
//! the copies bound for one SQS queue go through one `Engine::send_messages` call (split only at the
//! engine's batch size limit) and the HTTP(S) deliveries of all entries are recorded in one commit,
//! all concurrently and awaited.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sluice_engine::message::SendMessage;
use sluice_engine::EngineError;
use sluice_store::Op;

use crate::action::{
    BatchFailure, BatchSuccess, MsgAttr, PublishBatchInput, PublishBatchOutput, PublishInput, PublishOutput,
};
use crate::delivery::{self, PendingDelivery, Published, RetryPolicy};
use crate::error::{SnsError, SnsResult};
use crate::filter::Scope;
use crate::records::{Subscription, Topic};
use crate::validation::{check_arn, check_fifo_id, validate_message_attributes};
use crate::wire;
use crate::Inner;

pub(crate) const MAX_MESSAGE_BYTES: usize = 262_144;

impl Inner {
    fn next_sequence_number(&self) -> String {
        format!("{:020}", self.seq.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) async fn publish(self: &Arc<Self>, input: PublishInput, base_url: &str) -> SnsResult<PublishOutput> {
        let arn = match (input.topic_arn, input.target_arn) {
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => {
                return Err(SnsError::invalid(
                    "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
                ))
            }
        };
        if input.phone_number.is_some() {
            return Err(SnsError::invalid("Invalid parameter: PhoneNumber Reason: SMS is not supported by sluice"));
        }
        check_arn(&arn, "TopicArn")?;
        let topic = self.topic(&arn)?;
        let entry = Entry {
            message: input.message,
            subject: input.subject,
            structure: input.message_structure,
            attributes: input.message_attributes?,
            group_id: input.message_group_id,
            dedup_id: input.message_deduplication_id,
        };
        let subs = self.confirmed_subscriptions(&topic.arn);
        let prepared = self.prepare(&topic, &subs, entry, base_url)?;
        let (message_id, seq) = (prepared.message_id.clone(), prepared.sequence_number.clone());
        let mut results = self.deliver(&topic.arn, vec![prepared]).await;
        results.pop().unwrap_or(Ok(()))?;
        Ok(PublishOutput { message_id, sequence_number: seq })
    }

    pub(crate) async fn publish_batch(
        self: &Arc<Self>,
        input: PublishBatchInput,
        base_url: &str,
    ) -> SnsResult<PublishBatchOutput> {
        let arn = input.topic_arn;
        check_arn(&arn, "TopicArn")?;
        let topic = self.topic(&arn)?;
        let mut entries = Vec::new();
        for e in input.entries {
            let entry = Entry {
                message: e.message,
                subject: e.subject,
                structure: e.message_structure,
                attributes: e.message_attributes?,
                group_id: e.message_group_id,
                dedup_id: e.message_deduplication_id,
            };
            entries.push((e.id, entry));
        }
        if entries.is_empty() {
            return Err(SnsError::EmptyBatchRequest);
        }
        if entries.len() > 10 {
            return Err(SnsError::TooManyEntriesInBatchRequest);
        }
        let mut seen = std::collections::HashSet::new();
        for (id, _) in &entries {
            if id.is_empty() || id.len() > 80 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(SnsError::InvalidBatchEntryId);
            }
            if !seen.insert(id.clone()) {
                return Err(SnsError::BatchEntryIdsNotDistinct);
            }
        }
        let total: usize = entries.iter().map(|(_, e)| e.size()).sum();
        if total > MAX_MESSAGE_BYTES {
            return Err(SnsError::BatchRequestTooLong);
        }
        // Validate every entry, then deliver the valid ones together: one engine send per subscribed
        // queue (as few as the size limit allows) and one commit for the HTTP deliveries.
        let subs = self.confirmed_subscriptions(&topic.arn);
        // Per entry: its Id, and its MessageId and SequenceNumber or its error.
        let mut outcome: Vec<(String, EntryOutcome)> = Vec::new();
        let mut prepared = Vec::new();
        let mut slots = Vec::new();
        for (id, e) in entries {
            match self.prepare(&topic, &subs, e, base_url) {
                Ok(p) => {
                    slots.push(outcome.len());
                    outcome.push((id, Ok((p.message_id.clone(), p.sequence_number.clone()))));
                    prepared.push(p);
                }
                Err(err) => outcome.push((id, Err(err))),
            }
        }
        let delivered = self.deliver(&topic.arn, prepared).await;
        for (slot, result) in slots.into_iter().zip(delivered) {
            if let Err(err) = result {
                outcome[slot].1 = Err(err);
            }
        }
        let mut out = PublishBatchOutput { successful: Vec::new(), failed: Vec::new() };
        for (id, result) in outcome {
            match result {
                Ok((message_id, sequence_number)) => {
                    out.successful.push(BatchSuccess { id, message_id, sequence_number })
                }
                Err(error) => out.failed.push(BatchFailure { id, error }),
            }
        }
        Ok(out)
    }

    /// The topic's confirmed subscriptions (the ones that receive messages).
    /// Validates one message and works out what each subscriber gets (filter policies, message
    /// structure, raw delivery). Nothing is delivered yet: see [`Inner::deliver`].
    fn prepare(&self, topic: &Topic, subs: &[Subscription], e: Entry, base_url: &str) -> SnsResult<Prepared> {
        let message = e.message.clone().unwrap_or_default();
        if message.is_empty() {
            return Err(SnsError::invalid("Invalid parameter: Empty message"));
        }
        if e.size() > MAX_MESSAGE_BYTES {
            return Err(SnsError::invalid("Invalid parameter: Message too long"));
        }
        if let Some(s) = &e.subject {
            if s.is_empty() || s.chars().count() > 100 || s.chars().any(|c| c.is_control()) || !s.is_ascii() {
                return Err(SnsError::invalid("Invalid parameter: Subject"));
            }
        }
        validate_message_attributes(&e.attributes)?;
        let structured: Option<serde_json::Map<String, serde_json::Value>> = match e.structure.as_deref() {
            None => None,
            Some("json") => {
                let v: serde_json::Value = serde_json::from_str(&message).map_err(|_| {
                    SnsError::invalid("Invalid parameter: Message Structure - JSON message body failed to parse")
                })?;
                let serde_json::Value::Object(map) = v else {
                    return Err(SnsError::invalid(
                        "Invalid parameter: Message Structure - JSON message body failed to parse",
                    ));
                };
                if !map.get("default").is_some_and(|d| d.is_string()) {
                    return Err(SnsError::invalid(
                        "Invalid parameter: Message Structure - No default entry in JSON message body",
                    ));
                }
                Some(map)
            }
            Some(_) => return Err(SnsError::invalid("Invalid parameter: MessageStructure")),
        };
        let (group_id, dedup_id, sequence_number) = if topic.fifo {
            let group = e.group_id.clone().ok_or_else(|| {
                SnsError::invalid("Invalid parameter: The MessageGroupId parameter is required for FIFO topics")
            })?;
            check_fifo_id("MessageGroupId", &group)?;
            let cbd = topic.attributes.get("ContentBasedDeduplication").is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let dedup = match &e.dedup_id {
                Some(d) => {
                    check_fifo_id("MessageDeduplicationId", d)?;
                    d.clone()
                }
                None if cbd => {
                    let mut h = Sha256::new();
                    h.update(message.as_bytes());
                    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
                }
                None => {
                    return Err(SnsError::invalid(
                        "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                    ))
                }
            };
            (Some(group), Some(dedup), Some(self.next_sequence_number()))
        } else {
            if e.dedup_id.is_some() {
                return Err(SnsError::invalid(
                    "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
                ));
            }
            if let Some(g) = &e.group_id {
                check_fifo_id("MessageGroupId", g)?;
            }
            (e.group_id.clone(), None, None)
        };
        // One clock reading: the envelope Timestamp and the first attempt of HTTP deliveries.
        let now_ms = self.clock.now_ms();
        let published = Published {
            message_id: uuid::Uuid::new_v4().to_string(),
            topic_arn: topic.arn.clone(),
            subject: e.subject.clone(),
            timestamp: wire::iso8601(now_ms),
            attributes: e.attributes.clone(),
            group_id,
            dedup_id,
            sequence_number,
            base_url: base_url.to_string(),
        };
        let attr_view: Vec<(String, String, String)> = e
            .attributes
            .iter()
            .filter_map(|(k, a)| a.string_value.as_ref().map(|v| (k.clone(), a.data_type.clone(), v.clone())))
            .collect();
        let mut prepared = Prepared {
            message_id: published.message_id.clone(),
            sequence_number: published.sequence_number.clone(),
            sqs: Vec::new(),
            http: Vec::new(),
        };
        for s in subs {
            if let Some(f) = s.filter() {
                let pass = match f.scope() {
                    Scope::MessageAttributes => f.matches_attributes(&attr_view),
                    Scope::MessageBody => f.matches_body(&message),
                };
                if !pass {
                    continue;
                }
            }
            let text = match &structured {
                Some(map) => map
                    .get(&s.protocol)
                    .and_then(|v| v.as_str())
                    .or_else(|| map.get("default").and_then(|v| v.as_str()))
                    .unwrap_or("")
                    .to_string(),
                None => message.clone(),
            };
            let raw = s.raw();
            let body = if raw { text } else { delivery::notification_json(&published, &text, &s.arn) };
            if s.protocol == "sqs" {
                let fifo_queue = s.endpoint.ends_with(".fifo");
                let msg = SendMessage {
                    body,
                    attributes: if raw { delivery::sqs_attributes(&published.attributes) } else { Default::default() },
                    group_id: published.group_id.clone(),
                    deduplication_id: if fifo_queue { published.dedup_id.clone() } else { None },
                    ..Default::default()
                };
                prepared.sqs.push(SqsCopy {
                    queue_arn: s.endpoint.clone(),
                    dead_letter_arn: s.dead_letter_arn(),
                    sub_arn: s.arn.clone(),
                    msg,
                });
            } else {
                let mut headers = vec![
                    ("x-amz-sns-message-type".to_string(), "Notification".to_string()),
                    ("x-amz-sns-message-id".to_string(), published.message_id.clone()),
                    ("x-amz-sns-topic-arn".to_string(), topic.arn.clone()),
                    ("x-amz-sns-subscription-arn".to_string(), s.arn.clone()),
                ];
                if raw {
                    headers.push(("x-amz-sns-rawdelivery".to_string(), "true".to_string()));
                }
                let policy = s
                    .attributes
                    .get("DeliveryPolicy")
                    .or(topic.attributes.get("DeliveryPolicy"))
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    .and_then(|v| RetryPolicy::from_json(&v))
                    .unwrap_or_default();
                prepared.http.push(PendingDelivery::new(
                    s.endpoint.clone(),
                    headers,
                    body,
                    policy,
                    s.dead_letter_arn(),
                    s.arn.clone(),
                    now_ms,
                ));
            }
        }
        Ok(prepared)
    }

    /// Delivers prepared messages of one topic and answers, per message, Ok once every SQS copy is
    /// stored (or dropped as AWS drops it: queue gone or copy refused, after the subscription's
    /// dead-letter queue was tried) and its HTTP(S) deliveries are recorded.
    ///
    /// The copies bound for one queue go in one `send_messages` call (split only where the engine's
    /// batch size limit requires), so they cost one commit whatever the number of messages; the HTTP
    /// delivery records of all messages are one commit; all of these run concurrently. Only a
    /// storage failure fails a message (its copy might not be durable).
    async fn deliver(self: &Arc<Self>, topic_arn: &str, batch: Vec<Prepared>) -> Vec<SnsResult<()>> {
        let mut results: Vec<SnsResult<()>> = batch.iter().map(|_| Ok(())).collect();
        // Copies per target queue, in message order (FIFO order within a group is kept).
        let mut by_queue: BTreeMap<String, Vec<(usize, SqsCopy)>> = BTreeMap::new();
        let mut http: Vec<(usize, PendingDelivery)> = Vec::new();
        for (i, p) in batch.into_iter().enumerate() {
            for c in p.sqs {
                let name = delivery::queue_name_of_arn(&c.queue_arn).unwrap_or("").to_string();
                by_queue.entry(name).or_default().push((i, c));
            }
            http.extend(p.http.into_iter().map(|h| (i, h)));
        }
        let mut sends = Vec::new();
        for (queue, copies) in by_queue {
            // As on AWS, a queue whose policy does not let the topic send gets nothing (dropped
            // quietly there; logged once and counted here).
            if !self.delivery_allowed(topic_arn, &queue) {
                continue;
            }
            for chunk in size_chunks(copies) {
                let mut meta = Vec::with_capacity(chunk.len());
                let mut msgs = Vec::with_capacity(chunk.len());
                for (i, c) in chunk {
                    // Kept only when a dead-letter queue may need the copy.
                    let fallback = c.dead_letter_arn.as_ref().map(|_| c.msg.clone());
                    meta.push((i, c.sub_arn, c.dead_letter_arn, fallback));
                    msgs.push(c.msg);
                }
                let engine = self.engine.clone();
                let queue = queue.clone();
                let task = tokio::spawn(async move { engine.send_messages(&queue, msgs, "sns").await });
                sends.push((meta, task));
            }
        }
        let ops: Vec<Op> = http.iter().map(|(_, h)| h.put_op()).collect();
        match self.commit(ops).await {
            Ok(()) => {
                for (_, job) in http {
                    self.spawn_delivery(job);
                }
            }
            Err(e) => {
                for (i, _) in &http {
                    results[*i] = Err(SnsError::internal(format!("recording an HTTP delivery failed: {e}")));
                }
            }
        }
        for (meta, task) in sends {
            let outcome: Vec<Result<(), EngineError>> = match task.await {
                Ok(Ok(per_message)) => per_message.into_iter().map(|r| r.map(|_| ())).collect(),
                Ok(Err(e)) => meta.iter().map(|_| Err(e.clone())).collect(),
                Err(join) => meta.iter().map(|_| Err(EngineError::Internal(join.to_string()))).collect(),
            };
            for ((i, sub_arn, dlq, fallback), result) in meta.into_iter().zip(outcome) {
                let Err(err) = result else { continue };
                tracing::warn!(subscription = %sub_arn, error = %err, "SNS delivery to SQS failed");
                let mut internal = matches!(err, EngineError::Internal(_) | EngineError::Unavailable(_));
                if let (Some(dlq), Some(msg)) = (dlq, fallback) {
                    if let Err(e2) = delivery::send_to_queue(&self.engine, &dlq, msg, "sns").await {
                        tracing::warn!(subscription = %sub_arn, dlq, error = %e2, "SNS dead-letter delivery failed");
                        internal |= matches!(e2, EngineError::Internal(_) | EngineError::Unavailable(_));
                    }
                }
                if internal && results[i].is_ok() {
                    results[i] = Err(SnsError::internal(format!("delivery to an SQS subscriber failed: {err}")));
                }
            }
        }
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        if ok > 0 {
            if let Ok(mut counts) = self.published.lock() {
                *counts.entry(topic_arn.to_string()).or_default() += ok;
            }
        }
        results
    }
}

/// What one PublishBatch entry comes to: its MessageId and SequenceNumber, or its error.
type EntryOutcome = SnsResult<(String, Option<String>)>;

/// A message ready to be delivered (see [`Inner::prepare`]).
struct Prepared {
    message_id: String,
    sequence_number: Option<String>,
    sqs: Vec<SqsCopy>,
    http: Vec<PendingDelivery>,
}

/// One copy for an SQS subscriber.
struct SqsCopy {
    queue_arn: String,
    dead_letter_arn: Option<String>,
    sub_arn: String,
    msg: SendMessage,
}

/// Splits one queue's copies into runs the engine accepts in one `send_messages` call (its batch
/// limit is on the total size; a single message is checked on its own).
fn size_chunks(copies: Vec<(usize, SqsCopy)>) -> Vec<Vec<(usize, SqsCopy)>> {
    let limit = sluice_engine::attributes::MAX_MESSAGE_SIZE as usize;
    let mut chunks: Vec<Vec<(usize, SqsCopy)>> = Vec::new();
    let mut size = 0usize;
    for (i, c) in copies {
        let n = c.msg.batch_size();
        match chunks.last_mut() {
            Some(last) if size + n <= limit => {
                size += n;
                last.push((i, c));
            }
            _ => {
                size = n;
                chunks.push(vec![(i, c)]);
            }
        }
    }
    chunks
}

struct Entry {
    message: Option<String>,
    subject: Option<String>,
    structure: Option<String>,
    attributes: BTreeMap<String, MsgAttr>,
    group_id: Option<String>,
    dedup_id: Option<String>,
}

impl Entry {
    fn size(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.len())
            + self
                .attributes
                .iter()
                .map(|(k, a)| {
                    k.len()
                        + a.data_type.len()
                        + a.string_value.as_ref().map_or(0, |s| s.len())
                        + a.binary_value.as_ref().map_or(0, |b| b.len())
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use std::sync::Arc;

    use sluice_engine::clock::ManualClock;
    use sluice_engine::ReceiveOptions;

    use crate::test_support::*;
    use crate::{Sns, SnsOptions};

    #[tokio::test]
    async fn publish_batch_commits_once_per_queue() {
        let engine = engine();
        let sns = Sns::open(engine.clone(), SnsOptions::default()).unwrap();
        let topic = topic_with_queues(&engine, &sns, &["q1"]).await;
        let before = commits(&engine);
        let (status, body) = call(&sns, &batch_body(&topic, 10)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.matches("<MessageId>").count(), 10, "{body}");
        assert_eq!(commits(&engine) - before, 1, "ten entries, one subscriber: one commit");
        // Durable before the answer: all ten are receivable, in order.
        let got = receive_all(&engine, "q1").await;
        let messages: Vec<String> = got
            .iter()
            .map(|b| serde_json::from_str::<serde_json::Value>(b).unwrap()["Message"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(messages, (1..=10).map(|i| format!("m{i}")).collect::<Vec<_>>());

        // Two subscribed queues: at most one commit each (group commit may fold them into one),
        // where one commit per entry and subscriber would be twenty.
        let _ = topic_with_queues(&engine, &sns, &["q2"]).await;
        let before = commits(&engine);
        let (status, _) = call(&sns, &batch_body(&topic, 10)).await;
        assert_eq!(status, 200);
        let used = commits(&engine) - before;
        assert!((1..=2).contains(&used), "{used} commits");
        assert_eq!(receive_all(&engine, "q1").await.len(), 10);
        assert_eq!(receive_all(&engine, "q2").await.len(), 10);
    }

    #[tokio::test]
    async fn publish_batch_keeps_per_entry_failures_and_fifo_order() {
        let engine = engine();
        let sns = Sns::open(engine.clone(), SnsOptions::default()).unwrap();
        let (status, _) = call(
            &sns,
            "Action=CreateTopic&Version=2010-03-31&Name=t.fifo&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true&Attributes.entry.2.key=ContentBasedDeduplication&Attributes.entry.2.value=true",
        )
        .await;
        assert_eq!(status, 200);
        let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:t.fifo");
        let mut attrs = BTreeMap::new();
        attrs.insert("FifoQueue".to_string(), "true".to_string());
        engine.create_queue("f.fifo", &attrs, &BTreeMap::new()).await.unwrap();
        let endpoint = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:f.fifo");
        call(&sns, &format!("Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=sqs&Endpoint={}&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true", enc(&topic), enc(&endpoint))).await;
        let mut body = format!("Action=PublishBatch&Version=2010-03-31&TopicArn={}", enc(&topic));
        // e2 has no group (fails alone); e4 repeats e1's content (de-duplicated by the queue).
        for (i, (msg, group)) in [("a", "g"), ("b", ""), ("c", "g"), ("a", "g"), ("d", "g")].iter().enumerate() {
            let i = i + 1;
            body.push_str(&format!(
                "&PublishBatchRequestEntries.member.{i}.Id=e{i}&PublishBatchRequestEntries.member.{i}.Message={msg}"
            ));
            if !group.is_empty() {
                body.push_str(&format!("&PublishBatchRequestEntries.member.{i}.MessageGroupId={group}"));
            }
        }
        let before = commits(&engine);
        let (status, resp) = call(&sns, &body).await;
        assert_eq!(status, 200, "{resp}");
        assert_eq!(resp.matches("<SequenceNumber>").count(), 4, "{resp}");
        assert!(resp.contains("<Failed><member><Id>e2</Id><Code>InvalidParameter</Code>"), "{resp}");
        assert_eq!(commits(&engine) - before, 1);
        let mut got = Vec::new();
        loop {
            let opts = ReceiveOptions { max_number_of_messages: Some(10), ..Default::default() };
            let batch = engine.receive_messages("f.fifo", &opts).await.unwrap();
            if batch.is_empty() {
                break;
            }
            for m in batch {
                got.push(m.body.clone());
                engine.delete_messages("f.fifo", &[m.receipt_handle]).unwrap();
            }
        }
        assert_eq!(got, vec!["a", "c", "d"]);
    }

    #[tokio::test]
    async fn urls_come_from_the_public_url_when_configured() {
        for (public_url, want) in [
            (None, "http://sluice.test:9324/?Action=Unsubscribe"),
            (Some("https://sns.example.com:8443/"), "https://sns.example.com:8443/?Action=Unsubscribe"),
        ] {
            let engine = engine();
            let options = SnsOptions { public_url: public_url.map(str::to_string), ..Default::default() };
            let sns = Sns::open(engine.clone(), options).unwrap();
            let topic = topic_with_queues(&engine, &sns, &["q"]).await;
            call(&sns, &format!("Action=Publish&Version=2010-03-31&TopicArn={}&Message=hi", enc(&topic))).await;
            let [body] = receive_all(&engine, "q").await.try_into().unwrap();
            let env: serde_json::Value = serde_json::from_str(&body).unwrap();
            let unsubscribe = env["UnsubscribeURL"].as_str().unwrap();
            assert!(unsubscribe.starts_with(want), "{unsubscribe}");
            let base = want.trim_end_matches("/?Action=Unsubscribe");
            assert_eq!(env["SigningCertURL"].as_str().unwrap(), format!("{base}/SimpleNotificationService-sluice.pem"));
        }
    }

    /// A one-shot-per-connection HTTP server answering 200 and reporting each request body.

    #[tokio::test]
    async fn publish_records_http_deliveries_before_answering() {
        let engine = engine();
        let sns = Sns::open(engine.clone(), local_subscribers()).unwrap();
        let (url, mut posts) = http_sink().await;
        let topic = topic_with_queues(&engine, &sns, &[]).await;
        let (status, _) = call(
            &sns,
            &format!(
                "Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=http&Endpoint={}",
                enc(&topic),
                enc(&url)
            ),
        )
        .await;
        assert_eq!(status, 200);
        let confirmation: serde_json::Value = serde_json::from_str(&posts.recv().await.unwrap()).unwrap();
        let token = confirmation["Token"].as_str().unwrap();
        let (status, _) = call(
            &sns,
            &format!("Action=ConfirmSubscription&Version=2010-03-31&TopicArn={}&Token={token}", enc(&topic)),
        )
        .await;
        assert_eq!(status, 200);
        wait_until(|| pending_ids(&engine).is_empty()).await;

        let (status, body) =
            call(&sns, &format!("Action=Publish&Version=2010-03-31&TopicArn={}&Message=hello", enc(&topic))).await;
        assert_eq!(status, 200, "{body}");
        let n: serde_json::Value = serde_json::from_str(&posts.recv().await.unwrap()).unwrap();
        assert_eq!(n["Message"], "hello");
        wait_until(|| pending_ids(&engine).is_empty()).await;
        // With the store closed the delivery cannot be recorded: Publish must fail rather than
        // answer for a delivery a restart would forget.
        engine.store().close().await;
        let (status, body) =
            call(&sns, &format!("Action=Publish&Version=2010-03-31&TopicArn={}&Message=lost", enc(&topic))).await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("InternalError"), "{body}");
    }

    #[tokio::test]
    async fn envelope_timestamps_come_from_the_engine_clock() {
        let clock = Arc::new(ManualClock::new(1_709_294_400_123));
        let engine = engine_on(clock.clone());
        let sns = Sns::open(engine.clone(), SnsOptions::default()).unwrap();
        let topic = topic_with_queues(&engine, &sns, &["q"]).await;
        let publish = |message: &'static str| {
            let (sns, topic) = (sns.clone(), topic.clone());
            async move {
                let body = format!("Action=Publish&Version=2010-03-31&TopicArn={}&Message={message}", enc(&topic));
                let (status, resp) = call(&sns, &body).await;
                assert_eq!(status, 200, "{resp}");
            }
        };
        publish("one").await;
        clock.advance_ms(61_000);
        publish("two").await;
        let mut stamps: Vec<(String, String)> = receive_all(&engine, "q")
            .await
            .iter()
            .map(|b| {
                let env: serde_json::Value = serde_json::from_str(b).unwrap();
                (env["Message"].as_str().unwrap().to_string(), env["Timestamp"].as_str().unwrap().to_string())
            })
            .collect();
        stamps.sort();
        stamps.dedup();
        assert_eq!(
            stamps,
            vec![
                ("one".to_string(), "2024-03-01T12:00:00.123Z".to_string()),
                ("two".to_string(), "2024-03-01T12:01:01.123Z".to_string()),
            ]
        );
    }
}
