//! SQS queue semantics for sluice, independent of any wire protocol.
//!
//! The [`Engine`] owns every queue. Each queue keeps its index in memory behind its own lock
//! (`queue`), persists through a [`sluice_store::Store`] (sends are durable before they are
//! acknowledged; receive bookkeeping and deletes are committed lazily), and reads time from an injected
//! [`clock::Clock`] so tests never sleep through a visibility timeout.
//!
//! Layout (the public modules and re-exports are what the protocol, SNS and server crates use):
//! - `engine`: the [`Engine`], the registry of queues, with one method per SQS action, one child
//!   module per job: `recovery` (rebuilding from the store at open), `queues` (queue
//!   administration), `send`, `receive` (long polls), `acks` (deletes, visibility changes,
//!   receipt checks), `dead_letter` (redrive), `move_task` (message move tasks, run as background
//!   tasks) and `views` (what metrics and the dashboard read).
//! - `queue`: one queue's index (visible / in flight / delayed) and its rules.
//! - `seqmap`: the seq-keyed map and set that index is built on, dense under in-order appends.
//! - `dedup`: the FIFO de-duplication window (compact in memory, persisted mostly in meta records).
//! - [`attributes`], [`message`], [`batch`]: validation and AWS's limits.
//! - `policy`: the Policy document AddPermission/RemovePermission edit. [`iam`]: the IAM policy
//!   language evaluated (queue, topic and identity policies; AWS's evaluation logic).
//! - `digest`: the MD5s SDKs verify. `receipt`: tamper-evident receipt handles.
//! - `record`: everything that defines bytes in the store: the queue, message meta and body records
//!   and the kv keys (FIFO de-duplication entries, move tasks).
//! - [`at_rest`]: encryption at rest (key ring, per-queue data keys, sealed body records).
//! - [`clock`]: the injected time source. `error`: one error type ([`EngineError`]); the protocol
//!   crate maps it to AWS codes.

pub mod at_rest;
pub mod attributes;
pub mod batch;
pub mod clock;
pub(crate) mod dedup;
pub(crate) mod digest;
pub(crate) mod engine;
pub(crate) mod error;
#[cfg(test)]
mod fuzz;
pub mod iam;
pub mod message;
pub(crate) mod policy;
pub(crate) mod queue;
pub(crate) mod receipt;
pub(crate) mod record;
pub(crate) mod seqmap;

pub use engine::verify_body_record;
pub use engine::{Engine, EngineConfig, PeekedMessage, QueueOverview, ReceiveOptions, TaskRecord};
pub use error::{EngineError, Result};
pub use queue::Counts;
