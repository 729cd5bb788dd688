//! The engine: the registry of queues and one method per SQS action.
//!
//! Durability rule (see docs/ARCHITECTURE.md): queue changes and sends are committed before the
//! method returns; receive bookkeeping (receive count, visibility) and deletes are handed to the
//! store's next group commit without waiting. A crash can therefore lose a delete or the last few
//! milliseconds of receive counts (the message is delivered again), never an acknowledged send.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sluice_store::{Op, QueueId, Seq, Store};
use tokio::sync::watch;

use crate::attributes::{self, QueueAttributes, MAX_DELAY_SECONDS, MAX_MESSAGE_SIZE, MAX_VISIBILITY_TIMEOUT, MAX_WAIT_SECONDS};
use crate::clock::Clock;
use crate::digest::{md5, md5_of_attributes, to_hex};
use crate::error::{EngineError, Result};
use crate::message::{self, Attributes, ReceivedMessage, SendMessage, SendResult};
use crate::move_task::MoveTask;
use crate::queue::{Counts, DedupEntry, DedupKey, Queue, QueueState, QueueStats, DEDUP_WINDOW_MS};
use crate::receipt::{Receipt, ReceiptKey};
use crate::record::{BodyRecord, MessageMeta, QueueRecord};

/// AWS's limit of in-flight messages on a standard queue.
pub const DEFAULT_MAX_INFLIGHT: usize = 120_000;

/// Settings the engine needs from the server.
#[derive(Clone)]
pub struct EngineConfig {
    /// Region in ARNs, e.g. `us-east-1`.
    pub region: String,
    /// Account id in ARNs and queue URLs, e.g. `000000000000`.
    pub account_id: String,
    /// Secret for receipt handles; keep it stable across restarts so handles stay valid.
    pub receipt_secret: Vec<u8>,
    /// In-flight messages per queue before ReceiveMessage answers OverLimit.
    pub max_inflight: usize,
}

impl EngineConfig {
    /// Defaults for a region and account, with the given receipt secret.
    pub fn new(region: &str, account_id: &str, receipt_secret: Vec<u8>) -> Self {
        EngineConfig {
            region: region.into(),
            account_id: account_id.into(),
            receipt_secret,
            max_inflight: DEFAULT_MAX_INFLIGHT,
        }
    }
}

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

/// Key/value record prefixes in the store, per queue.
pub(crate) const KV_DEDUP: u8 = b'd';
pub(crate) const KV_TASK: u8 = b't';

/// The kv key of a FIFO de-duplication entry.
fn dedup_kv_key(key: &DedupKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(KV_DEDUP);
    k.extend_from_slice(key);
    k
}

/// A message's meta record as rewritten after a receive or visibility change: it keeps the FIFO
/// de-duplication digest while the message holds a window entry.
fn encode_meta(state: &QueueState, seq: Seq, meta: &MessageMeta) -> Vec<u8> {
    meta.encode(state.group_name(meta.group), state.dedup.key_of(seq).as_ref())
}

/// The ops removing a message the index already let go of (deleted, expired, dead-lettered, moved):
/// if its FIFO de-duplication window is still open, the entry's kv record goes in the same commit,
/// so the window outlives the meta record that held it.
fn push_removal(queue: &Queue, state: &mut QueueState, seq: Seq, now: u64, ops: &mut Vec<Op>) {
    if let Some((key, entry)) = state.dedup.depart(seq, now) {
        ops.push(Op::PutKv { queue: queue.id, key: dedup_kv_key(&key), value: entry.encode() });
    }
    ops.push(Op::DeleteMessage { queue: queue.id, seq });
}

/// Drops ended de-duplication windows; deletes the kv records some of them have.
fn push_dedup_prune(queue: &Queue, state: &mut QueueState, now: u64, ops: &mut Vec<Op>) {
    let pruned = state.dedup.prune(now);
    ops.extend(pruned.iter().map(|k| Op::DeleteKv { queue: queue.id, key: dedup_kv_key(k) }));
}

pub(crate) fn kv_key(prefix: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(prefix);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Every queue, and the shared services they use.
pub struct Engine {
    config: EngineConfig,
    clock: Arc<dyn Clock>,
    store: Arc<Store>,
    receipts: ReceiptKey,
    /// Name → queue. Read-mostly: only create and delete take the write lock.
    queues: RwLock<HashMap<String, Arc<Queue>>>,
    /// Flipped to true on shutdown so long polls return at once with what they have.
    shutdown: watch::Sender<bool>,
    /// Message move tasks, newest last.
    pub(crate) tasks: Mutex<Vec<Arc<MoveTask>>>,
    /// Names deleted in the last 60 seconds and when (AWS refuses to re-create them meanwhile).
    recently_deleted: Mutex<HashMap<String, u64>>,
    /// Receives currently waiting in a long poll (a gauge for metrics).
    long_polls_waiting: std::sync::atomic::AtomicI64,
}

/// One queue's figures for metrics and the dashboard.
#[derive(Debug, Clone)]
pub struct QueueOverview {
    pub name: String,
    pub arn: String,
    pub fifo: bool,
    pub counts: Counts,
    pub oldest_age_ms: Option<u64>,
    pub sent: u64,
    pub received: u64,
    pub deleted: u64,
    pub empty_receives: u64,
    pub dead_lettered: u64,
    pub dlq_arn: Option<String>,
}

/// A message shown without being received (dashboard peek).
#[derive(Debug, Clone)]
pub struct PeekedMessage {
    pub message_id: String,
    pub body: String,
    pub sent_ms: u64,
    pub receive_count: u32,
    pub attributes: Attributes,
}

/// Decrements the long-poll gauge when a waiting receive ends, however it ends.
struct WaitingGuard<'a>(&'a std::sync::atomic::AtomicI64);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How long a deleted queue's name stays reserved.
const DELETED_NAME_HOLD_MS: u64 = 60_000;

fn lock_poisoned<T>(p: std::sync::PoisonError<T>) -> T {
    p.into_inner()
}

impl Engine {
    /// Opens the engine over `store`, rebuilding every queue's index from it (recovery).
    pub fn open(config: EngineConfig, clock: Arc<dyn Clock>, store: Arc<Store>) -> Result<Engine> {
        let now = clock.now_ms();
        let seq_floor = now << 20;
        let mut queues: HashMap<QueueId, QueueState> = HashMap::new();
        let mut bad = None;
        store.scan_queues(&mut |id, bytes| match QueueRecord::decode(bytes) {
            Ok(record) => {
                queues.insert(id, QueueState::new(record, seq_floor));
            }
            Err(e) => bad = Some(e),
        })?;
        if let Some(e) = bad {
            return Err(e);
        }
        store.scan_purge_bounds(&mut |id, below| {
            if let Some(q) = queues.get_mut(&id) {
                q.seqs_start_at_least(below);
            }
        })?;
        let mut orphans = Vec::new();
        let mut corrupt = 0usize;
        store.scan_meta(&mut |id, seq, bytes| match (queues.get_mut(&id), MessageMeta::decode(bytes)) {
            (Some(q), Ok((meta, group, dedup))) => {
                q.insert(seq, meta, &group, now);
                // A queued FIFO message's de-duplication entry lives in its meta record; a send
                // sets expiry and sent_ms from the same clock reading.
                let expires_ms = meta.sent_ms + DEDUP_WINDOW_MS;
                if let Some(key) = dedup.filter(|_| expires_ms > now) {
                    q.dedup.recover(key, DedupEntry { message_id: meta.id, seq, expires_ms }, false);
                }
            }
            (None, _) => orphans.push(Op::DeleteMessage { queue: id, seq }),
            (Some(_), Err(_)) => corrupt += 1,
        })?;
        let mut task_records = Vec::new();
        store.scan_kv(&mut |id, key, value| {
            let Some(q) = queues.get_mut(&id) else { return };
            match key.first() {
                Some(&KV_DEDUP) => match (DedupKey::try_from(&key[1..]), DedupEntry::decode(value)) {
                    // Written when a message left the queue inside its window (and, before meta
                    // version 4, at every send).
                    (Ok(k), Some(e)) if e.expires_ms > now => q.dedup.recover(k, e, true),
                    // Expired while the server was down, or not a record this version wrote.
                    _ => orphans.push(Op::DeleteKv { queue: id, key: key.to_vec() }),
                },
                Some(&KV_TASK) => task_records.push((id, value.to_vec())),
                _ => {}
            }
        })?;
        for (id, q) in queues.iter_mut() {
            let stale = q.finish_dedup_recovery();
            orphans.extend(stale.iter().map(|k| Op::DeleteKv { queue: *id, key: dedup_kv_key(k) }));
        }
        if corrupt > 0 {
            tracing::error!(corrupt, "message metadata records could not be decoded and were skipped");
        }
        if !orphans.is_empty() {
            tracing::info!(count = orphans.len(), "removing messages of deleted queues");
            store.commit_lazy(orphans);
        }
        let engine = Engine {
            receipts: ReceiptKey::new(&config.receipt_secret),
            config,
            clock,
            store,
            queues: RwLock::new(HashMap::new()),
            shutdown: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            recently_deleted: Mutex::new(HashMap::new()),
            long_polls_waiting: std::sync::atomic::AtomicI64::new(0),
        };
        {
            let mut map = engine.queues.write().unwrap_or_else(lock_poisoned);
            for (id, state) in queues {
                let arn = engine.queue_arn(&state.record.name);
                let name = state.record.name.clone();
                map.insert(name, Arc::new(Queue::new(id, arn, state)));
            }
        }
        engine.recover_tasks(task_records);
        Ok(engine)
    }

    /// The ARN of a queue name.
    pub fn queue_arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{}:{}", self.config.region, self.config.account_id, name)
    }

    /// The configured region.
    pub fn region(&self) -> &str {
        &self.config.region
    }

    /// The configured account id.
    pub fn account_id(&self) -> &str {
        &self.config.account_id
    }

    /// The store (for stats and shutdown).
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub(crate) fn queue(&self, name: &str) -> Result<Arc<Queue>> {
        self.queues.read().unwrap_or_else(lock_poisoned).get(name).cloned().ok_or(EngineError::QueueDoesNotExist)
    }

    /// The queue an ARN of this server names, if it exists.
    pub(crate) fn queue_by_arn(&self, arn: &str) -> Option<Arc<Queue>> {
        let name = arn.rsplit(':').next()?;
        self.queue(name).ok().filter(|q| q.arn == arn)
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Checks a RedrivePolicy a queue wants: the target exists, has the same type and allows it.
    fn check_redrive(&self, source_arn: &str, fifo: bool, attrs: &QueueAttributes) -> Result<()> {
        let Some(policy) = &attrs.redrive_policy else { return Ok(()) };
        let invalid = |why: &str| {
            EngineError::InvalidParameterValue(format!(
                "Value {} for parameter RedrivePolicy is invalid. Reason: {why}",
                policy.to_json()
            ))
        };
        if policy.dead_letter_target_arn == source_arn {
            return Err(invalid("A queue cannot be its own dead-letter queue."));
        }
        let target = self.queue_by_arn(&policy.dead_letter_target_arn).ok_or_else(|| invalid("Dead letter target does not exist."))?;
        let target_state = target.lock();
        if target_state.record.attributes.fifo_queue != fifo {
            return Err(invalid("Dead-letter queue must be same type of queue as the source."));
        }
        if let Some(allow) = &target_state.record.attributes.redrive_allow_policy {
            if !allow.allows(source_arn) {
                return Err(invalid("Queue is not allowed by the dead-letter queue's RedriveAllowPolicy."));
            }
        }
        Ok(())
    }

    /// CreateQueue. Returns Ok for an existing queue when every supplied attribute matches.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let fifo = attributes::wants_fifo(attributes)?;
        attributes::validate_queue_name(name, fifo)?;
        let attrs = QueueAttributes { fifo_queue: fifo, ..QueueAttributes::default() }.with(attributes)?;
        attributes::validate_tags(name, tags)?;
        self.check_redrive(&self.queue_arn(name), fifo, &attrs)?;
        if let Ok(existing) = self.queue(name) {
            let state = existing.lock();
            return match state.record.attributes.first_conflict(attributes)? {
                None => Ok(()),
                Some(attr) => Err(EngineError::QueueNameExists(attr)),
            };
        }
        let now = self.clock.now_ms();
        {
            let mut deleted = self.recently_deleted.lock().unwrap_or_else(lock_poisoned);
            deleted.retain(|_, at| now < *at + DELETED_NAME_HOLD_MS);
            if deleted.contains_key(name) {
                return Err(EngineError::QueueDeletedRecently(name.to_string()));
            }
        }
        let record = QueueRecord {
            name: name.to_string(),
            created_ms: now,
            last_modified_ms: now,
            attributes: attrs,
            tags: tags.clone(),
        };
        let id = new_queue_id();
        // Persist first, then publish: a queue is visible only once it is durable.
        self.store.commit(vec![Op::PutQueue { queue: id, record: record.encode() }]).await?;
        let mut map = self.queues.write().unwrap_or_else(lock_poisoned);
        if let Some(existing) = map.get(name) {
            // Lost a race with a concurrent create of the same name: keep the first, drop ours.
            let conflict = existing.lock().record.attributes.first_conflict(attributes)?;
            drop(map);
            self.store.commit_lazy(vec![Op::DeleteQueue { queue: id }]);
            return match conflict {
                None => Ok(()),
                Some(attr) => Err(EngineError::QueueNameExists(attr)),
            };
        }
        let state = QueueState::new(record, now << 20);
        map.insert(name.to_string(), Arc::new(Queue::new(id, self.queue_arn(name), state)));
        Ok(())
    }

    /// GetQueueUrl: Ok if the queue exists.
    pub fn queue_exists(&self, name: &str) -> Result<()> {
        self.queue(name).map(|_| ())
    }

    /// ListQueues: names starting with `prefix`, sorted.
    pub fn list_queues(&self, prefix: &str) -> Vec<String> {
        let map = self.queues.read().unwrap_or_else(lock_poisoned);
        let mut names: Vec<String> = map.keys().filter(|n| n.starts_with(prefix)).cloned().collect();
        names.sort();
        names
    }

    /// DeleteQueue: the queue and its messages are gone once this returns.
    pub async fn delete_queue(&self, name: &str) -> Result<()> {
        let queue = {
            let mut map = self.queues.write().unwrap_or_else(lock_poisoned);
            map.remove(name).ok_or(EngineError::QueueDoesNotExist)?
        };
        queue.lock().mark_deleted();
        queue.notify.notify_waiters();
        self.recently_deleted.lock().unwrap_or_else(lock_poisoned).insert(name.to_string(), self.clock.now_ms());
        self.store.commit(vec![Op::DeleteQueue { queue: queue.id }]).await?;
        Ok(())
    }

    /// Brings a queue up to now and commits retention removals (and ended de-duplication windows)
    /// lazily.
    pub(crate) fn tick(&self, queue: &Queue, state: &mut QueueState, now: u64) {
        let expired = state.tick(now);
        let mut ops = Vec::new();
        for seq in expired {
            push_removal(queue, state, seq, now, &mut ops);
        }
        push_dedup_prune(queue, state, now, &mut ops);
        self.store.commit_lazy(ops);
    }

    /// The current counts of a queue (ApproximateNumberOfMessages...).
    pub fn queue_counts(&self, name: &str) -> Result<Counts> {
        let queue = self.queue(name)?;
        let mut state = queue.lock();
        self.tick(&queue, &mut state, self.clock.now_ms());
        Ok(state.counts())
    }

    /// GetQueueAttributes: the requested names (`All` for every one), in AWS's order.
    pub fn get_queue_attributes(&self, name: &str, names: &[String]) -> Result<Vec<(String, String)>> {
        for n in names {
            attributes::check_readable(n)?;
        }
        let queue = self.queue(name)?;
        let mut state = queue.lock();
        self.tick(&queue, &mut state, self.clock.now_ms());
        let all = names.iter().any(|n| n == "All");
        let counts = state.counts();
        let mut out = Vec::new();
        for &attr in attributes::READABLE {
            if !all && !names.iter().any(|n| n == attr) {
                continue;
            }
            let value = match attr {
                "QueueArn" => Some(queue.arn.clone()),
                "ApproximateNumberOfMessages" => Some(counts.visible.to_string()),
                "ApproximateNumberOfMessagesNotVisible" => Some(counts.inflight.to_string()),
                "ApproximateNumberOfMessagesDelayed" => Some(counts.delayed.to_string()),
                "CreatedTimestamp" => Some((state.record.created_ms / 1000).to_string()),
                "LastModifiedTimestamp" => Some((state.record.last_modified_ms / 1000).to_string()),
                other => state.record.attributes.get(other),
            };
            if let Some(v) = value {
                out.push((attr.to_string(), v));
            }
        }
        Ok(out)
    }

    /// SetQueueAttributes: all or nothing, durable when it returns.
    pub async fn set_queue_attributes(&self, name: &str, attrs: &BTreeMap<String, String>) -> Result<()> {
        let queue = self.queue(name)?;
        let updated = queue.lock().record.attributes.with(attrs)?;
        if attrs.contains_key("RedrivePolicy") {
            self.check_redrive(&queue.arn, updated.fifo_queue, &updated)?;
        }
        let record = {
            let mut state = queue.lock();
            let updated = state.record.attributes.with(attrs)?;
            state.record.attributes = updated;
            state.record.last_modified_ms = self.clock.now_ms();
            state.record.clone()
        };
        self.store.commit(vec![Op::PutQueue { queue: queue.id, record: record.encode() }]).await?;
        Ok(())
    }

    /// TagQueue.
    pub async fn tag_queue(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        if tags.is_empty() {
            // An empty map over JSON counts as the missing parameter, as it does over the Query protocol.
            return Err(EngineError::MissingParameter("Tags".into()));
        }
        self.update_tags(name, |current| {
            let mut next = current.clone();
            next.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            attributes::validate_tags(name, &next)?;
            Ok(next)
        })
        .await
    }

    /// UntagQueue.
    pub async fn untag_queue(&self, name: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Err(EngineError::InvalidParameterValue("Tag keys must be between 1 and 128 characters in length.".into()));
        }
        self.update_tags(name, |current| {
            let mut next = current.clone();
            for k in keys {
                next.remove(k);
            }
            Ok(next)
        })
        .await
    }

    async fn update_tags(
        &self,
        name: &str,
        change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>>,
    ) -> Result<()> {
        let queue = self.queue(name)?;
        let record = {
            let mut state = queue.lock();
            state.record.tags = change(&state.record.tags)?;
            state.record.clone()
        };
        self.store.commit(vec![Op::PutQueue { queue: queue.id, record: record.encode() }]).await?;
        Ok(())
    }

    /// ListQueueTags.
    pub fn list_queue_tags(&self, name: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.queue(name)?.lock().record.tags.clone())
    }

    /// SendMessageBatch: the checks AWS makes on the whole request before any entry's own (so one oversized
    /// entry fails the request with BatchRequestTooLong, not just its entry), then [`Engine::send_messages`].
    pub async fn send_message_batch(&self, name: &str, messages: Vec<SendMessage>, sender_id: &str) -> Result<Vec<Result<SendResult>>> {
        let total: usize = messages.iter().map(message_size).sum();
        if total > MAX_MESSAGE_SIZE as usize {
            return Err(EngineError::BatchRequestTooLong(MAX_MESSAGE_SIZE as usize, total));
        }
        let fifo = self.queue(name)?.lock().record.attributes.fifo_queue;
        if fifo && messages.iter().any(|m| m.group_id.is_none()) {
            // AWS fails the whole batch here (a single SendMessage gets MissingParameter instead).
            return Err(EngineError::InvalidParameterValue("The request must contain the parameter MessageGroupId.".into()));
        }
        self.send(name, messages, sender_id, true).await
    }

    /// SendMessage / SendMessageBatch. The outer error fails the whole request; inner errors fail
    /// single entries. Every Ok entry is durable when this returns. On FIFO queues a duplicate inside
    /// the 5-minute window succeeds with the original MessageId and is not enqueued again.
    pub async fn send_messages(&self, name: &str, messages: Vec<SendMessage>, sender_id: &str) -> Result<Vec<Result<SendResult>>> {
        self.send(name, messages, sender_id, false).await
    }

    /// The send itself; `batch` picks the wording of per-message errors (SendMessageBatch's differ).
    async fn send(&self, name: &str, messages: Vec<SendMessage>, sender_id: &str, batch: bool) -> Result<Vec<Result<SendResult>>> {
        let queue = self.queue(name)?;
        let attrs = queue.lock().record.attributes.clone();
        if messages.len() > 1 {
            let total: usize = messages.iter().map(message_size).sum();
            if total > MAX_MESSAGE_SIZE as usize {
                return Err(EngineError::BatchRequestTooLong(MAX_MESSAGE_SIZE as usize, total));
            }
        }
        if attrs.fifo_queue && !attrs.content_based_deduplication && messages.iter().any(|m| m.deduplication_id.is_none()) {
            // As AWS answers: the whole request fails, not just the entry.
            return Err(EngineError::InvalidParameterValue(
                "The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly".into(),
            ));
        }
        let now = self.clock.now_ms();
        let prepared: Vec<Result<Prepared>> = messages.into_iter().map(|m| self.prepare_send(&attrs, m, sender_id, now, batch)).collect();
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
                let unsettled_original = batch.iter().filter_map(|p| p.as_ref().ok()?.dedup_key.as_ref()).any(|key| {
                    state.dedup.get(key, now).is_some_and(|original| state.dedup_unsettled(original.seq))
                });
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
                        ops.push(Op::PutMessage { queue: queue.id, seq, meta, body: p.body.encode() });
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

    fn prepare_send(&self, attrs: &QueueAttributes, msg: SendMessage, sender_id: &str, now: u64, batch: bool) -> Result<Prepared> {
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
            let key = if attrs.deduplication_scope == "messageGroup" { format!("{group}\u{0}{dedup}") } else { dedup.clone() };
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
        Ok(Prepared { meta, body, result, dedup_key })
    }

    /// The dead-letter queue and threshold of `queue`, if its RedrivePolicy names an existing queue.
    fn redrive_target(&self, queue: &Queue) -> Option<(Arc<Queue>, u32)> {
        let policy = queue.lock().record.attributes.redrive_policy.clone()?;
        let dlq = self.queue_by_arn(&policy.dead_letter_target_arn)?;
        Some((dlq, policy.max_receive_count))
    }

    /// Moves messages removed from `from` into `to`, atomically per batch: the copy and the removal
    /// are one commit. Keeps body, attributes and SentTimestamp; `dead_letter_source` marks DLQ moves.
    pub(crate) async fn move_messages(
        &self,
        from: &Queue,
        to: &Queue,
        messages: Vec<(Seq, MessageMeta)>,
        dead_letter_source: Option<&str>,
    ) -> Result<usize> {
        let now = self.clock.now_ms();
        let mut ops = Vec::with_capacity(messages.len() * 2);
        let mut inserts = Vec::with_capacity(messages.len());
        {
            // Leaving the source: open de-duplication windows get their kv records in this commit.
            let mut state = from.lock();
            for (seq, _) in &messages {
                push_removal(from, &mut state, *seq, now, &mut ops);
            }
        }
        let first_seq = to.lock().alloc_seqs(messages.len());
        let seqs: Vec<Seq> = messages.iter().map(|(seq, _)| *seq).collect();
        let bodies = self.store.get_bodies(from.id, &seqs)?;
        for (i, ((_, meta), bytes)) in messages.into_iter().zip(bodies).enumerate() {
            let Some(bytes) = bytes else { continue };
            let mut body = BodyRecord::decode(&bytes)?;
            // Set when dead-lettering; cleared when a move task redrives the message.
            body.dead_letter_source_arn = dead_letter_source.map(str::to_string);
            let group = body.group_id.clone().unwrap_or_default();
            // Dead letters keep their receive count (as on AWS); a redrive starts the count afresh so
            // the message is not dead-lettered again at its first receive.
            let moved = if dead_letter_source.is_some() {
                MessageMeta { visible_at_ms: now, group: 0, ..meta }
            } else {
                MessageMeta { first_receive_ms: 0, last_receive_ms: 0, receive_count: 0, visible_at_ms: now, group: 0, ..meta }
            };
            let new_seq = first_seq + i as u64;
            // The copy has no de-duplication entry in the target (the source keeps the window).
            ops.push(Op::PutMessage { queue: to.id, seq: new_seq, meta: moved.encode(&group, None), body: body.encode() });
            inserts.push((new_seq, moved, group));
        }
        self.store.commit(ops).await?;
        let n = inserts.len();
        {
            let mut state = to.lock();
            for (seq, meta, group) in inserts {
                state.insert(seq, meta, &group, now);
            }
        }
        to.notify.notify_waiters();
        Ok(n)
    }

    /// ReceiveMessage, with long polling: waits up to the wait time for at least one message and
    /// returns as soon as one is there (or at shutdown, with what it has). Messages past their
    /// queue's maxReceiveCount are moved to its dead-letter queue instead of being returned.
    pub async fn receive_messages(&self, name: &str, opts: &ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        let queue = self.queue(name)?;
        let max = check_range("MaxNumberOfMessages", opts.max_number_of_messages, 1, 10, "Must be between 1 and 10, if provided.")?;
        let visibility =
            check_range("VisibilityTimeout", opts.visibility_timeout, 0, MAX_VISIBILITY_TIMEOUT as i64, "Must be >= 0 and <= 43200, if provided.")?;
        let wait = check_range("WaitTimeSeconds", opts.wait_time_seconds, 0, MAX_WAIT_SECONDS as i64, "Must be >= 0 and <= 20, if provided.")?;
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
            let now = self.clock.now_ms();
            let (taken, next_due) = {
                let mut state = queue.lock();
                if state.deleted {
                    return Err(EngineError::QueueDoesNotExist);
                }
                self.tick(&queue, &mut state, now);
                let taken = state.take(now, max, visibility_ms, self.config.max_inflight, redrive.as_ref().map(|r| r.1))?;
                if let Some(id) = attempt_id {
                    if !taken.messages.is_empty() {
                        state.remember_attempt(id, now, &taken.messages);
                    }
                }
                let mut ops: Vec<Op> = taken
                    .messages
                    .iter()
                    .map(|(seq, meta)| Op::PutMeta { queue: queue.id, seq: *seq, meta: encode_meta(&state, *seq, meta) })
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

    fn build_received(&self, queue: &Queue, taken: Vec<(Seq, MessageMeta)>, opts: &ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        let want_system = |name: &str| opts.system_attribute_names.iter().any(|n| n == "All" || n == name);
        let mut out = Vec::with_capacity(taken.len());
        let seqs: Vec<Seq> = taken.iter().map(|(seq, _)| *seq).collect();
        let bodies = self.store.get_bodies(queue.id, &seqs)?;
        for ((seq, meta), bytes) in taken.into_iter().zip(bodies) {
            // A body can be missing only if the message was deleted or purged meanwhile.
            let Some(bytes) = bytes else { continue };
            let record = BodyRecord::decode(&bytes)?;
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
                    "AWSTraceHeader" => record.system_attributes.get("AWSTraceHeader").and_then(|v| v.string_value.clone()),
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
        Ok(out)
    }

    fn check_receipt(&self, queue: &Queue, handle: &str) -> Result<Receipt> {
        match self.receipts.check(handle) {
            Some(r) if r.queue == queue.id => Ok(r),
            Some(_) => Err(EngineError::ReceiptHandleOfOtherQueue(handle.to_string())),
            None => Err(EngineError::ReceiptHandleIsInvalid(handle.to_string())),
        }
    }

    /// DeleteMessage / DeleteMessageBatch: one result per handle. The removal is committed lazily.
    pub fn delete_messages(&self, name: &str, handles: &[String]) -> Result<Vec<Result<()>>> {
        let queue = self.queue(name)?;
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        let (results, unblocked) = {
            let mut state = queue.lock();
            let results = handles
                .iter()
                .map(|h| {
                    let r = self.check_receipt(&queue, h)?;
                    if state.delete(r, now, h)? {
                        QueueStats::add(&queue.stats.deleted, 1);
                        push_removal(&queue, &mut state, r.seq, now, &mut ops);
                    }
                    Ok(())
                })
                .collect();
            // On a FIFO queue, deleting a group's in-flight message unblocks the group's next one:
            // a waiting long poll must see it now, not at its deadline.
            let unblocked = state.record.attributes.fifo_queue && !ops.is_empty();
            // Committed under the lock, so a de-duplication record written here reaches the store
            // before any prune of it (a prune runs under this lock too).
            self.store.commit_lazy(ops);
            (results, unblocked)
        };
        if unblocked {
            queue.notify.notify_waiters();
        }
        Ok(results)
    }

    /// ChangeMessageVisibility / ChangeMessageVisibilityBatch: one result per (handle, timeout).
    pub fn change_visibility(&self, name: &str, changes: &[(String, i64)]) -> Result<Vec<Result<()>>> {
        let queue = self.queue(name)?;
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        let mut wake = false;
        let results = {
            let mut state = queue.lock();
            self.tick(&queue, &mut state, now);
            changes
                .iter()
                .map(|(h, timeout)| {
                    let r = self.check_receipt(&queue, h)?;
                    if !(0..=MAX_VISIBILITY_TIMEOUT as i64).contains(timeout) {
                        return Err(EngineError::InvalidParameterValue(format!(
                            "Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200."
                        )));
                    }
                    let meta = state.change_visibility(r, now, *timeout as u64 * 1000, h)?;
                    wake |= *timeout == 0;
                    ops.push(Op::PutMeta { queue: queue.id, seq: r.seq, meta: encode_meta(&state, r.seq, &meta) });
                    Ok(())
                })
                .collect()
        };
        self.store.commit_lazy(ops);
        if wake {
            queue.notify.notify_waiters();
        }
        Ok(results)
    }

    /// PurgeQueue: at most once every 60 seconds per queue; durable when it returns.
    pub async fn purge_queue(&self, name: &str) -> Result<()> {
        let queue = self.queue(name)?;
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        {
            let mut state = queue.lock();
            if let Some(last) = state.last_purge_ms {
                if now < last + 60_000 {
                    return Err(EngineError::PurgeQueueInProgress(name.to_string()));
                }
            }
            let (below, forgotten) = state.purge(now);
            ops.push(Op::PurgeMessages { queue: queue.id, below });
            ops.extend(forgotten.iter().map(|k| Op::DeleteKv { queue: queue.id, key: dedup_kv_key(k) }));
        }
        self.store.commit(ops).await?;
        Ok(())
    }

    /// Starts shutdown: every long poll returns now with what it has.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Flushes and closes the store. Call after the server stopped taking requests.
    pub async fn close(&self) {
        self.begin_shutdown();
        self.store.close().await;
    }
}

impl Engine {
    /// Figures of every queue, sorted by name (metrics, dashboard).
    pub fn overviews(&self) -> Vec<QueueOverview> {
        let mut queues: Vec<Arc<Queue>> = self.queues.read().unwrap_or_else(lock_poisoned).values().cloned().collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        queues.iter().map(|q| self.overview_of(q)).collect()
    }

    /// Figures of one queue.
    pub fn overview(&self, name: &str) -> Result<QueueOverview> {
        let queue = self.queue(name)?;
        Ok(self.overview_of(&queue))
    }

    fn overview_of(&self, q: &Queue) -> QueueOverview {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.clock.now_ms();
        let mut state = q.lock();
        self.tick(q, &mut state, now);
        QueueOverview {
            name: q.name.clone(),
            arn: q.arn.clone(),
            fifo: state.record.attributes.fifo_queue,
            counts: state.counts(),
            oldest_age_ms: state.oldest_sent_ms().map(|t| now.saturating_sub(t)),
            sent: q.stats.sent.load(Relaxed),
            received: q.stats.received.load(Relaxed),
            deleted: q.stats.deleted.load(Relaxed),
            empty_receives: q.stats.empty_receives.load(Relaxed),
            dead_lettered: q.stats.dead_lettered.load(Relaxed),
            dlq_arn: state.record.attributes.redrive_policy.as_ref().map(|p| p.dead_letter_target_arn.clone()),
        }
    }

    /// Up to `max` visible messages, oldest first, without changing their visibility.
    pub fn peek(&self, name: &str, max: usize) -> Result<Vec<PeekedMessage>> {
        let queue = self.queue(name)?;
        let now = self.clock.now_ms();
        let picked = queue.lock().peek_visible(now, max);
        let mut out = Vec::with_capacity(picked.len());
        let seqs: Vec<Seq> = picked.iter().map(|(seq, _)| *seq).collect();
        let bodies = self.store.get_bodies(queue.id, &seqs)?;
        for ((_, meta), bytes) in picked.into_iter().zip(bodies) {
            let Some(bytes) = bytes else { continue };
            let record = BodyRecord::decode(&bytes)?;
            out.push(PeekedMessage {
                message_id: uuid::Uuid::from_bytes(meta.id).to_string(),
                body: record.body,
                sent_ms: meta.sent_ms,
                receive_count: meta.receive_count,
                attributes: record.attributes,
            });
        }
        Ok(out)
    }

    /// Receives currently waiting in a long poll.
    pub fn long_polls_waiting(&self) -> i64 {
        self.long_polls_waiting.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A validated message, ready to be committed.
struct Prepared {
    meta: MessageMeta,
    body: BodyRecord,
    result: SendResult,
    /// FIFO: the de-duplication key (digest of the scope-qualified id).
    dedup_key: Option<DedupKey>,
}

impl Engine {
    /// ListDeadLetterSourceQueues: names of the queues whose RedrivePolicy targets `name`, sorted.
    pub fn dead_letter_source_queues(&self, name: &str) -> Result<Vec<String>> {
        let dlq = self.queue(name)?;
        let queues: Vec<Arc<Queue>> = self.queues.read().unwrap_or_else(lock_poisoned).values().cloned().collect();
        let mut names: Vec<String> = queues
            .iter()
            .filter(|q| {
                q.lock().record.attributes.redrive_policy.as_ref().is_some_and(|p| p.dead_letter_target_arn == dlq.arn)
            })
            .map(|q| q.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }

    /// AddPermission: adds a statement to the queue's Policy.
    pub async fn add_permission(&self, name: &str, label: &str, accounts: &[String], actions: &[String]) -> Result<()> {
        self.update_policy(name, |arn, policy| crate::policy::add_permission(policy, arn, label, accounts, actions).map(Some)).await
    }

    /// RemovePermission: removes the statement `label` from the queue's Policy.
    pub async fn remove_permission(&self, name: &str, label: &str) -> Result<()> {
        self.update_policy(name, |_, policy| crate::policy::remove_permission(policy, label)).await
    }

    async fn update_policy(
        &self,
        name: &str,
        change: impl FnOnce(&str, Option<&str>) -> Result<Option<String>>,
    ) -> Result<()> {
        let queue = self.queue(name)?;
        let record = {
            let mut state = queue.lock();
            let next = change(&queue.arn, state.record.attributes.policy.as_deref())?;
            state.record.attributes.policy = next;
            state.record.last_modified_ms = self.clock.now_ms();
            state.record.clone()
        };
        self.store.commit(vec![Op::PutQueue { queue: queue.id, record: record.encode() }]).await?;
        Ok(())
    }
}

/// Bytes a message counts toward the batch limit: body plus attribute names, types and values.
fn message_size(m: &SendMessage) -> usize {
    m.body.len()
        + m.attributes
            .iter()
            .map(|(k, v)| k.len() + v.data_type.len() + v.string_value.as_ref().map_or(0, |s| s.len()) + v.binary_value.as_ref().map_or(0, |b| b.len()))
            .sum::<usize>()
}

fn check_range(name: &str, value: Option<i64>, min: i64, max: i64, reason: &str) -> Result<Option<i64>> {
    match value {
        Some(v) if v < min || v > max => {
            Err(EngineError::InvalidParameterValue(format!("Value {v} for parameter {name} is invalid. Reason: {reason}")))
        }
        other => Ok(other),
    }
}

/// ReceiveMessage's `MessageAttributeNames` filter: `All`, `.*` or `*` take every attribute, `Foo.*` every
/// attribute whose name starts with `Foo` (AWS's recording: `Hel.*` returns `Hello` and `Help.Me`, see
/// tests/python/test_messages.py), anything else one exact name.
fn wants_message_attribute(requested: &[String], name: &str) -> bool {
    requested.iter().any(|r| {
        matches!(r.as_str(), "All" | ".*" | "*") || r == name || r.strip_suffix(".*").is_some_and(|prefix| name.starts_with(prefix))
    })
}

fn new_queue_id() -> QueueId {
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let id = u64::from_be_bytes(bytes[..8].try_into().unwrap_or([1; 8]));
        // Ids of namespaces (SNS's records) are never a queue's.
        if !sluice_store::is_reserved_queue_id(id) {
            return id;
        }
    }
}

#[cfg(test)]
mod tests;
