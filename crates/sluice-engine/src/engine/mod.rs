//! The engine: the registry of queues and one method per SQS action.
//!
//! Durability rule (see docs/ARCHITECTURE.md): queue changes and sends are committed before the
//! method returns; receive bookkeeping (receive count, visibility) and deletes are handed to the
//! store's next group commit without waiting. A crash can therefore lose a delete or the last few
//! milliseconds of receive counts (the message is delivered again), never an acknowledged send.
//!
//! This module owns the [`Engine`] struct and [`EngineConfig`], the lookups every action starts
//! with (a queue by name or ARN), [`Engine::tick`] and the helpers that write a message's removal
//! or rewritten meta record. The actions are `impl Engine` blocks in one child module per job:
//! - `recovery`: [`Engine::open`], the rebuild of every index from the store.
//! - `queues`: queue administration (create, delete, list, attributes, tags, permissions, purge).
//! - `send`: SendMessage / SendMessageBatch.
//! - `receive`: ReceiveMessage, its long poll and the received messages it builds.
//! - `acks`: DeleteMessage / ChangeMessageVisibility and the receipt checks they make.
//! - `dead_letter`: redrive targets, moving messages between queues, ListDeadLetterSourceQueues.
//! - `move_task`: message move tasks, run as background tasks.
//! - `views`: what metrics and the dashboard read (overviews, peek, the long-poll gauge).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use sluice_store::{Op, Seq, Store};
use tokio::sync::watch;

use crate::at_rest::{is_sealed, DataKey, KeyRing};
use crate::attributes::QueueAttributes;
use crate::clock::Clock;
use crate::error::{EngineError, Result};
use crate::queue::{Queue, QueueState};
use crate::receipt::ReceiptKey;
use crate::record::{data_key_kv_key, dedup_kv_key, BodyRecord, MessageMeta};

mod acks;
mod dead_letter;
mod integrity;
mod move_task;
mod queues;
mod receive;
pub use integrity::verify_body_record;
mod recovery;
mod send;
mod views;

use move_task::MoveTask;
pub use move_task::TaskRecord;
pub use receive::ReceiveOptions;
pub use views::{PeekedMessage, QueueOverview};

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
    /// Encryption at rest: the configured keys (None: message records are stored in the clear).
    pub at_rest: Option<Arc<KeyRing>>,
}

impl EngineConfig {
    /// Defaults for a region and account, with the given receipt secret.
    pub fn new(region: &str, account_id: &str, receipt_secret: Vec<u8>) -> Self {
        EngineConfig {
            region: region.into(),
            account_id: account_id.into(),
            receipt_secret,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            at_rest: None,
        }
    }
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
    tasks: Mutex<Vec<Arc<MoveTask>>>,
    /// Names deleted in the last 60 seconds and when (AWS refuses to re-create them meanwhile).
    recently_deleted: Mutex<HashMap<String, u64>>,
    /// Receives currently waiting in a long poll (a gauge for metrics).
    long_polls_waiting: std::sync::atomic::AtomicI64,
    /// Messages moved aside because their stored record failed verification (see [`integrity`]).
    quarantined: std::sync::atomic::AtomicU64,
}

/// AWS KMS's NotFoundException wording for a key id or alias that does not exist.
fn kms_not_found(id: &str, config: &EngineConfig) -> String {
    if id.starts_with("arn:") {
        format!("{id} is not found.")
    } else if id.starts_with("alias/") {
        format!("Alias arn:aws:kms:{}:{}:{id} is not found.", config.region, config.account_id)
    } else {
        format!("Key 'arn:aws:kms:{}:{}:key/{id}' does not exist", config.region, config.account_id)
    }
}

/// A lock a panic poisoned is still used: queue state is kept consistent at every step.
fn lock_poisoned<T>(p: std::sync::PoisonError<T>) -> T {
    p.into_inner()
}

impl Engine {
    /// The data key new messages of `queue` are sealed with now, or None when its records are
    /// stored in the clear (no master key configured, or SSE off on the queue). A stale key is
    /// replaced first: the new key's record is committed durably before any message uses it.
    /// Once per send request: one lock and an `Arc` clone while the key is fresh.
    pub(crate) async fn sealing_key(
        &self,
        queue: &Queue,
        attrs: &QueueAttributes,
        now: u64,
    ) -> Result<Option<Arc<DataKey>>> {
        let Some(ring) = &self.config.at_rest else { return Ok(None) };
        let kek = match &attrs.kms_master_key_id {
            Some(id) => ring.resolve(id).ok_or_else(|| EngineError::KmsNotFound(kms_not_found(id, &self.config)))?,
            None if attrs.sqs_managed_sse_enabled => ring.master(),
            None => return Ok(None),
        };
        let reuse_ms = attrs.kms_data_key_reuse_period_seconds as u64 * 1000;
        let mut guard = match queue.keys.current(kek, now, reuse_ms).await {
            Ok(key) => return Ok(Some(key)),
            Err(guard) => guard,
        };
        let rotation = queue.keys.rotate(ring, kek, &queue.arn, now);
        let mut ops =
            vec![Op::PutKv { queue: queue.id, key: data_key_kv_key(rotation.put.0), value: rotation.put.1.clone() }];
        ops.extend(rotation.expired.iter().map(|id| Op::DeleteKv { queue: queue.id, key: data_key_kv_key(*id) }));
        self.store.commit(ops).await?;
        queue.keys.install(&mut guard, &rotation);
        Ok(Some(rotation.key))
    }

    /// A body record as stored: sealed under `key`, or plain.
    pub(crate) fn stored_body(
        key: Option<&DataKey>,
        queue: &Queue,
        message_id: &[u8; 16],
        body: &BodyRecord,
    ) -> Vec<u8> {
        match key {
            Some(key) => key.seal(&queue.arn, message_id, body),
            None => body.encode(),
        }
    }

    /// A stored body record of `queue`, opened. A sealed record that does not open (another
    /// queue's or message's, damaged, or its key gone) is damage: logged, counted, `None`.
    pub(crate) fn open_body(&self, queue: &Queue, message_id: &[u8; 16], bytes: &[u8]) -> Result<Option<BodyRecord>> {
        if !is_sealed(bytes) {
            return BodyRecord::decode(bytes).map(Some);
        }
        let opened = queue.keys.open(&queue.arn, message_id, bytes);
        if opened.is_none() {
            if let Some(ring) = &self.config.at_rest {
                ring.count_damage();
            }
            tracing::error!(
                queue = %queue.name,
                message_id = %uuid::Uuid::from_bytes(*message_id),
                "an encrypted message record does not decrypt (damaged, moved from another queue or message, or its key is gone); skipped"
            );
        }
        Ok(opened)
    }

    /// Sealed records found damaged since start (0 without encryption at rest).
    pub fn damaged_records(&self) -> u64 {
        self.config.at_rest.as_ref().map_or(0, |r| r.damaged())
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

    /// The queue of a name; every action on a queue starts here (QueueDoesNotExist otherwise).
    fn queue(&self, name: &str) -> Result<Arc<Queue>> {
        self.queues.read().unwrap_or_else(lock_poisoned).get(name).cloned().ok_or(EngineError::QueueDoesNotExist)
    }

    /// The queue an ARN of this server names, if it exists.
    fn queue_by_arn(&self, arn: &str) -> Option<Arc<Queue>> {
        let name = arn.rsplit(':').next()?;
        self.queue(name).ok().filter(|q| q.arn == arn)
    }

    /// The engine's clock, for the services beside it (SNS timestamps and retry schedules), so
    /// they keep the engine's time and tests can drive them with a [`ManualClock`](crate::clock::ManualClock).
    pub fn shared_clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The injected clock (the engine never reads the wall clock).
    fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Refuses (503, nothing changed) a delete, visibility change or receive whose lazy commit might
    /// not be recorded: earlier lazy writes failed for lack of space and wait for a retry. Checked
    /// before the in-memory state changes, so nothing is answered 200 and then lost, and no message
    /// is hidden by a receive that fails.
    fn refuse_if_unrecordable(&self) -> Result<()> {
        if self.store.refuses_lazy() {
            return Err(EngineError::Unavailable("the disk is full and changes cannot be recorded".into()));
        }
        Ok(())
    }

    /// Brings a queue up to now and commits retention removals (and ended de-duplication windows)
    /// lazily.
    fn tick(&self, queue: &Queue, state: &mut QueueState, now: u64) {
        let expired = state.tick(now);
        let mut ops = Vec::new();
        for seq in expired {
            push_removal(queue, state, seq, now, &mut ops);
        }
        push_dedup_prune(queue, state, now, &mut ops);
        self.store.commit_lazy(ops);
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

#[cfg(test)]
mod tests;
