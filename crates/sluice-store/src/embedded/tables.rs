//! The redb tables and what an op does to them: the table definitions, the format number the
//! store file records, and [`apply_ops`], the one place ops become table writes (the applier's
//! layers, the checkpoints and the replay at open all go through it).

use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::io;
use crate::{Op, Seq, StoreError};

pub(super) const QUEUES: TableDefinition<u64, &[u8]> = TableDefinition::new("queues");
pub(super) const META: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("meta");
pub(super) const BODY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("body");
pub(super) const KV: TableDefinition<(u64, &[u8]), &[u8]> = TableDefinition::new("kv");
/// Queue → every message below this seq is gone ([`QUEUE_DELETED`]: the whole queue and its key/value
/// records). The applier removes such records a chunk at a time; readers never see them meanwhile.
pub(super) const DOOMED: TableDefinition<u64, u64> = TableDefinition::new("doomed");

/// Facts about the files themselves: `format` → [`FORMAT`].
pub(super) const INFO: TableDefinition<&str, u64> = TableDefinition::new("info");

/// The on-disk format, raised whenever an older sluice would misread the files: 2 added the second
/// log file (an older binary replays only one), 3 the `doomed` table (an older binary shows purged
/// messages again). A store written in a newer format is refused instead of half read.
pub const FORMAT: u64 = 3;

/// The `DOOMED` bound of a deleted queue: everything of it goes.
pub(super) const QUEUE_DELETED: Seq = Seq::MAX;

/// Applies `ops` inside `tx`.
pub(super) fn apply_ops<'a>(tx: &WriteTransaction, ops: impl IntoIterator<Item = &'a Op>) -> Result<(), StoreError> {
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
