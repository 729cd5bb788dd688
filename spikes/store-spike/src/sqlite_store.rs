//! SQLite backend (rusqlite, bundled): WAL + synchronous=FULL, two WITHOUT ROWID tables.
use crate::store::{meta_field, Op, Res, Store};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    pub fn open(dir: &Path) -> Res<Self> {
        std::fs::create_dir_all(dir)?;
        let conn = Connection::open(dir.join("sluice.db"))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL")?; // fsync WAL on every commit
        conn.pragma_update(None, "cache_size", -131072)?; // 128 MiB
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(q INTEGER NOT NULL, seq INTEGER NOT NULL, v BLOB NOT NULL,
                                             PRIMARY KEY(q, seq)) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS body(q INTEGER NOT NULL, seq INTEGER NOT NULL, v BLOB NOT NULL,
                                             PRIMARY KEY(q, seq)) WITHOUT ROWID;",
        )?;
        Ok(Self { conn })
    }
}

impl Store for SqliteStore {
    fn commit(&mut self, ops: &[Op]) -> Res<()> {
        let tx = self.conn.transaction()?;
        {
            let mut ins_meta = tx.prepare_cached("INSERT OR REPLACE INTO meta(q, seq, v) VALUES (?1, ?2, ?3)")?;
            let mut ins_body = tx.prepare_cached("INSERT OR REPLACE INTO body(q, seq, v) VALUES (?1, ?2, ?3)")?;
            let mut del_meta = tx.prepare_cached("DELETE FROM meta WHERE q = ?1 AND seq = ?2")?;
            let mut del_body = tx.prepare_cached("DELETE FROM body WHERE q = ?1 AND seq = ?2")?;
            for op in ops {
                match *op {
                    Op::Insert { q, seq, meta, body } => {
                        ins_meta.execute(params![q as i64, seq as i64, meta])?;
                        ins_body.execute(params![q as i64, seq as i64, body])?;
                    }
                    Op::UpdateMeta { q, seq, meta } => {
                        ins_meta.execute(params![q as i64, seq as i64, meta])?;
                    }
                    Op::Delete { q, seq } => {
                        del_meta.execute(params![q as i64, seq as i64])?;
                        del_body.execute(params![q as i64, seq as i64])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn scan_meta(&self) -> Res<(u64, u64)> {
        let mut st = self.conn.prepare_cached("SELECT v FROM meta ORDER BY q, seq")?;
        let mut rows = st.query([])?;
        let (mut n, mut sum) = (0u64, 0u64);
        while let Some(row) = rows.next()? {
            n += 1;
            sum = sum.wrapping_add(meta_field(row.get_ref(0)?.as_blob()?));
        }
        Ok((n, sum))
    }

    fn get_body(&self, q: u64, seq: u64) -> Res<Option<Vec<u8>>> {
        let mut st = self.conn.prepare_cached("SELECT v FROM body WHERE q = ?1 AND seq = ?2")?;
        Ok(st
            .query_row(params![q as i64, seq as i64], |r| r.get::<_, Vec<u8>>(0))
            .optional()?)
    }

    fn purge_queue(&mut self, q: u64) -> Res<u64> {
        let tx = self.conn.transaction()?;
        let n = tx.execute("DELETE FROM meta WHERE q = ?1", [q as i64])?;
        tx.execute("DELETE FROM body WHERE q = ?1", [q as i64])?;
        tx.commit()?;
        Ok(n as u64)
    }
}
