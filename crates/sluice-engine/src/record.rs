//! What the engine persists, and how it is encoded. The store sees only these bytes.
//!
//! - Queue record: JSON (rarely written, easy to inspect).
//! - Message meta: a 50-byte binary layout plus the message group id (FIFO and fair queues), small
//!   because recovery scans every one of them.
//! - Message body record: bincode of [`BodyRecord`] (body, attributes, sender); written once, read
//!   on receive.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attributes::QueueAttributes;
use crate::error::{EngineError, Result};
use crate::message::Attributes;

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

const META_VERSION: u8 = 3;
/// Length of the fixed part of an encoded [`MessageMeta`]; the group name follows.
pub const META_LEN: usize = 1 + 16 + 8 + 8 + 8 + 4 + 4 + 8 + 1;
/// Version 2 lacked `last_receive_ms`.
const META_V2_LEN: usize = META_LEN - 8;

impl MessageMeta {
    /// Encodes the meta with its group's name (empty for none; at most 128 bytes by SQS's rules).
    pub fn encode(&self, group_name: &str) -> Vec<u8> {
        let group = &group_name.as_bytes()[..group_name.len().min(255)];
        let mut b = Vec::with_capacity(META_LEN + group.len());
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
        b
    }

    /// Decodes a meta record; returns it (with `group` 0) and its group name.
    pub fn decode(b: &[u8]) -> Result<(Self, String)> {
        let corrupt = || EngineError::Internal("corrupt message meta record".into());
        let fixed = match b.first() {
            Some(&META_VERSION) => META_LEN,
            Some(2) => META_V2_LEN,
            _ => return Err(corrupt()),
        };
        if b.len() < fixed {
            return Err(corrupt());
        }
        let group_len = b[fixed - 1] as usize;
        let group = b.get(fixed..fixed + group_len).ok_or_else(corrupt)?;
        let group = String::from_utf8(group.to_vec()).map_err(|_| corrupt())?;
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
        Ok((meta, group))
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
}

impl BodyRecord {
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("body records always serialise")
    }
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        bincode::deserialize(bytes).map_err(|e| EngineError::Internal(format!("corrupt message body record: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips() {
        let m = MessageMeta {
            id: [7; 16],
            sent_ms: 1,
            first_receive_ms: 2,
            visible_at_ms: 3,
            receive_count: 4,
            size: 5,
            group: 0,
            last_receive_ms: 6,
        };
        assert_eq!(m.encode("").len(), META_LEN);
        assert_eq!(MessageMeta::decode(&m.encode("")).unwrap(), (m, String::new()));
        assert_eq!(MessageMeta::decode(&m.encode("g-1")).unwrap(), (m, "g-1".to_string()));
        assert!(MessageMeta::decode(&[1, 2, 3]).is_err());
        let mut truncated = m.encode("group");
        truncated.pop();
        assert!(MessageMeta::decode(&truncated).is_err());
    }
}
