//! SQS queue semantics for sluice, independent of any wire protocol.
//!
//! The [`Engine`] owns every queue. Each queue keeps its index in memory behind its own lock
//! ([`queue`]), persists through a [`sluice_store::Store`] (sends are durable before they are
//! acknowledged; receive bookkeeping and deletes are committed lazily), and reads time from an injected
//! [`clock::Clock`] so tests never sleep through a visibility timeout.
//!
//! Layout:
//! - [`engine`]: the registry of queues and one method per SQS action.
//! - [`queue`]: one queue's index (visible / in flight / delayed) and its rules.
//! - [`seqmap`]: the seq-keyed map and set that index is built on, dense under in-order appends.
//! - [`dedup`]: the FIFO de-duplication window (compact in memory, persisted mostly in meta records).
//! - [`attributes`], [`message`], [`batch`]: validation and AWS's limits.
//! - [`policy`]: the Policy document AddPermission/RemovePermission edit.
//! - [`move_task`]: message move tasks (DLQ redrive), run as background tasks.
//! - [`digest`]: the MD5s SDKs verify. [`receipt`]: tamper-evident receipt handles.
//! - [`record`]: the bytes persisted for queues and messages.
//! - [`error`]: one error type; the protocol crate maps it to AWS codes.

pub mod attributes;
pub mod batch;
pub mod clock;
pub mod dedup;
pub mod digest;
pub mod engine;
pub mod error;
pub mod message;
pub mod move_task;
pub mod policy;
pub mod queue;
pub mod receipt;
pub mod record;
pub mod seqmap;

pub use engine::{Engine, EngineConfig, ReceiveOptions};
pub use error::{EngineError, Result};
