//! The default backend: [redb](https://docs.rs/redb), an embedded, pure-Rust, copy-on-write B-tree
//! in one file. Chosen by the measured spike in `docs/STORE_SPIKE.md` (fast recovery because there is
//! no log to replay, steady under CPU contention, two crates to build).
//!
//! Tables:
//! - `queues`: queue id → queue record;
//! - `meta`: (queue id, seq) → message metadata (scanned at startup);
//! - `body`: (queue id, seq) → message body record (read on receive);
//! - `kv`: (queue id, key) → small records the engine keeps beside a queue's messages;
//! - `doomed`: queue id → purged below this seq, or deleted. A purge or a queue deletion only writes
//!   this record; the applier then removes the records [`CLEANUP_CHUNK`] per transaction, between
//!   layers, and readers leave them out meanwhile (deleting a queue of a million messages in one
//!   transaction held every write back for a second).
//!
//! Every `apply` is one record in the write-ahead log ([`crate::wal`]), fdatasynced, and its ops
//! appended to the active [`Pending`] layer; an `append` is the same record without the
//! fdatasync, made durable by the next one. That is all the group-commit writer waits for.
//!
//! redb gets the changes on its own thread, the *applier*. In [`Backend::maintain`] (after the
//! group's waiters were answered) the writer seals the active layer once it holds [`FLUSH_OPS`]
//! ops, [`FLUSH_BYTES`] or is [`FLUSH_AGE`] old, and the applier commits sealed layers to redb in
//! order, one transaction each with `Durability::None` (no fsync); messages sent and deleted
//! within one layer never reach redb. Sealed layers stay readable until redb has them. After
//! sealing, the writer waits for the applier as if it applied the layer itself, except while a
//! checkpoint is being committed (up to [`MAX_SEALED_OPS_DURING_CHECKPOINT`]).
//!
//! A checkpoint makes redb durable so the log can be emptied. There are two log files, `.wal` and
//! `.wal2`: when the log holds [`CHECKPOINT_BYTES`] or its oldest record is [`CHECKPOINT_INTERVAL`]
//! old, the writer seals the layer, switches new records to the other file (a higher epoch) and
//! hands the full one to the applier, which commits that layer with `Durability::Immediate` and
//! then gives the file back for the next switch. The writer never waits for the redb fsync (tens
//! of milliseconds with a deep queue: it used to stall every send for that long every second or
//! two). Opening replays both files, lower epoch first, and checkpoints at once. Durable commits
//! record redb's allocator state (quick repair), so a restart after a crash does not walk the whole
//! file to rebuild it. Readers use MVCC read transactions and never wait for redb's writer.
//!
//! Once a log write or a redb apply fails the backend refuses every later write: redb and the log
//! may then disagree, and only a restart (replaying what the logs hold) restores one state. Such a
//! group's waiters get an error although its record may replay after the restart; for SQS that is
//! a retried send delivered twice, which at-least-once delivery allows.
//!
//! `SLUICE_LOG=sluice_store=debug` logs, at each checkpoint, the commits since the previous one and
//! where their time went (log writes, fdatasyncs, redb applies, the checkpoint itself).
//!
//! Files: [`open`] (format check, log replay, prefetch), [`log`] (the writer's log records),
//! [`checkpoint`] (sealing layers, log switches, flush, close), [`applier`] (the applier thread),
//! [`cleanup`] (doomed ranges), [`tables`] (table definitions and `apply_ops`); this file holds the
//! shared state, the tuning constants and the [`Backend`] implementation.

pub(crate) mod applier;
pub(crate) mod checkpoint;
pub(crate) mod cleanup;
pub(crate) mod log;
pub mod open;
pub(crate) mod tables;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use crate::pending::Pending;
use crate::space::SpaceWatch;
use crate::wal::Wal;
use crate::{Backend, KvVisitor, Op, QueueId, Seq, StoreError};

pub use cleanup::CLEANUP_CHUNK;
pub use open::{OpenOptions, Salvaged, LOG_EXTENSIONS};
pub use tables::FORMAT;
use tables::{apply_ops, BODY, KV, META, QUEUES, QUEUE_DELETED};

/// Log size that triggers a checkpoint (half the preallocated log, so the log rarely grows).
pub const CHECKPOINT_BYTES: u64 = crate::wal::PREALLOCATED / 2;
/// Age of the oldest unchecked record that triggers a checkpoint: bounds replay at startup and the
/// pages redb cannot reuse until a durable commit.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

/// Pending changes that make the writer seal the active layer for the applier: enough to share
/// redb's per-transaction cost and to let a queue that keeps up skip redb, few enough that the
/// sealed layers stay a small part of memory.
pub const FLUSH_OPS: usize = 2048;
pub const FLUSH_BYTES: usize = 2 << 20;
pub const FLUSH_AGE: Duration = Duration::from_millis(20);

/// Sealed ops not yet in redb up to which the writer goes on while the applier commits a checkpoint
/// (an fsync of redb, tens of milliseconds): room for the layers sealed meanwhile (~80 ms of batch
/// sends at ~340k ops/s), so that a checkpoint does not stall every send.
pub const MAX_SEALED_OPS_DURING_CHECKPOINT: usize = 64 * 1024;

/// redb-backed storage: one database file plus its write-ahead logs.
pub struct EmbeddedBackend {
    shared: Arc<Shared>,
    applier: Mutex<Option<JoinHandle<()>>>,
    /// What a salvaging open dropped (see [`open::OpenOptions`]): empty otherwise.
    salvaged: Vec<Salvaged>,
}

/// What the writer, the applier and the readers share.
struct Shared {
    db: Database,
    log: Mutex<LogState>,
    layers: Mutex<Layers>,
    /// Signalled when a layer is sealed (the applier wakes) and when one reached redb (a writer
    /// held back, or a flush, wakes).
    layers_changed: Condvar,
    /// Why writes are refused, after a failure that left redb and the logs out of step.
    failed: OnceLock<String>,
    /// Purged ranges and deleted queues whose records may still be in redb or a pending layer:
    /// queue → bound as in `DOOMED`. Set when the op is logged, cleared once the applier removed the
    /// last record. Readers leave these records out.
    doomed: Mutex<HashMap<QueueId, Seq>>,
    /// Transactions that removed doomed records (debug log, tests).
    cleanup_chunks: AtomicU64,
    /// Free space of the data directory: degraded mode (see [`crate::space`]).
    space: SpaceWatch,
    /// Failpoint: this many next log writes fail as if the disk were full (tests).
    inject_enospc: AtomicU32,
}

/// Changes in the log but not (yet) in redb, as readers see them.
#[derive(Default)]
struct Layers {
    /// Where new groups go.
    active: Pending,
    /// Sealed layers, oldest first: the applier commits the front one and drops it once redb has
    /// it. Readers look here, newest first, after `active`.
    sealed: VecDeque<Sealed>,
    /// Ops in `sealed`.
    sealed_ops: usize,
    /// The log file not being written: back from the applier once its checkpoint is durable.
    spare_log: Option<Wal>,
    /// A checkpoint layer is sealed and not yet durable in redb.
    checkpointing: bool,
    /// The backend is closing: the applier stops once `sealed` is empty.
    closing: bool,
    /// The applier holds back while the store is degraded (redb's file cannot grow): nobody may
    /// wait for it meanwhile.
    paused: bool,
}

struct Sealed {
    pending: Arc<Pending>,
    /// Set on the layer that ends a log file: the applier commits it durably and returns the file.
    checkpoint: Option<Checkpoint>,
}

struct Checkpoint {
    /// The log file whose records this layer's durable commit makes redundant.
    retired: Wal,
    log_bytes: u64,
    split: Split,
}

struct LogState {
    /// The log file new records go to.
    wal: Wal,
    /// When the first record in `wal` was written (None: empty).
    oldest: Option<Instant>,
    /// Records were appended after the last fdatasync.
    unsynced: bool,
    /// Time split since the last checkpoint (debug log only).
    split: Split,
}

#[derive(Default)]
struct Split {
    commits: u64,
    /// fdatasyncs of the log (appended groups share the next one).
    syncs: u64,
    ops: u64,
    /// Encoding and writing log records.
    write: Duration,
    /// fdatasync of the log.
    sync: Duration,
    /// Waiting for the applier after sealing (as if applying inline).
    held_back: Duration,
}

fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Io(e.to_string())
}

impl Shared {
    fn layers(&self) -> MutexGuard<'_, Layers> {
        // Only pushes, pops and swaps happen under this lock; a panic cannot leave it half-changed.
        self.layers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn log(&self) -> Result<MutexGuard<'_, LogState>, StoreError> {
        self.log.lock().map_err(|_| StoreError::Io("store writer panicked".into()))
    }

    fn refuse_if_failed(&self) -> Result<(), StoreError> {
        match self.failed.get() {
            Some(why) => Err(StoreError::Io(format!("store refuses writes until restarted: {why}"))),
            None => Ok(()),
        }
    }

    fn fail(&self, why: &StoreError) {
        let _ = self.failed.set(why.to_string());
        // A writer held back or a flush waiting for the applier must not wait forever. Taking the
        // lock first means no waiter is between its check of `failed` and its wait.
        drop(self.layers());
        self.layers_changed.notify_all();
    }

    /// Commits `ops` to redb in one transaction (durable if `durability` says so).
    pub(super) fn commit_to_redb<'a>(
        &self,
        ops: impl IntoIterator<Item = &'a Op>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(durability).map_err(io)?;
        // A durable commit records redb's allocator state, so that opening after a crash loads it
        // instead of walking the whole file to rebuild it (see `open`).
        tx.set_quick_repair(matches!(durability, Durability::Immediate));
        apply_ops(&tx, ops)?;
        tx.commit().map_err(io)
    }
}

impl Drop for EmbeddedBackend {
    fn drop(&mut self) {
        // A clean shutdown leaves empty logs, so the next start has nothing to replay.
        if let Err(e) = self.shared.close() {
            tracing::warn!(error = %e, "checkpoint at shutdown failed; the log will be replayed at the next start");
        }
        self.shared.layers().closing = true;
        self.shared.layers_changed.notify_all();
        if let Some(applier) = self.applier.lock().ok().and_then(|mut a| a.take()) {
            let _ = applier.join();
        }
    }
}

impl Backend for EmbeddedBackend {
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.shared.log_and_keep(ops, true)
    }

    fn append(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.shared.log_and_keep(ops, false)
    }

    fn degraded(&self) -> Option<String> {
        self.shared.space.degraded()
    }

    fn sync(&self) -> Result<(), StoreError> {
        let mut log = self.shared.log()?;
        self.shared.refuse_if_failed()?;
        if !log.unsynced {
            return Ok(());
        }
        self.shared.sync_log(&mut log)
    }

    /// Seals the active layer for the applier when it is big or old enough, with a switch of log
    /// files when a checkpoint is due, and holds the writer back while the applier is too far
    /// behind. Runs after the group's waiters were answered: this delays the next group, never the
    /// one just made durable.
    fn maintain(&self) -> Result<(), StoreError> {
        let shared = &self.shared;
        let mut log = shared.log()?;
        if shared.failed.get().is_some() {
            return Ok(());
        }
        // Degraded: nothing goes to redb (its file cannot grow); the log keeps everything.
        if shared.space.degraded().is_some() {
            return Ok(());
        }
        let checkpoint_due =
            log.wal.used() >= CHECKPOINT_BYTES || log.oldest.is_some_and(|t| t.elapsed() >= CHECKPOINT_INTERVAL);
        // A checkpoint waits while the previous one still holds the other log file.
        let checkpoint = checkpoint_due && shared.layers().spare_log.is_some();
        let seal = checkpoint || {
            let p = &shared.layers().active;
            p.len() >= FLUSH_OPS || p.bytes() >= FLUSH_BYTES || p.age() >= FLUSH_AGE
        };
        // Wait for redb as if applying inline: for the layer just sealed, or with a backlog left by
        // a checkpoint, for two layers per seal until it is gone. That keeps the back-pressure
        // producers felt when the writer applied layers itself: without it they ran ahead of the
        // consumers of a busy queue (pipeline send->receive p50 8 ms -> 1 s, and more messages
        // reaching redb cost ~20% of the many-queues rate). During a checkpoint the writer goes on.
        let target = if seal {
            let backlog = shared.layers().sealed.len();
            shared.seal(&mut log, checkpoint)?;
            backlog.saturating_sub(1)
        } else {
            usize::MAX
        };
        let started = Instant::now();
        let layers = shared.wait_for_applier(shared.layers(), |l| {
            l.sealed.len() <= target || l.paused || l.checkpointing && l.sealed_ops <= MAX_SEALED_OPS_DURING_CHECKPOINT
        });
        drop(layers);
        log.split.held_back += started.elapsed();
        Ok(())
    }

    fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_bodies(queue, &[seq])?.pop().flatten())
    }

    /// One look at the pending layers for all, then one read transaction for those not there: with
    /// a deep backlog most bodies come from redb, and a transaction and table open per body showed.
    fn get_bodies(&self, queue: QueueId, seqs: &[Seq]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        // First: a doomed range leaves the map only after redb has committed its removal.
        let doomed_below = self.shared.doomed().get(&queue).copied();
        let gone = |seq: Seq| doomed_below.is_some_and(|below| below == QUEUE_DELETED || seq < below);
        let mut out = Vec::with_capacity(seqs.len());
        let mut missing = false;
        {
            let layers = self.shared.layers();
            for &seq in seqs {
                let found = layers
                    .active
                    .body(queue, seq)
                    .or_else(|| layers.sealed.iter().rev().find_map(|s| s.pending.body(queue, seq)));
                missing |= found.is_none() && !gone(seq);
                out.push(found.filter(|_| !gone(seq)).map(<[u8]>::to_vec));
            }
        }
        if !missing {
            return Ok(out);
        }
        // Read after looking at the layers: a change leaves them only once redb has committed it.
        let tx = self.shared.db.begin_read().map_err(io)?;
        let table = tx.open_table(BODY).map_err(io)?;
        for (slot, &seq) in out.iter_mut().zip(seqs) {
            if slot.is_none() && !gone(seq) {
                *slot = table.get((queue, seq)).map_err(io)?.map(|v| v.value().to_vec());
            }
        }
        Ok(out)
    }

    fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> Result<(), StoreError> {
        self.shared.flush()?;
        let tx = self.shared.db.begin_read().map_err(io)?;
        for item in tx.open_table(QUEUES).map_err(io)?.iter().map_err(io)? {
            let (k, v) = item.map_err(io)?;
            visit(k.value(), v.value());
        }
        Ok(())
    }

    fn scan_kv(&self, visit: &mut KvVisitor<'_>) -> Result<(), StoreError> {
        self.shared.flush()?;
        self.visit_kv(visit)
    }

    fn scan_purge_bounds(&self, visit: &mut dyn FnMut(QueueId, Seq)) -> Result<(), StoreError> {
        for (&queue, &below) in self.shared.doomed().iter() {
            if below != QUEUE_DELETED {
                visit(queue, below);
            }
        }
        Ok(())
    }

    fn scan_meta(&self, visit: &mut dyn FnMut(QueueId, Seq, &[u8])) -> Result<(), StoreError> {
        self.shared.flush()?;
        let doomed = self.shared.doomed().clone();
        let tx = self.shared.db.begin_read().map_err(io)?;
        for item in tx.open_table(META).map_err(io)?.iter().map_err(io)? {
            let (k, v) = item.map_err(io)?;
            let (q, s) = k.value();
            if doomed.get(&q).is_some_and(|&below| below == QUEUE_DELETED || s < below) {
                continue;
            }
            visit(q, s, v.value());
        }
        Ok(())
    }
}

impl EmbeddedBackend {
    /// What the salvaging open dropped, to report to the operator; empty after a normal open.
    pub fn salvaged(&self) -> &[Salvaged] {
        &self.salvaged
    }

    /// Failpoint for tests: the next `count` log writes fail as if the disk were full.
    pub fn inject_enospc(&self, count: u32) {
        self.shared.inject_enospc.store(count, Ordering::SeqCst);
    }

    /// Failpoint for tests: pretend `Some(bytes)` are free on the data directory's device (None:
    /// measure again). See [`SpaceWatch::set_free_override`].
    pub fn set_free_space_override(&self, bytes: Option<u64>) {
        self.shared.space.set_free_override(bytes);
    }

    /// Visits every key/value record.
    fn visit_kv(&self, visit: &mut KvVisitor<'_>) -> Result<(), StoreError> {
        let doomed = self.shared.doomed().clone();
        let tx = self.shared.db.begin_read().map_err(io)?;
        for item in tx.open_table(KV).map_err(io)?.iter().map_err(io)? {
            let (k, v) = item.map_err(io)?;
            let (q, key) = k.value();
            if doomed.get(&q) == Some(&QUEUE_DELETED) {
                continue;
            }
            visit(q, key, v.value());
        }
        Ok(())
    }
}
