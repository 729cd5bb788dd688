//! The default backend: [redb](https://docs.rs/redb), an embedded, pure-Rust, copy-on-write B-tree
//! in one file. Chosen by the measured spike in `docs/STORE_SPIKE.md` (fast recovery because there is
//! no log to replay, steady under CPU contention, two crates to build).
//!
//! Tables:
//! - `queues`: queue id → queue record;
//! - `meta`: (queue id, seq) → message metadata (scanned at startup);
//! - `body`: (queue id, seq) → message body record (read on receive).
//!
//! Every `apply` is one record in the write-ahead log ([`crate::wal`]), fdatasynced, and its ops
//! appended to the [`Pending`] changes; an `append` is the same record without the fdatasync, made
//! durable by the next one. In [`Backend::maintain`], after the group's waiters were
//! answered, pending changes go to redb in one transaction committed with `Durability::None` (no
//! fsync) once they reach [`FLUSH_OPS`] ops, [`FLUSH_BYTES`] or [`FLUSH_AGE`]; messages sent and
//! deleted within one such window never reach redb. A checkpoint — everything pending plus a durable redb commit, then a log reset — runs when
//! the log holds [`CHECKPOINT_BYTES`] or its oldest record is [`CHECKPOINT_INTERVAL`] old, and on
//! open after replaying the log. Durable commits record redb's allocator state (quick repair), so a
//! restart after a crash does not walk the whole file to rebuild it. Body reads look at the pending changes (the ones being applied
//! stay readable until redb has them), then redb; scans apply what is pending first. Readers use
//! MVCC read transactions and never wait for redb's writer.
//!
//! Once a log write or a redb apply fails the backend refuses every later write: redb and the log
//! may then disagree, and only a restart (replaying what the log holds) restores one state. Such a
//! group's waiters get an error although its record may replay after the restart; for SQS that is
//! a retried send delivered twice, which at-least-once delivery allows.
//!
//! `SLUICE_LOG=sluice_store=debug` logs, at each checkpoint, the commits since the previous one and
//! where their time went (redb apply, waiting for the fdatasync, the checkpoint itself).

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::pending::Pending;
use crate::wal::Wal;
use crate::{Backend, Op, QueueId, Seq, StoreError};

const QUEUES: TableDefinition<u64, &[u8]> = TableDefinition::new("queues");
const META: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("meta");
const BODY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("body");
const KV: TableDefinition<(u64, &[u8]), &[u8]> = TableDefinition::new("kv");

/// Page cache redb may use; bodies read on receive are mostly recent, so a modest cache suffices.
const CACHE_BYTES: usize = 64 << 20;

/// Log size that triggers a checkpoint (half the preallocated log, so the log rarely grows).
pub const CHECKPOINT_BYTES: u64 = crate::wal::PREALLOCATED / 2;
/// Age of the oldest unchecked record that triggers a checkpoint: bounds replay at startup and the
/// pages redb cannot reuse until a durable commit.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);

/// Pending changes that trigger an apply to redb: enough to share redb's per-transaction cost
/// and to let a queue that keeps up skip redb, small enough that one apply (which delays the next
/// group) stays around a millisecond or two: at 8,192 ops / 50 ms the p99 of batch-10 sends doubled
/// (7 → 17 ms) for no CPU saved.
pub const FLUSH_OPS: usize = 2048;
pub const FLUSH_BYTES: usize = 2 << 20;
pub const FLUSH_AGE: Duration = Duration::from_millis(20);

/// redb-backed storage: one database file plus its write-ahead log.
pub struct EmbeddedBackend {
    db: Database,
    log: Mutex<LogState>,
    layers: Mutex<Layers>,
}

/// Changes in the log but not (yet) in redb, as readers see them.
#[derive(Default)]
struct Layers {
    /// Where new groups go.
    active: Pending,
    /// The changes being applied to redb right now, readable until redb has committed them.
    applying: Option<std::sync::Arc<Pending>>,
}

struct LogState {
    wal: Wal,
    /// When the first record after the last checkpoint was written (None: log empty).
    oldest: Option<Instant>,
    /// Why writes are refused, after a failure that left redb and the log out of step.
    failed: Option<String>,
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
    /// Applying pending changes to redb (outside checkpoints).
    apply: Duration,
}

fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Io(e.to_string())
}

impl EmbeddedBackend {
    /// Opens (or creates) the store file at `path` and its log beside it (same name, `.wal`),
    /// replaying the log's records into the database.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        prefetch_in_background(path);
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path).map_err(io)?;
        let (mut wal, records) = Wal::open(&path.with_extension("wal"))?;
        let mut tx = db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        tx.set_quick_repair(true);
        tx.open_table(QUEUES).map_err(io)?;
        tx.open_table(META).map_err(io)?;
        tx.open_table(BODY).map_err(io)?;
        tx.open_table(KV).map_err(io)?;
        // Replaying is idempotent: every op sets or removes keys, so records whose effects a
        // checkpoint already made durable (a crash between checkpoint and log reset) replay harmlessly.
        let replayed: usize = records.iter().map(Vec::len).sum();
        for ops in &records {
            apply_ops(&tx, ops.iter())?;
        }
        tx.commit().map_err(io)?;
        if !records.is_empty() {
            tracing::info!(records = records.len(), ops = replayed, "replayed the write-ahead log");
            wal.reset()?;
        }
        let log = LogState { wal, oldest: None, failed: None, unsynced: false, split: Split::default() };
        Ok(EmbeddedBackend { db, log: Mutex::new(log), layers: Mutex::new(Layers::default()) })
    }

}

impl EmbeddedBackend {
    fn layers(&self) -> std::sync::MutexGuard<'_, Layers> {
        // Only pushes and swaps happen under this lock; a panic cannot leave it half-changed.
        self.layers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies everything pending to redb in one transaction (durable if `durability` says so).
    /// The caller holds the log lock, so applies never interleave.
    fn apply_pending(&self, durability: Durability) -> Result<(), StoreError> {
        let pending = {
            let mut layers = self.layers();
            let pending = std::sync::Arc::new(std::mem::take(&mut layers.active));
            layers.applying = Some(pending.clone());
            pending
        };
        let result = (|| {
            let mut tx = self.db.begin_write().map_err(io)?;
            tx.set_durability(durability).map_err(io)?;
            // A durable commit records redb's allocator state, so that opening after a crash
            // loads it instead of walking the whole file to rebuild it (see `open`).
            tx.set_quick_repair(matches!(durability, Durability::Immediate));
            if !pending.is_empty() {
                apply_ops(&tx, pending.effective_ops())?;
            }
            tx.commit().map_err(io)
        })();
        // On failure the backend refuses writes (the caller marks it failed); the changes stay in
        // the log for the replay at the next start, and readable until then.
        if result.is_ok() {
            self.layers().applying = None;
        }
        result
    }

    /// Writes one log record for `ops` (fdatasynced if `durable`) and adds them to the pending
    /// changes, where readers see them at once.
    fn log_and_keep(&self, ops: Vec<Op>, durable: bool) -> Result<(), StoreError> {
        let mut log = self.log.lock().map_err(|_| StoreError::Io("store writer panicked".into()))?;
        if let Some(why) = &log.failed {
            return Err(StoreError::Io(format!("store refuses writes until restarted: {why}")));
        }
        // A failed write leaves nothing applied and the log's end where it was; a failed sync
        // leaves the record's fate unknown, so writes stop until a restart replays what is there.
        let started = Instant::now();
        log.wal.append(&ops)?;
        log.split.write += started.elapsed();
        log.unsynced = true;
        if durable {
            sync_log(&mut log)?;
        }
        log.split.commits += 1;
        log.split.ops += ops.len() as u64;
        log.oldest.get_or_insert_with(Instant::now);
        self.layers().active.extend(ops);
        Ok(())
    }

    /// Applies what is pending (on request of a reader that needs redb complete: scans).
    fn flush(&self) -> Result<(), StoreError> {
        let log = self.log.lock().map_err(|_| StoreError::Io("store writer panicked".into()))?;
        if log.failed.is_some() || self.layers().active.is_empty() {
            return Ok(());
        }
        self.apply_pending(Durability::None)
    }
}

/// fdatasyncs the log: every record appended so far becomes durable.
fn sync_log(log: &mut LogState) -> Result<(), StoreError> {
    let started = Instant::now();
    if let Err(e) = log.wal.sync() {
        log.failed = Some(e.to_string());
        tracing::error!(error = %e, "write-ahead log sync failed; refusing writes until restart");
        return Err(e);
    }
    log.unsynced = false;
    log.split.syncs += 1;
    log.split.sync += started.elapsed();
    Ok(())
}

/// Applies everything pending, commits redb durably (persisting every earlier non-durable commit)
/// and empties the log.
fn checkpoint(backend: &EmbeddedBackend, log: &mut LogState) -> Result<(), StoreError> {
    let started = Instant::now();
    backend.apply_pending(Durability::Immediate)?;
    let log_bytes = log.wal.used();
    log.wal.reset()?;
    log.oldest = None;
    log.unsynced = false;
    let split = std::mem::take(&mut log.split);
    let per_commit = |d: Duration| d.as_micros() as u64 / split.commits.max(1);
    tracing::debug!(
        commits = split.commits,
        syncs = split.syncs,
        ops = split.ops,
        log_bytes,
        write_us_per_commit = per_commit(split.write),
        sync_us_per_sync = split.sync.as_micros() as u64 / split.syncs.max(1),
        apply_us_per_commit = per_commit(split.apply),
        checkpoint_ms = started.elapsed().as_millis() as u64,
        "checkpoint"
    );
    Ok(())
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
        // A clean shutdown leaves an empty log, so the next start has nothing to replay.
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.failed.is_none() && log.oldest.is_some() {
            if let Err(e) = checkpoint(self, &mut log) {
                tracing::warn!(error = %e, "checkpoint at shutdown failed; the log will be replayed at the next start");
            }
        }
    }
}

type MessageTable<'t> = Table<'t, (u64, u64), &'static [u8]>;

fn remove_range(meta: &mut MessageTable, body: &mut MessageTable, queue: QueueId, below: Seq) -> Result<(), StoreError> {
    meta.retain_in((queue, 0)..(queue, below), |_, _| false).map_err(io)?;
    body.retain_in((queue, 0)..(queue, below), |_, _| false).map_err(io)?;
    Ok(())
}

/// Applies `ops` inside `tx`.
fn apply_ops<'a>(tx: &WriteTransaction, ops: impl IntoIterator<Item = &'a Op>) -> Result<(), StoreError> {
    {
        let mut queues = tx.open_table(QUEUES).map_err(io)?;
        let mut meta = tx.open_table(META).map_err(io)?;
        let mut body = tx.open_table(BODY).map_err(io)?;
        let mut kv = tx.open_table(KV).map_err(io)?;
        for op in ops {
            match op {
                Op::PutQueue { queue, record } => {
                    queues.insert(*queue, record.as_slice()).map_err(io)?;
                }
                Op::DeleteQueue { queue } => {
                    queues.remove(*queue).map_err(io)?;
                    meta.retain_in((*queue, 0)..=(*queue, Seq::MAX), |_, _| false).map_err(io)?;
                    body.retain_in((*queue, 0)..=(*queue, Seq::MAX), |_, _| false).map_err(io)?;
                    let keys: Vec<Vec<u8>> = kv
                        .range((*queue, &[][..])..)
                        .map_err(io)?
                        .map_while(|item| item.ok().filter(|(k, _)| k.value().0 == *queue).map(|(k, _)| k.value().1.to_vec()))
                        .collect();
                    for k in keys {
                        kv.remove((*queue, k.as_slice())).map_err(io)?;
                    }
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
                Op::PurgeMessages { queue, below } => remove_range(&mut meta, &mut body, *queue, *below)?,
            }
        }
    }
    Ok(())
}

impl Backend for EmbeddedBackend {
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.log_and_keep(ops, true)
    }

    fn append(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.log_and_keep(ops, false)
    }

    fn sync(&self) -> Result<(), StoreError> {
        let mut log = self.log.lock().map_err(|_| StoreError::Io("store writer panicked".into()))?;
        if let Some(why) = &log.failed {
            return Err(StoreError::Io(format!("store refuses writes until restarted: {why}")));
        }
        if !log.unsynced {
            return Ok(());
        }
        sync_log(&mut log)
    }

    /// Applies pending changes to redb when enough have gathered, and checkpoints when the log is
    /// full or old enough. Runs after the group's waiters were answered: this work delays the next
    /// group, never the one just made durable.
    fn maintain(&self) -> Result<(), StoreError> {
        let mut log = self.log.lock().map_err(|_| StoreError::Io("store writer panicked".into()))?;
        if log.failed.is_some() {
            return Ok(());
        }
        let checkpoint_due = log.wal.used() >= CHECKPOINT_BYTES || log.oldest.is_some_and(|t| t.elapsed() >= CHECKPOINT_INTERVAL);
        let result = if checkpoint_due {
            checkpoint(self, &mut log)
        } else {
            let due = {
                let p = &self.layers().active;
                p.len() >= FLUSH_OPS || p.bytes() >= FLUSH_BYTES || p.age() >= FLUSH_AGE
            };
            let started = Instant::now();
            let result = if due { self.apply_pending(Durability::None) } else { Ok(()) };
            log.split.apply += started.elapsed();
            result
        };
        if let Err(e) = &result {
            // The ops are durable in the log; redb's state is uncertain, so writes stop until a
            // restart replays the log.
            tracing::error!(error = %e, "applying the log to redb failed; refusing writes until restart");
            log.failed = Some(e.to_string());
        }
        result
    }

    fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_bodies(queue, &[seq])?.pop().flatten())
    }

    /// One look at the pending layers for all, then one read transaction for those not there: with
    /// a deep backlog most bodies come from redb, and a transaction and table open per body showed.
    fn get_bodies(&self, queue: QueueId, seqs: &[Seq]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut out = Vec::with_capacity(seqs.len());
        {
            let layers = self.layers();
            for &seq in seqs {
                let found = layers.active.body(queue, seq).or_else(|| layers.applying.as_ref()?.body(queue, seq));
                out.push(found.map(<[u8]>::to_vec));
            }
        }
        if out.iter().all(Option::is_some) {
            return Ok(out);
        }
        // Read after looking at the layers: a change leaves them only once redb has committed it.
        let tx = self.db.begin_read().map_err(io)?;
        let table = tx.open_table(BODY).map_err(io)?;
        for (slot, &seq) in out.iter_mut().zip(seqs) {
            if slot.is_none() {
                *slot = table.get((queue, seq)).map_err(io)?.map(|v| v.value().to_vec());
            }
        }
        Ok(out)
    }

    fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> Result<(), StoreError> {
        self.flush()?;
        let tx = self.db.begin_read().map_err(io)?;
        for item in tx.open_table(QUEUES).map_err(io)?.iter().map_err(io)? {
            let (k, v) = item.map_err(io)?;
            visit(k.value(), v.value());
        }
        Ok(())
    }

    fn scan_kv(&self, visit: &mut dyn FnMut(QueueId, &[u8], &[u8])) -> Result<(), StoreError> {
        self.flush()?;
        self.visit_kv(visit)
    }

    fn scan_meta(&self, visit: &mut dyn FnMut(QueueId, Seq, &[u8])) -> Result<(), StoreError> {
        self.flush()?;
        let tx = self.db.begin_read().map_err(io)?;
        for item in tx.open_table(META).map_err(io)?.iter().map_err(io)? {
            let (k, v) = item.map_err(io)?;
            let (q, s) = k.value();
            visit(q, s, v.value());
        }
        Ok(())
    }
}

impl EmbeddedBackend {
    /// Visits every key/value record.
    fn visit_kv(&self, visit: &mut dyn FnMut(QueueId, &[u8], &[u8])) -> Result<(), StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        for item in tx.open_table(KV).map_err(io)?.iter().map_err(io)? {
            let (k, v) = item.map_err(io)?;
            let (q, key) = k.value();
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
        assert!(!backend.layers().active.is_empty(), "below every threshold: still pending");
        assert_eq!(backend.get_body(5, 1).unwrap(), Some(b"body 1".to_vec()));
        backend.apply(vec![Op::DeleteMessage { queue: 5, seq: 1 }, Op::PutMeta { queue: 5, seq: 2, meta: vec![7] }]).unwrap();
        let many: Vec<Op> = (10..10 + FLUSH_OPS as u64).map(|s| message(5, s)).collect();
        backend.apply(many).unwrap();
        backend.maintain().unwrap();
        assert!(backend.layers().active.is_empty() && backend.layers().applying.is_none(), "applied to redb");
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
            let log = b.log.lock().unwrap();
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
}
