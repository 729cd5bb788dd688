//! Durable storage for sluice.
//!
//! The store knows bytes and keys, nothing about SQS. The engine serialises its own records and hands
//! the store a list of [`Op`]s; the store applies them atomically and durably.
//!
//! Layout:
//! - [`Backend`]: the narrow trait every storage engine implements (one atomic, durable `apply`, an
//!   `append` made durable by the next apply or sync, point reads of bodies, ordered scans for recovery).
//! - [`Store`]: wraps a backend with the **group-commit writer**: one thread drains every operation
//!   waiting in its channel, applies them in one transaction (one fsync), then answers every waiter.
//!   Groups that nobody waits for are appended without an fsync of their own.
//! - [`memory::MemoryBackend`]: no durability, for engine tests and `--data-dir :memory:`.
//! - [`embedded::EmbeddedBackend`]: the default, redb on local disk (see `docs/STORE_SPIKE.md` for
//!   why this engine) behind [`wal`], a write-ahead log that makes each group commit one fdatasync
//!   of a small sequential write instead of a durable redb transaction.
//! - [`conformance`]: the one test suite every backend must pass.
//! - [`check`]: `sluice check`, the verification of a stopped store.
//! - [`manifest`]: the files a store consists of, so a missing one stops start-up.
//! - [`files`]: the data directory's modes (`0700`, files `0600`) and the start-up check.

pub mod check;
pub mod conformance;
pub mod embedded;
pub mod files;
pub mod manifest;
pub mod memory;
mod namespace;
mod pending;
pub mod space;
pub mod stats;
pub mod wal;
mod writer;

#[cfg(test)]
mod fuzz;

pub use namespace::{is_reserved_queue_id, Namespace, RESERVED_QUEUE_IDS};
pub use writer::{Store, StoreStats, LAZY_SYNC_DELAY};

/// Identifies a queue incarnation. Random, never reused: a queue deleted and re-created gets a new id,
/// so stale receipt handles and stale records can never match the new queue.
pub type QueueId = u64;

/// Position of a message within its queue; increases with send order.
pub type Seq = u64;

/// One change to durable state. A list of ops is applied atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Insert or replace the record describing a queue (its name, attributes, tags).
    PutQueue { queue: QueueId, record: Vec<u8> },
    /// Remove a queue's record and every message it holds.
    DeleteQueue { queue: QueueId },
    /// Insert a message: its small, mutable metadata and its immutable body record.
    PutMessage { queue: QueueId, seq: Seq, meta: Vec<u8>, body: Vec<u8> },
    /// Replace a message's metadata (receive count, visibility) and keep its body.
    PutMeta { queue: QueueId, seq: Seq, meta: Vec<u8> },
    /// Remove one message (meta and body). Removing a missing message is not an error.
    DeleteMessage { queue: QueueId, seq: Seq },
    /// Remove every message of the queue whose seq is below `below` (PurgeQueue).
    PurgeMessages { queue: QueueId, below: Seq },
    /// Insert or replace a small record the engine keeps beside a queue's messages
    /// (de-duplication entries, move tasks). Removed with the queue.
    PutKv { queue: QueueId, key: Vec<u8>, value: Vec<u8> },
    /// Remove one such record; removing a missing one is not an error.
    DeleteKv { queue: QueueId, key: Vec<u8> },
}

/// Errors from the storage layer. Cloneable because one failed group commit answers many waiters.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage I/O error: {0}")]
    Io(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The files were written in a format this build does not read (a newer sluice's).
    #[error("unsupported store: {0}")]
    Unsupported(String),
    #[error("the store is shut down")]
    Closed,
    /// The disk is (nearly) full: the write was not made durable and is not acknowledged. Retryable:
    /// the store resumes by itself once space is back (see [`space`]).
    #[error("storage full: {0}")]
    Full(String),
}

impl StoreError {
    /// Whether retrying later may succeed without a restart (the disk was full).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Full(_))
    }
}

/// What a kv scan calls for each record: (queue or namespace id, key, value).
pub type KvVisitor<'a> = dyn FnMut(QueueId, &[u8], &[u8]) + 'a;

/// The narrow seam between sluice and a storage engine.
///
/// Implementations must make `apply` atomic (all ops or none) and durable when it returns (fsync),
/// unless the operator chose a weaker mode.
pub trait Backend: Send + Sync + 'static {
    /// Applies `ops` in one atomic, durable transaction (taking them: a backend may keep them).
    /// Everything appended before is durable too when it returns.
    fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError>;
    /// Applies `ops` atomically, ordered after every earlier change, but durable only with the next
    /// [`Backend::apply`] or [`Backend::sync`]: for changes nobody waits for (see [`Store::commit_lazy`]).
    /// A backend without a cheaper path makes them durable at once.
    fn append(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.apply(ops)
    }
    /// Makes everything appended so far durable.
    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Why the backend refuses writes that add data (the disk is short of space), or None. Cheap
    /// enough to call per request: a backend caches what it measures.
    fn degraded(&self) -> Option<String> {
        None
    }
    /// Housekeeping the writer runs after answering a group's waiters (the embedded backend moves
    /// logged changes into its B-tree here). An error means later writes will fail.
    fn maintain(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Reads a message's body record.
    fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError>;
    /// Reads the body records of several messages of one queue (a receive's batch), in `seqs`' order;
    /// a backend overrides it when one read for all is cheaper than one read each.
    fn get_bodies(&self, queue: QueueId, seqs: &[Seq]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        seqs.iter().map(|&seq| self.get_body(queue, seq)).collect()
    }
    /// Visits every queue record.
    fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> Result<(), StoreError>;
    /// Visits every message's metadata, in (queue, seq) order.
    fn scan_meta(&self, visit: &mut dyn FnMut(QueueId, Seq, &[u8])) -> Result<(), StoreError>;
    /// Visits every key/value record, in (queue, key) order.
    fn scan_kv(&self, visit: &mut KvVisitor<'_>) -> Result<(), StoreError>;
    /// Visits the bound of every purge whose removal is still under way (a backend that removes
    /// purged messages at once has none). Until that removal ends, a message of the queue with a
    /// seq below the bound would be removed with the purge: recovery must give new messages seqs
    /// at or above it, even if the clock went back across a restart.
    fn scan_purge_bounds(&self, _visit: &mut dyn FnMut(QueueId, Seq)) -> Result<(), StoreError> {
        Ok(())
    }
}
