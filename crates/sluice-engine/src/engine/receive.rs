//! ReceiveMessage: the long poll (woken by a send, a delete that unblocks a FIFO group, a visibility
//! change to 0 or shutdown), FIFO ReceiveRequestAttemptId retries, the dead-lettering of messages
//! past maxReceiveCount on the way, and the received messages themselves (bodies from the store,
//! the requested system and message attributes, receipt handles).

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_store::{Op, Seq};

use super::integrity::Damaged;
use super::{encode_meta, push_removal, Engine};
use crate::attributes::{MAX_VISIBILITY_TIMEOUT, MAX_WAIT_SECONDS};
use crate::digest::{md5_of_attributes, to_hex};
use crate::error::{EngineError, Result};
use crate::message::{self, Attributes, ReceivedMessage};
use crate::queue::{Queue, QueueStats};
use crate::receipt::Receipt;
use crate::record::MessageMeta;

/// Options of one ReceiveMessage call, as sent (None = not given).
#[derive(Debug, Clone, Default)]
pub struct ReceiveOptions {
    pub max_number_of_messages: Option<i64>,
    pub visibility_timeout: Option<i64>,
    pub wait_time_seconds: Option<i64>,
    /// System attribute names (AttributeNames and MessageSystemAttributeNames together).
    pub system_attribute_names: Vec<String>,
    /// Message attribute names: `All`, `.*`, exact names or prefixes like `foo.*`.
    pub message_attribute_names: Vec<String>,
    /// FIFO: a retried receive with the same id within 5 minutes gets the same messages.
    pub receive_request_attempt_id: Option<String>,
}

/// System attributes a receiver may ask for.
const SYSTEM_ATTRIBUTES: &[&str] = &[
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "AWSTraceHeader",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "DeadLetterQueueSourceArn",
];

/// Decrements the long-poll gauge when a waiting receive ends, however it ends.
struct WaitingGuard<'a>(&'a std::sync::atomic::AtomicI64);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Engine {
    /// ReceiveMessage, with long polling: waits up to the wait time for at least one message and
    /// returns as soon as one is there (or at shutdown, with what it has). Messages past their
    /// queue's maxReceiveCount are moved to its dead-letter queue instead of being returned.
    pub async fn receive_messages(&self, name: &str, opts: &ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        let queue = self.queue(name)?;
        let max = check_range(
            "MaxNumberOfMessages",
            opts.max_number_of_messages,
            1,
            10,
            "Must be between 1 and 10, if provided.",
        )?;
        let visibility = check_range(
            "VisibilityTimeout",
            opts.visibility_timeout,
            0,
            MAX_VISIBILITY_TIMEOUT as i64,
            "Must be >= 0 and <= 43200, if provided.",
        )?;
        let wait = check_range(
            "WaitTimeSeconds",
            opts.wait_time_seconds,
            0,
            MAX_WAIT_SECONDS as i64,
            "Must be >= 0 and <= 20, if provided.",
        )?;
        let (default_visibility, default_wait, fifo) = {
            let s = queue.lock();
            let a = &s.record.attributes;
            (a.visibility_timeout as u64, a.receive_message_wait_time_seconds as u64, a.fifo_queue)
        };
        let attempt_id = opts.receive_request_attempt_id.as_deref().filter(|_| fifo);
        if let Some(id) = attempt_id {
            message::validate_fifo_id("ReceiveRequestAttemptId", id)?;
            let retried = queue.lock().retry_attempt(id, self.clock.now_ms());
            if let Some(previous) = retried {
                return self.build_received(&queue, previous, opts);
            }
        }
        let max = max.unwrap_or(1) as usize;
        let visibility_ms = visibility.map_or(default_visibility, |v| v as u64) * 1000;
        let deadline = self.clock.now_ms() + wait.map_or(default_wait, |w| w as u64) * 1000;
        let redrive = self.redrive_target(&queue);
        let mut shutdown = self.shutdown.subscribe();
        loop {
            let notified = queue.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            // Before taking: a receive whose bookkeeping cannot be logged must not hide messages.
            self.refuse_if_unrecordable()?;
            let now = self.clock.now_ms();
            let (taken, next_due) = {
                let mut state = queue.lock();
                if state.deleted {
                    return Err(EngineError::QueueDoesNotExist);
                }
                self.tick(&queue, &mut state, now);
                let taken =
                    state.take(now, max, visibility_ms, self.config.max_inflight, redrive.as_ref().map(|r| r.1))?;
                if let Some(id) = attempt_id {
                    if !taken.messages.is_empty() {
                        state.remember_attempt(id, now, &taken.messages);
                    }
                }
                let mut ops: Vec<Op> = taken
                    .messages
                    .iter()
                    .map(|(seq, meta)| Op::PutMeta {
                        queue: queue.id,
                        seq: *seq,
                        meta: encode_meta(&state, *seq, meta),
                    })
                    .collect();
                for seq in &taken.expired {
                    push_removal(&queue, &mut state, *seq, now, &mut ops);
                }
                self.store.commit_lazy(ops);
                (taken, state.next_due())
            };
            let moved_dead = !taken.dead.is_empty();
            if let (true, Some((dlq, _))) = (moved_dead, &redrive) {
                let n = self.move_messages(&queue, dlq, taken.dead, Some(&queue.arn)).await?;
                QueueStats::add(&queue.stats.dead_lettered, n);
            }
            if !taken.messages.is_empty() {
                let messages = self.build_received(&queue, taken.messages, opts)?;
                if !messages.is_empty() {
                    QueueStats::add(&queue.stats.received, messages.len());
                    return Ok(messages);
                }
                continue;
            }
            if moved_dead {
                continue;
            }
            if now >= deadline || *shutdown.borrow() {
                QueueStats::add(&queue.stats.empty_receives, 1);
                return Ok(Vec::new());
            }
            let wake_at = next_due.map_or(deadline, |d| d.min(deadline));
            let sleep = Duration::from_millis(wake_at.saturating_sub(now).max(1));
            self.long_polls_waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _waiting = WaitingGuard(&self.long_polls_waiting);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(sleep) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    fn build_received(
        &self,
        queue: &Queue,
        taken: Vec<(Seq, MessageMeta)>,
        opts: &ReceiveOptions,
    ) -> Result<Vec<ReceivedMessage>> {
        let want_system = |name: &str| opts.system_attribute_names.iter().any(|n| n == "All" || n == name);
        let mut out = Vec::with_capacity(taken.len());
        let seqs: Vec<Seq> = taken.iter().map(|(seq, _)| *seq).collect();
        // One read for all; if that fails, one each, so one unreadable record does not fail the
        // receive (and leave the others in flight).
        let bodies: Vec<_> = match self.store.get_bodies(queue.id, &seqs) {
            Ok(bodies) => bodies.into_iter().map(Ok).collect(),
            Err(_) => seqs.iter().map(|&seq| self.store.get_body(queue.id, seq)).collect(),
        };
        let mut damaged = Vec::new();
        for ((seq, meta), bytes) in taken.into_iter().zip(bodies) {
            // A body can be missing only if the message was deleted or purged meanwhile.
            let bytes = match bytes {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(e) => {
                    damaged.push(Damaged { seq, bytes: Vec::new(), reason: e.to_string() });
                    continue;
                }
            };
            // Decrypted first when sealed (at rest), then checked against its stored MD5: a record
            // that fails either is damage, quarantined, and the rest of the batch is served.
            let record = match self.open_body(queue, &meta.id, &bytes) {
                Ok(Some(record)) if record.md5_matches() => record,
                Ok(Some(_)) => {
                    damaged.push(Damaged { seq, bytes, reason: "body does not match its stored MD5".into() });
                    continue;
                }
                Ok(None) => {
                    damaged.push(Damaged { seq, bytes, reason: "an encrypted record does not decrypt".into() });
                    continue;
                }
                Err(e) => {
                    damaged.push(Damaged { seq, bytes, reason: e.to_string() });
                    continue;
                }
            };
            let md5_of_body = to_hex(&record.body_md5());
            let fifo_seq = record.deduplication_id.as_ref().map(|_| seq.to_string());
            let mut system = BTreeMap::new();
            for &name in SYSTEM_ATTRIBUTES {
                if !want_system(name) {
                    continue;
                }
                let value = match name {
                    "SenderId" => Some(record.sender_id.clone()),
                    "SentTimestamp" => Some(meta.sent_ms.to_string()),
                    "ApproximateReceiveCount" => Some(meta.receive_count.to_string()),
                    "ApproximateFirstReceiveTimestamp" => Some(meta.first_receive_ms.to_string()),
                    "AWSTraceHeader" => {
                        record.system_attributes.get("AWSTraceHeader").and_then(|v| v.string_value.clone())
                    }
                    "SequenceNumber" => fifo_seq.clone(),
                    "MessageGroupId" => record.group_id.clone(),
                    "MessageDeduplicationId" => record.deduplication_id.clone(),
                    "DeadLetterQueueSourceArn" => record.dead_letter_source_arn.clone(),
                    _ => None,
                };
                if let Some(v) = value {
                    system.insert(name.to_string(), v);
                }
            }
            let attributes: Attributes = record
                .attributes
                .into_iter()
                .filter(|(name, _)| wants_message_attribute(&opts.message_attribute_names, name))
                .collect();
            out.push(ReceivedMessage {
                message_id: uuid::Uuid::from_bytes(meta.id).to_string(),
                receipt_handle: self.receipts.issue(Receipt { queue: queue.id, seq, receive: meta.receive_count }),
                md5_of_body,
                body: record.body,
                system_attributes: system,
                md5_of_attributes: md5_of_attributes(&attributes),
                attributes,
            });
        }
        if !damaged.is_empty() {
            self.quarantine(queue, damaged);
        }
        Ok(out)
    }
}

fn check_range(name: &str, value: Option<i64>, min: i64, max: i64, reason: &str) -> Result<Option<i64>> {
    match value {
        Some(v) if v < min || v > max => Err(EngineError::InvalidParameterValue(format!(
            "Value {v} for parameter {name} is invalid. Reason: {reason}"
        ))),
        other => Ok(other),
    }
}

/// ReceiveMessage's `MessageAttributeNames` filter: `All`, `.*` or `*` take every attribute, `Foo.*` every
/// attribute whose name starts with `Foo` (AWS's recording: `Hel.*` returns `Hello` and `Help.Me`, see
/// tests/python/test_messages.py), anything else one exact name.
fn wants_message_attribute(requested: &[String], name: &str) -> bool {
    requested.iter().any(|r| {
        matches!(r.as_str(), "All" | ".*" | "*")
            || r == name
            || r.strip_suffix(".*").is_some_and(|prefix| name.starts_with(prefix))
    })
}
