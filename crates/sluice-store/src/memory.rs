//! An in-memory [`Backend`]: the reference implementation of the trait's semantics, used by engine
//! tests and by `--data-dir :memory:`. Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::{Backend, KvVisitor, Op, QueueId, Seq, StoreError};

/// Keeps everything in ordered maps behind one mutex, one set of maps per queue: a purge splits
/// the queue's maps and a queue deletion takes its set out, and what they remove is freed after
/// the lock is released (with `:memory:` commits run on request threads, a purge of a million
/// messages removed one by one held every commit and body read back).
#[derive(Default)]
pub struct MemoryBackend {
    inner: Mutex<BTreeMap<QueueId, QueueTables>>,
}

/// One queue's records. A queue may have messages or key/value records before its record is put
/// (the trait does not order them), so `record` is optional.
#[derive(Default)]
struct QueueTables {
    record: Option<Vec<u8>>,
    meta: BTreeMap<Seq, Vec<u8>>,
    body: BTreeMap<Seq, Vec<u8>>,
    kv: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> Result<MutexGuard<'_, BTreeMap<QueueId, QueueTables>>, StoreError> {
        self.inner.lock().map_err(|_| StoreError::Io("poisoned lock".into()))
    }
}

/// Records an apply removed in bulk, dropped once the lock is released.
#[derive(Default)]
struct Removed {
    queues: Vec<QueueTables>,
    ranges: Vec<BTreeMap<Seq, Vec<u8>>>,
}

/// Takes the entries of `map` below `below` out of it.
fn split_below(map: &mut BTreeMap<Seq, Vec<u8>>, below: Seq) -> BTreeMap<Seq, Vec<u8>> {
    let kept = map.split_off(&below);
    std::mem::replace(map, kept)
}

impl Backend for MemoryBackend {
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let mut removed = Removed::default();
        let mut t = self.tables()?;
        for op in ops {
            match op {
                Op::PutQueue { queue, record } => {
                    t.entry(queue).or_default().record = Some(record);
                }
                Op::DeleteQueue { queue } => {
                    removed.queues.extend(t.remove(&queue));
                }
                Op::PutKv { queue, key, value } => {
                    t.entry(queue).or_default().kv.insert(key, value);
                }
                Op::DeleteKv { queue, key } => {
                    if let Some(q) = t.get_mut(&queue) {
                        q.kv.remove(&key);
                    }
                }
                Op::PutMessage { queue, seq, meta, body } => {
                    let q = t.entry(queue).or_default();
                    q.meta.insert(seq, meta);
                    q.body.insert(seq, body);
                }
                Op::PutMeta { queue, seq, meta } => {
                    // Metadata of a message deleted meanwhile must not resurrect it.
                    if let Some(m) = t.get_mut(&queue).and_then(|q| q.meta.get_mut(&seq)) {
                        *m = meta;
                    }
                }
                Op::DeleteMessage { queue, seq } => {
                    if let Some(q) = t.get_mut(&queue) {
                        q.meta.remove(&seq);
                        q.body.remove(&seq);
                    }
                }
                Op::PurgeMessages { queue, below } => {
                    if let Some(q) = t.get_mut(&queue) {
                        removed.ranges.push(split_below(&mut q.meta, below));
                        removed.ranges.push(split_below(&mut q.body, below));
                    }
                }
            }
        }
        drop(t);
        if !removed.queues.is_empty() || !removed.ranges.is_empty() {
            // Freeing a million records takes ~170 ms; not on the request's thread.
            let freeing = std::thread::Builder::new().name("sluice-memory-free".into());
            if let Err(e) = freeing.spawn(move || drop(removed)) {
                tracing::debug!(error = %e, "freeing removed records inline");
            }
        }
        Ok(())
    }

    fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_bodies(queue, &[seq])?.pop().flatten())
    }

    fn get_bodies(&self, queue: QueueId, seqs: &[Seq]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let t = self.tables()?;
        let q = t.get(&queue);
        Ok(seqs.iter().map(|seq| q.and_then(|q| q.body.get(seq)).cloned()).collect())
    }

    fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> Result<(), StoreError> {
        let t = self.tables()?;
        for (queue, q) in t.iter() {
            if let Some(record) = &q.record {
                visit(*queue, record);
            }
        }
        Ok(())
    }

    fn scan_meta(&self, visit: &mut dyn FnMut(QueueId, Seq, &[u8])) -> Result<(), StoreError> {
        let t = self.tables()?;
        for (queue, q) in t.iter() {
            for (seq, meta) in &q.meta {
                visit(*queue, *seq, meta);
            }
        }
        Ok(())
    }

    fn scan_kv(&self, visit: &mut KvVisitor<'_>) -> Result<(), StoreError> {
        let t = self.tables()?;
        for (queue, q) in t.iter() {
            for (key, value) in &q.kv {
                visit(*queue, key, value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_backend_passes_conformance() {
        crate::conformance::run_all(&|| Box::new(super::MemoryBackend::new()) as Box<dyn crate::Backend>, false);
    }
}
