//! The default backend: [redb](https://docs.rs/redb), an embedded, pure-Rust, copy-on-write B-tree
//! in one file. Chosen by the measured spike in `docs/STORE_SPIKE.md` (fast recovery because there is
//! no log to replay, steady under CPU contention, two crates to build).
//!
//! Tables:
//! - `queues`: queue id → queue record;
//! - `meta`: (queue id, seq) → message metadata (scanned at startup);
//! - `body`: (queue id, seq) → message body record (read on receive).
//!
//! Every `apply` is one write transaction committed with `Durability::Immediate` (fsync). Readers
//! (body reads, recovery scans) use MVCC read transactions and never wait for the writer.

use std::path::Path;

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::{Backend, Op, QueueId, Seq, StoreError};

const QUEUES: TableDefinition<u64, &[u8]> = TableDefinition::new("queues");
const META: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("meta");
const BODY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("body");
const KV: TableDefinition<(u64, &[u8]), &[u8]> = TableDefinition::new("kv");

/// Page cache redb may use; bodies read on receive are mostly recent, so a modest cache suffices.
const CACHE_BYTES: usize = 64 << 20;

/// redb-backed storage in one file.
pub struct EmbeddedBackend {
    db: Database,
}

fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Io(e.to_string())
}

impl EmbeddedBackend {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path).map_err(io)?;
        let tx = db.begin_write().map_err(io)?;
        tx.open_table(QUEUES).map_err(io)?;
        tx.open_table(META).map_err(io)?;
        tx.open_table(BODY).map_err(io)?;
        tx.open_table(KV).map_err(io)?;
        tx.commit().map_err(io)?;
        Ok(EmbeddedBackend { db })
    }
}

type MessageTable<'t> = Table<'t, (u64, u64), &'static [u8]>;

fn remove_range(meta: &mut MessageTable, body: &mut MessageTable, queue: QueueId, below: Seq) -> Result<(), StoreError> {
    meta.retain_in((queue, 0)..(queue, below), |_, _| false).map_err(io)?;
    body.retain_in((queue, 0)..(queue, below), |_, _| false).map_err(io)?;
    Ok(())
}

impl Backend for EmbeddedBackend {
    fn apply(&self, ops: &[Op]) -> Result<(), StoreError> {
        let mut tx = self.db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
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
        tx.commit().map_err(io)?;
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
}
