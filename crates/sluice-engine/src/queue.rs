//! One queue's in-memory index: which messages are visible, in flight or delayed, kept so that every
//! operation and every Approximate* counter costs O(log n) or less, never a scan.
//!
//! Visibility and delay are one timeline: each message has a `visible_at`. Messages waiting for that
//! time sit in `inflight` (received before) or `delayed` (never received), ordered by it; [`QueueState::tick`]
//! moves the due ones to visible lazily, on the next access. No sweeper touches every message.
//!
//! Visible messages without a message group sit in one ordered set; those with a group sit in their
//! group's set, and groups with visible messages wait in a ring. Receiving walks the ring:
//! - FIFO queues: a group is served only while none of its messages is in flight, and then in order
//!   (several messages of one group may go out in one receive, in order).
//! - Standard queues ("fair queues"): one message per group per pass, ungrouped messages counting as
//!   one more group, so a group flooding the queue cannot starve quiet groups.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sluice_store::{QueueId, Seq};
use tokio::sync::Notify;

use crate::dedup::DedupWindow;
pub use crate::dedup::{dedup_key, DedupEntry, DedupKey, DEDUP_WINDOW_MS};
use crate::error::{EngineError, Result};
use crate::receipt::Receipt;
use crate::record::{MessageMeta, QueueRecord};
use crate::seqmap::{SeqMap, SeqSet};

/// A queue: identity, its state behind its own lock, and the notifier long polls wait on.
pub struct Queue {
    /// This incarnation's id (random; a re-created queue gets a new one).
    pub id: QueueId,
    pub name: String,
    pub arn: String,
    /// Per-queue lock: queues never contend with each other.
    pub state: std::sync::Mutex<QueueState>,
    /// Woken when messages may have become receivable (a send, a visibility change to 0, deletion).
    pub notify: Notify,
    /// Woken when a FIFO send's commit settles (see `QueueState::dedup_unsettled`).
    pub dedup_settled: Notify,
    /// Running totals for metrics, outside the lock.
    pub stats: QueueStats,
    /// Data keys for encryption at rest (empty without a master key).
    pub keys: crate::at_rest::QueueKeys,
}

/// Per-queue totals since the server started (Prometheus counters).
#[derive(Debug, Default)]
pub struct QueueStats {
    pub sent: AtomicU64,
    pub received: AtomicU64,
    pub deleted: AtomicU64,
    pub empty_receives: AtomicU64,
    pub dead_lettered: AtomicU64,
}

impl QueueStats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

impl Queue {
    pub fn new(id: QueueId, arn: String, state: QueueState) -> Self {
        Queue {
            id,
            name: state.record.name.clone(),
            arn,
            state: std::sync::Mutex::new(state),
            notify: Notify::new(),
            dedup_settled: Notify::new(),
            stats: QueueStats::default(),
            keys: Default::default(),
        }
    }

    /// Locks the state. A poisoned lock (a panic while holding it) is recovered: the index is only
    /// mutated through methods that keep it consistent at every step.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct Group {
    name: Arc<str>,
    visible: SeqSet,
    /// Messages of the group in flight (FIFO: the group is blocked while > 0).
    inflight: u32,
    /// Messages of the group in the queue; the group is forgotten at 0.
    total: u32,
    /// Whether the group sits in the ring.
    queued: bool,
}

/// Message groups, interned to small ids so a message's metadata stays small.
#[derive(Default)]
struct Groups {
    by_id: HashMap<u32, Group>,
    ids: HashMap<Arc<str>, u32>,
    next: u32,
    ring: VecDeque<u32>,
}

impl Groups {
    fn intern(&mut self, name: &str) -> u32 {
        if name.is_empty() {
            return 0;
        }
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        self.next += 1;
        let id = self.next;
        let name: Arc<str> = Arc::from(name);
        self.ids.insert(name.clone(), id);
        self.by_id.insert(id, Group { name, visible: SeqSet::new(), inflight: 0, total: 0, queued: false });
        id
    }

    fn name(&self, id: u32) -> &str {
        self.by_id.get(&id).map_or("", |g| &g.name)
    }

    fn forget_if_empty(&mut self, id: u32) {
        if self.by_id.get(&id).is_some_and(|g| g.total == 0) {
            if let Some(g) = self.by_id.remove(&id) {
                self.ids.remove(&g.name);
            }
        }
    }
}

/// What one receive attempt returned (FIFO ReceiveRequestAttemptId).
struct Attempt {
    expires_ms: u64,
    taken: Vec<(Seq, u32)>,
}

/// What a receive took from the queue.
#[derive(Debug, Default)]
pub struct Taken {
    /// Messages handed to the receiver: (seq, meta after this receive).
    pub messages: Vec<(Seq, MessageMeta)>,
    /// Messages past their maxReceiveCount, removed here for the dead-letter queue.
    pub dead: Vec<(Seq, MessageMeta)>,
    /// Messages found past their retention period and removed.
    pub expired: Vec<Seq>,
}

/// The mutable part of a queue.
pub struct QueueState {
    pub record: QueueRecord,
    /// Set when the queue is deleted, so requests holding an `Arc<Queue>` see it.
    pub deleted: bool,
    pub last_purge_ms: Option<u64>,
    /// Messages below this seq were purged; a send that committed concurrently with a purge is dropped.
    purged_below: Seq,
    next_seq: Seq,
    /// Every message, by seq. Seqs are allocated increasing, so this and the visible sets are
    /// [`SeqMap`]s, which stay dense under appends where a `BTreeMap` is half empty.
    msgs: SeqMap<MessageMeta>,
    /// Visible messages without a group.
    visible: SeqSet,
    inflight: BTreeSet<(u64, Seq)>,
    delayed: BTreeSet<(u64, Seq)>,
    groups: Groups,
    visible_count: usize,
    bytes: u64,
    /// FIFO de-duplication window (see `dedup.rs`). The engine calls it directly; entries must go
    /// in under this lock in the order seqs are allocated.
    pub dedup: DedupWindow,
    /// Seqs of FIFO sends whose de-duplication entries are in the window but whose commit has not
    /// returned yet (a handful at most: the sends in flight on this queue).
    dedup_unsettled: Vec<Seq>,
    attempts: HashMap<String, Attempt>,
}

/// Counts for the Approximate* attributes and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub visible: usize,
    pub inflight: usize,
    pub delayed: usize,
    pub bytes: u64,
}

impl QueueState {
    /// An empty queue. `seq_floor` is where sequence numbers start: above anything a previous run of
    /// this queue may have issued, so receipt handles from before a restart can never match new messages.
    pub fn new(record: QueueRecord, seq_floor: Seq) -> Self {
        QueueState {
            record,
            deleted: false,
            last_purge_ms: None,
            purged_below: 0,
            next_seq: seq_floor,
            msgs: SeqMap::new(),
            visible: SeqSet::new(),
            inflight: BTreeSet::new(),
            delayed: BTreeSet::new(),
            groups: Groups::default(),
            visible_count: 0,
            bytes: 0,
            dedup: DedupWindow::default(),
            dedup_unsettled: Vec::new(),
            attempts: HashMap::new(),
        }
    }

    /// Whether the send that made the window entry of `seq` is still waiting for its commit.
    pub fn dedup_unsettled(&self, seq: Seq) -> bool {
        self.dedup_unsettled.contains(&seq)
    }

    pub fn mark_dedup_unsettled(&mut self, seq: Seq) {
        self.dedup_unsettled.push(seq);
    }

    /// The commit of the send that made the window entry of `seq` returned (either way).
    pub fn settle_dedup(&mut self, seq: Seq) {
        self.dedup_unsettled.retain(|&s| s != seq);
    }

    fn fifo(&self) -> bool {
        self.record.attributes.fifo_queue
    }

    /// Reserves `n` consecutive sequence numbers.
    pub fn alloc_seqs(&mut self, n: usize) -> Seq {
        let first = self.next_seq;
        self.next_seq += n as u64;
        first
    }

    /// The name of an interned group.
    pub fn group_name(&self, id: u32) -> &str {
        self.groups.name(id)
    }

    /// Puts a group in the ring if it can be served.
    fn requeue(&mut self, id: u32) {
        let fifo = self.fifo();
        if let Some(g) = self.groups.by_id.get_mut(&id) {
            if !g.queued && !g.visible.is_empty() && (!fifo || g.inflight == 0) {
                g.queued = true;
                self.groups.ring.push_back(id);
            }
        }
    }

    fn add_visible(&mut self, seq: Seq, group: u32) {
        self.visible_count += 1;
        if group == 0 {
            self.visible.insert(seq);
            return;
        }
        if let Some(g) = self.groups.by_id.get_mut(&group) {
            g.visible.insert(seq);
        }
        self.requeue(group);
    }

    fn remove_visible(&mut self, seq: Seq, group: u32) -> bool {
        let removed = if group == 0 {
            self.visible.remove(&seq)
        } else {
            self.groups.by_id.get_mut(&group).is_some_and(|g| g.visible.remove(&seq))
        };
        if removed {
            self.visible_count -= 1;
        }
        removed
    }

    fn inflight_changed(&mut self, group: u32, delta: i32) {
        if let Some(g) = self.groups.by_id.get_mut(&group) {
            g.inflight = g.inflight.saturating_add_signed(delta);
        }
        if delta < 0 {
            self.requeue(group);
        }
    }

    /// Recovery: new messages get seqs at or above `floor` (a purge the store is still removing).
    pub fn seqs_start_at_least(&mut self, floor: Seq) {
        self.next_seq = self.next_seq.max(floor);
    }

    /// Adds a message (a committed send, or one recovered from disk) of message group `group`
    /// ("" for none). The group is interned here, under the lock, so it cannot vanish meanwhile.
    pub fn insert(&mut self, seq: Seq, mut meta: MessageMeta, group: &str, now: u64) {
        if seq < self.purged_below || self.msgs.contains_key(&seq) {
            return;
        }
        meta.group = self.groups.intern(group);
        if seq >= self.next_seq {
            self.next_seq = seq + 1;
        }
        if let Some(g) = self.groups.by_id.get_mut(&meta.group) {
            g.total += 1;
        }
        self.bytes += meta.size as u64;
        self.msgs.insert(seq, meta);
        if meta.visible_at_ms > now {
            if meta.receive_count > 0 {
                self.inflight.insert((meta.visible_at_ms, seq));
                self.inflight_changed(meta.group, 1);
            } else {
                self.delayed.insert((meta.visible_at_ms, seq));
            }
        } else {
            self.add_visible(seq, meta.group);
        }
    }

    pub(crate) fn remove(&mut self, seq: Seq) -> Option<MessageMeta> {
        let meta = self.msgs.remove(&seq)?;
        if !self.remove_visible(seq, meta.group) {
            let key = (meta.visible_at_ms, seq);
            if meta.receive_count > 0 {
                if self.inflight.remove(&key) {
                    self.inflight_changed(meta.group, -1);
                }
            } else {
                self.delayed.remove(&key);
            }
        }
        if let Some(g) = self.groups.by_id.get_mut(&meta.group) {
            g.total = g.total.saturating_sub(1);
        }
        self.groups.forget_if_empty(meta.group);
        self.bytes -= meta.size as u64;
        Some(meta)
    }

    /// Brings the index up to `now`: due delayed and in-flight messages become visible, messages past
    /// the retention period are removed. Returns the seqs of the removed messages.
    pub fn tick(&mut self, now: u64) -> Vec<Seq> {
        while let Some(&(at, seq)) = self.delayed.first() {
            if at > now {
                break;
            }
            self.delayed.pop_first();
            let group = self.msgs.get(&seq).map_or(0, |m| m.group);
            self.add_visible(seq, group);
        }
        while let Some(&(at, seq)) = self.inflight.first() {
            if at > now {
                break;
            }
            self.inflight.pop_first();
            let group = self.msgs.get(&seq).map_or(0, |m| m.group);
            self.add_visible(seq, group);
            self.inflight_changed(group, -1);
        }
        let retention_ms = self.record.attributes.message_retention_period as u64 * 1000;
        let mut expired = Vec::new();
        while let Some((seq, meta)) = self.msgs.first_key_value() {
            if meta.sent_ms + retention_ms > now {
                break;
            }
            self.remove(seq);
            expired.push(seq);
        }
        expired
    }

    /// The earliest time a waiting message becomes visible, if any waits.
    pub fn next_due(&self) -> Option<u64> {
        let d = self.delayed.first().map(|e| e.0);
        let i = self.inflight.first().map(|e| e.0);
        match (d, i) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When the oldest message was sent (approximately: the lowest seq), if any.
    pub fn oldest_sent_ms(&self) -> Option<u64> {
        self.msgs.first_key_value().map(|(_, m)| m.sent_ms)
    }

    /// Up to `max` visible messages, oldest first, without receiving them (dashboard peek).
    pub fn peek_visible(&self, now: u64, max: usize) -> Vec<(Seq, MessageMeta)> {
        self.msgs.iter().filter(|(_, m)| m.visible_at_ms <= now).take(max).map(|(s, m)| (s, *m)).collect()
    }

    /// Current counts (call `tick` first for exact figures).
    pub fn counts(&self) -> Counts {
        Counts {
            visible: self.visible_count,
            inflight: self.inflight.len(),
            delayed: self.delayed.len(),
            bytes: self.bytes,
        }
    }

    /// Up to `want` visible messages in delivery order, without removing them. Groups are visited in
    /// ring order; see the module doc for the FIFO and fair-queue rules.
    fn next_candidates(&mut self, want: usize) -> Vec<Seq> {
        let fifo = self.fifo();
        let mut out = Vec::with_capacity(want);
        let mut ungrouped = self.visible.iter();
        loop {
            let mut progress = false;
            if !fifo {
                if let Some(seq) = ungrouped.next() {
                    out.push(seq);
                    progress = true;
                }
            }
            for _ in 0..self.groups.ring.len() {
                if out.len() >= want {
                    break;
                }
                let Some(id) = self.groups.ring.pop_front() else { break };
                let Some(g) = self.groups.by_id.get_mut(&id) else { continue };
                if g.visible.is_empty() || (fifo && g.inflight > 0) {
                    g.queued = false;
                    continue;
                }
                if fifo {
                    // The group's messages in order; it leaves the ring until nothing of it is in flight.
                    out.extend(g.visible.iter().take(want - out.len()));
                    g.queued = false;
                    progress = true;
                } else {
                    let already = out.iter().filter(|s| g.visible.contains(s)).count();
                    if let Some(seq) = g.visible.iter().nth(already) {
                        out.push(seq);
                        progress = true;
                    }
                    self.groups.ring.push_back(id);
                }
            }
            if fifo || !progress || out.len() >= want {
                break;
            }
        }
        out.truncate(want);
        out
    }

    /// Receives up to `max` visible messages, making them invisible for `visibility_ms`.
    /// Messages already received `max_receives` times go to `dead` instead (dead-letter queue);
    /// `max_inflight` is the OverLimit threshold (FIFO queues return nothing instead, as AWS does).
    pub fn take(
        &mut self,
        now: u64,
        max: usize,
        visibility_ms: u64,
        max_inflight: usize,
        max_receives: Option<u32>,
    ) -> Result<Taken> {
        let mut taken = Taken::default();
        if self.visible_count == 0 {
            return Ok(taken);
        }
        if self.inflight.len() >= max_inflight {
            if self.fifo() {
                return Ok(taken);
            }
            return Err(EngineError::OverLimit(format!(
                "Too many messages in flight: the queue already has {} messages in flight (limit {max_inflight}).",
                self.inflight.len()
            )));
        }
        let want = max.min(max_inflight - self.inflight.len());
        let retention_ms = self.record.attributes.message_retention_period as u64 * 1000;
        let mut touched = Vec::new();
        while taken.messages.len() < want {
            let candidates = self.next_candidates(want - taken.messages.len());
            if candidates.is_empty() {
                break;
            }
            for seq in candidates {
                let Some(meta) = self.msgs.get(&seq).copied() else { continue };
                touched.push(meta.group);
                if meta.sent_ms + retention_ms <= now {
                    self.remove(seq);
                    taken.expired.push(seq);
                    continue;
                }
                if max_receives.is_some_and(|limit| meta.receive_count >= limit) {
                    self.remove(seq);
                    taken.dead.push((seq, meta));
                    continue;
                }
                self.remove_visible(seq, meta.group);
                let Some(m) = self.msgs.get_mut(&seq) else { continue };
                m.receive_count = m.receive_count.saturating_add(1);
                if m.first_receive_ms == 0 {
                    m.first_receive_ms = now;
                }
                m.last_receive_ms = now;
                m.visible_at_ms = now + visibility_ms;
                let m = *m;
                self.inflight.insert((m.visible_at_ms, seq));
                self.inflight_changed(m.group, 1);
                taken.messages.push((seq, m));
            }
        }
        // A FIFO group left the ring when it was picked; if nothing of it went in flight after all
        // (expired or dead-lettered messages), it must go back.
        for group in touched {
            self.requeue(group);
        }
        Ok(taken)
    }

    /// A FIFO receive retried with the same ReceiveRequestAttemptId: the messages that attempt got,
    /// if they are still in flight under that same receive.
    pub fn retry_attempt(&mut self, attempt_id: &str, now: u64) -> Option<Vec<(Seq, MessageMeta)>> {
        self.attempts.retain(|_, a| a.expires_ms > now);
        let attempt = self.attempts.get(attempt_id)?;
        let still: Vec<(Seq, MessageMeta)> = attempt
            .taken
            .iter()
            .filter_map(|(seq, receive)| {
                let m = self.msgs.get(seq)?;
                (m.receive_count == *receive && m.visible_at_ms > now).then_some((*seq, *m))
            })
            .collect();
        Some(still)
    }

    /// Remembers what a FIFO receive attempt returned.
    pub fn remember_attempt(&mut self, attempt_id: &str, now: u64, taken: &[(Seq, MessageMeta)]) {
        let taken = taken.iter().map(|(s, m)| (*s, m.receive_count)).collect();
        self.attempts.insert(attempt_id.to_string(), Attempt { expires_ms: now + DEDUP_WINDOW_MS, taken });
    }

    /// Recovery: builds the de-duplication window from what [`DedupWindow::recover`] was given;
    /// returns keys of kv records to delete. New seqs start above every recovered entry's, since
    /// the window finds entries by seq (a departed message's seq is in no meta record).
    pub fn finish_dedup_recovery(&mut self) -> Vec<DedupKey> {
        let stale = self.dedup.finish_recovery();
        if let Some(last) = self.dedup.last_seq() {
            self.next_seq = self.next_seq.max(last + 1);
        }
        stale
    }

    /// Deletes the message a receipt names. On standard queues a handle of a deleted message, or an
    /// older handle of a message received again since, succeeds without effect (AWS: "the request
    /// succeeds, but the message might not be deleted"). On FIFO queues a handle whose visibility
    /// timeout ran out has expired (InvalidParameterValue), as AWS answers. Returns true if a message
    /// was removed.
    pub fn delete(&mut self, r: Receipt, now: u64, handle: &str) -> Result<bool> {
        let Some(meta) = self.msgs.get(&r.seq) else { return Ok(false) };
        self.check_not_expired(meta, r, now, handle)?;
        // On a standard queue an older handle of the message still deletes it: moto's tests of
        // getmoto/moto#4655, which its author verified against AWS ("Old receipt handles should be kept,
        // as it is possible to change message visibility or delete a message using them").
        Ok(self.remove(r.seq).is_some())
    }

    /// FIFO queues refuse a handle whose receive is over (timed out, or superseded by a later receive):
    /// AWS's recorded answer (LocalStack snapshot test_fifo_delete_after_visibility_timeout; the same
    /// for ChangeMessageVisibility in aws/aws-sdk-java#1628).
    fn check_not_expired(&self, meta: &MessageMeta, r: Receipt, now: u64, handle: &str) -> Result<()> {
        let current = meta.receive_count == r.receive;
        if self.fifo() && (!current || meta.visible_at_ms <= now) {
            return Err(EngineError::InvalidParameterValue(format!(
                "Value {handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired."
            )));
        }
        Ok(())
    }

    /// Changes the visibility timeout of the message a receipt names, counted from `now`.
    ///
    /// As on AWS: a message whose timeout already ran out (and that nobody received since) is hidden
    /// again; a deleted message is InvalidParameterValue. On a standard queue a handle superseded by a
    /// later receive still changes the message's visibility (moto's AWS-verified tests of
    /// getmoto/moto#4655); on a FIFO queue it has expired, see [`QueueState::delete`].
    /// The caller has brought the queue up to `now` ([`QueueState::tick`]) and committed what that
    /// removed.
    pub fn change_visibility(&mut self, r: Receipt, now: u64, timeout_ms: u64, handle: &str) -> Result<MessageMeta> {
        let meta = *self.msgs.get(&r.seq).ok_or_else(|| {
            EngineError::InvalidParameterValue(format!(
                "Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change."
            ))
        })?;
        self.check_not_expired(&meta, r, now, handle)?;
        // AWS: a receive's visibility can be extended to at most 12 hours after the receive.
        if now + timeout_ms > meta.last_receive_ms + crate::attributes::MAX_VISIBILITY_TIMEOUT as u64 * 1000 {
            return Err(EngineError::InvalidParameterValue(format!(
                "Value {} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
                timeout_ms / 1000
            )));
        }
        if self.inflight.remove(&(meta.visible_at_ms, r.seq)) {
            self.inflight_changed(meta.group, -1);
        } else {
            self.remove_visible(r.seq, meta.group);
        }
        let visible_at = now + timeout_ms;
        let Some(m) = self.msgs.get_mut(&r.seq) else { return Err(EngineError::MessageNotInflight) };
        m.visible_at_ms = visible_at;
        let m = *m;
        self.inflight.insert((visible_at, r.seq));
        self.inflight_changed(m.group, 1);
        Ok(m)
    }

    /// Visible messages, oldest first, without receiving them (move tasks take them this way).
    pub fn take_visible_for_move(&mut self, max: usize) -> Vec<(Seq, MessageMeta)> {
        let seqs = self.next_candidates(max);
        let moved: Vec<(Seq, MessageMeta)> =
            seqs.into_iter().filter_map(|seq| self.remove(seq).map(|m| (seq, m))).collect();
        for (_, m) in &moved {
            self.requeue(m.group);
        }
        moved
    }

    /// Removes every message (PurgeQueue) and, as AWS does, the FIFO de-duplication history.
    /// Returns the bound for the store's purge op and the forgotten de-duplication keys.
    pub fn purge(&mut self, now: u64) -> (Seq, Vec<DedupKey>) {
        self.last_purge_ms = Some(now);
        self.purged_below = self.next_seq;
        self.clear_messages();
        let forgotten = self.dedup.forget_all();
        (self.next_seq, forgotten)
    }

    fn clear_messages(&mut self) {
        self.msgs.clear();
        self.visible.clear();
        self.inflight.clear();
        self.delayed.clear();
        self.groups = Groups::default();
        self.visible_count = 0;
        self.bytes = 0;
        self.attempts.clear();
    }

    /// Marks the queue deleted and frees its index.
    pub fn mark_deleted(&mut self) {
        self.deleted = true;
        self.clear_messages();
        self.dedup.forget_all();
    }
}

#[cfg(test)]
mod tests;
