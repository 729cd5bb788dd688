//! What the engine persists, and how it is encoded. The store sees only these bytes.
//!
//! - Queue record: JSON (rarely written, easy to inspect).
//! - Message meta: a 58-byte binary layout, the message group id (FIFO and fair queues) and, on a
//!   FIFO queue, the message's de-duplication digest; small because recovery scans every one of them.
//!   The digest lets recovery rebuild the de-duplication window of queued messages without a
//!   separate record per send (see `dedup.rs`).
//! - Message body record: bincode of [`BodyRecord`] (body, attributes, sender); written once, read
//!   on receive. On a queue with encryption at rest it is sealed (`at_rest`): a magic prefix no
//!   plain record can start with, the data key id, the nonce, the ciphertext and the tag.
//! - Key/value records, per queue: a one-byte prefix, then the key ([`kv_key`]). [`KV_DEDUP`] + a
//!   de-duplication digest: the window entry of a FIFO message that left the queue inside its window
//!   ([`dedup_kv_key`]; the value is `DedupEntry::encode`). [`KV_TASK`] + a task handle: a message
//!   move task (JSON of `TaskRecord`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attributes::QueueAttributes;
use crate::dedup::DedupKey;
use crate::error::{EngineError, Result};
use crate::message::Attributes;

/// Key/value record prefixes in the store, per queue.
pub(crate) const KV_DEDUP: u8 = b'd';
pub(crate) const KV_TASK: u8 = b't';
/// A data key of the queue (encryption at rest), + its id (u32, big-endian); the value is the key
/// wrapped by the master key or a named key (`at_rest`).
pub(crate) const KV_DATA_KEY: u8 = b'k';

/// The kv key of a data key record.
pub(crate) fn data_key_kv_key(id: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(5);
    k.push(KV_DATA_KEY);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Key prefix of a quarantined message (+ its seq, big endian): the raw body record that failed
/// verification, kept aside for inspection (see `engine::integrity`). Recovery ignores it.
pub(crate) const KV_QUARANTINE: u8 = b'q';

/// The kv key of a FIFO de-duplication entry.
pub(crate) fn dedup_kv_key(key: &DedupKey) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(KV_DEDUP);
    k.extend_from_slice(key);
    k
}

pub(crate) fn kv_key(prefix: u8, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(prefix);
    k.extend_from_slice(name.as_bytes());
    k
}

/// A queue as persisted.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueRecord {
    pub name: String,
    pub created_ms: u64,
    pub last_modified_ms: u64,
    pub attributes: QueueAttributes,
    pub tags: BTreeMap<String, String>,
}

impl QueueRecord {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("queue records always serialise")
    }
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| EngineError::Internal(format!("corrupt queue record: {e}")))
    }
}

/// The mutable, in-memory part of a message; also its persisted meta record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageMeta {
    /// The MessageId (a UUID).
    pub id: [u8; 16],
    pub sent_ms: u64,
    /// 0 until the first receive.
    pub first_receive_ms: u64,
    /// When the message becomes (or became) receivable: end of its delay or visibility timeout.
    pub visible_at_ms: u64,
    /// ApproximateReceiveCount; also the receive number receipt handles are checked against.
    pub receive_count: u32,
    /// Size of the body plus attributes, for the "bytes stored" figure.
    pub size: u32,
    /// The message group, interned per queue (0: no group). Persisted as its name.
    pub group: u32,
    /// When the current receive happened (0 before the first): a receive's total visibility is
    /// capped at 12 hours from it.
    pub last_receive_ms: u64,
}

const META_VERSION: u8 = 4;
/// Length of the fixed part of an encoded [`MessageMeta`]; the group name follows, then (version 4)
/// the de-duplication digest's length (0 or 16) and the digest.
pub const META_LEN: usize = 1 + 16 + 8 + 8 + 8 + 4 + 4 + 8 + 1;
/// Version 2 lacked `last_receive_ms`; versions 2 and 3 lacked the de-duplication digest.
const META_V2_LEN: usize = META_LEN - 8;

impl MessageMeta {
    /// Encodes the meta with its group's name (empty for none; at most 128 bytes by SQS's rules) and
    /// its FIFO de-duplication digest while the message holds a window entry (`None` otherwise).
    pub fn encode(&self, group_name: &str, dedup: Option<&DedupKey>) -> Vec<u8> {
        let group = &group_name.as_bytes()[..group_name.len().min(255)];
        let mut b = Vec::with_capacity(META_LEN + group.len() + 1 + dedup.map_or(0, |d| d.len()));
        b.push(META_VERSION);
        b.extend_from_slice(&self.id);
        b.extend_from_slice(&self.sent_ms.to_be_bytes());
        b.extend_from_slice(&self.first_receive_ms.to_be_bytes());
        b.extend_from_slice(&self.visible_at_ms.to_be_bytes());
        b.extend_from_slice(&self.receive_count.to_be_bytes());
        b.extend_from_slice(&self.size.to_be_bytes());
        b.extend_from_slice(&self.last_receive_ms.to_be_bytes());
        b.push(group.len() as u8);
        b.extend_from_slice(group);
        match dedup {
            Some(d) => {
                b.push(d.len() as u8);
                b.extend_from_slice(d);
            }
            None => b.push(0),
        }
        b
    }

    /// Decodes a meta record (versions 2 to 4); returns it (with `group` 0), its group name and its
    /// de-duplication digest (always `None` before version 4).
    pub fn decode(b: &[u8]) -> Result<(Self, String, Option<DedupKey>)> {
        let corrupt = || EngineError::Internal("corrupt message meta record".into());
        let version = b.first().copied().ok_or_else(corrupt)?;
        let fixed = match version {
            3 | 4 => META_LEN,
            2 => META_V2_LEN,
            _ => return Err(corrupt()),
        };
        if b.len() < fixed {
            return Err(corrupt());
        }
        let group_len = b[fixed - 1] as usize;
        let group_end = fixed + group_len;
        let group = b.get(fixed..group_end).ok_or_else(corrupt)?;
        let group = String::from_utf8(group.to_vec()).map_err(|_| corrupt())?;
        // Version 4: a length byte (0 or 16) and the de-duplication digest after the group name.
        let dedup = match (version, b.get(group_end)) {
            (2 | 3, _) | (4, Some(0)) => None,
            (4, Some(16)) => {
                let digest = b.get(group_end + 1..group_end + 17).ok_or_else(corrupt)?;
                Some(DedupKey::try_from(digest).map_err(|_| corrupt())?)
            }
            _ => return Err(corrupt()),
        };
        let u64_at = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        let u32_at = |i: usize| u32::from_be_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
        let mut id = [0u8; 16];
        id.copy_from_slice(&b[1..17]);
        let meta = MessageMeta {
            id,
            sent_ms: u64_at(17),
            first_receive_ms: u64_at(25),
            visible_at_ms: u64_at(33),
            receive_count: u32_at(41),
            size: u32_at(45),
            group: 0,
            last_receive_ms: if fixed == META_LEN { u64_at(49) } else { u64_at(25) },
        };
        Ok((meta, group, dedup))
    }
}

/// The immutable part of a message, read on receive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct BodyRecord {
    pub body: String,
    pub attributes: Attributes,
    pub system_attributes: Attributes,
    pub sender_id: String,
    /// MessageGroupId (FIFO and fair queues).
    pub group_id: Option<String>,
    /// MessageDeduplicationId (FIFO), given or derived from the body.
    pub deduplication_id: Option<String>,
    /// Set on messages moved to a dead-letter queue: the queue they came from.
    pub dead_letter_source_arn: Option<String>,
    /// MD5 of `body`, computed once at send and stored after the bincode encoding (see
    /// [`BodyRecord::encode`]); None only before it is computed.
    #[serde(skip)]
    pub md5_of_body: Option<[u8; 16]>,
}

impl BodyRecord {
    /// The bincode encoding followed by the 16 bytes of the body's MD5, so that a receive does not
    /// hash the body again (with big bodies that was most of a receive's CPU). bincode 1 ignores
    /// trailing bytes: a binary from before this reads these records, and a record from before
    /// (no trailing bytes) gets its MD5 computed when read.
    ///
    /// The buffer is sized for both up front: appending the 16 bytes to `bincode::serialize`'s
    /// exact-size Vec reallocated every record (and doubled its capacity), which made batch-10
    /// sends ~4% slower (docs/BENCHMARKS.md, "The tenth session").
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// The length of [`BodyRecord::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        bincode::serialized_size(self).expect("body records always serialise") as usize + 16
    }

    /// [`BodyRecord::encode`] appended to `out` (a sealed record encodes in place after its header).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let md5 = self.body_md5();
        bincode::serialize_into(&mut *out, self).expect("body records always serialise");
        out.extend_from_slice(&md5);
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |e: bincode::Error| EngineError::Internal(format!("corrupt message body record: {e}"));
        let mut record: BodyRecord = bincode::deserialize(bytes).map_err(corrupt)?;
        let used = bincode::serialized_size(&record).map_err(corrupt)? as usize;
        record.md5_of_body = bytes.get(used..).and_then(|rest| <[u8; 16]>::try_from(rest).ok());
        Ok(record)
    }

    /// Whether the body still matches the MD5 stored with it at send (a record written without
    /// one has nothing to verify).
    pub fn md5_matches(&self) -> bool {
        self.md5_of_body.is_none_or(|stored| stored == crate::digest::md5(self.body.as_bytes()))
    }

    /// The MD5 of the body: the stored one, or computed for a record written without it.
    pub fn body_md5(&self) -> [u8; 16] {
        self.md5_of_body.unwrap_or_else(|| crate::digest::md5(self.body.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MessageMeta {
        MessageMeta {
            id: [7; 16],
            sent_ms: 1,
            first_receive_ms: 2,
            visible_at_ms: 3,
            receive_count: 4,
            size: 5,
            group: 0,
            last_receive_ms: 6,
        }
    }

    fn body() -> BodyRecord {
        let mut attributes = Attributes::new();
        attributes.insert(
            "a".into(),
            crate::message::AttributeValue {
                data_type: "String".into(),
                string_value: Some("v".into()),
                binary_value: None,
            },
        );
        BodyRecord {
            body: "héllo".into(),
            attributes,
            system_attributes: Attributes::new(),
            sender_id: "s".into(),
            group_id: Some("g".into()),
            deduplication_id: None,
            dead_letter_source_arn: Some("arn".into()),
            md5_of_body: None,
        }
    }

    /// The body's MD5 is stored after the bincode encoding and read back; a record written before
    /// (plain bincode) still decodes and gets its MD5 computed; and plain bincode, as a binary from
    /// before decodes, still reads the new records.
    #[test]
    fn body_records_carry_the_md5_of_their_body() {
        let plain = body();
        let md5 = crate::digest::md5("héllo".as_bytes());
        let stored = plain.encode();
        assert_eq!(stored.capacity(), stored.len(), "sized up front, not reallocated");
        let decoded = BodyRecord::decode(&stored).unwrap();
        assert_eq!(decoded.md5_of_body, Some(md5));
        assert_eq!(BodyRecord { md5_of_body: None, ..decoded }, plain);

        let old = bincode::serialize(&plain).unwrap();
        assert_eq!(stored.len(), old.len() + 16);
        let from_old = BodyRecord::decode(&old).unwrap();
        assert_eq!(from_old, plain);
        assert_eq!(from_old.body_md5(), md5);

        let by_old_binary: BodyRecord = bincode::deserialize(&stored).unwrap();
        assert_eq!(by_old_binary, plain);
        assert!(BodyRecord::decode(&stored[..5]).is_err());
    }

    #[test]
    fn meta_round_trips() {
        let m = sample();
        assert_eq!(m.encode("", None).len(), META_LEN + 1);
        assert_eq!(MessageMeta::decode(&m.encode("", None)).unwrap(), (m, String::new(), None));
        assert_eq!(MessageMeta::decode(&m.encode("g-1", None)).unwrap(), (m, "g-1".to_string(), None));
        let key = [9u8; 16];
        assert_eq!(m.encode("g-1", Some(&key)).len(), META_LEN + 3 + 1 + 16);
        assert_eq!(MessageMeta::decode(&m.encode("g-1", Some(&key))).unwrap(), (m, "g-1".to_string(), Some(key)));
        assert!(MessageMeta::decode(&[1, 2, 3]).is_err());
        for cut in [1, 2, 17] {
            let mut truncated = m.encode("group", Some(&key));
            truncated.truncate(truncated.len() - cut);
            assert!(MessageMeta::decode(&truncated).is_err(), "cut {cut}");
        }
        let mut bad_len = m.encode("group", None);
        *bad_len.last_mut().unwrap() = 3;
        assert!(MessageMeta::decode(&bad_len).is_err());
    }

    /// Data directories written before version 4 still load: the layouts below are byte for byte
    /// what versions 3 and 2 wrote (no digest; version 2 without `last_receive_ms`).
    #[test]
    fn meta_versions_2_and_3_still_decode() {
        let m = sample();
        let mut v3 = vec![3u8];
        v3.extend_from_slice(&[7; 16]);
        for x in [1u64, 2, 3] {
            v3.extend_from_slice(&x.to_be_bytes());
        }
        v3.extend_from_slice(&4u32.to_be_bytes());
        v3.extend_from_slice(&5u32.to_be_bytes());
        v3.extend_from_slice(&6u64.to_be_bytes());
        v3.push(2);
        v3.extend_from_slice(b"g7");
        assert_eq!(MessageMeta::decode(&v3).unwrap(), (m, "g7".to_string(), None));

        let mut v2 = vec![2u8];
        v2.extend_from_slice(&[7; 16]);
        for x in [1u64, 2, 3] {
            v2.extend_from_slice(&x.to_be_bytes());
        }
        v2.extend_from_slice(&4u32.to_be_bytes());
        v2.extend_from_slice(&5u32.to_be_bytes());
        v2.push(0);
        // Version 2 had no receive time: the first receive stands in for it.
        assert_eq!(MessageMeta::decode(&v2).unwrap(), (MessageMeta { last_receive_ms: 2, ..m }, String::new(), None));
    }
}
