//! Key/value spaces that belong to no queue: the records of a service beside the queues (SNS
//! topics, subscriptions and pending deliveries), stored in the kv table under a queue id reserved
//! for the namespace. Queue ids below [`RESERVED_QUEUE_IDS`] are never given to a queue (the engine
//! checks [`is_reserved_queue_id`] when it draws one), so no queue's records, and no deletion or
//! purge of a queue, can reach a namespace.
//!
//! Why the kv table and not a table of its own: the records and the write-ahead log keep their
//! format (stores written before namespaces existed load as they are, and an older binary can still
//! read a newer store), and every backend gets namespaces without new code.

use crate::{Op, QueueId, Store, StoreError};

/// Queue ids below this are reserved for namespaces.
pub const RESERVED_QUEUE_IDS: QueueId = 256;

/// True for a queue id that belongs to a namespace and must never be given to a queue.
pub const fn is_reserved_queue_id(id: QueueId) -> bool {
    id < RESERVED_QUEUE_IDS
}

/// A key/value space of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Namespace {
    /// The SNS API's records. Id 0: where SNS kept them before namespaces existed (by convention
    /// then), so existing stores are read in place.
    Sns,
}

impl Namespace {
    /// The reserved queue id the namespace's records are stored under.
    pub const fn queue_id(self) -> QueueId {
        match self {
            Namespace::Sns => 0,
        }
    }

    /// The op that inserts or replaces a record of the namespace.
    pub fn put(self, key: Vec<u8>, value: Vec<u8>) -> Op {
        Op::PutKv { queue: self.queue_id(), key, value }
    }

    /// The op that removes a record of the namespace (removing a missing one is not an error).
    pub fn delete(self, key: Vec<u8>) -> Op {
        Op::DeleteKv { queue: self.queue_id(), key }
    }
}

impl Store {
    /// Visits every record of a namespace, in key order (recovery).
    pub fn scan_namespace(&self, namespace: Namespace, visit: &mut dyn FnMut(&[u8], &[u8])) -> Result<(), StoreError> {
        let id = namespace.queue_id();
        self.scan_kv(&mut |queue, key, value| {
            if queue == id {
                visit(key, value);
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::memory::MemoryBackend;

    #[test]
    fn namespace_ids_are_reserved() {
        assert!(is_reserved_queue_id(Namespace::Sns.queue_id()));
        assert!(is_reserved_queue_id(0) && is_reserved_queue_id(255));
        assert!(!is_reserved_queue_id(256) && !is_reserved_queue_id(u64::MAX));
    }

    #[tokio::test]
    async fn a_namespace_sees_only_its_records() {
        let store = Store::in_memory(Arc::new(MemoryBackend::new()));
        store
            .commit(vec![
                Namespace::Sns.put(b"b".to_vec(), b"2".to_vec()),
                Namespace::Sns.put(b"a".to_vec(), b"1".to_vec()),
                Namespace::Sns.put(b"gone".to_vec(), b"x".to_vec()),
                Op::PutKv { queue: 1234, key: b"a".to_vec(), value: b"queue's".to_vec() },
            ])
            .await
            .unwrap();
        store.commit(vec![Namespace::Sns.delete(b"gone".to_vec())]).await.unwrap();
        let mut seen = Vec::new();
        store.scan_namespace(Namespace::Sns, &mut |k, v| seen.push((k.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(seen, vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"2".to_vec())]);
        // Records written as raw kv records under id 0 (before namespaces) are the namespace's.
        store.commit(vec![Op::PutKv { queue: 0, key: b"c".to_vec(), value: b"3".to_vec() }]).await.unwrap();
        let mut keys = Vec::new();
        store.scan_namespace(Namespace::Sns, &mut |k, _| keys.push(k.to_vec())).unwrap();
        assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    }
}
