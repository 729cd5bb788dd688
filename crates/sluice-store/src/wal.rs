//! The write-ahead log that makes a group commit cost one small sequential write and one fdatasync.
//!
//! redb commits durably by writing every B-tree page the transaction touched and fsyncing the file:
//! hundreds of microseconds to milliseconds per commit, which with 32 clients each waiting for their
//! own message bounded batch-1 sends at about a third of what the HTTP stack can do. The embedded
//! backend therefore commits each group to redb *without* fsync (`Durability::None`: visible to
//! readers at once, persisted only by a later durable commit) and makes the group durable by
//! appending it to this log. Every so often a checkpoint commits redb durably and resets the log.
//!
//! File layout (`sluice.wal` and `sluice.wal2` beside the redb file; see the embedded backend for
//! why there are two):
//! - a header at offset 0: magic, epoch (u64), CRC-32 of both;
//! - records from [`HEADER_LEN`] on: `len: u32` (payload bytes), `crc: u32` over (epoch ‖ payload),
//!   then the payload: one group's ops.
//!
//! The file is zero-filled to [`PREALLOCATED`] bytes once and then rewritten in place, so an
//! fdatasync flushes only data blocks, never file-size or extent metadata. Reset starts a new epoch
//! instead of erasing: records left over from the previous epoch fail the CRC (which covers the
//! epoch) and end the replay, as does a torn last record.

use std::fs::{File, OpenOptions};
use std::io::Write;

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::{Op, StoreError};

const MAGIC: &[u8; 8] = b"SLCWAL01";
/// Bytes before the first record (one sector-aligned block; the header itself is 20 bytes).
pub const HEADER_LEN: u64 = 4096;
/// Size the log is zero-filled to when created.
pub const PREALLOCATED: u64 = 64 << 20;
const RECORD_HEAD: usize = 8;

fn io(e: std::io::Error) -> StoreError {
    if crate::space::is_out_of_space(&e) {
        return StoreError::Full(format!("write-ahead log: {e}"));
    }
    StoreError::Io(format!("write-ahead log: {e}"))
}

fn crc_of(epoch: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&epoch.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// What a salvaging open returns: the log, the records it could read, and what it dropped.
pub type Salvage = (Wal, Vec<Vec<Op>>, Vec<Dropped>);

/// An open log, positioned after its last valid record.
pub struct Wal {
    file: File,
    epoch: u64,
    /// Where the next record goes.
    end: u64,
    /// Reused encoding buffer.
    buf: Vec<u8>,
    /// Size of the file: records beyond it make it grow.
    len: u64,
}

impl Wal {
    /// Opens the log at `path` (creating and zero-filling it if absent) and returns it together with
    /// every complete record of the current epoch, oldest first, for the caller to replay.
    ///
    /// Damage is refused: a bad record followed by a valid one of the same epoch is
    /// [`StoreError::Corrupt`] naming the file and offset (see [`Wal::open_salvaging`]). Only a torn
    /// tail (a bad last record, nothing valid after it) is cut off, and logged.
    pub fn open(path: &Path) -> Result<(Wal, Vec<Vec<Op>>), StoreError> {
        Self::open_with(path, false).map(|(wal, records, _)| (wal, records))
    }

    /// [`Wal::open`] that keeps every readable record instead of refusing a damaged log, and
    /// returns what it dropped.
    pub fn open_salvaging(path: &Path) -> Result<Salvage, StoreError> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, salvage: bool) -> Result<Salvage, StoreError> {
        if !path.exists() {
            Self::create(path)?;
        }
        let file = OpenOptions::new().read(true).write(true).open(path).map_err(io)?;
        let scan = scan(path, &file)?;
        if let Some(d) = scan.damage.first().filter(|_| !salvage) {
            return Err(StoreError::Corrupt(format!(
                "{}: damaged record at offset {} ({}) with valid records after it; {} damaged range(s) in all. \
                 Start with --salvage to keep every readable record and drop the damaged ones (run `sluice check` first)",
                path.display(),
                d.offset,
                d.reason,
                scan.damage.len()
            )));
        }
        for d in &scan.damage {
            tracing::error!(file = %path.display(), offset = d.offset, bytes = d.len, reason = %d.reason,
                "salvage: dropped a damaged write-ahead log range");
        }
        if let Some(tail) = &scan.torn_tail {
            tracing::warn!(file = %path.display(), offset = tail.offset, reason = %tail.reason,
                "write-ahead log ends in a torn record (an unacknowledged write cut by a crash): truncated there");
        }
        let len = file.metadata().map_err(io)?.len();
        let mut wal = Wal { file, epoch: scan.epoch, end: scan.end, buf: Vec::new(), len };
        if scan.header_torn {
            tracing::warn!(path = %path.display(), "write-ahead log header torn; starting a new epoch");
            wal.reset()?;
        }
        Ok((wal, scan.records, scan.damage))
    }

    /// Creates a zero-filled log with a first header under a temporary name and renames it into
    /// place, so a crash while creating never leaves a half-made log behind.
    fn create(path: &Path) -> Result<(), StoreError> {
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        // A failure (a disk too small) leaves nothing behind.
        let made = Self::create_at(&tmp, path);
        if made.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        made
    }

    fn create_at(tmp: &Path, path: &Path) -> Result<(), StoreError> {
        let mut file =
            crate::files::create_options().read(true).write(true).create(true).truncate(true).open(tmp).map_err(io)?;
        let zeros = vec![0u8; 1 << 20];
        let mut written = 0;
        while written < PREALLOCATED {
            let n = zeros.len().min((PREALLOCATED - written) as usize);
            file.write_all(&zeros[..n]).map_err(io)?;
            written += n as u64;
        }
        let mut wal = Wal { file, epoch: 0, end: HEADER_LEN, buf: Vec::new(), len: PREALLOCATED };
        wal.reset()?;
        wal.file.sync_all().map_err(io)?;
        std::fs::rename(tmp, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }

    /// Appends one group's ops (not yet durable: call [`Wal::sync`]).
    pub fn append(&mut self, ops: &[Op]) -> Result<(), StoreError> {
        self.append_bounded(ops, true)
    }

    /// [`Wal::append`], refused with [`StoreError::Full`] if the record would make the file grow
    /// and `may_grow` is false (the disk is short of space: the preallocated file needs none).
    pub fn append_bounded(&mut self, ops: &[Op], may_grow: bool) -> Result<(), StoreError> {
        self.buf.clear();
        self.buf.extend_from_slice(&[0u8; RECORD_HEAD]);
        encode_ops(ops, &mut self.buf);
        let n = (self.buf.len() - RECORD_HEAD) as u32;
        let crc = crc_of(self.epoch, &self.buf[RECORD_HEAD..]);
        self.buf[..4].copy_from_slice(&n.to_le_bytes());
        self.buf[4..8].copy_from_slice(&crc.to_le_bytes());
        let new_end = self.end + self.buf.len() as u64;
        if new_end > self.len && !may_grow {
            return Err(StoreError::Full("the write-ahead log is full and the disk has no room for it to grow".into()));
        }
        self.file.write_all_at(&self.buf, self.end).map_err(io)?;
        self.end = new_end;
        self.len = self.len.max(new_end);
        Ok(())
    }

    /// Makes every appended record durable (fdatasync).
    pub fn sync(&self) -> Result<(), StoreError> {
        self.file.sync_data().map_err(io)
    }

    /// Bytes of records since the last reset.
    pub fn used(&self) -> u64 {
        self.end - HEADER_LEN
    }

    /// The epoch of the records this log holds; the embedded backend's two logs replay in epoch order.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Forgets every record: starts a new epoch and syncs the header. Only after the records'
    /// effects are durable elsewhere (the redb checkpoint).
    pub fn reset(&mut self) -> Result<(), StoreError> {
        self.restart_after(self.epoch)
    }

    /// Forgets every record and starts epoch `previous + 1`: how the backend makes this log the
    /// successor of another one whose epoch is `previous`, so a replay orders the two correctly.
    pub fn restart_after(&mut self, previous: u64) -> Result<(), StoreError> {
        self.epoch = previous + 1;
        let mut header = [0u8; 20];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&self.epoch.to_le_bytes());
        let crc = crc32fast::hash(&header[..16]);
        header[16..].copy_from_slice(&crc.to_le_bytes());
        self.file.write_all_at(&header, 0).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.end = HEADER_LEN;
        Ok(())
    }
}

/// A damaged stretch of a log, dropped by a salvage or reported by a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Byte offset of the first bad record in the file.
    pub offset: u64,
    /// Bytes skipped up to the next valid record.
    pub len: u64,
    /// What was wrong with the record at `offset`.
    pub reason: String,
}

/// What reading a log found, without changing it (start-up and `sluice check` both use it).
pub struct Scan {
    pub epoch: u64,
    /// The records of the current epoch that could be read, oldest first.
    pub records: Vec<Vec<Op>>,
    /// Where the next record goes: after the last readable record.
    pub end: u64,
    /// Bad stretches followed by valid records of the epoch: damage, not a crash.
    pub damage: Vec<Dropped>,
    /// A bad last record with nothing valid after it: the one write a crash may tear.
    pub torn_tail: Option<Dropped>,
    /// The header failed its CRC (no records are read: their epoch is unknown).
    pub header_torn: bool,
}

/// Bytes the look-ahead for a valid record may hash before giving up (and calling the bad record
/// damage, to be safe): bounds the work a pathological file can cost at start-up.
const LOOKAHEAD_BUDGET: u64 = 4 << 30;

/// Reads the log at `path` (open as `file`) without changing it.
pub fn scan(path: &Path, file: &File) -> Result<Scan, StoreError> {
    let len = file.metadata().map_err(io)?.len();
    if len < HEADER_LEN {
        return Err(StoreError::Corrupt(format!("{} is too short for a sluice write-ahead log", path.display())));
    }
    let mut header = [0u8; 20];
    file.read_exact_at(&mut header, 0).map_err(io)?;
    if &header[..8] != MAGIC {
        return Err(StoreError::Corrupt(format!("{} is not a sluice write-ahead log", path.display())));
    }
    let epoch = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(header[16..20].try_into().expect("4 bytes"));
    let mut out =
        Scan { epoch, records: Vec::new(), end: HEADER_LEN, damage: Vec::new(), torn_tail: None, header_torn: false };
    if crc32fast::hash(&header[..16]) != crc {
        // Headers are only rewritten right after a durable checkpoint, so a torn one means the
        // log held nothing that redb does not already have.
        out.header_torn = true;
        return Ok(out);
    }
    // Read as far as the records go (the rest of a 64 MiB log only if a look-ahead needs it).
    let mut bytes = Loader { file, len: len as usize, bytes: Vec::new() };
    let mut at = HEADER_LEN as usize;
    let mut budget = LOOKAHEAD_BUDGET;
    loop {
        let head = bytes.upto(at + RECORD_HEAD)?;
        if let Some(n) = head.get(at..at + 4) {
            let n = u32::from_le_bytes(n.try_into().expect("4 bytes")) as usize;
            bytes.upto(at + RECORD_HEAD + n)?;
        }
        match record_at(&bytes.bytes, at, epoch) {
            Parsed::Valid(ops, next) => {
                out.records.push(ops);
                at = next;
            }
            // Zeros where a record would start: the preallocated, never-written part.
            Parsed::End => break,
            Parsed::Bad(reason) => {
                let all = bytes.upto(usize::MAX)?;
                match next_valid(all, at, epoch, &mut budget) {
                    Next::Found(next) => {
                        out.damage.push(Dropped { offset: at as u64, len: (next - at) as u64, reason });
                        at = next;
                    }
                    Next::Unknown => {
                        // Too costly to tell: damage (refused) rather than risk cutting valid records off.
                        let reason = format!("{reason}; nothing read after it (look-ahead budget spent)");
                        out.damage.push(Dropped { offset: at as u64, len: (all.len() - at) as u64, reason });
                        break;
                    }
                    Next::None => {
                        // Nothing valid follows: the one write a crash may tear.
                        out.torn_tail = Some(Dropped { offset: at as u64, len: 0, reason });
                        break;
                    }
                }
            }
        }
    }
    out.end = at as u64;
    Ok(out)
}

/// The part of a log read so far: [`scan`] reads only as far as the records go.
struct Loader<'a> {
    file: &'a File,
    len: usize,
    bytes: Vec<u8>,
}

impl Loader<'_> {
    /// The file from its start up to at least `end` (or its end), read 1 MiB more at a time.
    fn upto(&mut self, end: usize) -> Result<&[u8], StoreError> {
        let end = end.min(self.len);
        if end > self.bytes.len() {
            let target = end.saturating_add(1 << 20).min(self.len);
            let from = self.bytes.len();
            self.bytes.resize(target, 0);
            self.file.read_exact_at(&mut self.bytes[from..], from as u64).map_err(io)?;
        }
        Ok(&self.bytes)
    }
}

/// How many epochs back a leftover record is recognised as stale (each open or checkpoint moves a
/// file's epoch on by one or two).
const STALE_EPOCHS: u64 = 8;

enum Parsed {
    Valid(Vec<Op>, usize),
    End,
    Bad(String),
}

/// The record at `at`, if it is one of `epoch`'s.
fn record_at(bytes: &[u8], at: usize, epoch: u64) -> Parsed {
    let Some(head) = bytes.get(at..at + RECORD_HEAD) else { return Parsed::End };
    if head.iter().all(|&b| b == 0) {
        return Parsed::End;
    }
    let n = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    let Some(payload) = bytes.get(at + RECORD_HEAD..at + RECORD_HEAD + n).filter(|_| n > 0) else {
        return Parsed::Bad(format!("record length {n} is impossible here"));
    };
    if crc_of(epoch, payload) != crc {
        // A whole record of an earlier epoch: what a reset leaves after the current records (the
        // file is rewritten in place), so the clean end of the log.
        if (1..=STALE_EPOCHS).any(|back| epoch >= back && crc_of(epoch - back, payload) == crc) {
            return Parsed::End;
        }
        return Parsed::Bad("checksum mismatch".into());
    }
    match decode_ops(payload) {
        Ok(ops) => Parsed::Valid(ops, at + RECORD_HEAD + n),
        Err(e) => Parsed::Bad(format!("checksum valid but undecodable: {e}")),
    }
}

enum Next {
    Found(usize),
    None,
    Unknown,
}

/// The offset of the first record of `epoch` whose checksum holds after the bad record at `bad`, if
/// any. Where the bad record's length still fits, the record after it is tried first (a damaged
/// payload leaves the length intact); then every offset, hashing only where a record could start.
fn next_valid(bytes: &[u8], bad: usize, epoch: u64, budget: &mut u64) -> Next {
    let mut seeded = crc32fast::Hasher::new();
    seeded.update(&epoch.to_le_bytes());
    let valid_at = |at: usize, budget: &mut u64| -> Option<bool> {
        let n = plausible_len(bytes, at)?;
        if *budget < n as u64 {
            return None;
        }
        *budget -= n as u64;
        let crc = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let mut h = seeded.clone();
        h.update(&bytes[at + RECORD_HEAD..at + RECORD_HEAD + n]);
        Some(h.finalize() == crc)
    };
    if let Some(n) = plausible_len(bytes, bad) {
        if valid_at(bad + RECORD_HEAD + n, budget) == Some(true) {
            return Next::Found(bad + RECORD_HEAD + n);
        }
    }
    for at in bad + 1..bytes.len().saturating_sub(RECORD_HEAD) {
        if plausible_len(bytes, at).is_none() {
            continue;
        }
        match valid_at(at, budget) {
            Some(true) => return Next::Found(at),
            Some(false) => {}
            None => return Next::Unknown,
        }
    }
    Next::None
}

/// The payload length of a record that could start at `at`: it fits in the file and its payload
/// starts as [`encode_ops`] writes one (an op count that fits, a known first tag). Cheap, so the
/// look-ahead hashes only candidates.
fn plausible_len(bytes: &[u8], at: usize) -> Option<usize> {
    let head = bytes.get(at..at + RECORD_HEAD)?;
    let n = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    let payload = bytes.get(at + RECORD_HEAD..(at + RECORD_HEAD).checked_add(n)?)?;
    if n < 5 {
        return None;
    }
    let count = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
    // Each op takes at least 9 bytes (a tag and a queue id).
    let known_tag = (PUT_QUEUE..=DELETE_KV).contains(&payload[4]);
    (count >= 1 && count <= n / 9 && known_tag).then_some(n)
}

// --- op encoding: tag byte, then fixed-width integers (little endian) and length-prefixed bytes ---

const PUT_QUEUE: u8 = 1;
const DELETE_QUEUE: u8 = 2;
const PUT_MESSAGE: u8 = 3;
const PUT_META: u8 = 4;
const DELETE_MESSAGE: u8 = 5;
const PURGE_MESSAGES: u8 = 6;
const PUT_KV: u8 = 7;
const DELETE_KV: u8 = 8;

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Encodes ops in the log's payload format.
pub fn encode_ops(ops: &[Op], out: &mut Vec<u8>) {
    out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for op in ops {
        match op {
            Op::PutQueue { queue, record } => {
                out.push(PUT_QUEUE);
                put_u64(out, *queue);
                put_bytes(out, record);
            }
            Op::DeleteQueue { queue } => {
                out.push(DELETE_QUEUE);
                put_u64(out, *queue);
            }
            Op::PutMessage { queue, seq, meta, body } => {
                out.push(PUT_MESSAGE);
                put_u64(out, *queue);
                put_u64(out, *seq);
                put_bytes(out, meta);
                put_bytes(out, body);
            }
            Op::PutMeta { queue, seq, meta } => {
                out.push(PUT_META);
                put_u64(out, *queue);
                put_u64(out, *seq);
                put_bytes(out, meta);
            }
            Op::DeleteMessage { queue, seq } => {
                out.push(DELETE_MESSAGE);
                put_u64(out, *queue);
                put_u64(out, *seq);
            }
            Op::PurgeMessages { queue, below } => {
                out.push(PURGE_MESSAGES);
                put_u64(out, *queue);
                put_u64(out, *below);
            }
            Op::PutKv { queue, key, value } => {
                out.push(PUT_KV);
                put_u64(out, *queue);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            Op::DeleteKv { queue, key } => {
                out.push(DELETE_KV);
                put_u64(out, *queue);
                put_bytes(out, key);
            }
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        if self.0.len() < n {
            return Err(StoreError::Corrupt("write-ahead log record ends early".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
}

/// Decodes a payload written by [`encode_ops`].
pub fn decode_ops(payload: &[u8]) -> Result<Vec<Op>, StoreError> {
    let mut r = Reader(payload);
    let count = r.u32()? as usize;
    // Each op takes at least 9 bytes: a hostile count cannot make us reserve more than the payload.
    let mut ops = Vec::with_capacity(count.min(payload.len() / 9));
    for _ in 0..count {
        let op = match r.u8()? {
            PUT_QUEUE => Op::PutQueue { queue: r.u64()?, record: r.bytes()? },
            DELETE_QUEUE => Op::DeleteQueue { queue: r.u64()? },
            PUT_MESSAGE => Op::PutMessage { queue: r.u64()?, seq: r.u64()?, meta: r.bytes()?, body: r.bytes()? },
            PUT_META => Op::PutMeta { queue: r.u64()?, seq: r.u64()?, meta: r.bytes()? },
            DELETE_MESSAGE => Op::DeleteMessage { queue: r.u64()?, seq: r.u64()? },
            PURGE_MESSAGES => Op::PurgeMessages { queue: r.u64()?, below: r.u64()? },
            PUT_KV => Op::PutKv { queue: r.u64()?, key: r.bytes()?, value: r.bytes()? },
            DELETE_KV => Op::DeleteKv { queue: r.u64()?, key: r.bytes()? },
            tag => return Err(StoreError::Corrupt(format!("write-ahead log op tag {tag} unknown"))),
        };
        ops.push(op);
    }
    if !r.0.is_empty() {
        return Err(StoreError::Corrupt("write-ahead log record has trailing bytes".into()));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_ops(i: u64) -> Vec<Op> {
        vec![
            Op::PutQueue { queue: i, record: b"queue".to_vec() },
            Op::PutMessage { queue: i, seq: 7, meta: vec![1, 2, 3], body: vec![i as u8; 300] },
            Op::PutMeta { queue: i, seq: 7, meta: vec![4] },
            Op::DeleteMessage { queue: i, seq: 8 },
            Op::PurgeMessages { queue: i, below: 9 },
            Op::PutKv { queue: 0, key: b"k".to_vec(), value: b"v".to_vec() },
            Op::DeleteKv { queue: 0, key: b"k".to_vec() },
            Op::DeleteQueue { queue: i },
        ]
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("sluice-wal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("sluice.wal")
    }

    #[test]
    fn ops_round_trip() {
        let ops = sample_ops(42);
        let mut buf = Vec::new();
        encode_ops(&ops, &mut buf);
        assert_eq!(decode_ops(&buf).unwrap(), ops);
        assert!(decode_ops(&buf[..buf.len() - 1]).is_err());
        assert!(decode_ops(&[255, 255, 255, 255]).is_err(), "a huge count with no ops is an error, not an allocation");
    }

    #[test]
    fn records_replay_until_reset_and_survive_reopen() {
        let path = temp("replay");
        let (mut wal, records) = Wal::open(&path).unwrap();
        assert!(records.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), PREALLOCATED);
        wal.append(&sample_ops(1)).unwrap();
        wal.append(&sample_ops(2)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (mut wal, records) = Wal::open(&path).unwrap();
        assert_eq!(records, vec![sample_ops(1), sample_ops(2)]);
        // Appending after reopen continues after the last record.
        wal.append(&sample_ops(3)).unwrap();
        drop(wal);
        let (mut wal, records) = Wal::open(&path).unwrap();
        assert_eq!(records.len(), 3);
        // After a reset the old records are stale even though their bytes are still in the file.
        wal.reset().unwrap();
        wal.append(&sample_ops(4)).unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path).unwrap();
        assert_eq!(records, vec![sample_ops(4)]);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_torn_or_corrupt_tail_ends_the_replay() {
        let path = temp("torn");
        let (mut wal, _) = Wal::open(&path).unwrap();
        wal.append(&sample_ops(1)).unwrap();
        let second_at = wal.end;
        wal.append(&sample_ops(2)).unwrap();
        let end = wal.end;
        drop(wal);
        // Flip one byte of the second record's payload: only the first survives.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xAB], (second_at + end) / 2).unwrap();
        drop(f);
        let (mut wal, records) = Wal::open(&path).unwrap();
        assert_eq!(records, vec![sample_ops(1)]);
        // New records overwrite the corrupt one.
        wal.append(&sample_ops(3)).unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path).unwrap();
        assert_eq!(records, vec![sample_ops(1), sample_ops(3)]);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// Three records; returns the path and each record's offset.
    fn three_records(name: &str) -> (std::path::PathBuf, Vec<u64>) {
        let path = temp(name);
        let (mut wal, _) = Wal::open(&path).unwrap();
        let mut at = Vec::new();
        for i in 1..=3 {
            at.push(wal.end);
            wal.append(&sample_ops(i)).unwrap();
        }
        wal.sync().unwrap();
        (path, at)
    }

    fn flip(path: &Path, offset: u64) {
        let f = OpenOptions::new().read(true).write(true).open(path).unwrap();
        let mut b = [0u8];
        f.read_exact_at(&mut b, offset).unwrap();
        f.write_all_at(&[b[0] ^ 0x10], offset).unwrap();
    }

    /// Issue 24: a bad record followed by valid ones was taken for a torn tail and everything
    /// after it silently dropped. It is damage: refused, naming the file and the offset.
    #[test]
    fn a_bad_record_before_valid_ones_is_refused_with_its_offset() {
        for bad in [0, 1] {
            let (path, at) = three_records(&format!("mid{bad}"));
            flip(&path, at[bad] + RECORD_HEAD as u64 + 5);
            let err = Wal::open(&path).err().expect("damage must be refused").to_string();
            assert!(err.contains(&format!("offset {}", at[bad])) && err.contains("sluice.wal"), "{err}");
            // Refused means untouched: the same answer again.
            assert!(Wal::open(&path).is_err());
            // Salvage keeps the others and says exactly what it dropped.
            let (_, records, dropped) = Wal::open_salvaging(&path).unwrap();
            let kept: Vec<_> = (1..=3).filter(|&i| i != bad as u64 + 1).map(sample_ops).collect();
            assert_eq!(records, kept);
            assert_eq!(dropped.len(), 1);
            assert_eq!((dropped[0].offset, dropped[0].len), (at[bad], at[bad + 1] - at[bad]));
            let _ = std::fs::remove_dir_all(path.parent().unwrap());
        }
    }

    /// A damaged length field (the record seems to run past the file or over the next ones) is
    /// found by the look-ahead too.
    #[test]
    fn a_damaged_length_is_damage_too() {
        let (path, at) = three_records("len");
        flip(&path, at[0] + 2);
        assert!(Wal::open(&path).is_err());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// The last record torn (what a crash mid-write leaves) is the one case cut off.
    #[test]
    fn only_a_torn_last_record_is_cut() {
        let (path, at) = three_records("tail");
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0u8; 40], at[2] + RECORD_HEAD as u64 + 10).unwrap();
        drop(f);
        let file = File::open(&path).unwrap();
        let found = scan(&path, &file).unwrap();
        assert_eq!(found.torn_tail.map(|t| t.offset), Some(at[2]));
        assert!(found.damage.is_empty());
        let (_, records) = Wal::open(&path).unwrap();
        assert_eq!(records, vec![sample_ops(1), sample_ops(2)]);
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    /// After a reset the previous epoch's records still fill the file: a clean end, not a torn tail.
    #[test]
    fn stale_records_of_an_earlier_epoch_are_a_clean_end() {
        let (path, _) = three_records("stale");
        let (mut wal, _) = Wal::open(&path).unwrap();
        wal.reset().unwrap();
        wal.append(&sample_ops(9)).unwrap();
        drop(wal);
        let file = File::open(&path).unwrap();
        let found = scan(&path, &file).unwrap();
        assert_eq!(found.records, vec![sample_ops(9)]);
        assert!(found.torn_tail.is_none() && found.damage.is_empty());
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }

    #[test]
    fn a_foreign_file_is_refused() {
        let path = temp("foreign");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        assert!(matches!(Wal::open(&path), Err(StoreError::Corrupt(_))));
        let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
}
