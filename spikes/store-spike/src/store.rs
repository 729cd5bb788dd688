//! The small storage interface sluice needs, implemented once per engine.

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// One operation handed to the single writer thread. A group commit applies
/// a slice of these in ONE transaction/batch and makes it durable (fsync).
pub enum Op<'a> {
    Insert { q: u64, seq: u64, meta: &'a [u8], body: &'a [u8] },
    UpdateMeta { q: u64, seq: u64, meta: &'a [u8] },
    Delete { q: u64, seq: u64 },
}

pub trait Store {
    /// Apply all ops atomically and fsync before returning.
    fn commit(&mut self, ops: &[Op]) -> Res<()>;
    /// Full ordered scan of `meta`: (record count, sum of the u64 BE at meta[0..8]).
    fn scan_meta(&self) -> Res<(u64, u64)>;
    /// Point read of one body.
    fn get_body(&self, q: u64, seq: u64) -> Res<Option<Vec<u8>>>;
    /// Delete every message of a queue (meta + body) in one durable commit.
    fn purge_queue(&mut self, q: u64) -> Res<u64>;
}

/// 16-byte key: queue_id (u64 BE) ++ seq (u64 BE). Sorts by (queue, seq).
pub fn key(q: u64, seq: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&q.to_be_bytes());
    k[8..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub fn meta_field(meta: &[u8]) -> u64 {
    u64::from_be_bytes(meta[..8].try_into().unwrap())
}
