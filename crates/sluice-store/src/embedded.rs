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

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::pending::Pending;
use crate::wal::Wal;
use crate::{Backend, Op, QueueId, Seq, StoreError};

const QUEUES: TableDefinition<u64, &[u8]> = TableDefinition::new("queues");
const META: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("meta");
const BODY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("body");
const KV: TableDefinition<(u64, &[u8]), &[u8]> = TableDefinition::new("kv");
/// Queue → every message below this seq is gone ([`QUEUE_DELETED`]: the whole queue and its key/value
/// records). The applier removes such records a chunk at a time; readers never see them meanwhile.
const DOOMED: TableDefinition<u64, u64> = TableDefinition::new("doomed");

/// Facts about the files themselves: `format` → [`FORMAT`].
const INFO: TableDefinition<&str, u64> = TableDefinition::new("info");

/// The on-disk format, raised whenever an older sluice would misread the files: 2 added the second
/// log file (an older binary replays only one), 3 the `doomed` table (an older binary shows purged
/// messages again). A store written in a newer format is refused instead of half read.
pub const FORMAT: u64 = 3;

/// The `DOOMED` bound of a deleted queue: everything of it goes.
const QUEUE_DELETED: Seq = Seq::MAX;

/// Records of a purge or a deleted queue removed per redb transaction. Removing a million in one
/// transaction took 1.2 s, and the writer waits for the applier, so every send on every queue waited
/// as long; a chunk takes a few milliseconds.
pub const CLEANUP_CHUNK: usize = 4096;

/// Page cache redb may use; bodies read on receive are mostly recent, so a modest cache suffices.
const CACHE_BYTES: usize = 64 << 20;

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

/// The two log files: records go to one while the applier checkpoints the other's.
const LOG_EXTENSIONS: [&str; 2] = ["wal", "wal2"];

/// redb-backed storage: one database file plus its write-ahead logs.
pub struct EmbeddedBackend {
    shared: Arc<Shared>,
    applier: Mutex<Option<JoinHandle<()>>>,
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

impl EmbeddedBackend {
    /// Opens (or creates) the store file at `path` and its logs beside it (same name, `.wal` and
    /// `.wal2`), replaying the logs' records into the database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        prefetch_in_background(path);
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path).map_err(io)?;
        // Before the logs: a newer format's records may not even decode here.
        let found = match db.begin_read().map_err(io)?.open_table(INFO) {
            Ok(info) => info.get("format").map_err(io)?.map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(io(e)),
        };
        if let Some(found) = found.filter(|&f| f > FORMAT) {
            return Err(StoreError::Unsupported(format!(
                "{} was written by a newer sluice (store format {found}; this one reads up to {FORMAT}): run that version or newer",
                path.display()
            )));
        }
        let (first, first_records) = Wal::open(&path.with_extension(LOG_EXTENSIONS[0]))?;
        let (second, second_records) = Wal::open(&path.with_extension(LOG_EXTENSIONS[1]))?;
        // The lower epoch was written first (each switch starts the other file after this one).
        let (mut older, older_records, mut newer, newer_records) = if first.epoch() <= second.epoch() {
            (first, first_records, second, second_records)
        } else {
            (second, second_records, first, first_records)
        };
        let mut tx = db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        tx.set_quick_repair(true);
        tx.open_table(QUEUES).map_err(io)?;
        tx.open_table(META).map_err(io)?;
        tx.open_table(BODY).map_err(io)?;
        tx.open_table(KV).map_err(io)?;
        tx.open_table(DOOMED).map_err(io)?;
        tx.open_table(INFO).map_err(io)?.insert("format", FORMAT).map_err(io)?;
        // Replaying is idempotent: every op sets or removes keys, so records whose effects a
        // checkpoint already made durable (a crash between checkpoint and log reset) replay harmlessly.
        let records = older_records.len() + newer_records.len();
        let replayed: usize = older_records.iter().chain(&newer_records).map(Vec::len).sum();
        for ops in older_records.iter().chain(&newer_records) {
            apply_ops(&tx, ops.iter())?;
        }
        tx.commit().map_err(io)?;
        if records > 0 {
            tracing::info!(records, ops = replayed, "replayed the write-ahead log");
            let latest = newer.epoch();
            older.restart_after(latest)?;
            newer.restart_after(older.epoch())?;
        }
        let mut doomed = HashMap::new();
        for item in db.begin_read().map_err(io)?.open_table(DOOMED).map_err(io)?.iter().map_err(io)? {
            let (queue, below) = item.map_err(io)?;
            doomed.insert(queue.value(), below.value());
        }
        let log = LogState { wal: newer, oldest: None, unsynced: false, split: Split::default() };
        let layers = Layers { spare_log: Some(older), ..Layers::default() };
        let shared = Arc::new(Shared {
            db,
            log: Mutex::new(log),
            layers: Mutex::new(layers),
            layers_changed: Condvar::new(),
            failed: OnceLock::new(),
            doomed: Mutex::new(doomed),
            cleanup_chunks: AtomicU64::new(0),
        });
        let applier = {
            let shared = shared.clone();
            std::thread::Builder::new().name("sluice-store-apply".into()).spawn(move || shared.run_applier()).map_err(io)?
        };
        Ok(EmbeddedBackend { shared, applier: Mutex::new(Some(applier)) })
    }
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
    fn commit_to_redb<'a>(&self, ops: impl IntoIterator<Item = &'a Op>, durability: Durability) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(durability).map_err(io)?;
        // A durable commit records redb's allocator state, so that opening after a crash loads it
        // instead of walking the whole file to rebuild it (see `open`).
        tx.set_quick_repair(matches!(durability, Durability::Immediate));
        apply_ops(&tx, ops)?;
        tx.commit().map_err(io)
    }

    /// Writes one log record for `ops` (fdatasynced if `durable`) and adds them to the active
    /// layer, where readers see them at once.
    fn log_and_keep(&self, ops: Vec<Op>, durable: bool) -> Result<(), StoreError> {
        let mut log = self.log()?;
        self.refuse_if_failed()?;
        // A failed write leaves nothing applied and the log's end where it was; a failed sync
        // leaves the record's fate unknown, so writes stop until a restart replays what is there.
        let started = Instant::now();
        log.wal.append(&ops)?;
        log.split.write += started.elapsed();
        log.unsynced = true;
        if durable {
            self.sync_log(&mut log)?;
        }
        log.split.commits += 1;
        log.split.ops += ops.len() as u64;
        log.oldest.get_or_insert_with(Instant::now);
        self.note_doomed(&ops);
        self.layers().active.extend(ops);
        Ok(())
    }

    fn doomed(&self) -> MutexGuard<'_, HashMap<QueueId, Seq>> {
        // Only inserts and removes happen under this lock.
        self.doomed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hides from readers, from now on, the messages `ops` purge and the queues they delete.
    fn note_doomed(&self, ops: &[Op]) {
        for op in ops {
            let (queue, below) = match op {
                Op::DeleteQueue { queue } => (*queue, QUEUE_DELETED),
                Op::PurgeMessages { queue, below } if *below > 0 => (*queue, *below),
                _ => continue,
            };
            let mut doomed = self.doomed();
            let bound = doomed.entry(queue).or_insert(below);
            *bound = (*bound).max(below);
        }
    }

    /// Removes up to [`CLEANUP_CHUNK`] records of the first range in `DOOMED`, in one transaction
    /// without an fsync (a crash before the next checkpoint only means removing them again).
    /// Returns whether anything is left to remove.
    fn clean_up_chunk(&self) -> Result<bool, StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::None).map_err(io)?;
        let (queue, below, finished, more) = {
            let mut doomed = tx.open_table(DOOMED).map_err(io)?;
            let first = doomed.first().map_err(io)?.map(|(k, v)| (k.value(), v.value()));
            let Some((queue, below)) = first else {
                drop(doomed);
                tx.abort().map_err(io)?;
                return Ok(false);
            };
            let mut finished = true;
            if below > 0 {
                let last = if below == QUEUE_DELETED { Seq::MAX } else { below - 1 };
                for table in [META, BODY] {
                    finished &= remove_some(&mut tx.open_table(table).map_err(io)?, queue, last)?;
                }
            }
            if below == QUEUE_DELETED {
                let mut kv = tx.open_table(KV).map_err(io)?;
                let mut keys: Vec<Vec<u8>> = Vec::new();
                for item in kv.range((queue, &[][..])..).map_err(io)?.take(CLEANUP_CHUNK + 1) {
                    let (k, _) = item.map_err(io)?;
                    if k.value().0 != queue {
                        break;
                    }
                    keys.push(k.value().1.to_vec());
                }
                finished &= keys.len() <= CLEANUP_CHUNK;
                for key in keys.iter().take(CLEANUP_CHUNK) {
                    kv.remove((queue, key.as_slice())).map_err(io)?;
                }
            }
            if finished {
                doomed.remove(queue).map_err(io)?;
            }
            let more = !finished || doomed.first().map_err(io)?.is_some();
            (queue, below, finished, more)
        };
        tx.commit().map_err(io)?;
        self.cleanup_chunks.fetch_add(1, Ordering::Relaxed);
        if finished {
            let mut doomed = self.doomed();
            // A later purge logged meanwhile raised the bound: it stays until that one is done.
            if doomed.get(&queue) == Some(&below) {
                doomed.remove(&queue);
            }
        }
        Ok(more)
    }

    /// fdatasyncs the log: every record appended so far becomes durable.
    fn sync_log(&self, log: &mut LogState) -> Result<(), StoreError> {
        let started = Instant::now();
        if let Err(e) = log.wal.sync() {
            tracing::error!(error = %e, "write-ahead log sync failed; refusing writes until restart");
            self.fail(&e);
            return Err(e);
        }
        log.unsynced = false;
        log.split.syncs += 1;
        log.split.sync += started.elapsed();
        Ok(())
    }

    /// Seals the active layer for the applier; with `checkpoint`, first switches new records to
    /// the spare log file and hands the full one over with the layer. The caller holds the log lock,
    /// so nothing is logged between the switch and the seal.
    fn seal(&self, log: &mut LogState, checkpoint: bool) -> Result<(), StoreError> {
        let checkpoint = if checkpoint {
            let Some(mut next) = self.layers().spare_log.take() else { return Ok(()) };
            // The full file's records must be durable on their own until the checkpoint is: a
            // crash in between replays them.
            if log.unsynced {
                self.sync_log(log)?;
            }
            if let Err(e) = next.restart_after(log.wal.epoch()) {
                self.layers().spare_log = Some(next);
                self.fail(&e);
                return Err(e);
            }
            let log_bytes = log.wal.used();
            let retired = std::mem::replace(&mut log.wal, next);
            log.oldest = None;
            Some(Checkpoint { retired, log_bytes, split: std::mem::take(&mut log.split) })
        } else {
            None
        };
        let mut layers = self.layers();
        let pending = std::mem::take(&mut layers.active);
        layers.sealed_ops += pending.len();
        layers.checkpointing |= checkpoint.is_some();
        layers.sealed.push_back(Sealed { pending: Arc::new(pending), checkpoint });
        drop(layers);
        self.layers_changed.notify_all();
        Ok(())
    }

    /// Waits until every sealed layer is in redb (or the applier failed).
    fn wait_for_applier<'a>(&'a self, mut layers: MutexGuard<'a, Layers>, until: impl Fn(&Layers) -> bool) -> MutexGuard<'a, Layers> {
        while !until(&layers) && self.failed.get().is_none() {
            layers = self.layers_changed.wait(layers).unwrap_or_else(|p| p.into_inner());
        }
        layers
    }

    /// Applies everything logged so far to redb (on request of a reader that needs redb complete:
    /// scans).
    fn flush(&self) -> Result<(), StoreError> {
        {
            let mut log = self.log()?;
            if self.failed.get().is_some() {
                return Ok(());
            }
            if !self.layers().active.is_empty() {
                self.seal(&mut log, false)?;
            }
        }
        drop(self.wait_for_applier(self.layers(), |l| l.sealed.is_empty()));
        self.refuse_if_failed()
    }

    /// The applier thread's body. A panic in it (a bug, or redb's) is turned into a failure, so that
    /// writers held back and flushes waiting for the applier get an error instead of waiting forever.
    fn run_applier(&self) {
        self.fail_on_panic(|| self.applier_loop());
    }

    fn fail_on_panic(&self, body: impl FnOnce()) {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            let why = StoreError::Io(format!("store applier panicked: {}", what.unwrap_or_default()));
            tracing::error!(error = %why, "refusing writes until restart");
            self.fail(&why);
        }
    }

    /// Commits sealed layers to redb, oldest first, until the backend closes.
    fn applier_loop(&self) {
        let mut applies = 0u64;
        let mut apply_time = Duration::ZERO;
        // Doomed records may be left in redb: one chunk of them goes after each layer, and chunk
        // after chunk while no layer waits.
        let mut cleaning = !self.doomed().is_empty();
        loop {
            let (pending, checkpoint) = {
                let mut layers = self.wait_for_applier(self.layers(), |l| !l.sealed.is_empty() || l.closing || cleaning);
                // A failed backend wakes every wait at once; the applier must stop here, or its idle
                // clean-up would spin (and keep committing to a redb whose state is uncertain).
                if self.failed.get().is_some() {
                    return;
                }
                let closing = layers.closing;
                match layers.sealed.front_mut() {
                    Some(front) => (front.pending.clone(), front.checkpoint.take()),
                    None if closing => return,
                    None => {
                        drop(layers);
                        if !self.clean_up(&mut cleaning) {
                            return;
                        }
                        continue;
                    }
                }
            };
            if self.failed.get().is_some() {
                return;
            }
            let started = Instant::now();
            let durability = if checkpoint.is_some() { Durability::Immediate } else { Durability::None };
            if let Err(e) = self.commit_to_redb(pending.effective_ops(), durability) {
                // The ops are durable in the log; redb's state is uncertain, so writes stop until a
                // restart replays the logs. The layer stays readable.
                tracing::error!(error = %e, "applying the log to redb failed; refusing writes until restart");
                self.fail(&e);
                return;
            }
            applies += 1;
            apply_time += started.elapsed();
            let mut layers = self.layers();
            layers.sealed_ops -= pending.len();
            layers.sealed.pop_front();
            if let Some(Checkpoint { retired, log_bytes, split }) = checkpoint {
                layers.spare_log = Some(retired);
                layers.checkpointing = false;
                let per_commit = |d: Duration| d.as_micros() as u64 / split.commits.max(1);
                tracing::debug!(
                    commits = split.commits,
                    syncs = split.syncs,
                    ops = split.ops,
                    log_bytes,
                    write_us_per_commit = per_commit(split.write),
                    sync_us_per_sync = split.sync.as_micros() as u64 / split.syncs.max(1),
                    held_back_ms = split.held_back.as_millis() as u64,
                    applies,
                    apply_us_per_apply = apply_time.as_micros() as u64 / applies.max(1),
                    checkpoint_ms = started.elapsed().as_millis() as u64,
                    cleanup_chunks = self.cleanup_chunks.load(Ordering::Relaxed),
                    "checkpoint"
                );
                (applies, apply_time) = (0, Duration::ZERO);
            }
            drop(layers);
            self.layers_changed.notify_all();
            cleaning |= pending.dooms_records();
            if cleaning && !self.clean_up(&mut cleaning) {
                return;
            }
        }
    }

    /// One chunk of [`Shared::clean_up_chunk`]; false (stop the applier) if it failed.
    fn clean_up(&self, cleaning: &mut bool) -> bool {
        match self.clean_up_chunk() {
            Ok(more) => {
                *cleaning = more;
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "removing purged messages failed; refusing writes until restart");
                self.fail(&e);
                false
            }
        }
    }

    /// Stops the applier's work at a clean point and makes everything durable in redb, leaving
    /// both logs empty (shutdown).
    fn close(&self) -> Result<(), StoreError> {
        let mut log = self.log()?;
        if self.failed.get().is_some() {
            return Ok(());
        }
        let mut layers = self.wait_for_applier(self.layers(), |l| l.sealed.is_empty());
        layers.closing = true;
        self.layers_changed.notify_all();
        if self.failed.get().is_some() || log.oldest.is_none() && layers.active.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut layers.active);
        self.commit_to_redb(pending.effective_ops(), Durability::Immediate)?;
        // The spare first: its records are older, and replaying them alone on top of a state
        // that already has the active file's would undo those (a crash between the two resets).
        if let Some(spare) = layers.spare_log.as_mut() {
            spare.restart_after(log.wal.epoch())?;
            let after = spare.epoch();
            log.wal.restart_after(after)?;
        } else {
            log.wal.reset()?;
        }
        log.oldest = None;
        Ok(())
    }
}

/// Bytes asked of the kernel at a time while prefetching.
const PREFETCH_CHUNK: u64 = 16 << 20;

/// Reads the store file into the page cache, sequentially, on a background thread.
///
/// Recovery walks the `meta` table in key order, and its pages lie scattered between the bodies
/// written with them: with a cold page cache (a fresh boot, or the host reclaiming the cache, as it
/// does here minutes after a large fill) that walk was a stream of small random reads, 14.8 s for
/// a 10M-message FIFO queue that recovers in 4.9 s from a warm cache. Streaming the whole file in
/// at the disk's sequential rate beside the walk brings the cold case near the warm one. Skipped
/// when the file would take more than half the memory available, where it would evict itself.
fn prefetch_in_background(path: &Path) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let Ok(file) = File::open(path) else { return };
        let Ok(len) = file.metadata().map(|m| m.len()) else { return };
        let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
        });
        if len < PREFETCH_CHUNK || available.is_none_or(|a| len > a / 2) {
            return;
        }
        let spawned = std::thread::Builder::new().name("sluice-store-prefetch".into()).spawn(move || {
            let started = Instant::now();
            let mut offset = 0;
            while offset < len {
                let n = PREFETCH_CHUNK.min(len - offset) as usize;
                // SAFETY: maps a range of an open file read-only and unmaps it before the next; the
                // populate makes the kernel read the range into the page cache now, without copying it
                // into this process (a plain read would cost a memcpy per byte on the recovery's cores).
                #[allow(unsafe_code)]
                let done = unsafe {
                    let map = libc::mmap(std::ptr::null_mut(), n, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), offset as libc::off_t);
                    if map == libc::MAP_FAILED {
                        return;
                    }
                    let populated = libc::madvise(map, n, libc::MADV_POPULATE_READ);
                    libc::munmap(map, n);
                    populated
                };
                if done != 0 {
                    return;
                }
                offset += n as u64;
            }
            tracing::debug!(bytes = len, ms = started.elapsed().as_millis() as u64, "store file prefetched");
        });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "no prefetch thread");
        }
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

type MessageTable<'t> = Table<'t, (u64, u64), &'static [u8]>;

/// Removes up to [`CLEANUP_CHUNK`] records of `queue` with seq up to `last`; true if none is left.
fn remove_some(table: &mut MessageTable, queue: QueueId, last: Seq) -> Result<bool, StoreError> {
    let beyond_chunk = table.range((queue, 0)..=(queue, last)).map_err(io)?.nth(CLEANUP_CHUNK).transpose().map_err(io)?;
    match beyond_chunk.map(|(k, _)| k.value().1) {
        Some(stop) => {
            table.retain_in((queue, 0)..(queue, stop), |_, _| false).map_err(io)?;
            Ok(false)
        }
        None => {
            table.retain_in((queue, 0)..=(queue, last), |_, _| false).map_err(io)?;
            Ok(true)
        }
    }
}

/// Applies `ops` inside `tx`.
fn apply_ops<'a>(tx: &WriteTransaction, ops: impl IntoIterator<Item = &'a Op>) -> Result<(), StoreError> {
    {
        let mut queues = tx.open_table(QUEUES).map_err(io)?;
        let mut meta = tx.open_table(META).map_err(io)?;
        let mut body = tx.open_table(BODY).map_err(io)?;
        let mut kv = tx.open_table(KV).map_err(io)?;
        let mut doomed = tx.open_table(DOOMED).map_err(io)?;
        for op in ops {
            match op {
                Op::PutQueue { queue, record } => {
                    queues.insert(*queue, record.as_slice()).map_err(io)?;
                }
                // Their records go later, a chunk at a time (`Shared::clean_up_chunk`).
                Op::DeleteQueue { queue } => {
                    queues.remove(*queue).map_err(io)?;
                    doomed.insert(*queue, QUEUE_DELETED).map_err(io)?;
                }
                Op::PutKv { queue, key, value } => {
                    kv.insert((*queue, key.as_slice()), value.as_slice()).map_err(io)?;
                }
                Op::DeleteKv { queue, key } => {
                    kv.remove((*queue, key.as_slice())).map_err(io)?;
                }
                Op::PutMessage { queue, seq, meta: m, body: b } => {
                    meta.insert((*queue, *seq), m.as_slice()).map_err(io)?;
                    body.insert((*queue, *seq), b.as_slice()).map_err(io)?;
                }
                Op::PutMeta { queue, seq, meta: m } => {
                    // Within the transaction, so earlier deletes in this batch are seen: a late
                    // receive update never resurrects a deleted message.
                    let exists = meta.get((*queue, *seq)).map_err(io)?.is_some();
                    if exists {
                        meta.insert((*queue, *seq), m.as_slice()).map_err(io)?;
                    }
                }
                Op::DeleteMessage { queue, seq } => {
                    meta.remove((*queue, *seq)).map_err(io)?;
                    body.remove((*queue, *seq)).map_err(io)?;
                }
                Op::PurgeMessages { queue, below } => {
                    let bound = doomed.get(*queue).map_err(io)?.map_or(0, |b| b.value());
                    if *below > bound {
                        doomed.insert(*queue, *below).map_err(io)?;
                    }
                }
            }
        }
    }
    Ok(())
}

impl Backend for EmbeddedBackend {
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.shared.log_and_keep(ops, true)
    }

    fn append(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.shared.log_and_keep(ops, false)
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
        let checkpoint_due = log.wal.used() >= CHECKPOINT_BYTES || log.oldest.is_some_and(|t| t.elapsed() >= CHECKPOINT_INTERVAL);
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
            l.sealed.len() <= target || l.checkpointing && l.sealed_ops <= MAX_SEALED_OPS_DURING_CHECKPOINT
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
                let found = layers.active.body(queue, seq).or_else(|| layers.sealed.iter().rev().find_map(|s| s.pending.body(queue, seq)));
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

    fn scan_kv(&self, visit: &mut dyn FnMut(QueueId, &[u8], &[u8])) -> Result<(), StoreError> {
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
    /// Visits every key/value record.
    fn visit_kv(&self, visit: &mut dyn FnMut(QueueId, &[u8], &[u8])) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_backend_passes_conformance() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-conformance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.redb");
        crate::conformance::run_all(&|| Box::new(EmbeddedBackend::open(&path).unwrap()) as Box<dyn Backend>, true);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Waits until the applier has committed every sealed layer to redb.
    fn settle(backend: &EmbeddedBackend) {
        drop(backend.shared.wait_for_applier(backend.shared.layers(), |l| l.sealed.is_empty()));
    }

    /// A panic on the applier thread must not leave writers waiting for it forever.
    #[test]
    fn a_panicking_applier_fails_the_backend_and_wakes_its_waiters() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-panic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
        let (woke, woken) = std::sync::mpsc::channel();
        let shared = backend.shared.clone();
        // Not scoped: if the failure did not wake it, the test fails instead of hanging.
        std::thread::spawn(move || {
            // Waits for a condition the applier never brings about: only a failure ends it.
            drop(shared.wait_for_applier(shared.layers(), |_| false));
            let _ = woke.send(());
        });
        std::thread::sleep(Duration::from_millis(50));
        backend.shared.fail_on_panic(|| panic!("injected"));
        woken.recv_timeout(Duration::from_secs(5)).expect("the waiter was not woken");
        let refused = backend.apply(vec![message(1, 1)]).unwrap_err().to_string();
        assert!(refused.contains("applier panicked: injected"), "{refused}");
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A failure wakes every wait for the applier at once; an idle applier used to go on to its
    /// clean-up and back, round and round (a core busy, commits to a redb in doubt).
    #[test]
    fn a_failed_backend_stops_its_applier() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-failed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
        backend.apply(vec![message(1, 1)]).unwrap();
        backend.shared.flush().unwrap();
        backend.shared.fail(&StoreError::Io("injected".into()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !backend.applier.lock().unwrap().as_ref().is_some_and(|a| a.is_finished()) {
            assert!(Instant::now() < deadline, "the applier still runs 10 s after the failure");
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The bound of a purge still being removed is reported, so recovery can start new seqs above
    /// it; a finished purge, a deleted queue and an empty purge are not.
    #[test]
    fn purge_bounds_are_reported_until_their_records_are_removed() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-bounds-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
        backend.apply((0..10).map(|seq| message(1, seq)).chain([message(2, 0)]).collect()).unwrap();
        backend.shared.flush().unwrap();
        let bounds = |b: &EmbeddedBackend| {
            let mut seen = Vec::new();
            b.scan_purge_bounds(&mut |q, below| seen.push((q, below))).unwrap();
            seen.sort();
            seen
        };
        // Logged, not yet applied: the applier has not started removing anything.
        backend.apply(vec![Op::PurgeMessages { queue: 1, below: 7 }, Op::DeleteQueue { queue: 2 }, Op::PurgeMessages { queue: 3, below: 0 }]).unwrap();
        assert_eq!(bounds(&backend), vec![(1, 7)]);
        backend.shared.flush().unwrap();
        wait_until_clean(&backend);
        assert_eq!(bounds(&backend), vec![]);
        assert_eq!(raw_messages(&backend, 1), (3, 3));
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Counts the records of `queue` physically in redb's message tables (doomed ones included).
    fn raw_messages(backend: &EmbeddedBackend, queue: QueueId) -> (usize, usize) {
        let tx = backend.shared.db.begin_read().unwrap();
        let count = |t| tx.open_table(t).unwrap().range((queue, 0)..=(queue, Seq::MAX)).unwrap().count();
        (count(META), count(BODY))
    }

    fn wait_until_clean(backend: &EmbeddedBackend) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !backend.shared.doomed().is_empty() {
            assert!(Instant::now() < deadline, "doomed records were not removed within 20 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A purge or a queue deletion of many messages is hidden at once and removed a chunk per
    /// transaction (one big transaction held every send back for as long), also after a restart.
    #[test]
    fn big_purges_and_queue_deletions_are_hidden_at_once_and_removed_in_chunks() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-doomed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.redb");
        let n = 2 * CLEANUP_CHUNK as u64 + 10;
        let backend = EmbeddedBackend::open(&path).unwrap();
        for queue in [1, 2] {
            backend.apply((0..n).map(|seq| message(queue, seq)).collect()).unwrap();
        }
        // More key/value records than one chunk removes, the last of queue 2 followed by queue 3's.
        let kv = |queue: QueueId, i: usize| Op::PutKv { queue, key: format!("k{i:05}").into_bytes(), value: b"v".to_vec() };
        backend.apply((0..CLEANUP_CHUNK + 10).map(|i| kv(2, i)).chain([message(3, 0), kv(3, 0)]).collect()).unwrap();
        backend.shared.flush().unwrap();
        assert_eq!(raw_messages(&backend, 1), (n as usize, n as usize));

        backend.apply(vec![Op::PurgeMessages { queue: 1, below: n - 5 }, Op::DeleteQueue { queue: 2 }]).unwrap();
        let visible = |b: &EmbeddedBackend| {
            let mut seen = Vec::new();
            b.scan_meta(&mut |q, s, _| seen.push((q, s))).unwrap();
            seen
        };
        let expected: Vec<(QueueId, Seq)> = (n - 5..n).map(|s| (1, s)).chain([(3, 0)]).collect();
        assert_eq!(visible(&backend), expected, "hidden from scans before they are removed");
        assert_eq!(backend.get_bodies(1, &[0, n - 6, n - 5]).unwrap(), vec![None, None, Some(format!("body {}", n - 5).into_bytes())]);
        assert_eq!(backend.get_body(2, 7).unwrap(), None);
        let mut kvs = Vec::new();
        backend.scan_kv(&mut |q, _, _| kvs.push(q)).unwrap();
        assert_eq!(kvs, vec![3], "a deleted queue's key/value records are hidden too");

        wait_until_clean(&backend);
        assert_eq!(raw_messages(&backend, 1), (5, 5));
        assert_eq!(raw_messages(&backend, 2), (0, 0));
        let raw_kvs = |b: &EmbeddedBackend| b.shared.db.begin_read().unwrap().open_table(KV).unwrap().iter().unwrap().count();
        assert_eq!(raw_kvs(&backend), 1, "queue 2's removed in two chunks, queue 3's kept");
        // Queue 1 takes three chunks (two full ones), queue 2 as many.
        assert!(backend.shared.cleanup_chunks.load(Ordering::Relaxed) >= 6, "removed in chunks");

        // Doomed before a restart: still hidden after it, and removed by the reopened backend.
        backend.apply((n..2 * n).map(|seq| message(1, seq)).collect()).unwrap();
        backend.shared.flush().unwrap();
        backend.apply(vec![Op::PurgeMessages { queue: 1, below: 2 * n - 1 }]).unwrap();
        drop(backend);
        let backend = EmbeddedBackend::open(&path).unwrap();
        assert_eq!(visible(&backend), vec![(1, 2 * n - 1), (3, 0)]);
        wait_until_clean(&backend);
        assert_eq!(raw_messages(&backend, 1), (1, 1));
        let tx = backend.shared.db.begin_read().unwrap();
        assert_eq!(tx.open_table(DOOMED).unwrap().iter().unwrap().count(), 0);
        drop(tx);
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A store written by a newer sluice is refused before anything is replayed into it.
    #[test]
    fn a_store_in_a_newer_format_is_refused() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-format-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.redb");
        drop(EmbeddedBackend::open(&path).unwrap());
        {
            let db = Database::create(&path).unwrap();
            let tx = db.begin_write().unwrap();
            assert_eq!(tx.open_table(INFO).unwrap().get("format").unwrap().map(|v| v.value()), Some(FORMAT));
            tx.open_table(INFO).unwrap().insert("format", FORMAT + 1).unwrap();
            tx.commit().unwrap();
        }
        let refused = EmbeddedBackend::open(&path).err().expect("a newer format must be refused").to_string();
        assert!(refused.contains("written by a newer sluice"), "{refused}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn message(queue: QueueId, seq: Seq) -> Op {
        Op::PutMessage { queue, seq, meta: vec![1], body: format!("body {seq}").into_bytes() }
    }

    /// Changes live in the pending layer until `maintain` moves them to redb; readers see the same
    /// state before and after, and a message sent and deleted in between never shows up.
    #[test]
    fn pending_changes_read_the_same_before_and_after_they_reach_redb() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-pending-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
        backend.apply(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }, message(5, 1), message(5, 2)]).unwrap();
        backend.maintain().unwrap();
        assert!(!backend.shared.layers().active.is_empty(), "below every threshold: still pending");
        assert_eq!(backend.get_body(5, 1).unwrap(), Some(b"body 1".to_vec()));
        backend.apply(vec![Op::DeleteMessage { queue: 5, seq: 1 }, Op::PutMeta { queue: 5, seq: 2, meta: vec![7] }]).unwrap();
        let many: Vec<Op> = (10..10 + FLUSH_OPS as u64).map(|s| message(5, s)).collect();
        backend.apply(many).unwrap();
        backend.maintain().unwrap();
        assert!(backend.shared.layers().active.is_empty(), "sealed for the applier");
        settle(&backend);
        assert!(backend.shared.layers().sealed.is_empty(), "applied to redb");
        assert_eq!(backend.get_body(5, 2).unwrap(), Some(b"body 2".to_vec()));
        assert_eq!(backend.get_body(5, 10).unwrap(), Some(b"body 10".to_vec()));
        assert_eq!(backend.get_body(5, 1).unwrap(), None);
        backend.apply(vec![Op::DeleteMessage { queue: 5, seq: 10 }, message(5, 99_999)]).unwrap();
        // One batch read across both places: seq 11 from redb, 99999 pending, 1 gone.
        let bodies = backend.get_bodies(5, &[11, 99_999, 1]).unwrap();
        assert_eq!(bodies, vec![Some(b"body 11".to_vec()), Some(b"body 99999".to_vec()), None]);
        let mut seen = Vec::new();
        backend.scan_meta(&mut |q, s, m| seen.push((q, s, m.to_vec()))).unwrap();
        assert_eq!(seen.len(), 1 + (FLUSH_OPS - 1) + 1, "seq 2, 11..10+FLUSH_OPS and 99999; 1 and 10 deleted");
        assert_eq!(seen[0], (5, 2, vec![7]));
        assert_eq!(seen.last().unwrap().1, 99_999);
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// An append writes its log record at once (a process crash keeps it) and is readable at once;
    /// only the fdatasync waits, for the next apply or sync.
    #[test]
    fn appends_are_logged_and_visible_at_once_and_synced_by_the_next_apply_or_sync() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-append-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = EmbeddedBackend::open(&dir.join("store.redb")).unwrap();
        let state = |b: &EmbeddedBackend| {
            let log = b.shared.log.lock().unwrap();
            (log.wal.used(), log.unsynced, log.split.syncs)
        };
        let (empty, _, _) = state(&backend);
        backend.append(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }, message(5, 1)]).unwrap();
        let (used, unsynced, syncs) = state(&backend);
        assert!(used > empty && unsynced && syncs == 0, "written to the log, not synced: {used} {unsynced} {syncs}");
        assert_eq!(backend.get_body(5, 1).unwrap(), Some(b"body 1".to_vec()));
        backend.apply(vec![message(5, 2)]).unwrap();
        assert!(!state(&backend).1, "the durable apply covers the append");
        assert_eq!(state(&backend).2, 1);
        backend.sync().unwrap();
        assert_eq!(state(&backend).2, 1, "nothing unsynced: no fdatasync");
        backend.append(vec![Op::DeleteMessage { queue: 5, seq: 1 }]).unwrap();
        backend.sync().unwrap();
        assert_eq!((state(&backend).1, state(&backend).2), (false, 2));
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// What a crash leaves behind: records in the log that redb never committed durably. Written
    /// straight into the log here (a crashed process cannot be simulated in-process: redb locks its
    /// file); the SIGKILL tests in tests/crash and crates/sluice/tests cover the real thing.
    #[test]
    fn open_replays_the_log_and_a_clean_close_empties_it() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.redb");
        let backend = EmbeddedBackend::open(&path).unwrap();
        backend.apply(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }, message(5, 1), message(5, 2)]).unwrap();
        drop(backend);
        let (mut wal, records) = Wal::open(&path.with_extension("wal")).unwrap();
        assert!(records.is_empty(), "a clean close checkpoints and empties the log");
        wal.append(&[message(5, 3), Op::DeleteMessage { queue: 5, seq: 1 }]).unwrap();
        wal.append(&[Op::PutMeta { queue: 5, seq: 2, meta: vec![9] }, Op::PutMeta { queue: 5, seq: 1, meta: vec![9] }]).unwrap();
        wal.sync().unwrap();
        drop(wal);

        let backend = EmbeddedBackend::open(&path).unwrap();
        let mut seen = Vec::new();
        backend.scan_meta(&mut |q, s, m| seen.push((q, s, m.to_vec()))).unwrap();
        // seq 1 deleted (and not resurrected by the later PutMeta), seq 2 updated, seq 3 added.
        assert_eq!(seen, vec![(5, 2, vec![9]), (5, 3, vec![1])]);
        assert_eq!(backend.get_body(5, 3).unwrap(), Some(b"body 3".to_vec()));
        drop(backend);
        let (_, records) = Wal::open(&path.with_extension("wal")).unwrap();
        assert!(records.is_empty(), "replayed records are checkpointed at open");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A crash can leave records in both log files: the one a checkpoint was making redundant and
    /// the one written meanwhile. They replay in epoch order, whatever the files are called.
    #[test]
    fn open_replays_both_logs_older_epoch_first() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-two-logs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.redb");
        let backend = EmbeddedBackend::open(&path).unwrap();
        backend.apply(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }]).unwrap();
        drop(backend);
        let (mut first, _) = Wal::open(&path.with_extension("wal")).unwrap();
        let (mut second, _) = Wal::open(&path.with_extension("wal2")).unwrap();
        // `.wal2` older, `.wal` newer: the opposite of the names' order.
        second.restart_after(first.epoch()).unwrap();
        first.restart_after(second.epoch()).unwrap();
        second.append(&[message(5, 7), message(5, 6)]).unwrap();
        first.append(&[Op::DeleteMessage { queue: 5, seq: 7 }, message(5, 8)]).unwrap();
        drop((first, second));

        let backend = EmbeddedBackend::open(&path).unwrap();
        let mut seen = Vec::new();
        backend.scan_meta(&mut |_, s, _| seen.push(s)).unwrap();
        assert_eq!(seen, vec![6, 8], "the delete in the newer log comes after the send in the older one");
        drop(backend);
        for ext in LOG_EXTENSIONS {
            let (_, records) = Wal::open(&path.with_extension(ext)).unwrap();
            assert!(records.is_empty(), "both logs are checkpointed at open ({ext})");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A full log makes the writer switch to the other file and the applier checkpoint the full
    /// one in the background; everything stays readable throughout, and the file comes back.
    #[test]
    fn a_full_log_is_checkpointed_by_the_applier_while_writes_go_to_the_other_file() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-switch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.redb");
        let backend = EmbeddedBackend::open(&path).unwrap();
        let epoch = |b: &EmbeddedBackend| b.shared.log.lock().unwrap().wal.epoch();
        let first_epoch = epoch(&backend);
        backend.apply(vec![Op::PutQueue { queue: 5, record: b"q".to_vec() }]).unwrap();
        let big = vec![b'x'; 1 << 20];
        let mut seq = 0;
        while backend.shared.log.lock().unwrap().wal.used() < CHECKPOINT_BYTES {
            seq += 1;
            backend.apply(vec![Op::PutMessage { queue: 5, seq, meta: vec![1], body: big.clone() }]).unwrap();
        }
        backend.maintain().unwrap();
        assert!(epoch(&backend) > first_epoch, "new records go to the other file");
        assert!(backend.shared.layers().spare_log.is_none(), "the full file is with the applier");
        backend.apply(vec![Op::DeleteMessage { queue: 5, seq: 1 }, message(5, seq + 1)]).unwrap();
        assert_eq!(backend.get_body(5, 2).unwrap().map(|b| b.len()), Some(big.len()));
        settle(&backend);
        assert!(backend.shared.layers().spare_log.is_some(), "the checkpoint gave the file back");
        assert_eq!(backend.get_body(5, seq).unwrap().map(|b| b.len()), Some(big.len()));
        backend.shared.flush().unwrap();
        assert_eq!(backend.get_body(5, 1).unwrap().map(|b| b.len()), None, "the delete reached redb");
        assert_eq!(backend.get_body(5, seq + 1).unwrap(), Some(format!("body {}", seq + 1).into_bytes()));
        drop(backend);

        let backend = EmbeddedBackend::open(&path).unwrap();
        let mut seen = Vec::new();
        backend.scan_meta(&mut |_, s, _| seen.push(s)).unwrap();
        assert_eq!(seen, (2..=seq + 1).collect::<Vec<_>>());
        drop(backend);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

