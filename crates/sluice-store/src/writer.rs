//! The group-commit writer.
//!
//! Request handlers never write to the backend themselves. They push their ops into one channel; a
//! single writer thread takes everything that is waiting, applies it as one transaction (one fsync)
//! and then answers every waiter. Idle, a lone send pays one fsync; under load each fsync carries
//! hundreds of messages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::stats::{Histogram, SECONDS_BUCKETS, SIZE_BUCKETS};
use crate::{Backend, Op, QueueId, Seq, StoreError};

/// Upper bound of ops in one group commit, so one transaction stays a bounded amount of work.
const MAX_OPS_PER_COMMIT: usize = 20_000;

enum Job {
    /// Ops to apply; `done` is answered once they are durable (None: fire and forget).
    Write { ops: Vec<Op>, done: Option<oneshot::Sender<Result<(), StoreError>>> },
    /// Apply everything queued before this, then stop the writer.
    Close { done: oneshot::Sender<()> },
}

/// Counters of the writer, for metrics and benchmarks.
#[derive(Debug)]
pub struct StoreStats {
    /// Number of transactions committed.
    pub commits: AtomicU64,
    /// Number of ops committed.
    pub ops: AtomicU64,
    /// Seconds each commit took (including its fsync).
    pub commit_seconds: Histogram,
    /// Ops per commit: how much group commit is sharing.
    pub commit_ops: Histogram,
}

impl Default for StoreStats {
    fn default() -> Self {
        StoreStats {
            commits: AtomicU64::new(0),
            ops: AtomicU64::new(0),
            commit_seconds: Histogram::new(SECONDS_BUCKETS),
            commit_ops: Histogram::new(SIZE_BUCKETS),
        }
    }
}

/// A backend plus its group-commit writer. Cheap to share behind an `Arc`.
pub struct Store {
    backend: Arc<dyn Backend>,
    jobs: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<StoreStats>,
}

impl Store {
    /// Starts the writer thread over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(StoreStats::default());
        let writer = {
            let backend = backend.clone();
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("sluice-store-writer".into())
                .spawn(move || writer_loop(backend.as_ref(), rx, &stats))
                .expect("spawning the store writer thread")
        };
        Store { backend, jobs: Mutex::new(Some(tx)), writer: Mutex::new(Some(writer)), stats }
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        let jobs = self.jobs.lock().map_err(|_| StoreError::Closed)?;
        match jobs.as_ref() {
            Some(tx) => tx.send(job).map_err(|_| StoreError::Closed),
            None => Err(StoreError::Closed),
        }
    }

    /// Applies `ops` atomically and returns once they are durable.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.send(Job::Write { ops, done: Some(done) })?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `ops` for the next group commit without waiting for it. Used for changes whose loss in a
    /// crash only means a redelivery (deletes, receive bookkeeping); see docs/ARCHITECTURE.md.
    pub fn commit_lazy(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        if let Err(e) = self.send(Job::Write { ops, done: None }) {
            tracing::warn!(error = %e, "lazy write dropped: store closed");
        }
    }

    /// Reads a message's body record.
    pub fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.get_body(queue, seq)
    }

    /// Visits every queue record (recovery).
    pub fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> Result<(), StoreError> {
        self.backend.scan_queues(visit)
    }

    /// Visits every message's metadata in (queue, seq) order (recovery).
    pub fn scan_meta(&self, visit: &mut dyn FnMut(QueueId, Seq, &[u8])) -> Result<(), StoreError> {
        self.backend.scan_meta(visit)
    }

    /// Visits every key/value record (recovery).
    pub fn scan_kv(&self, visit: &mut dyn FnMut(QueueId, &[u8], &[u8])) -> Result<(), StoreError> {
        self.backend.scan_kv(visit)
    }

    /// Writer counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Commits everything queued so far (lazy writes included) and stops the writer. Idempotent.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        let sent = self.send(Job::Close { done }).is_ok();
        if let Ok(mut jobs) = self.jobs.lock() {
            jobs.take();
        }
        if sent {
            let _ = wait.await;
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// Every acknowledged write waits for this thread, and under load the wake-up after its fdatasync
/// competed with the request threads for the CPU: at nice -10 batch-1 sends rose ~8% on two cores
/// (docs/BENCHMARKS.md). Needs CAP_SYS_NICE; without it the thread keeps the default priority.
fn raise_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread.
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, -10) };
        if done != 0 {
            tracing::debug!("store writer keeps the default priority (no CAP_SYS_NICE)");
        }
    }
}

fn writer_loop(backend: &dyn Backend, rx: mpsc::Receiver<Job>, stats: &StoreStats) {
    raise_priority();
    let mut ops: Vec<Op> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<Result<(), StoreError>>> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut close: Option<oneshot::Sender<()>> = None;
        let mut next = Some(first);
        // Take everything already waiting: this is what makes one fsync serve many requests.
        while let Some(job) = next.take() {
            match job {
                Job::Write { ops: mut more, done } => {
                    ops.append(&mut more);
                    waiters.extend(done);
                }
                Job::Close { done } => {
                    close = Some(done);
                    break;
                }
            }
            if ops.len() >= MAX_OPS_PER_COMMIT {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !ops.is_empty() {
            let started = std::time::Instant::now();
            let count = ops.len();
            let result = backend.apply(std::mem::take(&mut ops));
            stats.commit_seconds.observe(started.elapsed().as_secs_f64());
            stats.commit_ops.observe(count as f64);
            if let Err(e) = &result {
                tracing::error!(error = %e, ops = count, "group commit failed");
            }
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.ops.fetch_add(count as u64, Ordering::Relaxed);
            for w in waiters.drain(..) {
                let _ = w.send(result.clone());
            }
            if result.is_ok() {
                if let Err(e) = backend.maintain() {
                    tracing::error!(error = %e, "store maintenance failed");
                }
            }
        }
        if let Some(done) = close {
            let _ = done.send(());
            return;
        }
    }
}
