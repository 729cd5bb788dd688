//! SendMessage and SendMessageBatch: the request's checks, each message's validation, FIFO
//! de-duplication, and the commit that makes every acknowledged message durable before it is
//! receivable.

use sluice_store::Op;

use super::{push_dedup_prune, Engine};
use crate::attributes::{QueueAttributes, MAX_DELAY_SECONDS, MAX_MESSAGE_SIZE};
use crate::digest::{md5, md5_of_attributes, to_hex};
use crate::error::{EngineError, Result};
use crate::message::{self, SendMessage, SendResult};
use crate::queue::{DedupEntry, DedupKey, QueueStats, DEDUP_WINDOW_MS};
use crate::record::{dedup_kv_key, BodyRecord, MessageMeta};

/// A validated message, ready to be committed.
struct Prepared {
    meta: MessageMeta,
    body: BodyRecord,
    /// The body record as stored: sealed under the queue's data key, or plain.
    stored: Vec<u8>,
    result: SendResult,
    /// FIFO: the de-duplication key (digest of the scope-qualified id).
    dedup_key: Option<DedupKey>,
}

impl Engine {
    /// SendMessageBatch: [`Engine::send_messages`] with the checks AWS makes on the whole request before
    /// any entry's own (so one oversized entry fails the request with BatchRequestTooLong).
    pub async fn send_message_batch(
        &self,
        name: &str,
        messages: Vec<SendMessage>,
        sender_id: &str,
    ) -> Result<Vec<Result<SendResult>>> {
        self.send(name, messages, sender_id, true).await
    }

    /// SendMessage / SendMessageBatch. The outer error fails the whole request; inner errors fail
    /// single entries. Every Ok entry is durable when this returns. On FIFO queues a duplicate inside
    /// the 5-minute window succeeds with the original MessageId and is not enqueued again.
    pub async fn send_messages(
        &self,
        name: &str,
        messages: Vec<SendMessage>,
        sender_id: &str,
    ) -> Result<Vec<Result<SendResult>>> {
        self.send(name, messages, sender_id, false).await
    }

    /// The send itself; `batch` picks the wording of per-message errors (SendMessageBatch's differ).
    async fn send(
        &self,
        name: &str,
        messages: Vec<SendMessage>,
        sender_id: &str,
        batch: bool,
    ) -> Result<Vec<Result<SendResult>>> {
        let queue = self.queue(name)?;
        let attrs = queue.lock().record.attributes.clone();
        // A batch's total counts even for one entry: one oversized entry fails the whole request
        // (SNS fan-out sends several copies through `send_messages` and relies on the same limit).
        if batch || messages.len() > 1 {
            let total: usize = messages.iter().map(SendMessage::batch_size).sum();
            if total > MAX_MESSAGE_SIZE as usize {
                return Err(EngineError::BatchRequestTooLong(MAX_MESSAGE_SIZE as usize, total));
            }
        }
        if batch && attrs.fifo_queue && messages.iter().any(|m| m.group_id.is_none()) {
            // AWS fails the whole batch here (a single SendMessage gets MissingParameter instead).
            return Err(EngineError::InvalidParameterValue(
                "The request must contain the parameter MessageGroupId.".into(),
            ));
        }
        if attrs.fifo_queue
            && !attrs.content_based_deduplication
            && messages.iter().any(|m| m.deduplication_id.is_none())
        {
            // As AWS answers: the whole request fails, not just the entry.
            return Err(EngineError::InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
            ));
        }
        let now = self.clock.now_ms();
        let key = self.sealing_key(&queue, &attrs, now).await?;
        let prepared: Vec<Result<Prepared>> = messages
            .into_iter()
            .map(|m| {
                let mut p = self.prepare_send(&attrs, m, sender_id, now, batch)?;
                // Sealed outside the queue's lock: one AEAD pass per message.
                p.stored = Engine::stored_body(key.as_deref(), &queue, &p.meta.id, &p.body);
                Ok(p)
            })
            .collect();
        let mut results = Vec::with_capacity(prepared.len());
        let mut ops = Vec::with_capacity(prepared.len());
        let mut committed = Vec::with_capacity(prepared.len());
        // De-duplication entries this send added, to take back if its commit fails.
        let mut windowed = Vec::new();
        let mut prepared = Some(prepared);
        loop {
            // A duplicate of a send whose commit is still on its way to the disk must not be
            // acknowledged before that commit is: it waits for the original to settle (committed,
            // or failed and withdrawn) and then looks again.
            let settled = queue.dedup_settled.notified();
            tokio::pin!(settled);
            let waiting = {
                let mut state = queue.lock();
                let batch = prepared.as_ref().expect("taken only when the loop ends");
                let unsettled_original = batch
                    .iter()
                    .filter_map(|p| p.as_ref().ok()?.dedup_key.as_ref())
                    .any(|key| state.dedup.get(key, now).is_some_and(|original| state.dedup_unsettled(original.seq)));
                if unsettled_original {
                    settled.as_mut().enable();
                    true
                } else {
                    let batch = prepared.take().expect("taken only when the loop ends");
                    // Committed under the lock, like every prune: a later send may re-open one of
                    // these keys, and its record must not reach the store before this removal.
                    let mut pruned = Vec::new();
                    push_dedup_prune(&queue, &mut state, now, &mut pruned);
                    self.store.commit_lazy(pruned);
                    let first_seq = state.alloc_seqs(batch.len());
                    for (i, p) in batch.into_iter().enumerate() {
                        let mut p = match p {
                            Ok(p) => p,
                            Err(e) => {
                                results.push(Err(e));
                                continue;
                            }
                        };
                        let seq = first_seq + i as u64;
                        if let Some(key) = &p.dedup_key {
                            if let Some(original) = state.dedup.get(key, now) {
                                p.result.message_id = uuid::Uuid::from_bytes(original.message_id).to_string();
                                p.result.sequence_number = Some(original.seq.to_string());
                                results.push(Ok(p.result));
                                continue;
                            }
                            // No kv record: the entry is persisted in the message's meta record
                            // (expiry = sent_ms + window, as recovery computes it).
                            debug_assert_eq!(p.meta.sent_ms, now);
                            let entry = DedupEntry { message_id: p.meta.id, seq, expires_ms: now + DEDUP_WINDOW_MS };
                            if let Some(stale) = state.dedup.insert(*key, entry) {
                                ops.push(Op::DeleteKv { queue: queue.id, key: dedup_kv_key(&stale) });
                            }
                            windowed.push((*key, seq));
                            p.result.sequence_number = Some(seq.to_string());
                        }
                        let group = p.body.group_id.clone().unwrap_or_default();
                        let meta = p.meta.encode(&group, p.dedup_key.as_ref());
                        ops.push(Op::PutMessage { queue: queue.id, seq, meta, body: std::mem::take(&mut p.stored) });
                        committed.push((seq, p.meta, group));
                        results.push(Ok(p.result));
                    }
                    for (_, seq) in &windowed {
                        state.mark_dedup_unsettled(*seq);
                    }
                    false
                }
            };
            if !waiting {
                break;
            }
            settled.await;
        }
        if committed.is_empty() {
            self.store.commit_lazy(ops);
            return Ok(results);
        }
        let outcome = self.store.commit(ops).await;
        {
            let mut state = queue.lock();
            for (key, seq) in &windowed {
                state.settle_dedup(*seq);
                if outcome.is_err() {
                    state.dedup.withdraw(key, *seq);
                }
            }
            if !windowed.is_empty() {
                queue.dedup_settled.notify_waiters();
            }
            outcome?;
            if state.deleted {
                return Err(EngineError::QueueDoesNotExist);
            }
            QueueStats::add(&queue.stats.sent, committed.len());
            for (seq, meta, group) in committed {
                state.insert(seq, meta, &group, now);
            }
        }
        queue.notify.notify_waiters();
        Ok(results)
    }

    fn prepare_send(
        &self,
        attrs: &QueueAttributes,
        msg: SendMessage,
        sender_id: &str,
        now: u64,
        batch: bool,
    ) -> Result<Prepared> {
        if msg.body.is_empty() {
            return Err(EngineError::MissingParameter("MessageBody".into()));
        }
        message::validate_body_chars(&msg.body)?;
        let attr_size = message::validate_attributes(&msg.attributes)?;
        message::validate_system_attributes(&msg.system_attributes)?;
        let size = msg.body.len() + attr_size;
        if size > attrs.maximum_message_size as usize {
            // AWS's recorded wordings differ between the two (LocalStack snapshots test_send_oversized_message
            // and test_send_batch_message_size).
            let verb = if batch { "cannot be validated" } else { "are invalid" };
            return Err(EngineError::InvalidParameterValue(format!(
                "One or more parameters {verb}. Reason: Message must be shorter than {} bytes.",
                attrs.maximum_message_size
            )));
        }
        if let Some(g) = &msg.group_id {
            message::validate_fifo_id("MessageGroupId", g)?;
        }
        let (delay, dedup_id) = if attrs.fifo_queue {
            let Some(group) = &msg.group_id else {
                return Err(EngineError::MissingParameter("MessageGroupId".into()));
            };
            if let Some(d) = msg.delay_seconds.filter(|d| *d != 0) {
                return Err(EngineError::InvalidParameterValue(format!(
                    "Value {d} for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type."
                )));
            }
            let dedup = match &msg.deduplication_id {
                Some(d) => {
                    message::validate_fifo_id("MessageDeduplicationId", d)?;
                    d.clone()
                }
                None if attrs.content_based_deduplication => {
                    use sha2::Digest;
                    sha2::Sha256::digest(msg.body.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
                }
                None => {
                    return Err(EngineError::InvalidParameterValue(
                        "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
                    ))
                }
            };
            let key = if attrs.deduplication_scope == "messageGroup" {
                format!("{group}\u{0}{dedup}")
            } else {
                dedup.clone()
            };
            (attrs.delay_seconds as i64, Some((dedup, key)))
        } else {
            if let Some(d) = &msg.deduplication_id {
                return Err(EngineError::InvalidParameterValue(format!(
                    "Value {d} for parameter MessageDeduplicationId is invalid. Reason: The request include parameter that is not valid for this queue type."
                )));
            }
            let delay = match msg.delay_seconds {
                None => attrs.delay_seconds as i64,
                Some(d) if (0..=MAX_DELAY_SECONDS as i64).contains(&d) => d,
                Some(d) => {
                    return Err(EngineError::InvalidParameterValue(format!(
                        "Value {d} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900."
                    )))
                }
            };
            (delay, None)
        };
        let id = *uuid::Uuid::new_v4().as_bytes();
        let meta = MessageMeta {
            id,
            sent_ms: now,
            first_receive_ms: 0,
            visible_at_ms: now + delay as u64 * 1000,
            receive_count: 0,
            size: size as u32,
            group: 0,
            last_receive_ms: 0,
        };
        let md5_of_body = md5(msg.body.as_bytes());
        let result = SendResult {
            message_id: uuid::Uuid::from_bytes(id).to_string(),
            md5_of_body: to_hex(&md5_of_body),
            md5_of_attributes: md5_of_attributes(&msg.attributes),
            md5_of_system_attributes: md5_of_attributes(&msg.system_attributes),
            sequence_number: None,
        };
        let (deduplication_id, dedup_key) = match dedup_id {
            Some((id, key)) => (Some(id), Some(crate::queue::dedup_key(&key))),
            None => (None, None),
        };
        let body = BodyRecord {
            body: msg.body,
            attributes: msg.attributes,
            system_attributes: msg.system_attributes,
            sender_id: sender_id.to_string(),
            group_id: msg.group_id,
            deduplication_id,
            dead_letter_source_arn: None,
            md5_of_body: Some(md5_of_body),
        };
        Ok(Prepared { meta, body, stored: Vec::new(), result, dedup_key })
    }
}
