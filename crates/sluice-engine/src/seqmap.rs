//! Ordered maps and sets keyed by sequence number that stay dense when keys arrive in order.
//!
//! A queue's index ([`crate::queue`]) is keyed by [`sluice_store::Seq`]: numbers allocated increasing
//! per queue, so inserts are appends at the end (or a few places before it: concurrent sends commit
//! slightly out of order), and removals come mostly from the front (consumers take the oldest first).
//! `std`'s `BTreeMap` splits a full node in the middle, so in-order appends leave its nodes barely
//! more than half full: the 72-byte (seq, meta) entries cost ~130 bytes each there.
//!
//! [`SeqMap`] keeps its entries in sorted chunks of at most [`CHUNK`] entries, in a directory of
//! chunks ordered by key:
//! - An append behind a full last chunk opens a new chunk, so appends fill every chunk to 100%.
//! - An insert into a full chunk (a late commit, a little before the newest messages) moves the last
//!   entry of that chunk into the next one, and so on up to a chunk with room (at most [`REACH`]
//!   chunks on, or a new last chunk), so the chunks behind the newest messages stay full. Only far
//!   from the end is a full chunk split, in half, as a B-tree does.
//! - A chunk emptied is dropped; after a removal a chunk is merged with a neighbour when both fit in
//!   one, so removals anywhere (deletes, dead-lettering, expiry) give memory back.
//! - Chunks and the directory are `VecDeque`s: taking the oldest entry moves no other entry, and
//!   dropping the first chunk moves no other chunk.
//!
//! A chunk's capacity doubles up to `CHUNK` as it fills, so a small set (one message group's visible
//! messages) costs little. The exceptions, allocated full-size at once, are a new last chunk behind a
//! full one (appends will fill it) and the right half of a split.
//!
//! Lookups binary-search the directory by each chunk's first key, then the chunk: O(log n). An insert
//! or removal inside a chunk moves at most half of it; a split or merge moves at most one chunk; the
//! shift after an insert into a full chunk moves one entry per chunk, over at most `REACH` chunks.

use std::collections::VecDeque;

/// Most entries a chunk holds. Big enough that the directory and allocator overhead is under a byte
/// per entry, small enough that moving half a chunk of 72-byte entries (an insert or removal in its
/// middle) stays cheap.
pub const CHUNK: usize = 256;

/// First capacity of a chunk that may stay small.
const MIN_CAP: usize = 4;

/// How many chunks on an insert into a full chunk looks for room before splitting it: late commits
/// land up to a group commit's worth of messages (hundreds) before the newest.
const REACH: usize = 8;

/// Entries in key order, never empty inside a [`SeqMap`], capacity at most [`CHUNK`]; with a copy of
/// the first key, so searching the directory reads only the directory.
struct Chunk<V> {
    first: u64,
    entries: VecDeque<(u64, V)>,
}

impl<V> Chunk<V> {
    fn new(capacity: usize, e: (u64, V)) -> Self {
        let mut entries = VecDeque::with_capacity(capacity);
        let first = e.0;
        entries.push_back(e);
        Chunk { first, entries }
    }

    /// An empty chunk, to be filled at once.
    fn empty(capacity: usize) -> Self {
        Chunk { first: 0, entries: VecDeque::with_capacity(capacity) }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Where `k` is (`Ok`) or would be inserted (`Err`), as `binary_search` answers.
    fn search(&self, k: u64) -> Result<usize, usize> {
        // Keys are distinct integers, so the i-th key is at least `first + i` and at most
        // `last - (len - 1 - i)`: `k` can only sit at indices lo..=hi. Seqs are mostly consecutive,
        // so that is one index, or a few, and the search reads one or two cache lines, not eight.
        let n = self.entries.len();
        let last = self.entries[n - 1].0;
        if k < self.first {
            return Err(0);
        }
        if k > last {
            return Err(n);
        }
        let mut lo = n - 1 - (last - k).min(n as u64 - 1) as usize;
        let mut hi = 1 + (k - self.first).min(n as u64 - 1) as usize;
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.entries[mid].0 < k {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if self.entries.get(lo).is_some_and(|e| e.0 == k) {
            Ok(lo)
        } else {
            Err(lo)
        }
    }

    /// Inserts at `i`, in a chunk holding fewer than `CHUNK`. The capacity doubles up to `CHUNK` (a
    /// `VecDeque` left to grow by itself could pass it), so a chunk filled by appends ends exactly full.
    fn insert(&mut self, i: usize, e: (u64, V)) {
        if self.entries.len() == self.entries.capacity() {
            let cap = (self.entries.capacity() * 2).clamp(MIN_CAP, CHUNK);
            self.entries.reserve_exact(cap - self.entries.len());
        }
        if i == 0 {
            self.first = e.0;
        }
        self.entries.insert(i, e);
    }

    fn remove(&mut self, i: usize) -> Option<(u64, V)> {
        let e = self.entries.remove(i);
        self.sync_first();
        e
    }

    /// Moves the entries from `at` on into a new chunk allocated full-size.
    fn split_off(&mut self, at: usize) -> Chunk<V> {
        let mut entries = VecDeque::with_capacity(CHUNK);
        entries.extend(self.entries.drain(at..));
        let first = entries.front().map_or(0, |e| e.0);
        Chunk { first, entries }
    }

    /// Appends the entries of the chunk after this one.
    fn append(&mut self, next: Chunk<V>) {
        self.reserve_exactly(next.len());
        self.entries.extend(next.entries);
    }

    /// Prepends the entries of the chunk before this one.
    fn prepend(&mut self, prev: Chunk<V>) {
        self.reserve_exactly(prev.len());
        self.first = prev.first;
        for e in prev.entries.into_iter().rev() {
            self.entries.push_front(e);
        }
    }

    fn reserve_exactly(&mut self, n: usize) {
        if self.entries.capacity() < self.entries.len() + n {
            self.entries.reserve_exact(n);
        }
    }

    fn sync_first(&mut self) {
        if let Some(e) = self.entries.front() {
            self.first = e.0;
        }
    }
}

/// An ordered map from `u64` keys to `V`, for keys that mostly arrive in increasing order and mostly
/// leave from the front. See the module doc.
pub struct SeqMap<V> {
    /// Non-empty chunks, each sorted; every key of a chunk is below every key of the next.
    dir: VecDeque<Chunk<V>>,
    len: usize,
}

impl<V> Default for SeqMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for SeqMap<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<V> SeqMap<V> {
    /// An empty map; allocates nothing until the first insert.
    pub const fn new() -> Self {
        SeqMap { dir: VecDeque::new(), len: 0 }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every entry and frees the memory.
    pub fn clear(&mut self) {
        self.dir = VecDeque::new();
        self.len = 0;
    }

    /// The chunk where `k` is or belongs: the last chunk whose first key is <= `k`, or the first
    /// chunk if `k` is below every key. `None` if the map is empty.
    fn chunk_for(&self, k: u64) -> Option<usize> {
        let last = self.dir.len().checked_sub(1)?;
        // Fast paths: appends land in the last chunk, the oldest entries in the first.
        if self.dir[last].first <= k {
            return Some(last);
        }
        if self.dir.get(1).is_none_or(|c| k < c.first) {
            return Some(0);
        }
        Some(self.dir.partition_point(|c| c.first <= k).saturating_sub(1))
    }

    /// (chunk, index in it) of `k`, if present.
    fn find(&self, k: u64) -> Option<(usize, usize)> {
        let ci = self.chunk_for(k)?;
        let i = self.dir[ci].search(k).ok()?;
        Some((ci, i))
    }

    pub fn get(&self, k: &u64) -> Option<&V> {
        let (ci, i) = self.find(*k)?;
        Some(&self.dir[ci].entries[i].1)
    }

    pub fn get_mut(&mut self, k: &u64) -> Option<&mut V> {
        let (ci, i) = self.find(*k)?;
        Some(&mut self.dir[ci].entries[i].1)
    }

    pub fn contains_key(&self, k: &u64) -> bool {
        self.find(*k).is_some()
    }

    /// Inserts `v` at `k`; returns the value it replaced, if `k` was present.
    pub fn insert(&mut self, k: u64, v: V) -> Option<V> {
        let Some(mut ci) = self.chunk_for(k) else {
            self.dir.reserve_exact(1);
            self.dir.push_back(Chunk::new(MIN_CAP, (k, v)));
            self.len = 1;
            return None;
        };
        let chunk = &mut self.dir[ci];
        let mut p = match chunk.search(k) {
            Ok(i) => return Some(std::mem::replace(&mut chunk.entries[i].1, v)),
            Err(p) => p,
        };
        self.len += 1;
        if p == CHUNK {
            // After every key of a full chunk: a new last chunk (an append), else the next chunk's front.
            if ci + 1 == self.dir.len() {
                self.dir.push_back(Chunk::new(CHUNK, (k, v)));
                return None;
            }
            ci += 1;
            p = 0;
        }
        if self.dir[ci].len() == CHUNK && !self.shift_right(ci) {
            // Inside a full chunk far from the end: split it in half, as a B-tree does.
            let mut right = self.dir[ci].split_off(CHUNK / 2);
            if p < CHUNK / 2 {
                self.dir[ci].insert(p, (k, v));
            } else {
                right.insert(p - CHUNK / 2, (k, v));
            }
            self.dir.insert(ci + 1, right);
            return None;
        }
        self.dir[ci].insert(p, (k, v));
        None
    }

    /// Makes room in the full chunk `ci` without splitting it, if a chunk at most [`REACH`] chunks
    /// on has room (or the end is that close, and a new last chunk is opened): moves the last entry
    /// of each chunk from `ci` on into the next one. Late commits land a little before the newest
    /// messages, so this keeps every chunk behind those full. Returns false if there was no room.
    fn shift_right(&mut self, ci: usize) -> bool {
        let end = self.dir.len().min(ci + 1 + REACH);
        let room = match (ci + 1..end).find(|&j| self.dir[j].len() < CHUNK) {
            Some(j) => j,
            None if end == self.dir.len() => {
                self.dir.push_back(Chunk::empty(CHUNK));
                end
            }
            None => return false,
        };
        for j in (ci..room).rev() {
            let e = self.dir[j].entries.pop_back().expect("chunks before `room` are full");
            self.dir[j + 1].insert(0, e);
        }
        true
    }

    /// Removes `k`; returns its value, if it was present.
    pub fn remove(&mut self, k: &u64) -> Option<V> {
        let (ci, i) = self.find(*k)?;
        let (_, v) = self.dir[ci].remove(i)?;
        self.len -= 1;
        self.after_remove(ci);
        Some(v)
    }

    pub fn first_key_value(&self) -> Option<(u64, &V)> {
        self.dir.front().and_then(|c| c.entries.front()).map(|(k, v)| (*k, v))
    }

    #[cfg(test)]
    pub fn pop_first(&mut self) -> Option<(u64, V)> {
        let e = self.dir.front_mut()?.remove(0)?;
        self.len -= 1;
        self.after_remove(0);
        Some(e)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.dir.iter().flat_map(|c| c.entries.iter().map(|(k, v)| (*k, v)))
    }

    /// Approximate heap memory held: the directory and every chunk's capacity (allocator overhead
    /// not included).
    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.dir.capacity() * std::mem::size_of::<Chunk<V>>()
            + self.dir.iter().map(|c| c.entries.capacity() * std::mem::size_of::<(u64, V)>()).sum::<usize>()
    }

    /// Chunk `ci` just lost an entry: drops it if empty, else merges it with a neighbour if both fit
    /// in one chunk.
    fn after_remove(&mut self, ci: usize) {
        if self.dir[ci].len() == 0 {
            self.remove_chunk(ci);
            // Its neighbours are now adjacent.
            if ci > 0 {
                self.merge_if_fits(ci - 1);
            }
        } else if ci == 0 || !self.merge_if_fits(ci - 1) {
            self.merge_if_fits(ci);
        }
    }

    /// Merges chunks `a` and `a + 1` into one if both fit; returns whether it did.
    fn merge_if_fits(&mut self, a: usize) -> bool {
        let b = a + 1;
        if b >= self.dir.len() || self.dir[a].len() + self.dir[b].len() > CHUNK {
            return false;
        }
        // Move the shorter one into the longer one.
        if self.dir[a].len() >= self.dir[b].len() {
            let right = self.remove_chunk(b);
            self.dir[a].append(right);
        } else {
            let left = self.remove_chunk(a);
            self.dir[a].prepend(left);
        }
        true
    }

    /// Takes chunk `ci` out of the directory. A directory that shrank a lot (a drained backlog)
    /// gives its memory back.
    fn remove_chunk(&mut self, ci: usize) -> Chunk<V> {
        let c = self.dir.remove(ci).expect("chunk index in range");
        if self.dir.capacity() > 64 && self.dir.len() < self.dir.capacity() / 4 {
            self.dir.shrink_to(self.dir.capacity() / 2);
        }
        c
    }

    /// Panics if an invariant does not hold (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut prev: Option<u64> = None;
        let mut n = 0;
        for c in &self.dir {
            assert!(c.len() > 0, "empty chunk");
            assert!(
                c.len() <= CHUNK && c.entries.capacity() <= CHUNK,
                "chunk len {} cap {}",
                c.len(),
                c.entries.capacity()
            );
            assert_eq!(c.first, c.entries[0].0, "stale first key");
            for (k, _) in &c.entries {
                assert!(prev.is_none_or(|p| p < *k), "keys out of order");
                prev = Some(*k);
            }
            n += c.len();
        }
        assert_eq!(n, self.len);
    }
}

/// An ordered set of `u64`: a [`SeqMap`] without values (8 bytes an entry).
#[derive(Default, Debug)]
pub struct SeqSet(SeqMap<()>);

impl SeqSet {
    /// An empty set; allocates nothing until the first insert.
    pub const fn new() -> Self {
        SeqSet(SeqMap::new())
    }

    /// Adds `k`; returns whether it was absent.
    pub fn insert(&mut self, k: u64) -> bool {
        self.0.insert(k, ()).is_none()
    }

    /// Removes `k`; returns whether it was present.
    pub fn remove(&mut self, k: &u64) -> bool {
        self.0.remove(k).is_some()
    }

    pub fn contains(&self, k: &u64) -> bool {
        self.0.contains_key(k)
    }

    #[cfg(test)]
    pub fn first(&self) -> Option<u64> {
        self.0.first_key_value().map(|(k, _)| k)
    }

    #[cfg(test)]
    pub fn pop_first(&mut self) -> Option<u64> {
        self.0.pop_first().map(|(k, _)| k)
    }

    /// Keys in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().map(|(k, _)| k)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear()
    }

    #[cfg(test)]
    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// A small deterministic PRNG (xorshift64*), so failures reproduce without a crate.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    fn assert_same(m: &SeqMap<u64>, r: &BTreeMap<u64, u64>) {
        m.check();
        assert_eq!(m.len(), r.len());
        assert_eq!(m.is_empty(), r.is_empty());
        assert_eq!(m.first_key_value(), r.first_key_value().map(|(k, v)| (*k, v)));
        assert!(m.iter().eq(r.iter().map(|(k, v)| (*k, v))), "iteration differs");
    }

    /// Long runs of mixed operations, in phases that grow the map, churn it and drain it, compared
    /// step by step with `BTreeMap`.
    #[test]
    fn matches_btreemap_under_random_operations() {
        for seed in 1..=6u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut m = SeqMap::new();
            let mut r = BTreeMap::new();
            let mut next = 0u64;
            for step in 0..120_000u64 {
                // Phases of 20,000 steps: grow (appends dominate), churn, drain (removals dominate).
                let (grow, drain) = match (step / 20_000) % 3 {
                    0 => (70, 10),
                    1 => (40, 40),
                    _ => (10, 75),
                };
                let roll = rng.below(100);
                let v = rng.next();
                if roll < grow {
                    let k = match rng.below(10) {
                        // Appends, with small gaps.
                        0..=5 => {
                            next += 1 + rng.below(3);
                            next
                        }
                        // Late commits: a few places before the end.
                        6 | 7 => next.saturating_sub(rng.below(12)),
                        // Anywhere, including below every key and re-inserts of present keys.
                        _ => rng.below(next + 1),
                    };
                    assert_eq!(m.insert(k, v), r.insert(k, v), "insert {k}");
                } else if roll < grow + drain {
                    match rng.below(4) {
                        0 | 1 => assert_eq!(m.pop_first(), r.pop_first()),
                        2 => {
                            // Near the front, where deletes of received messages land.
                            let base = r.first_key_value().map_or(0, |(k, _)| *k);
                            let k = base + rng.below(600);
                            assert_eq!(m.remove(&k), r.remove(&k), "remove {k}");
                        }
                        _ => {
                            let k = rng.below(next + 2);
                            assert_eq!(m.remove(&k), r.remove(&k), "remove {k}");
                        }
                    }
                } else {
                    let k = rng.below(next + 2);
                    assert_eq!(m.get(&k), r.get(&k));
                    assert_eq!(m.contains_key(&k), r.contains_key(&k));
                    if let (Some(a), Some(b)) = (m.get_mut(&k), r.get_mut(&k)) {
                        *a = v;
                        *b = v;
                    }
                    assert_eq!(m.get(&k), r.get(&k));
                }
                assert_eq!(m.len(), r.len());
                if step % 2_000 == 0 {
                    assert_same(&m, &r);
                }
            }
            assert_same(&m, &r);
            while let Some(e) = r.pop_first() {
                assert_eq!(m.pop_first(), Some(e));
            }
            assert_same(&m, &r);
        }
    }

    #[test]
    fn set_matches_btreeset() {
        let mut rng = Rng(7);
        let mut s = SeqSet::new();
        let mut r = BTreeSet::new();
        for _ in 0..50_000 {
            let k = rng.below(5_000);
            match rng.below(5) {
                0 | 1 => assert_eq!(s.insert(k), r.insert(k)),
                2 => assert_eq!(s.remove(&k), r.remove(&k)),
                3 => assert_eq!(s.pop_first(), r.pop_first()),
                _ => assert_eq!(s.contains(&k), r.contains(&k)),
            }
            assert_eq!(s.first(), r.first().copied());
            assert_eq!(s.len(), r.len());
        }
        assert!(s.iter().eq(r.iter().copied()));
        s.clear();
        assert!(s.is_empty() && s.first().is_none() && s.heap_bytes() == 0);
    }

    #[test]
    fn edge_cases() {
        let mut m: SeqMap<&str> = SeqMap::new();
        assert_eq!(m.heap_bytes(), 0, "an empty map allocates nothing");
        assert!(m.is_empty());
        assert_eq!(m.first_key_value(), None);
        assert_eq!(m.pop_first(), None);
        assert_eq!(m.remove(&1), None);
        assert_eq!(m.get(&1), None);
        assert!(m.get_mut(&1).is_none());
        assert_eq!(m.iter().count(), 0);

        assert_eq!(m.insert(5, "a"), None);
        assert_eq!(m.insert(5, "b"), Some("a"), "re-insert replaces");
        assert_eq!(m.len(), 1);
        assert_eq!(m.remove(&4), None);
        assert_eq!(m.remove(&6), None);
        assert_eq!(m.first_key_value(), Some((5, &"b")));
        assert_eq!(m.remove(&5), Some("b"));
        assert!(m.is_empty());
        assert_eq!(m.remove(&5), None);
        m.check();

        // Extreme keys, and a key below every other.
        m.insert(u64::MAX, "max");
        m.insert(0, "zero");
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![(0, &"zero"), (u64::MAX, &"max")]);

        for k in 1..=1_000 {
            m.insert(k, "x");
        }
        m.clear();
        assert!(m.is_empty());
        assert_eq!(m.heap_bytes(), 0);
        assert_eq!(m.insert(3, "again"), None);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![(3, &"again")]);
        m.check();
    }

    /// Inserts below every key and at the front of full chunks (descending keys) stay correct.
    #[test]
    fn descending_inserts() {
        let mut m = SeqMap::new();
        for k in (0..5_000u64).rev() {
            m.insert(k, k);
        }
        m.check();
        assert!(m.iter().map(|(k, _)| k).eq(0..5_000));
    }

    /// A small set (one message group's visible messages) costs little; its chunk grows by doubling.
    #[test]
    fn small_sets_are_small() {
        let mut s = SeqSet::new();
        assert_eq!(s.heap_bytes(), 0);
        s.insert(1);
        let chunk = std::mem::size_of::<Chunk<()>>();
        assert!(s.heap_bytes() <= chunk + MIN_CAP * 8, "{}", s.heap_bytes());
        for k in 2..=20 {
            s.insert(k);
        }
        assert!(s.heap_bytes() <= chunk + 32 * 8, "{}", s.heap_bytes());
    }

    /// Entries the size of a queue's (seq, MessageMeta).
    type Meta = [u64; 8];

    fn per_entry<V>(m: &SeqMap<V>) -> f64 {
        m.heap_bytes() as f64 / m.len() as f64
    }

    #[test]
    fn in_order_appends_fill_chunks() {
        let entry = std::mem::size_of::<(u64, Meta)>() as f64;
        let mut m: SeqMap<Meta> = SeqMap::new();
        for k in 0..1_000_000u64 {
            m.insert(k, [k; 8]);
        }
        m.check();
        assert!(per_entry(&m) <= 1.1 * entry, "{} bytes per {entry}-byte entry", per_entry(&m));

        // Concurrent sends: batches of 10 seqs, committed in random order within windows of `w` batches
        // (a group commit completes hundreds of sends at once).
        for w in [2u64, 8, 64] {
            let mut rng = Rng(3);
            let mut late: SeqMap<Meta> = SeqMap::new();
            for base in (0..1_000_000u64).step_by(10 * w as usize) {
                let mut batches: Vec<u64> = (0..w).collect();
                for i in (1..batches.len()).rev() {
                    batches.swap(i, rng.below(i as u64 + 1) as usize);
                }
                for b in batches {
                    for k in base + b * 10..base + b * 10 + 10 {
                        late.insert(k, [k; 8]);
                    }
                }
            }
            late.check();
            let per = per_entry(&late);
            assert!(per <= 1.1 * entry, "late commits, window {w}: {per} bytes per {entry}-byte entry");
        }

        let mut s = SeqSet::new();
        for k in 0..1_000_000u64 {
            s.insert(k);
        }
        let per = s.heap_bytes() as f64 / s.len() as f64;
        assert!(per <= 1.1 * 8.0, "set: {per} bytes per entry");
    }

    #[test]
    fn removals_anywhere_give_memory_back() {
        let n = 1_000_000u64;
        let entry = std::mem::size_of::<(u64, Meta)>();
        let mut m: SeqMap<Meta> = SeqMap::new();
        for k in 0..n {
            m.insert(k, [k; 8]);
        }
        let full = m.heap_bytes();
        // Remove a random 90%, in random order.
        let mut rng = Rng(11);
        let mut keys: Vec<u64> = (0..n).collect();
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let (gone, kept) = keys.split_at(n as usize * 9 / 10);
        for k in gone {
            assert!(m.remove(k).is_some());
        }
        m.check();
        let mut kept = kept.to_vec();
        kept.sort_unstable();
        assert!(m.iter().map(|(k, _)| k).eq(kept.iter().copied()));
        // Merging keeps neighbouring chunks more than full between them: at most ~2x the dense size.
        let bound = 2 * kept.len() * entry;
        assert!(m.heap_bytes() <= bound, "{} bytes after removals (was {full}), bound {bound}", m.heap_bytes());

        // Draining everything frees the chunks and most of the directory.
        while m.pop_first().is_some() {}
        assert!(m.heap_bytes() <= 64 * std::mem::size_of::<Chunk<Meta>>(), "{}", m.heap_bytes());
    }

    /// A queue with a steady backlog: appends at the end, removals from the front. Memory stays at
    /// the backlog's size.
    #[test]
    fn steady_backlog_stays_dense() {
        let mut m: SeqMap<Meta> = SeqMap::new();
        let backlog = 10_000u64;
        for k in 0..backlog {
            m.insert(k, [k; 8]);
        }
        for k in backlog..1_000_000 {
            m.insert(k, [k; 8]);
            assert_eq!(m.pop_first().map(|e| e.0), Some(k - backlog));
        }
        m.check();
        let bound = (backlog as usize + 2 * CHUNK) * std::mem::size_of::<(u64, Meta)>() + 4096;
        assert!(m.heap_bytes() <= bound, "{} > {bound}", m.heap_bytes());
    }
}
