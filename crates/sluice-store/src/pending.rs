//! Changes that are durable in the write-ahead log but not yet applied to redb.
//!
//! Applying every group commit to redb as its own transaction made the redb work, not the disk, the
//! cost of a small commit (opening four tables, copy-on-write of the touched pages, writing them
//! out). The embedded backend therefore appends each group's ops here and applies many groups at
//! once ([`Pending::effective_ops`], applied by the applier thread) every few thousand ops or milliseconds. On the way, a message
//! that was sent and deleted inside one window — the common case for a queue that keeps up — never
//! touches redb at all.
//!
//! Readers see these changes through [`Pending::body`]; ordered scans (recovery, startup of the
//! topics layer) flush first, so only point reads of bodies need to look here.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::{Op, QueueId, Seq};

/// Ops in commit order plus an index of the bodies they carry.
#[derive(Default)]
pub struct Pending {
    ops: Vec<Op>,
    /// (queue, seq) → index in `ops` of the message's PutMessage.
    bodies: HashMap<(QueueId, Seq), usize>,
    /// Messages deleted by an op in `ops` (to cancel their PutMessage when both are here).
    deleted: HashSet<(QueueId, Seq)>,
    bytes: usize,
    /// When the first op arrived.
    since: Option<Instant>,
    /// Holds a purge or a queue deletion (whose records the applier then removes).
    dooms: bool,
}

impl Pending {
    /// Appends one group's ops (already durable in the log).
    pub fn extend(&mut self, ops: Vec<Op>) {
        self.since.get_or_insert_with(Instant::now);
        for op in ops {
            match &op {
                Op::PutMessage { queue, seq, meta, body } => {
                    self.bodies.insert((*queue, *seq), self.ops.len());
                    self.bytes += meta.len() + body.len();
                }
                Op::DeleteMessage { queue, seq } => {
                    self.deleted.insert((*queue, *seq));
                }
                Op::PutMeta { meta, .. } => self.bytes += meta.len(),
                Op::PutKv { key, value, .. } => self.bytes += key.len() + value.len(),
                Op::PutQueue { record, .. } => self.bytes += record.len(),
                Op::DeleteQueue { .. } | Op::PurgeMessages { .. } => self.dooms = true,
                Op::DeleteKv { .. } => {}
            }
            self.bytes += 32;
            self.ops.push(op);
        }
    }

    /// The body of a message sent by a pending op, if any.
    pub fn body(&self, queue: QueueId, seq: Seq) -> Option<&[u8]> {
        match self.ops.get(*self.bodies.get(&(queue, seq))?) {
            Some(Op::PutMessage { body, .. }) => Some(body),
            _ => None,
        }
    }

    /// Whether a purge or a queue deletion is among the ops.
    pub fn dooms_records(&self) -> bool {
        self.dooms
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Approximate heap bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// How long the oldest op has waited.
    pub fn age(&self) -> std::time::Duration {
        self.since.map_or(std::time::Duration::ZERO, |t| t.elapsed())
    }

    /// The ops to apply to redb, in order, leaving out messages both sent and deleted here (and
    /// their metadata updates): sequence numbers are never reused, so such a message has no
    /// effect on the final state. Everything else keeps its order, so purges, queue deletions and
    /// the "PutMeta never resurrects" rule behave exactly as if each group had been applied alone.
    pub fn effective_ops(&self) -> impl Iterator<Item = &Op> {
        let cancelled = |queue: &QueueId, seq: &Seq| {
            let key = (*queue, *seq);
            self.deleted.contains(&key) && self.bodies.contains_key(&key)
        };
        self.ops.iter().filter(move |op| match op {
            Op::PutMessage { queue, seq, .. } | Op::PutMeta { queue, seq, .. } | Op::DeleteMessage { queue, seq } => {
                !cancelled(queue, seq)
            }
            _ => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(seq: Seq) -> Op {
        Op::PutMessage { queue: 1, seq, meta: vec![1], body: format!("b{seq}").into_bytes() }
    }

    #[test]
    fn a_message_sent_and_deleted_while_pending_leaves_no_op() {
        let mut p = Pending::default();
        p.extend(vec![put(1), put(2), Op::PutMeta { queue: 1, seq: 1, meta: vec![2] }]);
        p.extend(vec![Op::DeleteMessage { queue: 1, seq: 1 }, Op::DeleteMessage { queue: 1, seq: 7 }]);
        assert_eq!(p.body(1, 2), Some(&b"b2"[..]));
        assert_eq!(p.body(1, 1), Some(&b"b1"[..]), "readable until applied; the engine no longer asks");
        assert_eq!(p.body(2, 2), None);
        let ops: Vec<&Op> = p.effective_ops().collect();
        // seq 1 vanished entirely; seq 2's put and the delete of seq 7 (which lives in redb) remain.
        assert_eq!(ops, vec![&put(2), &Op::DeleteMessage { queue: 1, seq: 7 }]);
        assert_eq!(p.len(), 5);
    }

    #[test]
    fn structural_ops_keep_their_place() {
        let mut p = Pending::default();
        p.extend(vec![put(1), Op::PurgeMessages { queue: 1, below: 2 }, put(2), Op::DeleteQueue { queue: 3 }]);
        let ops: Vec<&Op> = p.effective_ops().collect();
        assert_eq!(ops.len(), 4);
        assert!(matches!(ops[1], Op::PurgeMessages { below: 2, .. }));
    }
}
