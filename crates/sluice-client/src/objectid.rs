//! Producer-made record ids shaped like MongoDB ObjectIds (24 hex characters), as in the
//! motivating setup: the producer makes the id, so a record delivered twice by SQS (at-least-once)
//! or sent twice by a retrying producer lands once in the database (the id is the primary key).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU32 = AtomicU32::new(0);
static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();

/// A new ObjectId-like id as 24 lowercase hex characters: 4 bytes of seconds since the epoch
/// (big-endian), 5 random bytes chosen once per process, and a 3-byte counter that starts at a
/// random value — the layout of a BSON ObjectId, so ids sort roughly by creation time and keep a
/// B-tree index balanced, without depending on the `bson` crate.
pub fn object_id_hex() -> String {
    let process = PROCESS.get_or_init(|| {
        let mut b = [0u8; 5];
        b.iter_mut().for_each(|x| *x = fastrand::u8(..));
        COUNTER.store(fastrand::u32(..) & 0x00ff_ffff, Ordering::Relaxed);
        b
    });
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed) & 0x00ff_ffff;
    let mut bytes = [0u8; 12];
    bytes[..4].copy_from_slice(&secs.to_be_bytes());
    bytes[4..9].copy_from_slice(process);
    bytes[9..].copy_from_slice(&count.to_be_bytes()[1..]);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when `s` is 24 hex characters (the text form of an ObjectId).
pub fn is_object_id_hex(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_24_hex_and_unique() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| object_id_hex()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|i| is_object_id_hex(i)));
        assert!(!is_object_id_hex("xyz"));
    }
}
