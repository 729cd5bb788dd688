//! redb backend: one file, two tables keyed by (queue_id, seq).
use crate::store::{meta_field, Op, Res, Store};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;

const META: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("meta");
const BODY: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("body");

pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    pub fn open(dir: &Path) -> Res<Self> {
        std::fs::create_dir_all(dir)?;
        let db = Database::builder()
            .set_cache_size(128 << 20)
            .create(dir.join("sluice.redb"))?;
        // Make sure both tables exist (open_table in a write txn creates them).
        let tx = db.begin_write()?;
        tx.open_table(META)?;
        tx.open_table(BODY)?;
        tx.commit()?;
        Ok(Self { db })
    }
}

impl Store for RedbStore {
    fn commit(&mut self, ops: &[Op]) -> Res<()> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(Durability::Immediate)?; // the default; fsync on commit
        {
            let mut meta = tx.open_table(META)?;
            let mut body = tx.open_table(BODY)?;
            for op in ops {
                match *op {
                    Op::Insert { q, seq, meta: m, body: b } => {
                        meta.insert((q, seq), m)?;
                        body.insert((q, seq), b)?;
                    }
                    Op::UpdateMeta { q, seq, meta: m } => {
                        meta.insert((q, seq), m)?;
                    }
                    Op::Delete { q, seq } => {
                        meta.remove((q, seq))?;
                        body.remove((q, seq))?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn scan_meta(&self) -> Res<(u64, u64)> {
        let rtx = self.db.begin_read()?;
        let meta = rtx.open_table(META)?;
        let (mut n, mut sum) = (0u64, 0u64);
        for item in meta.iter()? {
            let (_k, v) = item?;
            n += 1;
            sum = sum.wrapping_add(meta_field(v.value()));
        }
        Ok((n, sum))
    }

    fn get_body(&self, q: u64, seq: u64) -> Res<Option<Vec<u8>>> {
        let rtx = self.db.begin_read()?;
        let body = rtx.open_table(BODY)?;
        Ok(body.get((q, seq))?.map(|g| g.value().to_vec()))
    }

    fn purge_queue(&mut self, q: u64) -> Res<u64> {
        let tx = self.db.begin_write()?;
        let mut n = 0;
        {
            let mut meta = tx.open_table(META)?;
            let mut body = tx.open_table(BODY)?;
            for item in meta.extract_from_if((q, 0)..=(q, u64::MAX), |_, _| true)? {
                item?;
                n += 1;
            }
            body.retain_in((q, 0)..=(q, u64::MAX), |_, _| false)?;
        }
        tx.commit()?;
        Ok(n)
    }
}
