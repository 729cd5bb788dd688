//! [`Producer`]: auto-batching sends with retries.
//!
//! Messages handed to [`Producer::enqueue`] are buffered and sent with `SendMessageBatch`: a
//! batch is sent as soon as it holds 10 entries, as soon as the next message would push it past
//! the 1 MiB request limit, or when the oldest buffered message has waited `linger`. Several
//! batches are in flight at once. Entries that fail with a server-side fault (or whose whole
//! request failed) are retried with exponential backoff and jitter; entries the service refuses
//! as the sender's fault are reported to the caller.
//!
//! Retrying a request whose answer was lost can deliver a message twice; SQS standard queues
//! are at-least-once anyway, so give records an id made by the producer (see
//! [`crate::object_id_hex`]) and de-duplicate where they are stored.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::{Error, Result};

/// The SQS limit for one request (and for one message): 1 MiB.
pub const MAX_REQUEST_BYTES: usize = 1_048_576;
/// The SQS limit of entries in one batch call.
pub const MAX_BATCH_ENTRIES: usize = 10;

/// Tuning of a [`Producer`].
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// How long a buffered message may wait for more company before its batch is sent.
    pub linger: Duration,
    /// Entries per batch, 1..=10.
    pub max_batch_entries: usize,
    /// Bytes per batch request (bodies plus attributes), at most 1 MiB.
    pub max_batch_bytes: usize,
    /// Batches in flight at once.
    pub max_in_flight: usize,
    /// Messages buffered before `enqueue` waits (backpressure).
    pub buffer: usize,
    /// Retries of a failed entry (after the first attempt).
    pub max_retries: u32,
    /// First retry backoff; doubles each time, with jitter.
    pub base_backoff: Duration,
    /// Upper bound of the backoff.
    pub max_backoff: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            linger: Duration::from_millis(5),
            max_batch_entries: MAX_BATCH_ENTRIES,
            max_batch_bytes: MAX_REQUEST_BYTES,
            max_in_flight: 16,
            buffer: 10_000,
            max_retries: 6,
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// One message to send.
#[derive(Debug, Clone, Default)]
pub struct OutgoingMessage {
    /// The body.
    pub body: String,
    /// Per-message delay in seconds (0..=900). Not allowed on FIFO queues.
    pub delay_seconds: Option<i32>,
    /// FIFO queues: the message group id.
    pub group_id: Option<String>,
    /// FIFO queues: the deduplication id (unless content-based deduplication is on).
    pub dedup_id: Option<String>,
    /// Message attributes.
    pub attributes: HashMap<String, MessageAttributeValue>,
}

impl OutgoingMessage {
    /// A message with this body.
    pub fn new(body: impl Into<String>) -> Self {
        OutgoingMessage { body: body.into(), ..Default::default() }
    }
    /// A message whose body is `value` as JSON.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self> {
        Ok(Self::new(serde_json::to_string(value)?))
    }
    /// Sets the delay.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_seconds = Some(delay.as_secs().min(900) as i32);
        self
    }
    /// Sets the FIFO message group id.
    pub fn group_id(mut self, id: impl Into<String>) -> Self {
        self.group_id = Some(id.into());
        self
    }
    /// Sets the FIFO deduplication id.
    pub fn dedup_id(mut self, id: impl Into<String>) -> Self {
        self.dedup_id = Some(id.into());
        self
    }
    /// Adds a message attribute.
    pub fn attribute(mut self, name: impl Into<String>, value: MessageAttributeValue) -> Self {
        self.attributes.insert(name.into(), value);
        self
    }
    /// Size as SQS counts it against the request limit: body plus attributes.
    pub fn size(&self) -> usize {
        self.body.len() + crate::client::attributes_size(&self.attributes)
    }
    fn to_entry(&self, id: usize) -> SendMessageBatchRequestEntry {
        SendMessageBatchRequestEntry::builder()
            .id(id.to_string())
            .message_body(&self.body)
            .set_delay_seconds(self.delay_seconds)
            .set_message_group_id(self.group_id.clone())
            .set_message_deduplication_id(self.dedup_id.clone())
            .set_message_attributes((!self.attributes.is_empty()).then(|| self.attributes.clone()))
            .build()
            .expect("id and body are set")
    }
}

/// What SQS answered for a sent message.
#[derive(Debug, Clone)]
pub struct SendReceipt {
    /// The message id SQS assigned.
    pub message_id: String,
    /// FIFO queues: the sequence number.
    pub sequence_number: Option<String>,
    /// Attempts it took (1 = no retry).
    pub attempts: u32,
}

/// The pending result of an [`Producer::enqueue`]d message.
#[derive(Debug)]
pub struct SendTicket(oneshot::Receiver<Result<SendReceipt>>);

impl SendTicket {
    /// Waits until the message is sent (or failed for good).
    pub async fn wait(self) -> Result<SendReceipt> {
        self.0.await.unwrap_or(Err(Error::Closed))
    }
}

/// Counters of a [`Producer`].
#[derive(Debug, Default)]
pub struct ProducerStats {
    /// Messages acknowledged by SQS.
    pub sent: AtomicU64,
    /// Messages that failed for good.
    pub failed: AtomicU64,
    /// `SendMessageBatch` requests made (including retries).
    pub requests: AtomicU64,
    /// Entry retries.
    pub retries: AtomicU64,
}

struct Pending {
    msg: OutgoingMessage,
    size: usize,
    attempts: u32,
    reply: oneshot::Sender<Result<SendReceipt>>,
}

enum Cmd {
    Send(Pending),
    Flush(oneshot::Sender<()>),
}

/// An auto-batching sender for one queue. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct Producer {
    tx: mpsc::Sender<Cmd>,
    task: JoinHandle<()>,
    stats: Arc<ProducerStats>,
    max_bytes: usize,
}

impl Producer {
    /// A producer for `queue_url` with the default config.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Producer {
        Self::with_config(client, queue_url, ProducerConfig::default())
    }

    /// A producer with an explicit config. Must be called inside a Tokio runtime.
    pub fn with_config(client: Client, queue_url: impl Into<String>, mut config: ProducerConfig) -> Producer {
        config.max_batch_entries = config.max_batch_entries.clamp(1, MAX_BATCH_ENTRIES);
        config.max_batch_bytes = config.max_batch_bytes.clamp(1, MAX_REQUEST_BYTES);
        config.max_in_flight = config.max_in_flight.max(1);
        let (tx, rx) = mpsc::channel(config.buffer.max(1));
        let stats = Arc::new(ProducerStats::default());
        let max_bytes = config.max_batch_bytes;
        let batcher =
            Batcher { client, url: Arc::new(queue_url.into()), config: Arc::new(config), stats: stats.clone() };
        let task = tokio::spawn(batcher.run(rx));
        Producer { tx, task, stats, max_bytes }
    }

    /// Buffers a message; returns once it is accepted (waits only when the buffer is full).
    /// Await the returned ticket for the outcome.
    pub async fn enqueue(&self, msg: OutgoingMessage) -> Result<SendTicket> {
        let size = msg.size();
        if size > self.max_bytes {
            return Err(Error::TooLarge { size, limit: self.max_bytes });
        }
        let (reply, rx) = oneshot::channel();
        self.tx.send(Cmd::Send(Pending { msg, size, attempts: 0, reply })).await.map_err(|_| Error::Closed)?;
        Ok(SendTicket(rx))
    }

    /// Sends a message and waits for the outcome (batched with whatever else is being sent).
    pub async fn send(&self, msg: OutgoingMessage) -> Result<SendReceipt> {
        self.enqueue(msg).await?.wait().await
    }

    /// Sends `value` serialized as JSON.
    pub async fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<SendReceipt> {
        self.send(OutgoingMessage::json(value)?).await
    }

    /// Buffers `value` serialized as JSON; see [`Producer::enqueue`].
    pub async fn enqueue_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<SendTicket> {
        self.enqueue(OutgoingMessage::json(value)?).await
    }

    /// Sends what is buffered now without waiting for `linger`.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Counters.
    pub fn stats(&self) -> &ProducerStats {
        &self.stats
    }

    /// Sends everything buffered, waits for every batch (including retries) and stops.
    pub async fn close(self) {
        let Producer { tx, task, .. } = self;
        drop(tx);
        let _ = task.await;
    }
}

struct Batcher {
    client: Client,
    url: Arc<String>,
    config: Arc<ProducerConfig>,
    stats: Arc<ProducerStats>,
}

impl Batcher {
    async fn run(self, mut rx: mpsc::Receiver<Cmd>) {
        let permits = Arc::new(Semaphore::new(self.config.max_in_flight));
        let mut batch: Vec<Pending> = Vec::new();
        let mut bytes = 0usize;
        let mut deadline: Option<Instant> = None;
        loop {
            let cmd = match deadline {
                Some(d) => match tokio::time::timeout_at(d, rx.recv()).await {
                    Ok(c) => c,
                    Err(_) => {
                        self.dispatch(&mut batch, &mut bytes, &permits).await;
                        deadline = None;
                        continue;
                    }
                },
                None => rx.recv().await,
            };
            match cmd {
                Some(Cmd::Send(p)) => {
                    if !batch.is_empty() && bytes + p.size > self.config.max_batch_bytes {
                        self.dispatch(&mut batch, &mut bytes, &permits).await;
                    }
                    if batch.is_empty() {
                        deadline = Some(Instant::now() + self.config.linger);
                    }
                    bytes += p.size;
                    batch.push(p);
                    if batch.len() >= self.config.max_batch_entries {
                        self.dispatch(&mut batch, &mut bytes, &permits).await;
                        deadline = None;
                    }
                }
                Some(Cmd::Flush(done)) => {
                    self.dispatch(&mut batch, &mut bytes, &permits).await;
                    deadline = None;
                    // Wait until everything sent so far (retries included) is settled.
                    let all = self.config.max_in_flight as u32;
                    drop(permits.acquire_many(all).await);
                    let _ = done.send(());
                }
                None => {
                    // Every sender is gone: send the rest and wait for the in-flight batches.
                    self.dispatch(&mut batch, &mut bytes, &permits).await;
                    let all = self.config.max_in_flight as u32;
                    drop(permits.acquire_many(all).await);
                    return;
                }
            }
        }
    }

    async fn dispatch(&self, batch: &mut Vec<Pending>, bytes: &mut usize, permits: &Arc<Semaphore>) {
        *bytes = 0;
        let mut entries = std::mem::take(batch);
        if entries.is_empty() {
            return;
        }
        let permit = permits.clone().acquire_owned().await.expect("semaphore open");
        let client = self.client.clone();
        let url = self.url.clone();
        let config = self.config.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            // Retries go out as a (smaller) batch of their own, holding the permit, so a
            // struggling server sees less load while it recovers.
            loop {
                let retry = send_batch(&client, &url, &stats, entries).await;
                entries = Vec::new();
                for (p, err) in retry {
                    if p.attempts > config.max_retries {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        let _ = p.reply.send(Err(err));
                    } else {
                        entries.push(p);
                    }
                }
                if entries.is_empty() {
                    break;
                }
                let attempts = entries.iter().map(|p| p.attempts).max().unwrap_or(1);
                tracing::debug!(count = entries.len(), attempts, "retrying batch entries");
                stats.retries.fetch_add(entries.len() as u64, Ordering::Relaxed);
                tokio::time::sleep(backoff(&config, attempts)).await;
            }
            drop(permit);
        });
    }
}

fn backoff(config: &ProducerConfig, attempts: u32) -> Duration {
    let exp = config.base_backoff.saturating_mul(1u32 << attempts.saturating_sub(1).min(16)).min(config.max_backoff);
    // Full jitter between half and all of it.
    exp / 2 + exp.mul_f64(fastrand::f64() / 2.0)
}

/// Sends one batch; resolves finished entries; returns the entries to retry.
async fn send_batch(
    client: &Client,
    url: &str,
    stats: &ProducerStats,
    mut entries: Vec<Pending>,
) -> Vec<(Pending, Error)> {
    for p in entries.iter_mut() {
        p.attempts += 1;
    }
    let request: Vec<SendMessageBatchRequestEntry> =
        entries.iter().enumerate().map(|(i, p)| p.msg.to_entry(i)).collect();
    stats.requests.fetch_add(1, Ordering::Relaxed);
    let result = client.send_message_batch().queue_url(url).set_entries(Some(request)).send().await;
    let mut slots: Vec<Option<Pending>> = entries.into_iter().map(Some).collect();
    let mut retry = Vec::new();
    match result {
        Ok(out) => {
            for ok in out.successful() {
                if let Some(p) = ok.id().parse::<usize>().ok().and_then(|i| slots.get_mut(i)).and_then(Option::take) {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    let _ = p.reply.send(Ok(SendReceipt {
                        message_id: ok.message_id().to_string(),
                        sequence_number: ok.sequence_number().map(str::to_string),
                        attempts: p.attempts,
                    }));
                }
            }
            for bad in out.failed() {
                if let Some(p) = bad.id().parse::<usize>().ok().and_then(|i| slots.get_mut(i)).and_then(Option::take) {
                    let err = Error::Entry {
                        code: bad.code().to_string(),
                        message: bad.message().unwrap_or_default().to_string(),
                        sender_fault: bad.sender_fault(),
                    };
                    if bad.sender_fault() {
                        stats.failed.fetch_add(1, Ordering::Relaxed);
                        let _ = p.reply.send(Err(err));
                    } else {
                        retry.push((p, err));
                    }
                }
            }
            // Entries the answer did not mention: retry them.
            for p in slots.into_iter().flatten() {
                retry.push((
                    p,
                    Error::Entry {
                        code: "Missing".into(),
                        message: "entry missing from the answer".into(),
                        sender_fault: false,
                    },
                ));
            }
        }
        Err(e) => {
            let err = Error::sqs("SendMessageBatch", e);
            let permanent = matches!(
                err.code(),
                Some(c) if c.contains("NonExistentQueue") || c.contains("InvalidParameter")
                    || c.contains("BatchRequestTooLong") || c.contains("TooManyEntries")
                    || c.contains("InvalidBatchEntryId") || c.contains("AccessDenied")
                    || c.contains("InvalidAddress")
            );
            for p in slots.into_iter().flatten() {
                if permanent {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    let _ = p.reply.send(Err(clone_err(&err)));
                } else {
                    retry.push((p, clone_err(&err)));
                }
            }
        }
    }
    retry
}

fn clone_err(e: &Error) -> Error {
    match e {
        Error::Sqs { operation, code, message } => {
            Error::Sqs { operation, code: code.clone(), message: message.clone() }
        }
        Error::Entry { code, message, sender_fault } => {
            Error::Entry { code: code.clone(), message: message.clone(), sender_fault: *sender_fault }
        }
        other => Error::Config(other.to_string()),
    }
}
