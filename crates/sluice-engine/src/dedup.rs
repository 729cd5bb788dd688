//! The FIFO de-duplication window: every MessageDeduplicationId a FIFO queue accepted in the last
//! five minutes ([`DEDUP_WINDOW_MS`]), so that a duplicate send answers with the original's MessageId
//! and SequenceNumber instead of being enqueued again.
//!
//! # Memory
//! At thousands of sends per second the window holds millions of entries, so it is kept compact:
//! - entries (key, message id, seq, expiry: 48 bytes) sit in a ring of fixed-size chunks in send
//!   order, which is seq order and expiry order: pruning pops from the front, a message's entry is
//!   found by its seq (see `Ring::find_seq`), and a large window costs its entries plus at most one
//!   chunk at each end (no power-of-two doubling of one huge buffer);
//! - a `hashbrown::HashTable<u32>` of ring positions finds an entry by key (5 bytes per bucket). Keys
//!   are digests, uniformly random already, so the hash is simply their first 8 bytes.
//!
//! About 57 bytes per entry in all at 10M entries (48, plus 5 per bucket at 16.8M buckets, plus
//! flags), against ~110 for a `HashMap` of entries plus a `VecDeque` of (expiry, key).
//!
//! # Persistence
//! A queued message's entry is fully described by its meta record: version 4 of the meta carries the
//! digest, and message id, seq and expiry (`sent_ms` + window: a send sets both from the same clock
//! reading) are there anyway. So a send writes no record of its own. A kv record
//! (`record::KV_DEDUP` + key → [`DedupEntry::encode`]) is written only when a message leaves the queue while
//! its window is open ([`DedupWindow::depart`]: deleted, dead-lettered, moved, expired), in the same
//! commit as the removal, and is deleted when that window ends ([`DedupWindow::prune`]) or when a
//! purge forgets the history. Recovery rebuilds the window from both kinds of record
//! ([`DedupWindow::recover`], then [`DedupWindow::finish_recovery`]). Data directories written
//! before version 4 hold a kv record per send: those load as entries that have their record already.

use std::collections::VecDeque;

use hashbrown::HashTable;
use sluice_store::Seq;

/// How long a FIFO de-duplication id and a ReceiveRequestAttemptId are remembered.
pub const DEDUP_WINDOW_MS: u64 = 5 * 60 * 1000;

/// A FIFO de-duplication key (scope-qualified MessageDeduplicationId) as the first 128 bits of its
/// SHA-256: 16 bytes instead of a heap string, stable across restarts (it is also the kv key and is
/// stored in the meta record), and a collision — which would drop a message as a duplicate — is as
/// likely as guessing a random 128-bit value.
pub type DedupKey = [u8; 16];

/// The [`DedupKey`] of a scope-qualified de-duplication id.
pub fn dedup_key(id: &str) -> DedupKey {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(id.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// A remembered FIFO de-duplication id: what a duplicate send answers, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupEntry {
    pub message_id: [u8; 16],
    pub seq: Seq,
    pub expires_ms: u64,
}

impl DedupEntry {
    /// The kv record's value (unchanged since before meta version 4, so old data directories load).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32);
        b.extend_from_slice(&self.message_id);
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.expires_ms.to_be_bytes());
        b
    }
    pub fn decode(b: &[u8]) -> Option<DedupEntry> {
        if b.len() != 32 {
            return None;
        }
        let mut message_id = [0u8; 16];
        message_id.copy_from_slice(&b[..16]);
        Some(DedupEntry {
            message_id,
            seq: u64::from_be_bytes(b[16..24].try_into().ok()?),
            expires_ms: u64::from_be_bytes(b[24..32].try_into().ok()?),
        })
    }
}

/// Entries per chunk (12 KiB of entries): small enough that a quiet FIFO queue's window costs
/// little, large enough that per-chunk overhead (32 bytes of flags, the chunk list) stays below a
/// byte per entry. A power of two, so a chunk growing by doubling ends exactly full.
const CHUNK: usize = 256;

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: DedupKey,
    entry: DedupEntry,
}

struct Chunk {
    slots: Vec<Slot>,
    /// Bit `i`: a kv record holding slot `i`'s entry exists (or is queued for the next commit).
    persisted: [u64; CHUNK / 64],
}

/// Entries in seq order. A position is a `u32` counter that wraps: positions stay distinct while
/// fewer than 2^32 entries are live, and the table stores 4 bytes per entry instead of 8.
#[derive(Default)]
struct Ring {
    chunks: VecDeque<Chunk>,
    /// Position of `chunks[0].slots[0]`.
    base: u32,
    /// Slots of `chunks[0]` already popped (only the front chunk is ever partly popped).
    head: usize,
}

impl Ring {
    fn len(&self) -> usize {
        match self.chunks.back() {
            None => 0,
            // Every chunk but the last is full.
            Some(last) => (self.chunks.len() - 1) * CHUNK + last.slots.len() - self.head,
        }
    }

    /// Live positions, front to back.
    #[cfg(test)]
    fn positions(&self) -> impl Iterator<Item = u32> + '_ {
        (self.head..self.head + self.len()).map(|off| self.base.wrapping_add(off as u32))
    }

    fn locate(&self, pos: u32) -> (usize, usize) {
        let off = pos.wrapping_sub(self.base) as usize;
        (off / CHUNK, off % CHUNK)
    }

    fn slot(&self, pos: u32) -> &Slot {
        let (c, i) = self.locate(pos);
        &self.chunks[c].slots[i]
    }

    fn persisted(&self, pos: u32) -> bool {
        let (c, i) = self.locate(pos);
        self.chunks[c].persisted[i / 64] & (1 << (i % 64)) != 0
    }

    fn set_persisted(&mut self, pos: u32, on: bool) {
        let (c, i) = self.locate(pos);
        let word = &mut self.chunks[c].persisted[i / 64];
        if on {
            *word |= 1 << (i % 64);
        } else {
            *word &= !(1 << (i % 64));
        }
    }

    fn last_seq(&self) -> Option<Seq> {
        self.chunks.back().and_then(|c| c.slots.last()).map(|s| s.entry.seq)
    }

    fn push(&mut self, slot: Slot, persisted: bool) -> u32 {
        if self.chunks.back().is_none_or(|c| c.slots.len() == CHUNK) {
            // A small window's chunk grows as needed (most FIFO queues hold a few entries); a large
            // window's are allocated whole.
            let slots = if self.len() >= CHUNK { Vec::with_capacity(CHUNK) } else { Vec::new() };
            self.chunks.push_back(Chunk { slots, persisted: [0; CHUNK / 64] });
        }
        let c = self.chunks.len() - 1;
        let i = self.chunks[c].slots.len();
        self.chunks[c].slots.push(slot);
        let pos = self.base.wrapping_add((c * CHUNK + i) as u32);
        if persisted {
            self.set_persisted(pos, true);
        }
        pos
    }

    fn front(&self) -> Option<u32> {
        (self.len() > 0).then(|| self.base.wrapping_add(self.head as u32))
    }

    fn pop_front(&mut self) {
        let Some(first) = self.chunks.front() else { return };
        self.head += 1;
        if self.head == first.slots.len() {
            // Full, or the last chunk and now empty: free it.
            self.chunks.pop_front();
            self.base = self.base.wrapping_add(self.head as u32);
            self.head = 0;
        }
    }

    /// The `i`-th live slot (0: the front; `i < len`) and its position.
    fn at(&self, i: usize) -> (u32, &Slot) {
        let off = self.head + i;
        (self.base.wrapping_add(off as u32), &self.chunks[off / CHUNK].slots[off % CHUNK])
    }

    /// The position of the entry of `seq`. Seqs in the ring are strictly increasing, so that entry
    /// is at most `seq - first` slots behind the front and at most `last - seq` ahead of the back;
    /// and they are mostly consecutive (one per send), so one of those bounds is usually the slot
    /// itself. Otherwise a binary search between the two.
    fn find_seq(&self, seq: Seq) -> Option<u32> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let (first, last) = (self.at(0).1.entry.seq, self.at(len - 1).1.entry.seq);
        if seq < first || seq > last {
            return None;
        }
        let hi = usize::try_from(seq - first).map_or(len - 1, |d| d.min(len - 1));
        let lo = usize::try_from(last - seq).map_or(0, |d| (len - 1).saturating_sub(d));
        for i in [hi, lo] {
            let (pos, slot) = self.at(i);
            if slot.entry.seq == seq {
                return Some(pos);
            }
        }
        let (mut a, mut b) = (lo, hi + 1);
        while a < b {
            let m = a + (b - a) / 2;
            let (pos, slot) = self.at(m);
            match slot.entry.seq.cmp(&seq) {
                std::cmp::Ordering::Less => a = m + 1,
                std::cmp::Ordering::Greater => b = m,
                std::cmp::Ordering::Equal => return Some(pos),
            }
        }
        None
    }

    /// Recovery: appends in seq order, folding an entry with the seq of the last one into it, so
    /// seqs stay strictly increasing. Pushes keys whose kv record must go onto `stale`.
    fn push_merged(&mut self, slot: Slot, persisted: bool, stale: &mut Vec<DedupKey>) {
        let len = self.len();
        if len > 0 {
            let (pos, last) = self.at(len - 1);
            let last = *last;
            if last.entry.seq == slot.entry.seq {
                let last_persisted = self.persisted(pos);
                if last.key == slot.key {
                    // One message's meta record and its kv record (written before version 4).
                    self.set_persisted(pos, last_persisted || persisted);
                } else if last_persisted && !persisted {
                    // A seq reused (the clock went back): the queued message (no record) wins.
                    let (c, i) = self.locate(pos);
                    self.chunks[c].slots[i] = slot;
                    self.set_persisted(pos, false);
                    stale.push(last.key);
                } else if persisted {
                    stale.push(slot.key);
                }
                return;
            }
        }
        self.push(slot, persisted);
    }
}

/// The table's hash of a key: its first 8 bytes (a digest is uniformly random already).
fn hash(key: &DedupKey) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&key[..8]);
    u64::from_le_bytes(b)
}

/// One FIFO queue's de-duplication window (see the module doc).
#[derive(Default)]
pub struct DedupWindow {
    ring: Ring,
    /// Ring positions of the current entry of each key.
    table: HashTable<u32>,
    /// Recovery only: entries that arrived out of seq order, merged in by `finish_recovery`.
    unsorted: Vec<(Slot, bool)>,
}

impl DedupWindow {
    /// Entries (live or expired but not pruned yet).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The seq of the newest entry.
    pub fn last_seq(&self) -> Option<Seq> {
        self.ring.last_seq()
    }

    fn find(&self, key: &DedupKey) -> Option<u32> {
        self.table.find(hash(key), |&p| self.ring.slot(p).key == *key).copied()
    }

    /// Whether the table points at `pos` (a slot whose key was sent again after its window ended is
    /// no longer current).
    fn is_current(&self, pos: u32) -> bool {
        self.table.find(hash(&self.ring.slot(pos).key), |&p| p == pos).is_some()
    }

    /// Removes `key` from the table; returns the position it had.
    fn unlink(&mut self, key: &DedupKey) -> Option<u32> {
        let ring = &self.ring;
        match self.table.find_entry(hash(key), |&p| ring.slot(p).key == *key) {
            Ok(e) => Some(e.remove().0),
            Err(_) => None,
        }
    }

    /// The entry of `key` if its window is still open at `now`.
    pub fn get(&self, key: &DedupKey, now: u64) -> Option<DedupEntry> {
        let pos = self.find(key)?;
        Some(self.ring.slot(pos).entry).filter(|e| e.expires_ms > now)
    }

    /// Records the entry of a message just sent (after [`get`](Self::get) found no open entry).
    /// Entries must come in seq order. If the key still has an older, ended entry that has a kv
    /// record, returns the key: the caller deletes that record (in the same commit as the send).
    pub fn insert(&mut self, key: DedupKey, entry: DedupEntry) -> Option<DedupKey> {
        debug_assert!(self.ring.last_seq().is_none_or(|s| s < entry.seq), "window entries must come in seq order");
        let stale = self.unlink(&key).filter(|&old| self.ring.persisted(old)).map(|old| {
            self.ring.set_persisted(old, false);
            key
        });
        let pos = self.ring.push(Slot { key, entry }, false);
        let ring = &self.ring;
        self.table.insert_unique(hash(&key), pos, |&p| hash(&ring.slot(p).key));
        stale
    }

    /// Takes back the entry of a send whose commit failed (the message was never acknowledged),
    /// so that a retry is stored instead of answered as a duplicate of nothing. Its slot stays in
    /// the ring, no longer current, until pruned.
    pub fn withdraw(&mut self, key: &DedupKey, seq: Seq) {
        if self.find(key).is_some_and(|pos| self.ring.slot(pos).entry.seq == seq) {
            self.unlink(key);
        }
    }

    /// Drops the entries whose window ended by `now`; returns the keys of those that have a kv
    /// record (the caller deletes the records).
    pub fn prune(&mut self, now: u64) -> Vec<DedupKey> {
        let mut gone = Vec::new();
        while let Some(pos) = self.ring.front() {
            let slot = *self.ring.slot(pos);
            if slot.entry.expires_ms > now {
                break;
            }
            let persisted = self.ring.persisted(pos);
            // A slot that is no longer current was superseded by a newer entry of its key, which
            // took over (or deleted) its record.
            if let Ok(e) = self.table.find_entry(hash(&slot.key), |&p| p == pos) {
                e.remove();
                if persisted {
                    gone.push(slot.key);
                }
            }
            self.ring.pop_front();
        }
        // A burst's table would otherwise keep its size for good.
        if self.table.capacity() >= 4096 && self.table.len() < self.table.capacity() / 4 {
            let ring = &self.ring;
            self.table.shrink_to(self.table.len() * 2, |&p| hash(&ring.slot(p).key));
        }
        gone
    }

    /// A message left the queue (deleted, dead-lettered, moved, expired). If its entry's window is
    /// still open and has no kv record yet, marks it persisted and returns the record to write (in
    /// the same commit as the removal), so the window survives a restart without the message.
    pub fn depart(&mut self, seq: Seq, now: u64) -> Option<(DedupKey, DedupEntry)> {
        if self.table.is_empty() {
            return None;
        }
        let pos = self.ring.find_seq(seq)?;
        let slot = *self.ring.slot(pos);
        if slot.entry.expires_ms <= now || self.ring.persisted(pos) || !self.is_current(pos) {
            return None;
        }
        self.ring.set_persisted(pos, true);
        Some((slot.key, slot.entry))
    }

    /// The key of a queued message's entry, for its rewritten meta record (which must keep it).
    pub fn key_of(&self, seq: Seq) -> Option<DedupKey> {
        if self.table.is_empty() {
            return None;
        }
        let pos = self.ring.find_seq(seq)?;
        self.is_current(pos).then(|| self.ring.slot(pos).key)
    }

    /// Forgets every entry (purge, queue deletion); returns the keys that have kv records.
    pub fn forget_all(&mut self) -> Vec<DedupKey> {
        let keys = self.table.iter().filter(|&&p| self.ring.persisted(p)).map(|&p| self.ring.slot(p).key).collect();
        *self = DedupWindow::default();
        keys
    }

    /// Recovery: an entry found in a meta record (`persisted` false) or in a kv record (true), in
    /// any order. Call [`finish_recovery`](Self::finish_recovery) once all are in.
    pub fn recover(&mut self, key: DedupKey, entry: DedupEntry, persisted: bool) {
        let slot = Slot { key, entry };
        // Metas come in seq order and go straight to the ring; kv records (key order) mostly wait.
        if self.ring.last_seq().is_none_or(|s| s < entry.seq) {
            self.ring.push(slot, persisted);
        } else {
            self.unsorted.push((slot, persisted));
        }
    }

    /// Recovery: merges the out-of-order entries into the ring and builds the table once, at its
    /// final size. Returns keys whose kv record holds an entry superseded by a newer one of the same
    /// key (the caller deletes those records).
    pub fn finish_recovery(&mut self) -> Vec<DedupKey> {
        let mut stale = Vec::new();
        let mut late = std::mem::take(&mut self.unsorted);
        if !late.is_empty() {
            // Merge into a new ring; the old one's chunks are freed as they are consumed.
            late.sort_unstable_by_key(|(s, _)| s.entry.seq);
            let mut old = std::mem::take(&mut self.ring);
            let mut late = late.into_iter().peekable();
            loop {
                let front = old.front().map(|p| (*old.slot(p), old.persisted(p)));
                match (front, late.peek().copied()) {
                    (Some((a, ap)), Some((b, _))) if a.entry.seq <= b.entry.seq => {
                        self.ring.push_merged(a, ap, &mut stale);
                        old.pop_front();
                    }
                    (Some((a, ap)), None) => {
                        self.ring.push_merged(a, ap, &mut stale);
                        old.pop_front();
                    }
                    (_, Some((b, bp))) => {
                        self.ring.push_merged(b, bp, &mut stale);
                        late.next();
                    }
                    (None, None) => break,
                }
            }
        }
        self.table = HashTable::with_capacity(self.ring.len());
        let (head, len, base) = (self.ring.head, self.ring.len(), self.ring.base);
        for off in head..head + len {
            let pos = base.wrapping_add(off as u32);
            let key = self.ring.slot(pos).key;
            // A key twice (both windows open: only after the clock went back): the later one wins.
            if let Some(old) = self.unlink(&key) {
                if self.ring.persisted(old) && !self.ring.persisted(pos) {
                    stale.push(key);
                }
                self.ring.set_persisted(old, false);
            }
            let ring = &self.ring;
            self.table.insert_unique(hash(&key), pos, |&p| hash(&ring.slot(p).key));
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: Seq, expires_ms: u64) -> DedupEntry {
        DedupEntry { message_id: [seq as u8; 16], seq, expires_ms }
    }

    fn key(i: u64) -> DedupKey {
        dedup_key(&format!("k{i}"))
    }

    #[test]
    fn entries_expire_and_round_trip() {
        let mut w = DedupWindow::default();
        let e = entry(5, 100);
        let k = dedup_key("k");
        assert_eq!(w.insert(k, e), None);
        assert_eq!(w.get(&k, 99), Some(e));
        assert_eq!(w.get(&dedup_key("other"), 99), None);
        assert_eq!(w.get(&k, 100), None);
        // Never persisted: nothing to delete in the store.
        assert_eq!(w.prune(100), Vec::<DedupKey>::new());
        assert!(w.is_empty());
        assert_eq!(DedupEntry::decode(&e.encode()), Some(e));
    }

    #[test]
    fn departures_persist_once_and_prune_deletes_only_persisted() {
        let mut w = DedupWindow::default();
        for i in 0..3000 {
            w.insert(key(i), entry(10 + i, 1000 + i));
        }
        assert_eq!(w.key_of(10 + 7), Some(key(7)));
        assert_eq!(w.key_of(9), None);
        assert_eq!(w.depart(10 + 7, 0), Some((key(7), entry(17, 1007))));
        assert_eq!(w.depart(10 + 7, 0), None, "already persisted");
        assert_eq!(w.depart(10 + 2500, 0), Some((key(2500), entry(2510, 3500))));
        assert_eq!(w.depart(5, 0), None, "no entry");
        assert_eq!(w.depart(10 + 20, 1020), None, "window over");
        assert_eq!(w.prune(1006), Vec::<DedupKey>::new());
        assert_eq!(w.len(), 3000 - 7);
        assert_eq!(w.prune(1007), vec![key(7)]);
        assert_eq!(w.prune(3499), Vec::<DedupKey>::new());
        assert_eq!(w.get(&key(2500), 3499).map(|e| e.seq), Some(2510));
        assert_eq!(w.depart(10 + 2999, 0), Some((key(2999), entry(3009, 3999))));
        let mut forgotten = w.forget_all();
        forgotten.sort();
        let mut want = vec![key(2500), key(2999)];
        want.sort();
        assert_eq!(forgotten, want, "purge deletes the records that exist");
        assert!(w.is_empty() && w.get(&key(2998), 0).is_none());
    }

    /// A key sent again after its window ended (but before it was pruned): the new entry replaces
    /// it, and the old entry's record is deleted by the send rather than later by the prune.
    #[test]
    fn a_key_sent_again_supersedes_its_ended_entry() {
        let mut w = DedupWindow::default();
        w.insert(key(1), entry(1, 100));
        assert!(w.depart(1, 50).is_some());
        assert_eq!(w.get(&key(1), 100), None);
        assert_eq!(w.insert(key(1), entry(2, 200)), Some(key(1)));
        assert_eq!(w.prune(100), Vec::<DedupKey>::new(), "the old slot no longer owns the key");
        assert_eq!(w.get(&key(1), 150).map(|e| e.seq), Some(2));
        assert_eq!(w.depart(1, 50), None);
        assert!(w.depart(2, 150).is_some());
        assert_eq!(w.prune(200), vec![key(1)]);
    }

    #[test]
    fn many_chunks_free_as_they_are_pruned() {
        let mut w = DedupWindow::default();
        let n = 10 * CHUNK as u64 + 17;
        for i in 0..n {
            w.insert(key(i), entry(i * 3, i));
        }
        assert_eq!(w.ring.chunks.len(), 11);
        for i in (0..n).step_by(97) {
            assert_eq!(w.key_of(i * 3), Some(key(i)));
            assert_eq!(w.key_of(i * 3 + 1), None);
        }
        w.prune(5 * CHUNK as u64 - 1);
        assert_eq!(w.ring.chunks.len(), 6);
        assert_eq!(w.len() as u64, n - 5 * CHUNK as u64);
        assert_eq!(w.key_of(3 * (5 * CHUNK as u64 - 1)), None);
        assert_eq!(w.key_of(3 * (5 * CHUNK as u64)), Some(key(5 * CHUNK as u64)));
        w.prune(n);
        assert!(w.is_empty());
        assert!(w.ring.chunks.is_empty());
        // Positions go on from where they were.
        w.insert(key(0), entry(n * 3, n + 10));
        assert_eq!(w.get(&key(0), n).map(|e| e.seq), Some(n * 3));
    }

    /// Positions wrap around u32 without confusing entries.
    #[test]
    fn positions_wrap() {
        let mut w = DedupWindow::default();
        w.ring.base = u32::MAX - 5;
        for i in 0..20 {
            w.insert(key(i), entry(i, 100 + i));
        }
        for i in 0..20 {
            assert_eq!(w.get(&key(i), 0).map(|e| e.seq), Some(i));
            assert_eq!(w.key_of(i), Some(key(i)));
        }
        w.prune(110);
        assert_eq!(w.len(), 9);
        assert_eq!(w.get(&key(15), 0).map(|e| e.seq), Some(15));
    }

    /// Recovery: metas in seq order, kv records in key order, the same message in both (a data
    /// directory from before meta version 4), duplicates of a key.
    #[test]
    fn recovery_merges_out_of_order_entries() {
        let mut w = DedupWindow::default();
        // Queued messages (from metas) 10, 20, 30, 40; departed ones (kv) 5, 25, 45; 30 has both.
        for s in [10, 20, 30, 40] {
            w.recover(key(s), entry(s, 1000 + s), false);
        }
        for s in [45, 25, 30, 5] {
            w.recover(key(s), entry(s, 1000 + s), true);
        }
        // Key 99 twice, both still open: the later wins; the earlier's record is deleted.
        w.recover(key(99), entry(1, 1001), true);
        w.recover(key(99), entry(50, 1050), false);
        assert_eq!(w.finish_recovery(), vec![key(99)]);
        assert_eq!(w.len(), 8);
        let seqs: Vec<Seq> = w.ring.positions().map(|p| w.ring.slot(p).entry.seq).collect();
        assert_eq!(seqs, vec![1, 5, 10, 20, 25, 30, 40, 45, 50]);
        assert_eq!(w.get(&key(99), 0).map(|e| e.seq), Some(50));
        assert_eq!(w.depart(30, 0), None, "its kv record exists already");
        assert_eq!(w.depart(25, 0), None, "departed before the restart");
        assert_eq!(w.depart(20, 0), Some((key(20), entry(20, 1020))));
        assert_eq!(w.depart(1, 0), None, "superseded");
        let mut pruned = w.prune(2000);
        pruned.sort();
        let mut want = vec![key(5), key(20), key(25), key(30), key(45)];
        want.sort();
        assert_eq!(pruned, want);
        assert!(w.is_empty());
    }

    /// A seq found twice with different keys (only if the clock went back between two runs): the
    /// queued message's entry stays, the other's record is deleted; seqs stay strictly increasing.
    #[test]
    fn recovery_resolves_a_reused_seq() {
        let mut w = DedupWindow::default();
        w.recover(key(1), entry(10, 1000), false);
        w.recover(key(2), entry(20, 1000), false);
        w.recover(key(3), entry(10, 1000), true);
        w.recover(key(4), entry(15, 1000), true);
        assert_eq!(w.finish_recovery(), vec![key(3)]);
        let seqs: Vec<Seq> = w.ring.positions().map(|p| w.ring.slot(p).entry.seq).collect();
        assert_eq!(seqs, vec![10, 15, 20]);
        assert_eq!(w.key_of(10), Some(key(1)));
        assert_eq!(w.get(&key(3), 0), None);
    }

    /// Lookups by seq with gaps: duplicates and failed entries use seqs without entries, and a
    /// restart jumps seqs far ahead.
    #[test]
    fn find_by_seq_across_gaps() {
        let mut w = DedupWindow::default();
        let mut seqs = Vec::new();
        let mut seq = 100;
        for i in 0..5000u64 {
            seq += if i % 7 == 0 { 3 } else { 1 };
            if i == 2500 {
                seq += 1 << 40;
            }
            seqs.push(seq);
            w.insert(key(i), entry(seq, 10_000));
        }
        for (i, s) in seqs.iter().enumerate() {
            assert_eq!(w.key_of(*s), Some(key(i as u64)), "seq {s}");
            assert_eq!(w.key_of(s + 1).is_some(), seqs.get(i + 1) == Some(&(s + 1)));
        }
        assert_eq!(w.key_of(0), None);
        assert_eq!(w.key_of(u64::MAX), None);
    }
}
