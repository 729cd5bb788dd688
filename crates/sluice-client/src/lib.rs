//! # sluice-client
//!
//! Building blocks for applications that use a queue speaking the Amazon SQS API — a
//! sluice server or Amazon SQS itself — on top of the official
//! [`aws_sdk_sqs`] crate. Everything takes an [`aws_sdk_sqs::Client`], so the same code runs
//! against AWS (bring a client built with `aws-config` and a TLS connector) and against a local
//! sluice ([`plain_http_client`]).
//!
//! - [`Producer`]: auto-batching sends (≤ 10 entries, ≤ 1 MiB per request, flush on size or
//!   linger), retries of failed entries with backoff, typed JSON sends, FIFO group and
//!   deduplication ids, delays.
//! - [`Consumer`] / [`BatchConsumer`]: N workers, long polling, batched deletes, a visibility
//!   heartbeat for slow handlers, graceful shutdown that releases what it holds.
//! - [`dlq`]: peek at a dead-letter queue and replay it to its source queue.
//! - [`rpc`]: request-reply with a temporary reply queue and correlation ids.
//! - [`drain`]: the `sluice drain` command — queue to PostgreSQL or MongoDB at a capped write
//!   rate, de-duplicated by a producer-made record id ([`object_id_hex`]).
//!
//! ```no_run
//! # async fn demo() -> sluice_client::Result<()> {
//! use sluice_client::{plain_http_client, Producer};
//! let client = plain_http_client("http://127.0.0.1:9324");
//! let url = sluice_client::client::create_queue(&client, "ops", &[]).await?;
//! let producer = Producer::new(client, url);
//! producer.send_json(&serde_json::json!({"_id": sluice_client::object_id_hex(), "op": "login"})).await?;
//! producer.close().await;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod client;
pub mod consumer;
pub mod dlq;
pub mod drain;
mod error;
pub mod objectid;
pub mod producer;
pub mod rpc;

pub use aws_sdk_sqs;
pub use client::plain_http_client;
pub use consumer::{BatchConsumer, BatchOutcome, Consumer, ConsumerConfig, ConsumerStats, HandlerError};
pub use error::{Error, Result};
pub use objectid::object_id_hex;
pub use producer::{OutgoingMessage, Producer, ProducerConfig, SendReceipt, SendTicket};
