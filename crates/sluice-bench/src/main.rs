//! `sluice-bench`: named load scenarios against any SQS endpoint (AWS JSON 1.0 over hyper http1,
//! one keep-alive connection per worker), a ceiling server, and (feature `rabbitmq`) a RabbitMQ
//! peer for the pipeline scenario. Progress goes to stderr once a second; each scenario ends with
//! one JSON result line on stdout.

mod ceiling;
mod client;
#[cfg(feature = "rabbitmq")]
mod rabbit;
mod run;
mod sign;
mod worker;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use client::{Entry, Result, Sqs, IDS};
use run::{drive, ms, now_us, percentiles, round, rss_bytes, Run};
use serde_json::json;
use worker::{spawn_workers, Did, Step};

#[derive(Parser)]
#[command(name = "sluice-bench", about = "Load generator for SQS endpoints")]
struct Cli {
    /// Tokio worker threads for the load generator (0 = one per core).
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    /// Sign every request with SigV4 with this access key (for a server that verifies, e.g.
    /// sluice started with SLUICE_ACCESS_KEY_ID). Without it requests carry a dummy signature.
    #[arg(long, global = true, env = "AWS_ACCESS_KEY_ID", requires = "secret_access_key")]
    access_key_id: Option<String>,
    /// The secret of --access-key-id.
    #[arg(long, global = true, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, requires = "access_key_id")]
    secret_access_key: Option<String>,
    /// The region signatures are scoped to.
    #[arg(long, global = true, default_value = "us-east-1")]
    region: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// SendMessage (--batch 1) or SendMessageBatch (--batch 10) as fast as possible.
    Send(Common),
    /// Pre-fill a queue (--prefill), then ReceiveMessage 10 + DeleteMessageBatch until drained or --duration;
    /// with --queue-name, drain that existing queue for --duration instead (no fill, kept).
    Receive(Common),
    /// Producers and consumers at once: throughput and send->receive latency (timestamp in the body).
    /// `--endpoint amqp://...` runs it against RabbitMQ (feature `rabbitmq`).
    Pipeline(Common),
    /// Pipeline on a FIFO queue with --groups message groups (skipped if the server has no FIFO).
    Fifo(Common),
    /// Receive rate with --backlog messages queued vs a nearly empty queue (--baseline messages);
    /// --fifo for a FIFO queue with --groups message groups.
    Backlog(Common),
    /// --queues queues at once: create them, then send and receive (long polling, --wait) across all of them.
    ManyQueues(Common),
    /// The ceiling server: hyper http1 keep-alive answering every request with a fixed SendMessage response.
    Ceiling {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Waits until --queue-name answers a ReceiveMessage with a message; prints the seconds it took.
    Probe {
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        queue_name: String,
        #[arg(long, default_value_t = 120.0)]
        timeout: f64,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// http://host:port of the SQS endpoint (or amqp://user:pass@host:port/%2f for pipeline).
    #[arg(long)]
    endpoint: String,
    /// Label for the result line (default: the endpoint).
    #[arg(long)]
    target: Option<String>,
    /// Connections (one worker each).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds of measurement.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before measuring (send, pipeline, fifo, many-queues).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 200)]
    body_size: usize,
    /// Messages per send request (1 = SendMessage, 2..10 = SendMessageBatch).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// receive: messages to pre-fill.
    #[arg(long, default_value_t = 300_000)]
    prefill: u64,
    /// backlog: messages queued for the "full" measurement.
    #[arg(long, default_value_t = 1_000_000)]
    backlog: u64,
    /// backlog: messages in the "nearly empty" baseline queue.
    #[arg(long, default_value_t = 100_000)]
    baseline: u64,
    /// many-queues: how many queues.
    #[arg(long, default_value_t = 1000)]
    queues: usize,
    /// fifo / backlog --fifo: message groups (default 1000 for fifo, 10000 for backlog --fifo).
    #[arg(long)]
    groups: Option<usize>,
    /// backlog: use FIFO queues (ContentBasedDeduplication off, a unique MessageDeduplicationId
    /// per message, MessageGroupId spread over --groups).
    #[arg(long)]
    fifo: bool,
    /// pipeline/fifo/many-queues: producer connections (default: half of --connections).
    #[arg(long)]
    producers: Option<usize>,
    /// pipeline/fifo: total send rate limit in msg/s (0 = as fast as possible).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// pipeline/fifo/many-queues: ReceiveMessage WaitTimeSeconds of the consumers (long polling;
    /// 0 = short polling).
    #[arg(long, default_value_t = 1)]
    wait: u32,
    /// backlog: the server's pid, to read VmRSS before and after filling.
    #[arg(long)]
    server_pid: Option<u32>,
    /// backlog: name of the big queue (kept with --keep, for a restart test with `probe`);
    /// receive: an existing queue to drain instead of a pre-filled new one.
    #[arg(long)]
    queue_name: Option<String>,
    /// Leave the queues in place at the end.
    #[arg(long)]
    keep: bool,
}

impl Common {
    fn label(&self) -> String {
        self.target.clone().unwrap_or_else(|| self.endpoint.clone())
    }
    fn authority(&self) -> Result<String> {
        client::authority(&self.endpoint)
    }
    fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }
    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }
    fn split(&self) -> (usize, usize) {
        let p = self.producers.unwrap_or(self.connections / 2).clamp(1, self.connections.max(2) - 1);
        (p, self.connections.max(2) - p)
    }
}

fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    format!("sb-{prefix}-{}-{}", std::process::id(), t % 1_000_000_000)
}

/// A body of exactly `size` bytes (at least 20) beginning with a 20-digit timestamp.
fn body(size: usize, ts: u64) -> String {
    let mut s = format!("{ts:020}");
    let size = size.max(20);
    s.extend(std::iter::repeat_n('x', size - 20));
    s
}

fn body_ts(b: &str) -> Option<u64> {
    b.get(..20)?.parse().ok()
}

fn emit(v: serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

/// Sends `batch` messages (SendMessage when 1) with fresh timestamps; returns messages sent.
async fn send_some(
    c: &mut Sqs,
    url: &str,
    batch: usize,
    size: usize,
    fifo: Option<(&AtomicU64, usize)>,
) -> Result<u64> {
    let ts = now_us();
    let b = body(size, ts);
    let (mut groups, mut dedups) = (Vec::new(), Vec::new());
    if let Some((seq, ngroups)) = fifo {
        for _ in 0..batch {
            let n = seq.fetch_add(1, Relaxed);
            groups.push(format!("g{}", (n.wrapping_mul(2654435761)) % ngroups as u64));
            dedups.push(format!("d{}-{n}", std::process::id()));
        }
    }
    if batch <= 1 {
        return c.send(url, &b, groups.first().map(|s| s.as_str()), dedups.first().map(|s| s.as_str())).await;
    }
    let entries: Vec<Entry> = (0..batch.min(10))
        .map(|i| Entry {
            Id: IDS[i],
            MessageBody: &b,
            MessageGroupId: groups.get(i).map(|s| s.as_str()),
            MessageDeduplicationId: dedups.get(i).map(|s| s.as_str()),
        })
        .collect();
    c.send_batch(url, &entries).await
}

/// Fills `url` with `n` messages using batches of 10 over `conns` connections. `fifo`: the number
/// of message groups (a FIFO queue: groups spread evenly, a unique deduplication id per message).
async fn fill(
    auth: &str,
    url: &str,
    n: u64,
    conns: usize,
    size: usize,
    label: &str,
    fifo: Option<usize>,
) -> Result<f64> {
    let run = Run::new();
    let claimed = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let tasks = spawn_workers(conns, &run, auth, |_| FillStep {
        url: url.to_string(),
        n,
        size,
        claimed: claimed.clone(),
        fifo: fifo.map(|g| (seq.clone(), g)),
        pending: None,
    });
    let all = futures_join(tasks);
    tokio::pin!(all);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut last = 0;
    loop {
        tokio::select! {
            _ = &mut all => break,
            _ = tick.tick() => {
                let s = run.sent.load(Relaxed);
                eprintln!("[{label} fill] t={:5.1}s  {:>9} msg/s  queued {s} / {n}  errors {}", t0.elapsed().as_secs_f64(), s - last, run.errs.load(Relaxed));
                last = s;
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "[{label} fill] {} messages in {secs:.1}s ({:.0} msg/s)",
        run.sent.load(Relaxed),
        run.sent.load(Relaxed) as f64 / secs
    );
    Ok(secs)
}

/// A fill worker: claims the next 10 of the `n` messages (fewer at the end) and sends them as one
/// batch, the same chunk again after an error, until all are claimed.
struct FillStep {
    url: String,
    n: u64,
    size: usize,
    /// Messages claimed by all the fill's workers.
    claimed: Arc<AtomicU64>,
    /// FIFO: the fill's message counter (spreads the groups) and the number of groups.
    fifo: Option<(Arc<AtomicU64>, usize)>,
    /// The claimed chunk not sent yet (after an error).
    pending: Option<usize>,
}

impl Step for FillStep {
    const WHAT: &'static str = "fill";
    const ERROR_PAUSE: Duration = Duration::from_millis(50);

    async fn step(&mut self, c: &mut Sqs, _: &Run, _: &mut Vec<u32>) -> Result<Option<Did>> {
        let k = match self.pending {
            Some(k) => k,
            None => {
                let start = self.claimed.fetch_add(10, Relaxed);
                if start >= self.n {
                    return Ok(None);
                }
                let k = (self.n - start).min(10) as usize;
                self.pending = Some(k);
                k
            }
        };
        let f = self.fifo.as_ref().map(|(seq, g)| (&**seq, *g));
        let m = send_some(c, &self.url, k.max(2), self.size, f).await?;
        self.pending = None;
        Ok(Some(Did { sent: m, reqs: 1, ..Did::default() }))
    }
}

async fn futures_join<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        if let Ok(v) = t.await {
            out.push(v);
        }
    }
    out
}

async fn setup_queue(auth: &str, name: &str, attrs: &[(&str, &str)]) -> Result<String> {
    let mut c = Sqs::connect(auth).await?;
    c.create_queue(name, attrs).await
}

async fn teardown(auth: &str, urls: &[String], keep: bool) {
    if keep {
        return;
    }
    if let Ok(mut c) = Sqs::connect(auth).await {
        for u in urls {
            if let Err(e) = c.delete_queue(u).await {
                eprintln!("  DeleteQueue {u}: {e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// send

/// A send worker: SendMessage (or SendMessageBatch of `batch`) as fast as it can, each request
/// timed.
struct SendStep {
    url: String,
    batch: usize,
    size: usize,
}

impl Step for SendStep {
    const WHAT: &'static str = "send";

    async fn step(&mut self, c: &mut Sqs, _: &Run, _: &mut Vec<u32>) -> Result<Option<Did>> {
        let m = send_some(c, &self.url, self.batch, self.size, None).await?;
        Ok(Some(Did { sent: m, reqs: 1, timed: true, ..Did::default() }))
    }
}

async fn scenario_send(a: &Common) -> Result<()> {
    let auth = a.authority()?;
    let label = a.label();
    let url = setup_queue(&auth, &unique("send"), &[]).await?;
    let run = Run::new();
    let tasks =
        spawn_workers(a.connections, &run, &auth, |_| SendStep { url: url.clone(), batch: a.batch, size: a.body_size });
    let w = drive(&run, &format!("{label} send b{}", a.batch), a.warmup(), a.duration(), |_| false).await;
    let lat: Vec<u32> = futures_join(tasks).await.into_iter().flatten().collect();
    let (p50, p99, p999) = percentiles(lat);
    teardown(&auth, &[url], a.keep).await;
    emit(json!({
        "scenario": if a.batch > 1 { format!("send-batch{}", a.batch) } else { "send".to_string() },
        "target": label, "msgs_per_s": round(w.rate(w.d.sent)), "requests_per_s": round(w.rate(w.d.reqs)),
        "p50_ms": ms(p50), "p99_ms": ms(p99), "p999_ms": ms(p999), "latency": "request",
        "errors": w.d.errs, "duration_s": round(w.secs), "connections": a.connections, "batch": a.batch, "body_size": a.body_size,
    }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// receive (also the measuring half of backlog)

struct Drain {
    msgs_per_s: f64,
    reqs_per_s: f64,
    p: (f64, f64, f64),
    errs: u64,
    secs: f64,
    empty: u64,
}

/// A receive worker: ReceiveMessage 10 (no waiting) + DeleteMessageBatch, the pair timed; after an
/// empty receive it pauses 5 ms.
struct DrainStep {
    url: String,
}

impl Step for DrainStep {
    const WHAT: &'static str = "receive";

    async fn step(&mut self, c: &mut Sqs, _: &Run, _: &mut Vec<u32>) -> Result<Option<Did>> {
        let msgs = c.receive(&self.url, 10, 0, None).await?;
        let n = msgs.len() as u64;
        c.delete_batch(&self.url, &msgs).await?;
        Ok(Some(if n == 0 {
            Did { reqs: 1, empty: true, pause: Duration::from_millis(5), ..Did::default() }
        } else {
            Did { recv: n, reqs: 2, timed: true, ..Did::default() }
        }))
    }
}

/// Receive 10 + DeleteMessageBatch over all connections until `n` messages were received or
/// `duration` passed (no warm-up: the window starts at once).
async fn drain(auth: &str, url: &str, n: u64, a: &Common, label: &str) -> Drain {
    let run = Run::new();
    let tasks = spawn_workers(a.connections, &run, auth, |_| DrainStep { url: url.to_string() });
    let w = drive(&run, label, Duration::ZERO, a.duration(), |s| s.recv >= n).await;
    let lat: Vec<u32> = futures_join(tasks).await.into_iter().flatten().collect();
    Drain {
        msgs_per_s: w.rate(w.d.recv),
        reqs_per_s: w.rate(w.d.reqs),
        p: percentiles(lat),
        errs: w.d.errs,
        secs: w.secs,
        empty: w.d.empty,
    }
}

async fn scenario_receive(a: &Common) -> Result<()> {
    let auth = a.authority()?;
    let label = a.label();
    // With --queue-name: drain that existing queue for --duration, no fill, and keep it (to measure
    // a backlog left by `backlog --keep` again, e.g. with another build of the server).
    let (url, n, keep) = match &a.queue_name {
        Some(name) => {
            let attrs: &[(&str, &str)] = if name.ends_with(".fifo") { &[("FifoQueue", "true")] } else { &[] };
            (setup_queue(&auth, name, attrs).await?, u64::MAX, true)
        }
        None => {
            let url = setup_queue(&auth, &unique("recv"), &[]).await?;
            fill(&auth, &url, a.prefill, a.connections, a.body_size, &label, None).await?;
            (url, a.prefill, a.keep)
        }
    };
    let d = drain(&auth, &url, n, a, &format!("{label} receive")).await;
    teardown(&auth, &[url], keep).await;
    emit(json!({
        "scenario": "receive", "target": label, "msgs_per_s": round(d.msgs_per_s), "requests_per_s": round(d.reqs_per_s),
        "p50_ms": ms(d.p.0), "p99_ms": ms(d.p.1), "p999_ms": ms(d.p.2), "latency": "receive+delete",
        "errors": d.errs, "empty_receives": d.empty, "duration_s": round(d.secs), "prefill": a.prefill,
        "connections": a.connections, "body_size": a.body_size,
    }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// pipeline / fifo

/// A pipeline producer: sends as fast as it can, or paced to `rate` messages per second.
struct ProduceStep {
    url: String,
    batch: usize,
    size: usize,
    /// FIFO: the scenario's message counter (spreads the groups) and the number of groups.
    fifo: Option<(Arc<AtomicU64>, usize)>,
    /// This producer's share of `--rate` in msg/s (0: no limit).
    rate: f64,
    /// When the next send is due (with a rate), from the first step on.
    next: Option<tokio::time::Instant>,
}

impl Step for ProduceStep {
    const WHAT: &'static str = "send";

    async fn step(&mut self, c: &mut Sqs, _: &Run, _: &mut Vec<u32>) -> Result<Option<Did>> {
        if self.rate > 0.0 {
            let next = self.next.get_or_insert_with(tokio::time::Instant::now);
            tokio::time::sleep_until(*next).await;
            *next += Duration::from_secs_f64(self.batch.max(1) as f64 / self.rate);
        }
        let f = self.fifo.as_ref().map(|(seq, g)| (&**seq, *g));
        let m = send_some(c, &self.url, self.batch, self.size, f).await?;
        Ok(Some(Did { sent: m, reqs: 1, ..Did::default() }))
    }
}

/// A pipeline consumer: ReceiveMessage 10 (long polling `wait` s) + DeleteMessageBatch; the
/// latency is send->receive, from the timestamp at the start of each body.
struct ConsumeStep {
    url: String,
    wait: u32,
}

impl Step for ConsumeStep {
    const WHAT: &'static str = "receive";

    async fn step(&mut self, c: &mut Sqs, run: &Run, lat: &mut Vec<u32>) -> Result<Option<Did>> {
        let msgs = c.receive(&self.url, 10, self.wait, None).await?;
        let now = now_us();
        if run.measuring() {
            for m in &msgs {
                if let Some(ts) = body_ts(&m.body) {
                    lat.push(now.saturating_sub(ts).min(u32::MAX as u64) as u32);
                }
            }
        }
        let n = msgs.len() as u64;
        c.delete_batch(&self.url, &msgs).await?;
        Ok(Some(if n == 0 {
            Did { reqs: 1, empty: true, ..Did::default() }
        } else {
            Did { recv: n, reqs: 2, ..Did::default() }
        }))
    }
}

async fn pipeline(a: &Common, fifo: bool) -> Result<()> {
    let auth = a.authority()?;
    let label = a.label();
    let scenario = if fifo { "fifo" } else { "pipeline" };
    let url = if fifo {
        let name = format!("{}.fifo", unique("fifo"));
        match setup_queue(&auth, &name, &[("FifoQueue", "true")]).await {
            Ok(u) => u,
            Err(e) => {
                eprintln!("[{label} fifo] skipped: the server does not support FIFO queues ({e})");
                emit(json!({"scenario": "fifo", "target": label, "skipped": format!("no FIFO support: {e}")}));
                return Ok(());
            }
        }
    } else {
        setup_queue(&auth, &unique("pipe"), &[]).await?
    };
    let (np, nc) = a.split();
    let run = Run::new();
    let seq = Arc::new(AtomicU64::new(0));
    let per_producer_rate = if a.rate > 0.0 { a.rate / np as f64 } else { 0.0 };
    let groups = a.groups.unwrap_or(1000);
    let producers = spawn_workers(np, &run, &auth, |_| ProduceStep {
        url: url.clone(),
        batch: a.batch,
        size: a.body_size,
        fifo: fifo.then(|| (seq.clone(), groups)),
        rate: per_producer_rate,
        next: None,
    });
    let consumers = spawn_workers(nc, &run, &auth, |_| ConsumeStep { url: url.clone(), wait: a.wait });
    let w = drive(&run, &format!("{label} {scenario}"), a.warmup(), a.duration(), |_| false).await;
    futures_join(producers).await;
    let lat: Vec<u32> = futures_join(consumers).await.into_iter().flatten().collect();
    let (p50, p99, p999) = percentiles(lat);
    let left = match Sqs::connect(&auth).await {
        Ok(mut c) => c.queue_depth(&url).await.ok(),
        Err(_) => None,
    };
    teardown(&auth, &[url], a.keep).await;
    emit(json!({
        "scenario": scenario, "target": label, "msgs_per_s": round(w.rate(w.d.recv)), "sent_msgs_per_s": round(w.rate(w.d.sent)),
        "requests_per_s": round(w.rate(w.d.reqs)), "p50_ms": ms(p50), "p99_ms": ms(p99), "p999_ms": ms(p999),
        "latency": "send->receive", "errors": w.d.errs, "empty_receives": w.d.empty, "left_in_queue": left,
        "duration_s": round(w.secs), "producers": np, "consumers": nc, "batch": a.batch, "body_size": a.body_size,
        "rate_limit": a.rate, "wait_s": a.wait, "groups": if fifo { Some(a.groups.unwrap_or(1000)) } else { None },
    }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// backlog

async fn scenario_backlog(a: &Common) -> Result<()> {
    let auth = a.authority()?;
    let label = a.label();
    // FIFO: groups spread evenly (so receives are not serialised on a few groups: a FIFO group
    // serves one in-flight batch at a time), a unique deduplication id per message.
    let fifo = a.fifo.then(|| a.groups.unwrap_or(10_000).max(1));
    let kind = if fifo.is_some() { "backlog fifo" } else { "backlog" };
    let attrs: &[(&str, &str)] =
        if fifo.is_some() { &[("FifoQueue", "true"), ("ContentBasedDeduplication", "false")] } else { &[] };
    let name_of = |n: String| if fifo.is_some() && !n.ends_with(".fifo") { format!("{n}.fifo") } else { n };
    // 1. The nearly-empty baseline: a small queue, drained.
    let small = match setup_queue(&auth, &name_of(unique("small")), attrs).await {
        Ok(u) => u,
        Err(e) if fifo.is_some() => {
            eprintln!("[{label} {kind}] skipped: the server does not support FIFO queues ({e})");
            emit(json!({"scenario": "backlog", "target": label, "fifo": true, "backlog": a.backlog,
                "skipped": format!("no FIFO support: {e}")}));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    fill(&auth, &small, a.baseline, a.connections, a.body_size, &format!("{label} {kind} baseline"), fifo).await?;
    let base = drain(&auth, &small, a.baseline, a, &format!("{label} {kind} baseline receive")).await;
    teardown(&auth, &[small], false).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 2. The backlog: RSS before and after filling, then the receive rate with it queued.
    let rss0 = a.server_pid.and_then(rss_bytes);
    let name = name_of(a.queue_name.clone().unwrap_or_else(|| unique("backlog")));
    let big = setup_queue(&auth, &name, attrs).await?;
    let fill_secs = fill(&auth, &big, a.backlog, a.connections, a.body_size, &format!("{label} {kind}"), fifo).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss1 = a.server_pid.and_then(rss_bytes);
    let depth = Sqs::connect(&auth).await?.queue_depth(&big).await.ok();
    // Receive at most 30% of it, so the rate is measured with >= 70% of the backlog queued (and
    // most of it is left for a restart test).
    let full = drain(&auth, &big, a.backlog * 3 / 10, a, &format!("{label} {kind} receive")).await;
    let rss2 = a.server_pid.and_then(rss_bytes);
    teardown(&auth, &[big], a.keep).await;
    let per_msg = match (rss0, rss1) {
        (Some(r0), Some(r1)) => Some(((r1 as f64 - r0 as f64) / a.backlog as f64 * 10.0).round() / 10.0),
        _ => None,
    };
    emit(json!({
        "scenario": "backlog", "target": label, "fifo": fifo.is_some(), "groups": fifo,
        "backlog": a.backlog, "queued_after_fill": depth,
        "msgs_per_s": round(full.msgs_per_s), "requests_per_s": round(full.reqs_per_s),
        "p50_ms": ms(full.p.0), "p99_ms": ms(full.p.1), "p999_ms": ms(full.p.2), "latency": "receive+delete",
        "empty_receives": full.empty,
        "baseline": a.baseline, "baseline_msgs_per_s": round(base.msgs_per_s), "baseline_empty_receives": base.empty,
        "ratio_to_baseline": if base.msgs_per_s > 0.0 { Some((full.msgs_per_s / base.msgs_per_s * 1000.0).round() / 1000.0) } else { None },
        "fill_s": round(fill_secs), "fill_msgs_per_s": round(a.backlog as f64 / fill_secs),
        "rss_before_fill": rss0, "rss_after_fill": rss1, "rss_after_receive": rss2, "rss_bytes_per_msg": per_msg,
        "errors": full.errs + base.errs, "duration_s": round(full.secs), "connections": a.connections, "body_size": a.body_size,
        "queue": if a.keep { Some(name) } else { None },
    }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// many-queues

/// A many-queues worker, producer or consumer, on the next queue round-robin each time. A
/// producer sends (timed); a consumer receives with long polling (`wait`, as real consumers of
/// many queues do: an empty queue holds the consumer instead of burning CPU on empty answers)
/// and deletes what it got.
struct ManyQueuesStep {
    urls: Arc<Vec<String>>,
    /// Position in the round-robin walk (incremented before each request).
    i: usize,
    producer: bool,
    batch: usize,
    size: usize,
    wait: u32,
}

impl Step for ManyQueuesStep {
    const WHAT: &'static str = "many-queues";

    async fn step(&mut self, c: &mut Sqs, _: &Run, _: &mut Vec<u32>) -> Result<Option<Did>> {
        self.i = self.i.wrapping_add(1);
        let url = &self.urls[self.i % self.urls.len()];
        if self.producer {
            let m = send_some(c, url, self.batch, self.size, None).await?;
            return Ok(Some(Did { sent: m, reqs: 1, timed: true, ..Did::default() }));
        }
        let msgs = c.receive(url, 10, self.wait, None).await?;
        c.delete_batch(url, &msgs).await?;
        let n = msgs.len() as u64;
        Ok(Some(Did { recv: n, reqs: if n == 0 { 1 } else { 2 }, empty: n == 0, ..Did::default() }))
    }
}

async fn scenario_many_queues(a: &Common) -> Result<()> {
    let auth = a.authority()?;
    let label = a.label();
    let prefix = unique("mq");
    let nq = a.queues;
    // Create them concurrently.
    let t0 = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..a.connections.min(nq.max(1)) {
        let (auth, next, prefix) = (auth.clone(), next.clone(), prefix.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut c = Sqs::connect(&auth).await?;
            loop {
                let i = next.fetch_add(1, Relaxed) as usize;
                if i >= nq {
                    return Ok::<_, client::Error>(out);
                }
                out.push((i, c.create_queue(&format!("{prefix}-{i}"), &[]).await?));
            }
        }));
    }
    let mut urls = vec![String::new(); nq];
    for r in futures_join(tasks).await {
        for (i, u) in r? {
            urls[i] = u;
        }
    }
    let create_secs = t0.elapsed().as_secs_f64();
    eprintln!("[{label} many-queues] created {nq} queues in {create_secs:.2}s");
    let urls = Arc::new(urls);
    let (np, nc) = a.split();
    let run = Run::new();
    let tasks = spawn_workers(np + nc, &run, &auth, |w| {
        let producer = w < np;
        // Everyone walks the queues round-robin; consumer k starts where producer k (mod the
        // producers) starts, so it trails that producer: a consumer that gets ahead long-polls a
        // queue until a producer reaches it (with a slow server, consumers that started ahead
        // of the producers otherwise only polled queues no producer had reached yet).
        let i = if producer { w } else { (w - np) % np.max(1) } * 7919;
        ManyQueuesStep { urls: urls.clone(), i, producer, batch: a.batch, size: a.body_size, wait: a.wait }
    });
    let w = drive(&run, &format!("{label} many-queues"), a.warmup(), a.duration(), |_| false).await;
    let lat: Vec<u32> = futures_join(tasks).await.into_iter().flatten().collect();
    let (p50, p99, p999) = percentiles(lat);
    // Delete them concurrently.
    if !a.keep {
        let next = Arc::new(AtomicU64::new(0));
        let mut tasks = Vec::new();
        for _ in 0..a.connections.min(nq.max(1)) {
            let (auth, next, urls) = (auth.clone(), next.clone(), urls.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(mut c) = Sqs::connect(&auth).await else { return };
                loop {
                    let i = next.fetch_add(1, Relaxed) as usize;
                    if i >= urls.len() {
                        return;
                    }
                    let _ = c.delete_queue(&urls[i]).await;
                }
            }));
        }
        futures_join(tasks).await;
    }
    emit(json!({
        "scenario": "many-queues", "target": label, "queues": nq, "create_queues_per_s": round(nq as f64 / create_secs),
        "msgs_per_s": round(w.rate(w.d.sent)), "recv_msgs_per_s": round(w.rate(w.d.recv)), "requests_per_s": round(w.rate(w.d.reqs)),
        "p50_ms": ms(p50), "p99_ms": ms(p99), "p999_ms": ms(p999), "latency": "send request",
        "wait_s": a.wait, "empty_receives": w.d.empty,
        "errors": w.d.errs, "duration_s": round(w.secs), "producers": np, "consumers": nc, "batch": a.batch, "body_size": a.body_size,
    }));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// probe (restart test)

async fn probe(endpoint: &str, queue: &str, timeout: f64) -> Result<()> {
    let auth = client::authority(endpoint)?;
    let t0 = Instant::now();
    let mut last_err = String::new();
    while t0.elapsed().as_secs_f64() < timeout {
        let r = async {
            let mut c = Sqs::connect(&auth).await?;
            let url = c.get_queue_url(queue).await?;
            let m = c.receive(&url, 1, 0, Some(0)).await?;
            Ok::<_, client::Error>(m.len())
        }
        .await;
        match r {
            Ok(n) if n > 0 => {
                let secs = t0.elapsed().as_secs_f64();
                eprintln!("[probe] {queue} served a message after {secs:.2}s");
                let depth = match Sqs::connect(&auth).await {
                    Ok(mut c) => match c.get_queue_url(queue).await {
                        Ok(url) => c.queue_depth(&url).await.ok(),
                        Err(_) => None,
                    },
                    Err(_) => None,
                };
                emit(
                    json!({"scenario": "restart", "target": endpoint, "serving_after_s": (secs * 100.0).round() / 100.0, "queued": depth}),
                );
                return Ok(());
            }
            Ok(_) => last_err = "queue answered empty".into(),
            Err(e) => last_err = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    emit(json!({"scenario": "restart", "target": endpoint, "serving_after_s": null, "error": last_err}));
    Err(format!("not serving after {timeout}s: {last_err}").into())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let (Some(id), Some(secret)) = (&cli.access_key_id, &cli.secret_access_key) {
        client::set_credentials(sign::Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            region: cli.region.clone(),
        });
    }
    let _ = now_us();
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if cli.threads > 0 {
        b.worker_threads(cli.threads);
    }
    let rt = b.build().expect("tokio runtime");
    let r: Result<()> = rt.block_on(async move {
        match &cli.cmd {
            Cmd::Send(a) => scenario_send(a).await,
            Cmd::Receive(a) => scenario_receive(a).await,
            Cmd::Pipeline(a) if a.endpoint.starts_with("amqp://") => rabbit_pipeline(a).await,
            Cmd::Pipeline(a) => pipeline(a, false).await,
            Cmd::Fifo(a) => pipeline(a, true).await,
            Cmd::Backlog(a) => scenario_backlog(a).await,
            Cmd::ManyQueues(a) => scenario_many_queues(a).await,
            Cmd::Ceiling { port } => ceiling::serve(*port).await.map_err(Into::into),
            Cmd::Probe { endpoint, queue_name, timeout } => probe(endpoint, queue_name, *timeout).await,
        }
    });
    rt.shutdown_timeout(Duration::from_millis(200));
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "rabbitmq")]
async fn rabbit_pipeline(a: &Common) -> Result<()> {
    rabbit::pipeline(a).await
}

#[cfg(not(feature = "rabbitmq"))]
async fn rabbit_pipeline(_: &Common) -> Result<()> {
    Err("built without the `rabbitmq` feature: cargo build --release -p sluice-bench --features rabbitmq".into())
}
