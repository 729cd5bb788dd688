//! fjall backend: one Database (shared journal), two keyspaces (LSM trees).
use crate::store::{key, meta_field, Op, Res, Store};
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::path::Path;

pub struct FjallStore {
    db: Database,
    meta: Keyspace,
    body: Keyspace,
}

impl FjallStore {
    pub fn open(dir: &Path) -> Res<Self> {
        let db = Database::builder(dir).cache_size(128 << 20).open()?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let body = db.keyspace("body", KeyspaceCreateOptions::default)?;
        Ok(Self { db, meta, body })
    }
}

impl Store for FjallStore {
    fn commit(&mut self, ops: &[Op]) -> Res<()> {
        // Atomic across keyspaces; SyncAll = fsync the journal inside commit().
        let mut b = self.db.batch().durability(Some(PersistMode::SyncAll));
        for op in ops {
            match *op {
                Op::Insert { q, seq, meta, body } => {
                    let k = key(q, seq);
                    b.insert(&self.meta, &k[..], meta);
                    b.insert(&self.body, &k[..], body);
                }
                Op::UpdateMeta { q, seq, meta } => b.insert(&self.meta, &key(q, seq)[..], meta),
                Op::Delete { q, seq } => {
                    let k = key(q, seq);
                    b.remove(&self.meta, &k[..]);
                    b.remove(&self.body, &k[..]);
                }
            }
        }
        b.commit()?;
        Ok(())
    }

    fn scan_meta(&self) -> Res<(u64, u64)> {
        let (mut n, mut sum) = (0u64, 0u64);
        for guard in self.meta.iter() {
            let (_k, v) = guard.into_inner()?;
            n += 1;
            sum = sum.wrapping_add(meta_field(&v));
        }
        Ok((n, sum))
    }

    fn get_body(&self, q: u64, seq: u64) -> Res<Option<Vec<u8>>> {
        Ok(self.body.get(key(q, seq))?.map(|v| v.to_vec()))
    }

    fn purge_queue(&mut self, q: u64) -> Res<u64> {
        // No range tombstone in the public API: collect keys by prefix, batch-remove.
        let mut b = self.db.batch().durability(Some(PersistMode::SyncAll));
        let mut n = 0;
        for guard in self.meta.prefix(q.to_be_bytes()) {
            let k = guard.key()?;
            b.remove(&self.body, k.clone());
            b.remove(&self.meta, k);
            n += 1;
        }
        b.commit()?;
        Ok(n)
    }
}
