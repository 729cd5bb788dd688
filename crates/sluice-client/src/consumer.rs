//! [`Consumer`] (one message per handler call) and [`BatchConsumer`] (a batch per call).
//!
//! Both run N workers that long-poll the queue. A message is deleted (in `DeleteMessageBatch`
//! calls of up to 10) only after its handler reported success. While a message is held (waiting
//! or being processed) a heartbeat extends its visibility timeout, so slow handlers do not cause
//! a second delivery. A failed message is left to its visibility timeout (so the queue's
//! `maxReceiveCount` / redrive policy applies), or made visible again after
//! [`ConsumerConfig::failure_visibility`] seconds.
//!
//! Shutdown (the future passed to `run` completes): workers stop polling, a handler already
//! running may finish (up to [`ConsumerConfig::shutdown_timeout`]), and every message still held
//! that was not settled is released (visibility 0) so another consumer gets it at once.
//! Caveat: a long poll cancelled by shutdown at the very moment the server handed it messages
//! leaves those messages invisible until their visibility timeout (delivery stays at-least-once).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName,
};
use aws_sdk_sqs::Client;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use crate::error::Error;

/// The error a handler returns for a message it could not process.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Tuning of a [`Consumer`] / [`BatchConsumer`].
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Concurrent workers (each runs one handler call at a time).
    pub workers: usize,
    /// Messages per ReceiveMessage, 1..=10.
    pub max_messages: i32,
    /// Long-poll wait, 0..=20 seconds.
    pub wait_time_seconds: i32,
    /// Visibility timeout set on receive and renewed by the heartbeat, in seconds.
    pub visibility_timeout: i32,
    /// How often the heartbeat runs; messages held longer than this get their visibility
    /// renewed. Default: a third of the visibility timeout.
    pub heartbeat_interval: Option<Duration>,
    /// On handler failure: `None` leaves the message invisible until its visibility timeout
    /// expires; `Some(s)` sets its visibility to `s` seconds (0 = retry at once).
    pub failure_visibility: Option<i32>,
    /// How long running handlers may take to finish after shutdown was requested.
    pub shutdown_timeout: Duration,
    /// [`BatchConsumer`]: messages per handler call (several receives are combined).
    pub batch_size: usize,
    /// [`BatchConsumer`]: how long to collect a batch before calling the handler with less.
    pub batch_linger: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            workers: 4,
            max_messages: 10,
            wait_time_seconds: 20,
            visibility_timeout: 30,
            heartbeat_interval: None,
            failure_visibility: None,
            shutdown_timeout: Duration::from_secs(30),
            batch_size: 10,
            batch_linger: Duration::from_millis(100),
        }
    }
}

/// What a consumer did, returned by `run`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    /// Messages received.
    pub received: u64,
    /// Messages whose handler succeeded (deleted or queued for deletion).
    pub succeeded: u64,
    /// Messages whose handler failed.
    pub failed: u64,
    /// Messages released (visibility 0) at shutdown.
    pub released: u64,
    /// Visibility extensions made by the heartbeat.
    pub extended: u64,
    /// Messages deleted.
    pub deleted: u64,
    /// Deletions that failed (the message will be delivered again).
    pub delete_errors: u64,
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    succeeded: AtomicU64,
    failed: AtomicU64,
    released: AtomicU64,
    extended: AtomicU64,
    deleted: AtomicU64,
    delete_errors: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ConsumerStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ConsumerStats {
            received: g(&self.received),
            succeeded: g(&self.succeeded),
            failed: g(&self.failed),
            released: g(&self.released),
            extended: g(&self.extended),
            deleted: g(&self.deleted),
            delete_errors: g(&self.delete_errors),
        }
    }
}

/// Per-message results of a [`BatchConsumer`] handler: every message not marked failed succeeded.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    failed: HashSet<String>,
}

impl BatchOutcome {
    /// Every message succeeded.
    pub fn success() -> Self {
        Self::default()
    }
    /// Every message of `batch` failed.
    pub fn all_failed(batch: &[Message]) -> Self {
        BatchOutcome { failed: batch.iter().filter_map(|m| m.message_id().map(str::to_string)).collect() }
    }
    /// Marks the message with this `MessageId` as failed.
    pub fn fail(&mut self, message_id: impl Into<String>) -> &mut Self {
        self.failed.insert(message_id.into());
        self
    }
    /// True if the message with this id was marked failed.
    pub fn is_failed(&self, message_id: &str) -> bool {
        self.failed.contains(message_id)
    }
}

enum Handler {
    One(Arc<dyn Fn(Message) -> BoxFuture<Result<(), HandlerError>> + Send + Sync>),
    Batch(Arc<dyn Fn(Vec<Message>) -> BoxFuture<BatchOutcome> + Send + Sync>),
}

impl Clone for Handler {
    fn clone(&self) -> Self {
        match self {
            Handler::One(h) => Handler::One(h.clone()),
            Handler::Batch(h) => Handler::Batch(h.clone()),
        }
    }
}

/// Runs a handler for each message of a queue with N workers. See the module docs.
pub struct Consumer {
    client: Client,
    url: String,
    config: ConsumerConfig,
}

impl Consumer {
    /// A consumer of `queue_url` with the default config.
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self::with_config(client, queue_url, ConsumerConfig::default())
    }

    /// A consumer with an explicit config.
    pub fn with_config(client: Client, queue_url: impl Into<String>, config: ConsumerConfig) -> Self {
        Consumer { client, url: queue_url.into(), config }
    }

    /// Processes messages with `handler` until `shutdown` completes; then finishes or releases
    /// what it holds and returns the counters.
    pub async fn run<F, Fut, S>(self, handler: F, shutdown: S) -> ConsumerStats
    where
        F: Fn(Message) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
        S: Future<Output = ()>,
    {
        let h: Arc<dyn Fn(Message) -> BoxFuture<Result<(), HandlerError>> + Send + Sync> =
            Arc::new(move |m| Box::pin(handler(m)));
        run_core(self.client, self.url, self.config, Handler::One(h), shutdown).await
    }
}

/// Runs a handler for batches of messages with N workers; the handler reports per-message
/// failures with a [`BatchOutcome`]. See the module docs.
pub struct BatchConsumer {
    client: Client,
    url: String,
    config: ConsumerConfig,
}

impl BatchConsumer {
    /// A batch consumer of `queue_url` with the default config (batches of up to 10).
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self::with_config(client, queue_url, ConsumerConfig::default())
    }

    /// A batch consumer with an explicit config.
    pub fn with_config(client: Client, queue_url: impl Into<String>, config: ConsumerConfig) -> Self {
        BatchConsumer { client, url: queue_url.into(), config }
    }

    /// Processes batches with `handler` until `shutdown` completes; see [`Consumer::run`].
    pub async fn run<F, Fut, S>(self, handler: F, shutdown: S) -> ConsumerStats
    where
        F: Fn(Vec<Message>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = BatchOutcome> + Send + 'static,
        S: Future<Output = ()>,
    {
        let h: Arc<dyn Fn(Vec<Message>) -> BoxFuture<BatchOutcome> + Send + Sync> =
            Arc::new(move |m| Box::pin(handler(m)));
        run_core(self.client, self.url, self.config, Handler::Batch(h), shutdown).await
    }
}

struct Shared {
    client: Client,
    url: String,
    config: ConsumerConfig,
    /// Receipt handle -> when its visibility was last set.
    held: Mutex<HashMap<String, Instant>>,
    counters: Arc<Counters>,
    deletes: Mutex<Option<mpsc::UnboundedSender<String>>>,
}

impl Shared {
    fn hold(&self, msgs: &[Message]) {
        let now = Instant::now();
        let mut held = self.held.lock().unwrap();
        for m in msgs {
            if let Some(r) = m.receipt_handle() {
                held.insert(r.to_string(), now);
            }
        }
    }

    fn unhold(&self, receipt: &str) -> bool {
        self.held.lock().unwrap().remove(receipt).is_some()
    }

    async fn receive(&self, max: i32, wait: i32) -> Result<Vec<Message>, Error> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(max.clamp(1, 10))
            .wait_time_seconds(wait.clamp(0, 20))
            .visibility_timeout(self.config.visibility_timeout)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| Error::sqs("ReceiveMessage", e))?;
        let msgs = out.messages().to_vec();
        self.counters.received.fetch_add(msgs.len() as u64, Ordering::Relaxed);
        self.hold(&msgs);
        Ok(msgs)
    }

    async fn settle(&self, m: &Message, ok: bool) {
        let Some(receipt) = m.receipt_handle() else { return };
        if !self.unhold(receipt) {
            return; // already released
        }
        if ok {
            self.counters.succeeded.fetch_add(1, Ordering::Relaxed);
            if let Some(tx) = self.deletes.lock().unwrap().as_ref() {
                let _ = tx.send(receipt.to_string());
            }
        } else {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
            if let Some(v) = self.config.failure_visibility {
                let r = self
                    .client
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(receipt)
                    .visibility_timeout(v)
                    .send()
                    .await;
                if let Err(e) = r {
                    tracing::warn!(error = %Error::sqs("ChangeMessageVisibility", e), "cannot reset the visibility of a failed message");
                }
            }
        }
    }

    /// Sets the visibility of `receipts` to `timeout` (batches of 10); returns how many succeeded.
    async fn change_visibility(&self, receipts: &[String], timeout: i32) -> u64 {
        change_visibility(&self.client, &self.url, receipts, timeout).await
    }

    async fn release(&self, msgs: &[Message]) {
        let receipts: Vec<String> =
            msgs.iter().filter_map(|m| m.receipt_handle()).filter(|r| self.unhold(r)).map(str::to_string).collect();
        let n = self.change_visibility(&receipts, 0).await;
        self.counters.released.fetch_add(n, Ordering::Relaxed);
    }
}

/// Sets the visibility of `receipts` to `timeout` seconds in ChangeMessageVisibilityBatch calls
/// of up to 10; returns how many entries succeeded.
pub(crate) async fn change_visibility(client: &Client, url: &str, receipts: &[String], timeout: i32) -> u64 {
    let mut ok = 0;
    for chunk in receipts.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .visibility_timeout(timeout)
                    .build()
                    .expect("id and receipt set")
            })
            .collect();
        match client.change_message_visibility_batch().queue_url(url).set_entries(Some(entries)).send().await {
            Ok(out) => ok += out.successful().len() as u64,
            Err(e) => {
                tracing::warn!(error = %Error::sqs("ChangeMessageVisibilityBatch", e), "cannot change visibility")
            }
        }
    }
    ok
}

/// Deletes receipt handles in DeleteMessageBatch calls; returns (deleted, failed).
pub(crate) async fn delete_batch(client: &Client, url: &str, receipts: &[String]) -> (u64, u64) {
    let (mut ok, mut bad) = (0, 0);
    for chunk in receipts.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(r)
                    .build()
                    .expect("id and receipt set")
            })
            .collect();
        match client.delete_message_batch().queue_url(url).set_entries(Some(entries)).send().await {
            Ok(out) => {
                ok += out.successful().len() as u64;
                bad += out.failed().len() as u64;
            }
            Err(e) => {
                tracing::warn!(error = %Error::sqs("DeleteMessageBatch", e), "delete failed; the messages will be delivered again");
                bad += chunk.len() as u64;
            }
        }
    }
    (ok, bad)
}

async fn run_core<S: Future<Output = ()>>(
    client: Client,
    url: String,
    mut config: ConsumerConfig,
    handler: Handler,
    shutdown: S,
) -> ConsumerStats {
    config.workers = config.workers.max(1);
    config.batch_size = config.batch_size.max(1);
    config.visibility_timeout = config.visibility_timeout.max(1);
    let (del_tx, del_rx) = mpsc::unbounded_channel();
    let counters = Arc::new(Counters::default());
    let deleter = tokio::spawn(run_deleter(client.clone(), url.clone(), counters.clone(), del_rx));
    let shared = Arc::new(Shared {
        client,
        url,
        config: config.clone(),
        held: Mutex::new(HashMap::new()),
        counters: counters.clone(),
        deletes: Mutex::new(Some(del_tx)),
    });
    let (stop_tx, stop_rx) = watch::channel(false);

    let heartbeat = tokio::spawn(run_heartbeat(shared.clone(), stop_rx.clone()));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..config.workers {
        workers.spawn(run_worker(shared.clone(), handler.clone(), stop_rx.clone()));
    }

    shutdown.await;
    let _ = stop_tx.send(true);
    let finished =
        tokio::time::timeout(config.shutdown_timeout, async { while workers.join_next().await.is_some() {} }).await;
    if finished.is_err() {
        tracing::warn!("handlers still running after the shutdown timeout; abandoning them");
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
    // Whatever is still held (abandoned handlers) goes back to the queue now.
    let leftover: Vec<String> = shared.held.lock().unwrap().drain().map(|(r, _)| r).collect();
    if !leftover.is_empty() {
        let n = shared.change_visibility(&leftover, 0).await;
        shared.counters.released.fetch_add(n, Ordering::Relaxed);
    }
    heartbeat.abort();
    let _ = heartbeat.await;
    // Close the delete channel and wait for the last deletes.
    shared.deletes.lock().unwrap().take();
    let _ = deleter.await;
    counters.snapshot()
}

async fn run_worker(shared: Arc<Shared>, handler: Handler, mut stop: watch::Receiver<bool>) {
    let cfg = &shared.config;
    loop {
        if *stop.borrow() {
            return;
        }
        let received = tokio::select! {
            _ = stop.changed() => return,
            r = shared.receive(cfg.max_messages, cfg.wait_time_seconds) => r,
        };
        let mut msgs = match received {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "receive failed; retrying in 1 s");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if msgs.is_empty() {
            continue;
        }
        match &handler {
            Handler::One(h) => {
                let mut i = 0;
                while i < msgs.len() {
                    if *stop.borrow() {
                        shared.release(&msgs[i..]).await;
                        return;
                    }
                    let m = msgs[i].clone();
                    let ok = match h(m.clone()).await {
                        Ok(()) => true,
                        Err(e) => {
                            tracing::debug!(error = %e, message_id = ?m.message_id(), "handler failed");
                            false
                        }
                    };
                    shared.settle(&m, ok).await;
                    i += 1;
                }
            }
            Handler::Batch(h) => {
                let until = Instant::now() + cfg.batch_linger;
                while msgs.len() < cfg.batch_size && Instant::now() < until && !*stop.borrow() {
                    let want = (cfg.batch_size - msgs.len()).min(10) as i32;
                    match shared.receive(want, 0).await {
                        Ok(more) if !more.is_empty() => msgs.extend(more),
                        _ => break,
                    }
                }
                if *stop.borrow() {
                    shared.release(&msgs).await;
                    return;
                }
                let outcome = h(msgs.clone()).await;
                for m in &msgs {
                    let failed = m.message_id().is_some_and(|id| outcome.is_failed(id));
                    shared.settle(m, !failed).await;
                }
            }
        }
    }
}

async fn run_heartbeat(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let vis = shared.config.visibility_timeout;
    let interval = shared.config.heartbeat_interval.unwrap_or(Duration::from_millis((vis as u64 * 1000 / 3).max(200)));
    loop {
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(interval) => {}
        }
        // Keep extending during shutdown too: handlers may still be finishing.
        let now = Instant::now();
        let due: Vec<String> = {
            let held = shared.held.lock().unwrap();
            held.iter().filter(|(_, t)| now.duration_since(**t) >= interval).map(|(r, _)| r.clone()).collect()
        };
        if due.is_empty() {
            continue;
        }
        let n = shared.change_visibility(&due, vis).await;
        shared.counters.extended.fetch_add(n, Ordering::Relaxed);
        let mut held = shared.held.lock().unwrap();
        for r in &due {
            if let Some(t) = held.get_mut(r) {
                *t = now;
            }
        }
    }
}

async fn run_deleter(client: Client, url: String, counters: Arc<Counters>, mut rx: mpsc::UnboundedReceiver<String>) {
    let permits = Arc::new(Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    let mut closed = false;
    while !closed {
        let Some(first) = rx.recv().await else { break };
        let mut buf = vec![first];
        let deadline = Instant::now() + Duration::from_millis(20);
        while buf.len() < 10 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => buf.push(r),
                Ok(None) => {
                    closed = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let permit = permits.clone().acquire_owned().await.expect("open");
        let (client, url, counters) = (client.clone(), url.clone(), counters.clone());
        tasks.spawn(async move {
            let (ok, bad) = delete_batch(&client, &url, &buf).await;
            counters.deleted.fetch_add(ok, Ordering::Relaxed);
            counters.delete_errors.fetch_add(bad, Ordering::Relaxed);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
}
