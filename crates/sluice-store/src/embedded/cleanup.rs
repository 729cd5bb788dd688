//! Doomed ranges: a purge or a queue deletion writes only a `doomed` record; readers leave the
//! records out from the moment it is logged, and the applier removes them [`CLEANUP_CHUNK`] per
//! transaction (one huge transaction held every write on every queue back).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::MutexGuard;

use redb::{Durability, ReadableTable, Table};

use super::tables::{BODY, DOOMED, KV, META, QUEUE_DELETED};
use super::{io, Shared};
use crate::{Op, QueueId, Seq, StoreError};

/// Records of a purge or a deleted queue removed per redb transaction. Removing a million in one
/// transaction took 1.2 s, and the writer waits for the applier, so every send on every queue waited
/// as long; a chunk takes a few milliseconds.
pub const CLEANUP_CHUNK: usize = 4096;

impl Shared {
    pub(super) fn doomed(&self) -> MutexGuard<'_, HashMap<QueueId, Seq>> {
        // Only inserts and removes happen under this lock.
        self.doomed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hides from readers, from now on, the messages `ops` purge and the queues they delete.
    pub(super) fn note_doomed(&self, ops: &[Op]) {
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

    /// One chunk of [`Shared::clean_up_chunk`]; false (stop the applier) if it failed.
    pub(super) fn clean_up(&self, cleaning: &mut bool) -> bool {
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
}

type MessageTable<'t> = Table<'t, (u64, u64), &'static [u8]>;

/// Removes up to [`CLEANUP_CHUNK`] records of `queue` with seq up to `last`; true if none is left.
fn remove_some(table: &mut MessageTable, queue: QueueId, last: Seq) -> Result<bool, StoreError> {
    let beyond_chunk =
        table.range((queue, 0)..=(queue, last)).map_err(io)?.nth(CLEANUP_CHUNK).transpose().map_err(io)?;
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
