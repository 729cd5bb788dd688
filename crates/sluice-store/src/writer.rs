//! The group-commit writer.
//!
//! Request handlers never write to the backend themselves. They push their ops into one channel; a
//! single writer thread takes everything that is waiting, applies it as one transaction (one fsync)
//! and then answers every waiter. Idle, a lone send pays one fsync; under load each fsync carries
//! hundreds of messages. A group of lazy writes only (nobody waits) is appended without an fsync:
//! the next durable group's fsync covers it, or a sync after [`LAZY_SYNC_DELAY`].
//!
//! A lazy write does not wake a writer that has just worked: after a round with jobs the writer
//! dozes for at most [`LAZY_PICKUP_DELAY`] and takes whatever lazy writes came meanwhile in one
//! group; only a durable write (someone waits) cuts the doze short. Waking it for every delete and
//! receive update cost a futex wake and two context switches each (docs/BENCHMARKS.md).
//!
//! The exception is [`Store::in_memory`] (`--data-dir :memory:`): with no fsync to share, commits
//! are applied on the caller's thread and there is no writer.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::memory::MemoryBackend;
use crate::stats::{Histogram, SECONDS_BUCKETS, SIZE_BUCKETS};
use crate::{Backend, KvVisitor, Op, QueueId, Seq, StoreError};

/// Upper bound of ops in one group commit, so one transaction stays a bounded amount of work.
const MAX_OPS_PER_COMMIT: usize = 20_000;

enum Job {
    /// Ops to apply; `done` is answered once they are durable (None: fire and forget).
    Write { ops: Vec<Op>, done: Option<oneshot::Sender<Result<(), StoreError>>> },
    /// Apply everything queued before this, then stop the writer.
    Close { done: oneshot::Sender<()> },
}

/// Counters of the commits (the writer's groups, or each commit of [`Store::in_memory`]), for
/// metrics and benchmarks.
#[derive(Debug)]
pub struct StoreStats {
    /// Number of transactions committed.
    pub commits: AtomicU64,
    /// Number of ops committed.
    pub ops: AtomicU64,
    /// Seconds each commit took (including its fsync, if any).
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

impl StoreStats {
    fn record_commit(&self, took: Duration, ops: usize) {
        self.commit_seconds.observe(took.as_secs_f64());
        self.commit_ops.observe(ops as f64);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.ops.fetch_add(ops as u64, Ordering::Relaxed);
    }
}

/// A backend plus its group-commit writer (none for [`Store::in_memory`]). Cheap to share behind an
/// `Arc`.
pub struct Store {
    backend: Arc<dyn Backend>,
    /// None for [`Store::in_memory`]: commits are applied on the caller's thread.
    writer: Option<Writer>,
    /// Set by [`Store::close`]: later writes fail with [`StoreError::Closed`].
    closed: AtomicBool,
    stats: Arc<StoreStats>,
    /// Lazy writes that failed for lack of space and that the writer keeps retrying: while any
    /// wait, the engine refuses deletes and receives (see [`Store::refuses_lazy`]).
    backlog: Arc<AtomicBool>,
}

/// The group-commit writer thread and the channel to it. Dropping it (a `Store` dropped without
/// [`Store::close`]) ends the thread: it sees the channel disconnected.
struct Writer {
    /// Every request sends through this; no lock around it (a `Mutex<Option<Sender>>` here was
    /// contended between the request threads under batch-1 load).
    jobs: mpsc::Sender<Job>,
    /// Whether the writer sleeps, and so which jobs must wake it ([`AWAKE`], [`DOZING`], [`ASLEEP`]).
    sleep: Arc<AtomicU8>,
    /// To unpark the writer.
    waker: std::thread::Thread,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Drop the real sender first (a parked writer would otherwise notice only after IDLE_PARK),
        // then unpark the writer so that it sees the channel disconnected and syncs what it
        // appended.
        drop(std::mem::replace(&mut self.jobs, mpsc::channel().0));
        self.waker.unpark();
    }
}

/// The writer is working and will look at the channel again before it sleeps.
const AWAKE: u8 = 0;
/// Parked for at most [`LAZY_PICKUP_DELAY`] (or until a lazy sync is due): only a job somebody
/// waits for wakes it.
const DOZING: u8 = 1;
/// Parked with nothing to do soon: every job wakes it.
const ASLEEP: u8 = 2;

impl Store {
    /// Starts the writer thread over `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(StoreStats::default());
        let sleep = Arc::new(AtomicU8::new(AWAKE));
        let backlog = Arc::new(AtomicBool::new(false));
        let thread = {
            let backend = backend.clone();
            let stats = stats.clone();
            let sleep = sleep.clone();
            let backlog = backlog.clone();
            std::thread::Builder::new()
                .name("sluice-store-writer".into())
                .spawn(move || writer_loop(backend.as_ref(), rx, &sleep, &stats, &backlog))
                .expect("spawning the store writer thread")
        };
        let writer = Writer { jobs: tx, sleep, waker: thread.thread().clone(), thread: Mutex::new(Some(thread)) };
        Store { backend, writer: Some(writer), closed: AtomicBool::new(false), stats, backlog }
    }

    /// A store over an in-memory backend (`--data-dir :memory:`), without a writer thread: there is
    /// no fsync for a group to share, and handing every commit to a thread and back cost more than
    /// the commit itself (batch-1 sends into `:memory:` ran at ~50% of the HTTP ceiling through the
    /// writer; docs/BENCHMARKS.md). Commits are applied on the caller's thread. Commits the engine
    /// orders (one after the other, or under a queue's lock) reach the backend in that order, as
    /// they reached the writer's channel; a lazy write is applied before `commit_lazy` returns.
    pub fn in_memory(backend: Arc<MemoryBackend>) -> Self {
        Store {
            backend,
            writer: None,
            closed: AtomicBool::new(false),
            stats: Arc::new(StoreStats::default()),
            backlog: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Why the store refuses writes that add data (the disk is short of space), or None. Such
    /// writes get the retryable [`StoreError::Full`]; the store resumes by itself once space is back.
    pub fn degraded(&self) -> Option<String> {
        self.backend.degraded()
    }

    /// Whether a lazy write ([`Store::commit_lazy`]) might not be recorded now: earlier ones failed
    /// for lack of space and are being retried. The engine then refuses deletes, visibility changes
    /// and receives up front (503) instead of changing its state and answering 200.
    pub fn refuses_lazy(&self) -> bool {
        self.backlog.load(Ordering::Acquire)
    }

    fn refuse_if_closed(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    fn send(&self, writer: &Writer, job: Job) -> Result<(), StoreError> {
        self.refuse_if_closed()?;
        let urgent = matches!(job, Job::Write { done: Some(_), .. } | Job::Close { .. });
        // A job that slips in behind the Close is dropped with the writer's receiver: its waiter
        // then gets Closed too.
        writer.jobs.send(job).map_err(|_| StoreError::Closed)?;
        // Pairs with the fence in `next_job` between announcing a sleep and looking at the channel
        // once more: either the writer sees this job, or this sees that it sleeps.
        fence(Ordering::SeqCst);
        let sleep = writer.sleep.load(Ordering::Relaxed);
        if sleep == ASLEEP || urgent && sleep == DOZING {
            writer.waker.unpark();
        }
        Ok(())
    }

    /// [`Store::in_memory`]: applies `ops` on the calling thread.
    /// Lazy or not is the same here: nothing is fsynced.
    fn apply_here(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.refuse_if_closed()?;
        let started = Instant::now();
        let count = ops.len();
        let result = self.backend.apply(ops);
        self.stats.record_commit(started.elapsed(), count);
        result
    }

    /// Applies `ops` atomically and returns once they are durable.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        if ops.is_empty() {
            return Ok(());
        }
        // Admission: while degraded, nothing that adds data enters the log (the space kept for
        // recovery must stay free). Removals and receive bookkeeping go on.
        if ops.iter().any(adds_data) {
            if let Some(why) = self.backend.degraded() {
                return Err(StoreError::Full(why));
            }
        }
        let Some(writer) = &self.writer else { return self.apply_here(ops) };
        let (done, wait) = oneshot::channel();
        self.send(writer, Job::Write { ops, done: Some(done) })?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `ops` for the next group commit without waiting for it. Used for changes whose loss in a
    /// crash only means a redelivery (deletes, receive bookkeeping); see docs/ARCHITECTURE.md. The
    /// writer takes them after the group in progress, within about [`LAZY_PICKUP_DELAY`] (or, while
    /// earlier lazy writes wait for their sync, with that sync) and writes them to the log; they are
    /// fdatasynced with the next durable commit, or within about [`LAZY_SYNC_DELAY`].
    pub fn commit_lazy(&self, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let queued = match &self.writer {
            Some(writer) => self.send(writer, Job::Write { ops, done: None }),
            None => self.apply_here(ops),
        };
        if let Err(e) = queued {
            tracing::warn!(error = %e, "lazy write dropped");
        }
    }

    /// Reads a message's body record.
    pub fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.get_body(queue, seq)
    }

    /// Reads the body records of several messages of one queue, in `seqs`' order.
    pub fn get_bodies(&self, queue: QueueId, seqs: &[Seq]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.backend.get_bodies(queue, seqs)
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
    pub fn scan_kv(&self, visit: &mut KvVisitor<'_>) -> Result<(), StoreError> {
        self.backend.scan_kv(visit)
    }

    /// Visits the bounds of purges still being removed (recovery: see [`Backend::scan_purge_bounds`]).
    pub fn scan_purge_bounds(&self, visit: &mut dyn FnMut(QueueId, Seq)) -> Result<(), StoreError> {
        self.backend.scan_purge_bounds(visit)
    }

    /// Writer counters.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// Commits everything queued so far (lazy writes included) and stops the writer. Idempotent.
    pub async fn close(&self) {
        let Some(writer) = &self.writer else {
            self.closed.store(true, Ordering::Release);
            return;
        };
        let (done, wait) = oneshot::channel();
        let sent = self.send(writer, Job::Close { done }).is_ok();
        self.closed.store(true, Ordering::Release);
        if sent {
            let _ = wait.await;
        }
        let handle = writer.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

/// Whether `op` adds data to the store (refused while degraded) rather than removing or rewriting
/// some (allowed: it fits the preallocated log).
fn adds_data(op: &Op) -> bool {
    matches!(op, Op::PutMessage { .. } | Op::PutQueue { .. } | Op::PutKv { .. })
}

/// Every acknowledged write waits for this thread, and under load the wake-up after its fdatasync
/// competed with the request threads for the CPU: at nice -10 batch-1 sends rose ~8% on two cores
/// (docs/BENCHMARKS.md). Needs CAP_SYS_NICE; without it the thread keeps the default priority.
fn raise_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread.
        #[allow(unsafe_code)]
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, -10) };
        if done != 0 {
            tracing::debug!("store writer keeps the default priority (no CAP_SYS_NICE)");
        }
    }
}

/// How long changes nobody waits for may stay appended but not fdatasynced, when no durable commit
/// comes along to cover them. They survive a crash of the process either way (the log record is
/// written); this bounds what a power loss can take back: a few deletes (redelivered) and receive
/// updates. Receive-only traffic then costs a few fsyncs per second instead of one per group.
pub const LAZY_SYNC_DELAY: Duration = Duration::from_millis(10);

/// How long lazy writes may wait in the channel after the writer's last round with work: they are
/// taken together when it wakes (or with the next durable write, which wakes it at once). While
/// appended writes wait for their sync, the writer dozes until that sync and takes what waits as
/// one durable group then. A `kill -9` loses what still waits in the channel, as it did before: a
/// redelivery or an early reappearance.
pub const LAZY_PICKUP_DELAY: Duration = Duration::from_millis(2);

/// How often lazy writes kept after a failure for lack of space are tried again.
const RETRY_DELAY: Duration = crate::space::RECHECK;

/// Longest park with nothing to do; a safety net only: every job sent to a sleeping writer unparks
/// it, and so does dropping the store.
const IDLE_PARK: Duration = Duration::from_secs(1);

/// The next job if one waits (at once); otherwise parks as the writer's state calls for (see
/// [`DOZING`], [`ASLEEP`]) and returns `None`: the caller looks again, and finds the job that
/// unparked it, if any. With `gone` set, every sender is gone and the channel is empty.
fn next_job(rx: &mpsc::Receiver<Job>, sleep: &AtomicU8, until: Option<Instant>, gone: &mut bool) -> Option<Job> {
    match rx.try_recv() {
        Ok(job) => return Some(job),
        Err(mpsc::TryRecvError::Disconnected) => {
            *gone = true;
            return None;
        }
        Err(mpsc::TryRecvError::Empty) => {}
    }
    sleep.store(if until.is_some() { DOZING } else { ASLEEP }, Ordering::Relaxed);
    // Pairs with the fence in `Store::send`: look once more after announcing the sleep, so that a
    // job sent just before is not left waiting for the timeout.
    fence(Ordering::SeqCst);
    let job = match rx.try_recv() {
        Ok(job) => Some(job),
        Err(mpsc::TryRecvError::Disconnected) => {
            *gone = true;
            None
        }
        Err(mpsc::TryRecvError::Empty) => {
            let park_for = until.map_or(IDLE_PARK, |u| u.saturating_duration_since(Instant::now()));
            if !park_for.is_zero() {
                std::thread::park_timeout(park_for);
            }
            None
        }
    };
    sleep.store(AWAKE, Ordering::Relaxed);
    job
}

fn writer_loop(
    backend: &dyn Backend,
    rx: mpsc::Receiver<Job>,
    sleep: &AtomicU8,
    stats: &StoreStats,
    backlog: &AtomicBool,
) {
    raise_priority();
    let mut ops: Vec<Op> = Vec::new();
    let mut waiters: Vec<oneshot::Sender<Result<(), StoreError>>> = Vec::new();
    // When the oldest group appended without an fsync was written.
    let mut unsynced_since: Option<Instant> = None;
    // Whether the last look at the channel found work: then lazy writes may gather for a while.
    let mut busy = false;
    let mut gone = false;
    // Lazy writes that failed for lack of space, oldest first: they lead every later group until
    // one is recorded (their requests were answered; dropping them would lose a delete).
    let mut retained: Vec<Op> = Vec::new();
    loop {
        let sync_due = unsynced_since.map(|since| since + LAZY_SYNC_DELAY);
        // Lazy writes gather for at most LAZY_PICKUP_DELAY after a round with work, and at most
        // until the sync is due while appended writes wait for it (they then go with it: below);
        // retained writes are retried every RETRY_DELAY; otherwise the writer sleeps until a job
        // wakes it.
        let pickup = busy.then(|| Instant::now() + LAZY_PICKUP_DELAY);
        let retry = (!retained.is_empty()).then(|| Instant::now() + RETRY_DELAY);
        let until = [pickup, sync_due, retry].into_iter().flatten().min();
        let first = next_job(&rx, sleep, until, &mut gone);
        busy = first.is_some();
        if gone {
            break;
        }
        if first.is_none() {
            // Jobs waiting once the sync is due go as one durable group instead (`overdue` below).
            if sync_due.is_some_and(|due| due <= Instant::now()) {
                sync_appended(backend, &mut unsynced_since);
            }
            if retained.is_empty() || retry.is_some_and(|at| at > Instant::now()) {
                continue;
            }
        }
        // Degraded (or retrying): keep a copy of the lazy ops, to retain them if the group fails
        // for lack of space. Not otherwise: the copy would cost every delete an allocation.
        let keep_lazy = !retained.is_empty() || backend.degraded().is_some();
        let mut lazy_copy: Vec<Op> = Vec::new();
        ops.append(&mut retained);
        if keep_lazy {
            lazy_copy.extend(ops.iter().cloned());
        }
        let mut close: Option<oneshot::Sender<()>> = None;
        let mut next = first;
        // Take everything already waiting: this is what makes one fsync serve many requests.
        while let Some(job) = next.take() {
            match job {
                Job::Write { ops: mut more, done } => {
                    if keep_lazy && done.is_none() {
                        lazy_copy.extend(more.iter().cloned());
                    }
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
            let started = Instant::now();
            let count = ops.len();
            // A group nobody waits for is appended without its own fsync: the next durable commit,
            // or LAZY_SYNC_DELAY, makes it durable. Under steady lazy-only load the channel is never
            // empty when the deadline passes, so an overdue group is committed durably itself.
            let overdue = unsynced_since.is_some_and(|since| since.elapsed() >= LAZY_SYNC_DELAY);
            let durable = !waiters.is_empty() || close.is_some() || overdue;
            let result = if durable {
                backend.apply(std::mem::take(&mut ops))
            } else {
                backend.append(std::mem::take(&mut ops))
            };
            stats.record_commit(started.elapsed(), count);
            match &result {
                Err(e) if e.is_retryable() => {
                    if !lazy_copy.is_empty() && !backlog.swap(true, Ordering::AcqRel) {
                        tracing::warn!(error = %e, "lazy writes kept for retry until disk space is back");
                    }
                    retained = lazy_copy;
                }
                Err(e) => tracing::error!(error = %e, ops = count, "group commit failed"),
                Ok(()) => {
                    if backlog.swap(false, Ordering::AcqRel) {
                        tracing::info!("lazy writes kept for retry are recorded");
                    }
                    if durable {
                        unsynced_since = None;
                    } else {
                        unsynced_since.get_or_insert(started);
                    }
                }
            }
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
            if !retained.is_empty() {
                tracing::warn!(ops = retained.len(), "closing with lazy writes the full disk kept out of the log");
            }
            sync_appended(backend, &mut unsynced_since);
            let _ = done.send(());
            return;
        }
    }
    sync_appended(backend, &mut unsynced_since);
}

/// fdatasyncs what was appended without one, if anything.
fn sync_appended(backend: &dyn Backend, unsynced_since: &mut Option<Instant>) {
    if unsynced_since.take().is_some() {
        if let Err(e) = backend.sync() {
            tracing::error!(error = %e, "store sync failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts how the writer reaches the backend and whether appended changes are still unsynced.
    #[derive(Default)]
    struct Recording {
        inner: MemoryBackend,
        applies: AtomicU64,
        appends: AtomicU64,
        syncs: AtomicU64,
        unsynced: AtomicBool,
        /// Appends take 5 ms: a writer that never finds its channel empty.
        slow_appends: AtomicBool,
    }

    impl Backend for Recording {
        fn apply(&self, ops: Vec<Op>) -> Result<(), StoreError> {
            self.applies.fetch_add(1, Ordering::SeqCst);
            self.unsynced.store(false, Ordering::SeqCst);
            self.inner.apply(ops)
        }
        fn append(&self, ops: Vec<Op>) -> Result<(), StoreError> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            if self.slow_appends.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.unsynced.store(true, Ordering::SeqCst);
            self.inner.apply(ops)
        }
        fn sync(&self) -> Result<(), StoreError> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            self.unsynced.store(false, Ordering::SeqCst);
            Ok(())
        }
        fn get_body(&self, queue: QueueId, seq: Seq) -> Result<Option<Vec<u8>>, StoreError> {
            self.inner.get_body(queue, seq)
        }
        fn scan_queues(&self, visit: &mut dyn FnMut(QueueId, &[u8])) -> Result<(), StoreError> {
            self.inner.scan_queues(visit)
        }
        fn scan_meta(&self, visit: &mut dyn FnMut(QueueId, Seq, &[u8])) -> Result<(), StoreError> {
            self.inner.scan_meta(visit)
        }
        fn scan_kv(&self, visit: &mut KvVisitor<'_>) -> Result<(), StoreError> {
            self.inner.scan_kv(visit)
        }
    }

    fn kv(i: u8) -> Vec<Op> {
        vec![Op::PutKv { queue: 1, key: vec![i], value: vec![i] }]
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        for _ in 0..500 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{what} did not happen within 5 s");
    }

    #[tokio::test]
    async fn lazy_writes_are_appended_and_synced_soon_after() {
        let backend = Arc::new(Recording::default());
        let store = Store::new(backend.clone());
        store.commit_lazy(kv(1));
        eventually("the sync of a lazy group", || backend.syncs.load(Ordering::SeqCst) == 1).await;
        assert_eq!(backend.appends.load(Ordering::SeqCst), 1, "appended, not applied with an fsync of its own");
        assert_eq!(backend.applies.load(Ordering::SeqCst), 0);
        assert!(!backend.unsynced.load(Ordering::SeqCst));
        store.close().await;
        assert_eq!(backend.syncs.load(Ordering::SeqCst), 1, "nothing left to sync at close");
    }

    /// A writer that never finds its channel empty (a drain: only deletes and receive updates) still
    /// makes lazy writes durable within about LAZY_SYNC_DELAY: an overdue group gets an fsync.
    #[tokio::test]
    async fn lazy_writes_under_steady_load_are_synced_within_the_delay() {
        let backend = Arc::new(Recording::default());
        backend.slow_appends.store(true, Ordering::SeqCst);
        let store = Store::new(backend.clone());
        let durable = || backend.applies.load(Ordering::SeqCst) + backend.syncs.load(Ordering::SeqCst);
        // Lazy writes arrive faster than the writer appends them, so it never finds its channel empty.
        let started = Instant::now();
        while durable() == 0 && started.elapsed() < Duration::from_secs(5) {
            store.commit_lazy(kv(1));
            std::thread::sleep(Duration::from_micros(100));
        }
        assert!(
            durable() >= 1,
            "5 s of lazy writes without an fdatasync ({} appends)",
            backend.appends.load(Ordering::SeqCst)
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_durable_commit_covers_the_lazy_writes_before_it() {
        let backend = Arc::new(Recording::default());
        let store = Store::new(backend.clone());
        for i in 0..50 {
            store.commit_lazy(kv(i));
        }
        store.commit(kv(200)).await.unwrap();
        assert!(!backend.unsynced.load(Ordering::SeqCst), "acknowledged: everything queued before it is durable");
        let mut keys = 0;
        backend.scan_kv(&mut |_, _, _| keys += 1).unwrap();
        assert_eq!(keys, 51);
        store.commit_lazy(kv(201));
        store.close().await;
        assert!(!backend.unsynced.load(Ordering::SeqCst), "close leaves nothing unsynced");
    }

    /// Lazy writes from several threads, interleaved with durable commits while the writer dozes
    /// and wakes: every write arrives, each thread's in the order it made them, and every durable
    /// commit is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lazy_and_durable_writes_from_many_threads_all_arrive_in_order() {
        let backend = Arc::new(Recording::default());
        let store = Arc::new(Store::new(backend.clone()));
        let mut tasks = Vec::new();
        for t in 0..4u8 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..300u32 {
                    // Each thread rewrites its own key; the last write (i = 299) is durable.
                    let op = vec![Op::PutKv { queue: 1, key: vec![t], value: i.to_le_bytes().to_vec() }];
                    if i % 3 == 2 {
                        store.commit(op).await.unwrap();
                    } else {
                        store.commit_lazy(op);
                        if i % 7 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let mut last = std::collections::HashMap::new();
        backend
            .scan_kv(&mut |_, key, value| {
                last.insert(key.to_vec(), u32::from_le_bytes(value.try_into().unwrap()));
            })
            .unwrap();
        assert_eq!(last.len(), 4);
        assert!(last.values().all(|&v| v == 299), "a thread's writes arrive in order: {last:?}");
        store.close().await;
    }

    /// A store dropped without `close` ends its writer thread (which holds the other reference to
    /// the backend) after syncing what it appended.
    #[tokio::test]
    async fn a_store_dropped_without_close_ends_its_writer() {
        let backend = Arc::new(Recording::default());
        let store = Store::new(backend.clone());
        store.commit(kv(1)).await.unwrap();
        store.commit_lazy(kv(2));
        drop(store);
        eventually("the writer thread's end", || Arc::strong_count(&backend) == 1).await;
        assert!(!backend.unsynced.load(Ordering::SeqCst), "what was appended is synced");
        let mut keys = 0;
        backend.scan_kv(&mut |_, _, _| keys += 1).unwrap();
        assert_eq!(keys, 2);
    }

    #[tokio::test]
    async fn writes_after_close_fail_and_close_is_idempotent() {
        let backend = Arc::new(Recording::default());
        let store = Store::new(backend.clone());
        store.commit(kv(1)).await.unwrap();
        store.close().await;
        assert!(matches!(store.commit(kv(2)).await, Err(StoreError::Closed)));
        store.commit_lazy(kv(3));
        store.close().await;
        let mut keys = 0;
        backend.scan_kv(&mut |_, _, _| keys += 1).unwrap();
        assert_eq!(keys, 1, "nothing written after close");
    }

    #[tokio::test]
    async fn in_memory_store_applies_on_the_callers_thread() {
        let backend = Arc::new(MemoryBackend::new());
        let store = Store::in_memory(backend.clone());
        let keys = || {
            let mut n = 0;
            backend.scan_kv(&mut |_, _, _| n += 1).unwrap();
            n
        };
        store.commit(kv(1)).await.unwrap();
        assert_eq!(keys(), 1);
        store.commit_lazy(kv(2));
        assert_eq!(keys(), 2, "a lazy write is applied before commit_lazy returns: there is no writer to wait for");
        assert_eq!(store.stats().commits.load(Ordering::Relaxed), 2);
        assert_eq!(store.stats().ops.load(Ordering::Relaxed), 2);
        store.close().await;
        assert!(matches!(store.commit(kv(3)).await, Err(StoreError::Closed)));
        store.commit_lazy(kv(4));
        store.close().await;
        assert_eq!(keys(), 2, "nothing written after close");
    }
}
