//! `sluice drain`: moves JSON records from a queue into PostgreSQL or MongoDB at a capped rate.
//!
//! The queue absorbs bursts; the drain writes at most `--rate` records per second (the
//! peak-shaving knob), in batches, and deletes a message only after the database has committed
//! its record. Records are de-duplicated by their id (field `--id-field`, default `_id`): the
//! PostgreSQL sink uses `INSERT … ON CONFLICT (id) DO NOTHING`, the MongoDB sink an unordered
//! `insert_many` where a duplicate-key error counts as success. So redeliveries (SQS is
//! at-least-once), producer retries and a drain killed between commit and delete all end with
//! exactly one row per id.
//!
//! Records that cannot be parsed (not a JSON object, no usable id) or that the database refuses
//! are *not* deleted: their visibility timeout runs out, they are delivered again, and the
//! queue's redrive policy moves them to a dead-letter queue after `maxReceiveCount` receives.
//! They are counted (`rejected`) in the progress line and the summary.
//!
//! Rate guarantee: batches start at least `n / rate` seconds apart (`n` = records in the
//! previous batch; no catching up after a pause), so any 1-second window holds at most
//! `rate + batch` records by start time. The default batch is `rate / 20` (at most 5% over the
//! cap in the worst-aligned window).

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::Message;
use aws_sdk_sqs::Client;
use serde_json::Value;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::Instant;

use crate::error::{Error, Result};

pub mod postgres;

#[cfg(feature = "mongodb")]
pub mod mongo;

/// Arguments of `sluice drain`.
#[derive(Debug, Clone, clap::Args)]
pub struct DrainArgs {
    /// SQS endpoint: http://… (a local sluice), https://… (sluice over TLS, a VPC endpoint…).
    /// Default: from --queue-url when it is not an Amazon SQS URL, else Amazon SQS's regional
    /// endpoint.
    #[arg(long, env = "SQS_ENDPOINT")]
    pub endpoint: Option<String>,
    /// AWS region (default: from --queue-url if it is an Amazon SQS URL, else AWS_REGION, the
    /// profile, …).
    #[arg(long)]
    pub region: Option<String>,
    /// PEM file of CA certificates to trust for https:// besides the operating system's roots
    /// (a private CA).
    #[arg(long, env = "AWS_CA_BUNDLE", value_name = "PATH")]
    pub ca_file: Option<std::path::PathBuf>,
    /// Queue name (looked up with GetQueueUrl). Either this or --queue-url.
    #[arg(long, required_unless_present = "queue_url")]
    pub queue: Option<String>,
    /// Queue URL.
    #[arg(long)]
    pub queue_url: Option<String>,
    /// PostgreSQL connection string: drain into PostgreSQL.
    #[arg(long, value_name = "URL", conflicts_with = "mongodb", required_unless_present = "mongodb")]
    pub postgres: Option<String>,
    /// PostgreSQL table (created if missing unless --no-create-table): id TEXT PRIMARY KEY,
    /// doc JSONB, inserted_at TIMESTAMPTZ.
    #[arg(long, default_value = "operation_records")]
    pub table: String,
    /// Do not create the PostgreSQL table.
    #[arg(long)]
    pub no_create_table: bool,
    /// MongoDB connection string: drain into MongoDB (needs the `mongodb` build feature).
    #[arg(long, value_name = "URI")]
    pub mongodb: Option<String>,
    /// MongoDB database.
    #[arg(long, default_value = "sluice")]
    pub mongo_database: String,
    /// MongoDB collection.
    #[arg(long, default_value = "operation_records")]
    pub mongo_collection: String,
    /// MongoDB: store 24-hex-character ids as ObjectId instead of a string.
    #[arg(long)]
    pub mongo_object_id: bool,
    /// The record field holding its id (a string, a number, or {"$oid": "..."}).
    #[arg(long, default_value = "_id")]
    pub id_field: String,
    /// Maximum database write rate in records per second (0 = unlimited).
    #[arg(long, default_value_t = 1000)]
    pub rate: u32,
    /// Records per database write (default: rate / 20, between 10 and 1000).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// How long to wait for a full batch before writing a partial one (ms).
    #[arg(long, default_value_t = 200)]
    pub linger_ms: u64,
    /// Concurrent ReceiveMessage loops.
    #[arg(long, default_value_t = 8)]
    pub receivers: usize,
    /// Visibility timeout of received messages (s): how long a record may take from receive to
    /// delete before it is delivered again.
    #[arg(long, default_value_t = 60)]
    pub visibility_timeout: i32,
    /// Long-poll wait (s).
    #[arg(long, default_value_t = 5)]
    pub wait_time: i32,
    /// Exit once no message arrived for this many seconds and the queue is empty: nothing visible, in flight or delayed (0 = run until signalled).
    #[arg(long, default_value_t = 0)]
    pub idle_exit: u64,
    /// Seconds between progress lines on stderr (0 = none).
    #[arg(long, default_value_t = 1)]
    pub progress_secs: u64,
}

/// Counters of a drain run.
#[derive(Debug, Default)]
pub struct DrainStats {
    /// Messages received.
    pub received: AtomicU64,
    /// Records the database holds now (inserted + duplicates).
    pub committed: AtomicU64,
    /// New rows/documents.
    pub inserted: AtomicU64,
    /// Records whose id was already stored.
    pub duplicates: AtomicU64,
    /// Unparseable or refused records (left for the redrive policy).
    pub rejected: AtomicU64,
    /// Batch writes that failed transiently (the batch was retried or left to be redelivered).
    pub write_errors: AtomicU64,
    /// Messages deleted.
    pub deleted: AtomicU64,
    /// Deletes that failed (the record will be delivered again, and de-duplicated).
    pub delete_errors: AtomicU64,
    /// Messages released (visibility 0) at shutdown.
    pub released: AtomicU64,
}

impl DrainStats {
    fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

/// A parsed record ready for the sink.
#[derive(Debug, Clone)]
pub struct Record {
    /// The id (primary key / `_id`).
    pub id: String,
    /// The whole JSON document.
    pub doc: Value,
}

/// The result of one sink write.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Indices (into the written slice) now stored in the database: inserted or already there.
    pub committed: Vec<usize>,
    /// How many of `committed` were new.
    pub inserted: u64,
    /// Indices the database refused, with the reason (left for the redrive policy).
    pub rejected: Vec<(usize, String)>,
}

/// Parses a message body into a record: a JSON object with an id in `id_field` (a non-empty
/// string, a number, or extended JSON `{"$oid": "..."}`).
pub fn parse_record(body: &str, id_field: &str) -> std::result::Result<Record, String> {
    let doc: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let obj = doc.as_object().ok_or("not a JSON object")?;
    let id = match obj.get(id_field) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Object(o)) => match o.get("$oid") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(format!("field {id_field:?} is an object without \"$oid\"")),
        },
        Some(_) => return Err(format!("field {id_field:?} is not a string, number or {{\"$oid\"}}")),
        None => return Err(format!("no {id_field:?} field")),
    };
    if id.len() > 1024 {
        return Err("id longer than 1024 bytes".into());
    }
    Ok(Record { id, doc })
}

/// Default batch size for a rate: rate/20 (so one batch is at most 5% of a second's cap),
/// between 10 and 1000.
pub fn default_batch_size(rate: u32) -> usize {
    if rate == 0 {
        500
    } else {
        (rate as usize / 20).clamp(10, 1000)
    }
}

/// Spaces batch starts so that a batch of `n` records is followed by at least `n / rate`
/// seconds before the next one starts. Unused time is not saved up (no burst after a pause).
#[derive(Debug)]
pub struct Pacer {
    rate: f64,
    next: Option<Instant>,
}

impl Pacer {
    /// A pacer for `rate` records/s (0 = unlimited).
    pub fn new(rate: u32) -> Self {
        Pacer { rate: rate as f64, next: None }
    }

    /// When a batch of `n` records asked for at `now` may start; books it.
    pub fn schedule(&mut self, now: Instant, n: usize) -> Instant {
        if self.rate <= 0.0 {
            return now;
        }
        let start = match self.next {
            Some(next) if next > now => next,
            _ => now,
        };
        self.next = Some(start + Duration::from_secs_f64(n as f64 / self.rate));
        start
    }

    /// Waits until a batch of `n` may start.
    pub async fn acquire(&mut self, n: usize) {
        let at = self.schedule(Instant::now(), n);
        tokio::time::sleep_until(at).await;
    }
}

/// The database side of the drain.
pub enum Sink {
    /// PostgreSQL (boxed: it is several times the size of the MongoDB sink; one sink per drain).
    Postgres(Box<postgres::PgSink>),
    /// MongoDB.
    #[cfg(feature = "mongodb")]
    Mongo(mongo::MongoSink),
}

impl Sink {
    /// Writes `records`; `Err` means nothing can be assumed committed (retry or leave).
    pub async fn write(&self, records: &[Record]) -> Result<WriteOutcome> {
        match self {
            Sink::Postgres(s) => s.write(records).await,
            #[cfg(feature = "mongodb")]
            Sink::Mongo(s) => s.write(records).await,
        }
    }

    fn describe(&self) -> String {
        match self {
            Sink::Postgres(s) => format!("PostgreSQL table {}", s.table()),
            #[cfg(feature = "mongodb")]
            Sink::Mongo(s) => format!("MongoDB collection {}", s.namespace()),
        }
    }
}

async fn open_sink(args: &DrainArgs) -> Result<Sink> {
    if let Some(url) = &args.postgres {
        let sink = postgres::PgSink::connect(url, &args.table).await?;
        if !args.no_create_table {
            sink.ensure_table().await?;
        }
        return Ok(Sink::Postgres(Box::new(sink)));
    }
    if let Some(uri) = &args.mongodb {
        #[cfg(feature = "mongodb")]
        {
            let sink =
                mongo::MongoSink::connect(uri, &args.mongo_database, &args.mongo_collection, args.mongo_object_id)
                    .await?;
            return Ok(Sink::Mongo(sink));
        }
        #[cfg(not(feature = "mongodb"))]
        {
            let _ = uri;
            return Err(Error::Config("this build has no MongoDB sink; rebuild with `--features mongodb`".into()));
        }
    }
    Err(Error::Config("give --postgres URL or --mongodb URI".into()))
}

/// Entry point of `sluice drain`: runs until SIGINT/SIGTERM (or `--idle-exit`), prints a
/// progress line every second on stderr and a summary line on stdout.
pub async fn main(args: DrainArgs) -> ExitCode {
    let stop = async {
        shutdown_signal().await;
        eprintln!("drain: signal received, finishing the current batch");
    };
    match run(args, stop).await {
        Ok(stats) => {
            let _ = stats;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("drain: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs a drain until `stop` completes (or `--idle-exit`); returns the counters.
pub async fn run<S: std::future::Future<Output = ()>>(args: DrainArgs, stop: S) -> Result<Arc<DrainStats>> {
    if args.receivers == 0 {
        return Err(Error::Config("--receivers must be at least 1".into()));
    }
    let (endpoint, region) = endpoint_and_region(&args);
    let client = crate::client::connect(endpoint.as_deref(), region.as_deref(), args.ca_file.as_deref()).await?;
    let url = match (&args.queue_url, &args.queue) {
        (Some(u), _) => u.clone(),
        (None, Some(name)) => crate::client::queue_url(&client, name).await?,
        (None, None) => return Err(Error::Config("give --queue or --queue-url".into())),
    };
    let sink = Arc::new(open_sink(&args).await?);
    run_with(client, url, sink, args, stop).await
}

/// Where the drain connects, from the flags: `--endpoint` if given; else, for a `--queue-url`
/// that is not Amazon SQS's, its scheme and authority (the queue says where it lives); else
/// none (the regional AWS endpoint). The region: `--region`, else the one an Amazon SQS queue
/// URL names (a profile's default region may be another), else none (the AWS chain decides).
pub fn endpoint_and_region(args: &DrainArgs) -> (Option<String>, Option<String>) {
    let url_region = args.queue_url.as_deref().and_then(crate::client::aws_queue_url_region);
    let endpoint = args.endpoint.clone().filter(|e| !e.is_empty()).or_else(|| {
        let url = args.queue_url.as_deref()?;
        if url_region.is_some() {
            return None;
        }
        let (scheme, rest) = url.split_once("://")?;
        let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
        Some(format!("{scheme}://{authority}"))
    });
    let region = args.region.clone().or_else(|| url_region.map(str::to_string));
    (endpoint, region)
}

/// Like [`run`] with a given client, queue URL and sink.
pub async fn run_with<S: std::future::Future<Output = ()>>(
    client: Client,
    url: String,
    sink: Arc<Sink>,
    args: DrainArgs,
    stop: S,
) -> Result<Arc<DrainStats>> {
    let batch_size = args.batch_size.unwrap_or_else(|| default_batch_size(args.rate)).max(1);
    eprintln!(
        "drain: {url} -> {} | cap {} records/s, batches of {batch_size}, {} receivers",
        sink.describe(),
        if args.rate == 0 { "no".to_string() } else { args.rate.to_string() },
        args.receivers
    );
    let stats = Arc::new(DrainStats::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    // Received messages wait here for the writer: enough for two batches, so receivers stay
    // just ahead of the write rate and nothing waits long enough to approach its visibility timeout.
    let (msg_tx, msg_rx) = mpsc::channel::<Vec<Message>>(batch_size.div_ceil(10) * 2 + args.receivers);
    let (del_tx, del_rx) = mpsc::unbounded_channel::<String>();
    let last_msg = Arc::new(std::sync::Mutex::new(Instant::now()));
    let started = Instant::now();

    let mut receivers = tokio::task::JoinSet::new();
    for _ in 0..args.receivers {
        receivers.spawn(receive_loop(
            client.clone(),
            url.clone(),
            args.clone(),
            msg_tx.clone(),
            stats.clone(),
            last_msg.clone(),
            stop_rx.clone(),
        ));
    }
    drop(msg_tx);
    let deleter = tokio::spawn(delete_loop(client.clone(), url.clone(), del_rx, stats.clone()));
    let writer = tokio::spawn(write_loop(
        client.clone(),
        url.clone(),
        sink,
        args.clone(),
        batch_size,
        msg_rx,
        del_tx,
        stats.clone(),
        stop_rx.clone(),
    ));
    let progress = tokio::spawn(progress_loop(
        client.clone(),
        url.clone(),
        args.clone(),
        stats.clone(),
        last_msg.clone(),
        stop_tx.clone(),
        started,
    ));

    tokio::select! {
        _ = stop => {}
        _ = wait_stop(stop_rx.clone()) => {}
    }
    let _ = stop_tx.send(true);
    while receivers.join_next().await.is_some() {}
    let _ = writer.await;
    let _ = deleter.await;
    progress.abort();
    let elapsed = started.elapsed().as_secs_f64();
    let g = DrainStats::get;
    println!(
        "drain done: elapsed={elapsed:.1}s received={} committed={} inserted={} duplicates={} rejected={} deleted={} \
         write_errors={} delete_errors={} released={} avg_rate={:.0}/s",
        g(&stats.received),
        g(&stats.committed),
        g(&stats.inserted),
        g(&stats.duplicates),
        g(&stats.rejected),
        g(&stats.deleted),
        g(&stats.write_errors),
        g(&stats.delete_errors),
        g(&stats.released),
        g(&stats.committed) as f64 / elapsed.max(0.001)
    );
    Ok(stats)
}

async fn wait_stop(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn receive_loop(
    client: Client,
    url: String,
    args: DrainArgs,
    tx: mpsc::Sender<Vec<Message>>,
    stats: Arc<DrainStats>,
    last_msg: Arc<std::sync::Mutex<Instant>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if *stop.borrow() {
            return;
        }
        // Wait for room first so that received messages do not sit in our hands.
        let permit = tokio::select! {
            _ = stop.changed() => return,
            p = tx.reserve() => match p { Ok(p) => p, Err(_) => return },
        };
        let r = tokio::select! {
            _ = stop.changed() => return,
            r = client
                .receive_message()
                .queue_url(&url)
                .max_number_of_messages(10)
                .wait_time_seconds(args.wait_time.clamp(0, 20))
                .visibility_timeout(args.visibility_timeout.max(1))
                .send() => r,
        };
        match r {
            Ok(out) => {
                let msgs = out.messages().to_vec();
                if msgs.is_empty() {
                    continue;
                }
                stats.received.fetch_add(msgs.len() as u64, Ordering::Relaxed);
                *last_msg.lock().unwrap() = Instant::now();
                permit.send(msgs);
            }
            Err(e) => {
                eprintln!("drain: {}; retrying in 1 s", Error::sqs("ReceiveMessage", e));
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_loop(
    client: Client,
    url: String,
    sink: Arc<Sink>,
    args: DrainArgs,
    batch_size: usize,
    mut rx: mpsc::Receiver<Vec<Message>>,
    del_tx: mpsc::UnboundedSender<String>,
    stats: Arc<DrainStats>,
    stop: watch::Receiver<bool>,
) {
    let mut pacer = Pacer::new(args.rate);
    let linger = Duration::from_millis(args.linger_ms);
    // Give up retrying a failing write well before the messages become visible again.
    let retry_budget = Duration::from_secs((args.visibility_timeout.max(2) as u64) / 2);
    let mut pending: Vec<Message> = Vec::new();
    loop {
        // Collect a batch.
        let deadline = Instant::now() + linger;
        let mut closed = false;
        while pending.len() < batch_size {
            if *stop.borrow() {
                break;
            }
            let next = if pending.is_empty() {
                tokio::time::timeout(Duration::from_millis(250), rx.recv()).await.unwrap_or(Some(Vec::new()))
            } else {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(v) => v,
                    Err(_) => break,
                }
            };
            match next {
                Some(v) => pending.extend(v),
                None => {
                    closed = true;
                    break;
                }
            }
        }
        if *stop.borrow() {
            // Finish the batch in hand; give the rest back to the queue.
            let take = pending.len().min(batch_size);
            let mut rest: Vec<Message> = pending.split_off(take);
            rx.close();
            while let Some(v) = rx.recv().await {
                rest.extend(v);
            }
            if !pending.is_empty() {
                write_batch(&sink, &args, &mut pacer, std::mem::take(&mut pending), &del_tx, &stats, retry_budget)
                    .await;
            }
            let receipts: Vec<String> = rest.iter().filter_map(|m| m.receipt_handle().map(str::to_string)).collect();
            let n = crate::consumer::change_visibility(&client, &url, &receipts, 0).await;
            stats.released.fetch_add(n, Ordering::Relaxed);
            return;
        }
        if pending.is_empty() {
            if closed {
                return;
            }
            continue;
        }
        let take = pending.len().min(batch_size);
        let rest = pending.split_off(take);
        let batch = std::mem::replace(&mut pending, rest);
        write_batch(&sink, &args, &mut pacer, batch, &del_tx, &stats, retry_budget).await;
        if closed && pending.is_empty() {
            return;
        }
    }
}

/// Parses, paces, writes (with retries) and queues the committed messages for deletion.
async fn write_batch(
    sink: &Sink,
    args: &DrainArgs,
    pacer: &mut Pacer,
    batch: Vec<Message>,
    del_tx: &mpsc::UnboundedSender<String>,
    stats: &DrainStats,
    retry_budget: Duration,
) {
    let mut records = Vec::with_capacity(batch.len());
    let mut receipts = Vec::with_capacity(batch.len());
    for m in &batch {
        match parse_record(m.body().unwrap_or_default(), &args.id_field) {
            Ok(r) => {
                records.push(r);
                receipts.push(m.receipt_handle().unwrap_or_default().to_string());
            }
            Err(reason) => {
                stats.rejected.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(message_id = ?m.message_id(), %reason, "rejected record left for the redrive policy");
                if stats.rejected.load(Ordering::Relaxed) <= 10 {
                    eprintln!(
                        "drain: rejected message {} ({reason}); left for the redrive policy",
                        m.message_id().unwrap_or("?")
                    );
                }
            }
        }
    }
    if records.is_empty() {
        return;
    }
    let started = Instant::now();
    let mut backoff = Duration::from_millis(200);
    loop {
        pacer.acquire(records.len()).await;
        match sink.write(&records).await {
            Ok(outcome) => {
                let committed = outcome.committed.len() as u64;
                stats.committed.fetch_add(committed, Ordering::Relaxed);
                stats.inserted.fetch_add(outcome.inserted, Ordering::Relaxed);
                stats.duplicates.fetch_add(committed.saturating_sub(outcome.inserted), Ordering::Relaxed);
                stats.rejected.fetch_add(outcome.rejected.len() as u64, Ordering::Relaxed);
                for (i, reason) in &outcome.rejected {
                    tracing::debug!(id = %records[*i].id, %reason, "database refused a record");
                }
                for i in outcome.committed {
                    let _ = del_tx.send(receipts[i].clone());
                }
                return;
            }
            Err(e) => {
                stats.write_errors.fetch_add(1, Ordering::Relaxed);
                if started.elapsed() + backoff > retry_budget {
                    eprintln!("drain: write failed ({e}); leaving {} records to be delivered again", records.len());
                    return;
                }
                eprintln!("drain: write failed ({e}); retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn delete_loop(client: Client, url: String, mut rx: mpsc::UnboundedReceiver<String>, stats: Arc<DrainStats>) {
    let permits = Arc::new(Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let Some(first) = rx.recv().await else { break };
        let mut buf = vec![first];
        while buf.len() < 10 {
            match rx.try_recv() {
                Ok(r) => buf.push(r),
                Err(_) => break,
            }
        }
        let permit = permits.clone().acquire_owned().await.expect("open");
        let (client, url, stats) = (client.clone(), url.clone(), stats.clone());
        tasks.spawn(async move {
            let (ok, bad) = crate::consumer::delete_batch(&client, &url, &buf).await;
            stats.deleted.fetch_add(ok, Ordering::Relaxed);
            stats.delete_errors.fetch_add(bad, Ordering::Relaxed);
            drop(permit);
        });
        while let Some(r) = tasks.try_join_next() {
            let _ = r;
        }
    }
    while tasks.join_next().await.is_some() {}
}

#[allow(clippy::too_many_arguments)]
async fn progress_loop(
    client: Client,
    url: String,
    args: DrainArgs,
    stats: Arc<DrainStats>,
    last_msg: Arc<std::sync::Mutex<Instant>>,
    stop_tx: watch::Sender<bool>,
    started: Instant,
) {
    let every = Duration::from_secs(args.progress_secs.max(1));
    let mut last_committed = 0u64;
    let mut last_t = Instant::now();
    loop {
        tokio::time::sleep(every).await;
        let depth = crate::client::queue_depth(&client, &url).await.ok();
        let now = Instant::now();
        let committed = DrainStats::get(&stats.committed);
        let rate = (committed - last_committed) as f64 / now.duration_since(last_t).as_secs_f64();
        (last_committed, last_t) = (committed, now);
        if args.progress_secs > 0 {
            let lag = match depth {
                Some((v, nv, d)) => format!("lag ~{} (visible {v}, in flight {nv}, delayed {d})", v + nv + d),
                None => "lag ?".into(),
            };
            eprintln!(
                "drain {:>4}s: {rate:>6.0} rec/s | committed {} (new {}, dup {}) | deleted {} | rejected {} | {lag}",
                started.elapsed().as_secs(),
                committed,
                DrainStats::get(&stats.inserted),
                DrainStats::get(&stats.duplicates),
                DrainStats::get(&stats.deleted),
                DrainStats::get(&stats.rejected),
            );
        }
        if args.idle_exit > 0 {
            let idle = last_msg.lock().unwrap().elapsed();
            if idle >= Duration::from_secs(args.idle_exit) && matches!(depth, Some((0, 0, 0))) {
                eprintln!("drain: idle for {}s and the queue is empty; exiting", idle.as_secs());
                let _ = stop_tx.send(true);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ids() {
        assert_eq!(
            parse_record(r#"{"_id":"65a1b2c3d4e5f60718293a4b","op":"x"}"#, "_id").unwrap().id,
            "65a1b2c3d4e5f60718293a4b"
        );
        assert_eq!(
            parse_record(r#"{"_id":{"$oid":"65a1b2c3d4e5f60718293a4b"}}"#, "_id").unwrap().id,
            "65a1b2c3d4e5f60718293a4b"
        );
        assert_eq!(parse_record(r#"{"id":42}"#, "id").unwrap().id, "42");
        assert!(parse_record("not json", "_id").is_err());
        assert!(parse_record("[1,2]", "_id").is_err());
        assert!(parse_record(r#"{"x":1}"#, "_id").is_err());
        assert!(parse_record(r#"{"_id":""}"#, "_id").is_err());
        assert!(parse_record(r#"{"_id":[1]}"#, "_id").is_err());
    }

    fn args(flags: &[&str]) -> DrainArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            drain: DrainArgs,
        }
        let mut argv = vec!["drain", "--postgres", "postgres://x/y"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).unwrap().drain
    }

    /// Issue 27: no --endpoint means "where the queue URL points", Amazon SQS's regional
    /// endpoint for an AWS queue URL (its region winning over the profile's).
    #[test]
    fn endpoint_and_region_follow_the_queue_url() {
        // SQS_ENDPOINT (the flag's env) must not leak in from the test environment.
        if std::env::var_os("SQS_ENDPOINT").is_some() {
            eprintln!("SKIP: SQS_ENDPOINT is set");
            return;
        }
        let aws = args(&["--queue-url", "https://sqs.eu-west-1.amazonaws.com/123456789012/ops"]);
        assert_eq!(endpoint_and_region(&aws), (None, Some("eu-west-1".into())));
        let aws_flag = args(&["--queue-url", "https://sqs.eu-west-1.amazonaws.com/1/ops", "--region", "us-east-2"]);
        assert_eq!(endpoint_and_region(&aws_flag).1.as_deref(), Some("us-east-2"));
        let local = args(&["--queue-url", "https://localhost:9443/000000000000/ops"]);
        assert_eq!(endpoint_and_region(&local), (Some("https://localhost:9443".into()), None));
        let explicit = args(&["--queue-url", "https://localhost:9443/0/ops", "--endpoint", "https://127.0.0.1:9443"]);
        assert_eq!(endpoint_and_region(&explicit).0.as_deref(), Some("https://127.0.0.1:9443"));
        let by_name = args(&["--queue", "ops"]);
        assert_eq!(endpoint_and_region(&by_name), (None, None));
    }

    #[test]
    fn default_batch_is_a_twentieth_of_the_rate() {
        assert_eq!(default_batch_size(5000), 250);
        assert_eq!(default_batch_size(100), 10);
        assert_eq!(default_batch_size(1_000_000), 1000);
    }

    /// Batches asked for as fast as possible: in any 1-second window of start times the records
    /// never exceed rate + one batch; and a pause earns no burst.
    #[test]
    fn pacer_caps_every_window() {
        let rate = 5000;
        let n = default_batch_size(rate);
        let mut p = Pacer::new(rate);
        let t0 = Instant::now();
        let mut now = t0;
        let mut starts = Vec::new();
        for i in 0..400 {
            // A writer that sometimes stalls (slow database) and then asks again at once.
            if i % 37 == 0 {
                now += Duration::from_millis(300);
            }
            let s = p.schedule(now, n);
            assert!(s >= now);
            starts.push(s);
            now = s + Duration::from_millis(3);
        }
        for (i, s) in starts.iter().enumerate() {
            let in_window = starts[i..].iter().take_while(|t| t.duration_since(*s) < Duration::from_secs(1)).count();
            assert!(in_window * n <= rate as usize + n, "window at {i}: {} records", in_window * n);
            assert!(in_window * n <= rate as usize, "spacing is exact here: {} records", in_window * n);
        }
        let total = starts.last().unwrap().duration_since(t0).as_secs_f64();
        assert!(total >= (400 * n) as f64 / rate as f64 - 0.1);
    }

    #[test]
    fn unlimited_pacer_never_waits() {
        let mut p = Pacer::new(0);
        let now = Instant::now();
        assert_eq!(p.schedule(now, 1000), now);
        assert_eq!(p.schedule(now, 1000), now);
    }
}
