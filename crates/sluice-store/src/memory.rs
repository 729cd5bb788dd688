//! An in-memory [`Backend`]: the reference implementation of the trait's semantics, used by engine
//! tests and by `--data-dir :memory:`. Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{Backend, Op, QueueId, Seq, StoreError};

/// Keeps everything in ordered maps behind one mutex; correctness over speed.
#[derive(Default)]
pub struct MemoryBackend {
    inner: Mutex<Tables>,
}

#[derive(Default)]
struct Tables {
    queues: BTreeMap<QueueId, Vec<u8>>,
    meta: BTreeMap<(QueueId, Seq), Vec<u8>>,
    body: BTreeMap<(QueueId, Seq), Vec<u8>>,
    kv: BTreeMap<(QueueId, Vec<u8>), Vec<u8>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn remove_range(map: &mut BTreeMap<(QueueId, Seq), Vec<u8>>, queue: QueueId, below: Seq) {
    let keys: Vec<_> = map.range((queue, 0)..(queue, below)).map(|(k, _)| *k).collect();
    for k in keys {
        map.remove(&k);
    }
}

impl Backend for MemoryBackend {
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let mut t = self.inner.lock().map_err(|_| StoreError::Io("poisoned lock".into()))?;
        for op in ops {
            match op {
                Op::PutQueue { queue, record } => {
                    t.queues.insert(queue, record);
                }
                Op::DeleteQueue { queue } => {
                    t.queues.remove(&queue);
                    remove_range(&mut t.meta, queue, Seq::MAX);
                    remove_range(&mut t.body, queue, Seq::MAX);
                    t.kv.retain(|(q, _), _| *q != queue);
                }
                Op::PutKv { queue, key, value } => {
                    t.kv.insert((queue, key.clone()), value.clone());
                }
                Op::DeleteKv { queue, key } => {
                    t.kv.remove(&(queue, key));
                }
                Op::PutMessage { queue, seq, meta, body } => {
                    t.meta.insert((queue, seq), meta);
                    t.body.insert((queue, seq), body);
                }
                Op::PutMeta { queue, seq, meta } => {
                    // Metadata of a message deleted meanwhile must not resurrect it.
                    if let Some(m) = t.meta.get_mut(&(queue, seq)) {
                        *m = meta;
                    }
                }
                Op::DeleteMessage { queue, seq } => {
                    t.meta.remove(&(queue, seq));
                    t.body.remove(&(queue, seq));
                }
                Op::PurgeMessages { queue, below } => {
                    remove_range(&mut t.meta, queue, below);
                    remove_range(&mut t.body, queue, below);
                }
            }
        }
        Ok(())
    }

    fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.inner.lock().map_err(|_| StoreError::Io("poisoned lock".into()))?;
        Ok(t.body.get(&(queue, seq)).cloned())
    }

    fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> Result<(), StoreError> {
        let t = self.inner.lock().map_err(|_| StoreError::Io("poisoned lock".into()))?;
        for (q, r) in &t.queues {
            visit(*q, r);
        }
        Ok(())
    }

    fn scan_meta(&self, visit: &mut dyn FnMut(QueueId, Seq, &[u8])) -> Result<(), StoreError> {
        let t = self.tables()?;
        for ((q, s), m) in &t.meta {
            visit(*q, *s, m);
        }
        Ok(())
    }

    fn scan_kv(&self, visit: &mut dyn FnMut(QueueId, &[u8], &[u8])) -> Result<(), StoreError> {
        let t = self.tables()?;
        for ((q, k), v) in &t.kv {
            visit(*q, k, v);
        }
        Ok(())
    }
}

impl MemoryBackend {
    fn tables(&self) -> Result<std::sync::MutexGuard<'_, Tables>, StoreError> {
        self.inner.lock().map_err(|_| StoreError::Io("poisoned lock".into()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_backend_passes_conformance() {
        crate::conformance::run_all(&|| Box::new(super::MemoryBackend::new()) as Box<dyn crate::Backend>, false);
    }
}
