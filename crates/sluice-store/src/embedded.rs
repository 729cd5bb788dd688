//! The default backend: [redb](https://docs.rs/redb), an embedded, pure-Rust, copy-on-write B-tree
//! in one file. Chosen by the measured spike in `docs/STORE_SPIKE.md` (fast recovery because there is
//! no log to replay, steady under CPU contention, two crates to build).
//!
//! Tables:
//! - `queues`: queue id → queue record;
//! - `meta`: (queue id, seq) → message metadata (scanned at startup);
//! - `body`: (queue id, seq) → message body record (read on receive).
//!
//! Every `apply` is one redb write transaction committed with `Durability::None` (visible to
//! readers at once, no fsync) plus one record in the write-ahead log ([`crate::wal`]), which is
//! what is fsynced. The record is written first and fdatasynced on the [`Syncer`] thread while
//! this thread applies the same ops to redb: the disk wait and the B-tree work overlap. A checkpoint — a durable redb commit, then a log reset — runs when the log
//! holds [`CHECKPOINT_BYTES`] or its oldest record is [`CHECKPOINT_INTERVAL`] old, and on open after
//! replaying the log. Readers (body reads, recovery scans) use MVCC read transactions and never
//! wait for the writer.
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
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition, WriteTransaction};

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

/// redb-backed storage: one database file plus its write-ahead log.
pub struct EmbeddedBackend {
    db: Database,
    log: Mutex<LogState>,
}

struct LogState {
    wal: Wal,
    syncer: Syncer,
    /// When the first record after the last checkpoint was written (None: log empty).
    oldest: Option<Instant>,
    /// Why writes are refused, after a failure that left redb and the log out of step.
    failed: Option<String>,
    /// Time split since the last checkpoint (debug log only).
    split: Split,
}

#[derive(Default)]
struct Split {
    commits: u64,
    ops: u64,
    apply: Duration,
    sync_wait: Duration,
}

/// A thread that fdatasyncs the log on request, so the caller can work meanwhile.
struct Syncer {
    start: Option<mpsc::SyncSender<()>>,
    done: mpsc::Receiver<Result<(), StoreError>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    fn new(file: File) -> Result<Self, StoreError> {
        let (start, requests) = mpsc::sync_channel::<()>(1);
        let (answer, done) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("sluice-wal-sync".into())
            .spawn(move || {
                while requests.recv().is_ok() {
                    let result = file.sync_data().map_err(|e| StoreError::Io(format!("write-ahead log fdatasync: {e}")));
                    if answer.send(result).is_err() {
                        return;
                    }
                }
            })
            .map_err(io)?;
        Ok(Syncer { start: Some(start), done, thread: Some(thread) })
    }

    /// Starts one fdatasync covering everything written to the log so far.
    fn begin(&self) -> Result<(), StoreError> {
        self.start.as_ref().and_then(|s| s.send(()).ok()).ok_or(StoreError::Io("write-ahead log sync thread gone".into()))
    }

    /// Waits for the fdatasync started by [`Syncer::begin`].
    fn finish(&self) -> Result<(), StoreError> {
        self.done.recv().map_err(|_| StoreError::Io("write-ahead log sync thread gone".into()))?
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.start.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path).map_err(io)?;
        let (mut wal, records) = Wal::open(&path.with_extension("wal"))?;
        let mut tx = db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        tx.open_table(QUEUES).map_err(io)?;
        tx.open_table(META).map_err(io)?;
        tx.open_table(BODY).map_err(io)?;
        tx.open_table(KV).map_err(io)?;
        // Replaying is idempotent: every op sets or removes keys, so records whose effects a
        // checkpoint already made durable (a crash between checkpoint and log reset) replay harmlessly.
        let replayed: usize = records.iter().map(Vec::len).sum();
        for ops in &records {
            apply_ops(&tx, ops)?;
        }
        tx.commit().map_err(io)?;
        if !records.is_empty() {
            tracing::info!(records = records.len(), ops = replayed, "replayed the write-ahead log");
            wal.reset()?;
        }
        let syncer = Syncer::new(wal.sync_handle()?)?;
        let log = LogState { wal, syncer, oldest: None, failed: None, split: Split::default() };
        Ok(EmbeddedBackend { db, log: Mutex::new(log) })
    }

}

/// Commits redb durably (persisting every earlier non-durable commit) and empties the log.
fn checkpoint(db: &Database, log: &mut LogState) -> Result<(), StoreError> {
    let started = Instant::now();
    let mut tx = db.begin_write().map_err(io)?;
    tx.set_durability(Durability::Immediate).map_err(io)?;
    tx.commit().map_err(io)?;
    let log_bytes = log.wal.used();
    log.wal.reset()?;
    log.oldest = None;
    let split = std::mem::take(&mut log.split);
    let per_commit = |d: Duration| d.as_micros() as u64 / split.commits.max(1);
    tracing::debug!(
        commits = split.commits,
        ops = split.ops,
        log_bytes,
        apply_us_per_commit = per_commit(split.apply),
        sync_wait_us_per_commit = per_commit(split.sync_wait),
        checkpoint_ms = started.elapsed().as_millis() as u64,
        "checkpoint"
    );
    Ok(())
}

impl Drop for EmbeddedBackend {
    fn drop(&mut self) {
        // A clean shutdown leaves an empty log, so the next start has nothing to replay.
        let log = match self.log.get_mut() {
            Ok(log) => log,
            Err(poisoned) => poisoned.into_inner(),
        };
        if log.failed.is_none() && log.oldest.is_some() {
            if let Err(e) = checkpoint(&self.db, log) {
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
fn apply_ops(tx: &WriteTransaction, ops: &[Op]) -> Result<(), StoreError> {
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

impl EmbeddedBackend {
    /// One non-durable redb transaction with `ops` (durability comes from the log).
    fn apply_to_redb(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::None).map_err(io)?;
        apply_ops(&tx, ops)?;
        tx.commit().map_err(io)
    }
}

impl Backend for EmbeddedBackend {
    fn apply(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut log = self.log.lock().map_err(|_| StoreError::Io("store writer panicked".into()))?;
        if let Some(why) = &log.failed {
            return Err(StoreError::Io(format!("store refuses writes until restarted: {why}")));
        }
        // The record goes first, so its fdatasync can run while redb applies the same ops. A failed
        // write leaves nothing applied and the log's end where it was.
        log.wal.append(ops)?;
        if let Err(e) = log.syncer.begin() {
            log.failed = Some(e.to_string());
            return Err(e);
        }
        let started = Instant::now();
        let applied = self.apply_to_redb(ops);
        let applied_at = Instant::now();
        let synced = log.syncer.finish();
        log.split.commits += 1;
        log.split.ops += ops.len() as u64;
        log.split.apply += applied_at - started;
        log.split.sync_wait += applied_at.elapsed();
        if let Err(e) = applied.and(synced) {
            log.failed = Some(e.to_string());
            tracing::error!(error = %e, "group commit failed after its log write; refusing writes until restart");
            return Err(e);
        }
        let oldest = *log.oldest.get_or_insert_with(Instant::now);
        if log.wal.used() >= CHECKPOINT_BYTES || oldest.elapsed() >= CHECKPOINT_INTERVAL {
            // The ops are durable in the log already: a failed checkpoint does not fail this apply,
            // but later writes are refused (redb's state is uncertain).
            if let Err(e) = checkpoint(&self.db, &mut log) {
                tracing::error!(error = %e, "checkpoint failed; refusing writes until restart");
                log.failed = Some(e.to_string());
            }
        }
        Ok(())
    }

    fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        let table = tx.open_table(BODY).map_err(io)?;
        let value = table.get((queue, seq)).map_err(io)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> Result<(), StoreError> {
        let tx = self.db.begin_read().map_err(io)?;
        for item in tx.open_table(QUEUES).map_err(io)?.iter().map_err(io)? {
            let (k, v) = item.map_err(io)?;
            visit(k.value(), v.value());
        }
        Ok(())
    }

    fn scan_kv(&self, visit: &mut dyn FnMut(QueueId, &[u8], &[u8])) -> Result<(), StoreError> {
        self.visit_kv(visit)
    }

    fn scan_meta(&self, visit: &mut dyn FnMut(QueueId, Seq, &[u8])) -> Result<(), StoreError> {
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

    /// What a crash leaves behind: records in the log that redb never committed durably. Written
    /// straight into the log here (a crashed process cannot be simulated in-process: redb locks its
    /// file); the SIGKILL tests in tests/crash and crates/sluice/tests cover the real thing.
    #[test]
    fn open_replays_the_log_and_a_clean_close_empties_it() {
        let dir = std::env::temp_dir().join(format!("sluice-embedded-replay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("store.redb");
        let backend = EmbeddedBackend::open(&path).unwrap();
        backend.apply(&[Op::PutQueue { queue: 5, record: b"q".to_vec() }, message(5, 1), message(5, 2)]).unwrap();
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
