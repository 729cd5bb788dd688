//! Connection limits and timeouts: how many connections the listener keeps, how long a client may
//! take to send a request head or body, how long an idle keep-alive connection is kept, and the
//! process's open-file limit (raised to the hard limit at start, and the connection limit kept
//! below it so the store and outgoing connections always have descriptors left).
//!
//! The timeouts are enforced per connection by [`Activity`]: the connection's reads and its
//! request handler report which phase it is in (idle, reading a request head, handling a
//! request), and [`expired`] resolves when the current phase has lasted longer than its limit.
//! A request being handled has no limit here: a long poll (`WaitTimeSeconds` up to 20 s) holds
//! its connection busy for as long as it waits, and the body's own deadline is applied where the
//! body is read (`server::serve_one`).
//!
//! Why not hyper's `http1::Builder::header_read_timeout`: hyper 1.x starts that timer as soon as
//! the connection is idle (after each response), so it doubles as the keep-alive idle timeout
//! and the two could not be set apart.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
// tokio's clock, not std's: tests pause and advance it.
use tokio::time::Instant;

/// The listener's limits (flags, `SLUICE_*` variables and the TOML file: see [`crate::config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the first byte of a request to the end of its head (request line and headers).
    pub header_read_timeout: Duration,
    /// From the end of a request's head to the end of its body.
    pub body_read_timeout: Duration,
    /// How long a keep-alive connection may sit between requests (or before its first one).
    pub idle_timeout: Duration,
    /// Open connections at most; more are refused (see `server::run`). Capped at start by the
    /// open-file limit: see [`effective_max_connections`].
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    /// Generous for any real client on a network (a 1 MiB body in 30 s is 35 KB/s), short enough
    /// that idle or stalled peers cannot pile up: 10 s for a head, 30 s for a body, 60 s idle
    /// (the AWS Java SDK's own pool drops connections idle for 60 s), 10,000 connections.
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// Parses a duration with a unit, as the config takes them: `"250ms"`, `"10s"`, `"2m"`, or a
/// bare number of seconds. Zero is refused: every limit must end.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale_ms) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000)
    } else {
        (t, 1_000)
    };
    let n: u64 =
        number.trim().parse().map_err(|_| format!("{text:?} is not a duration like \"250ms\", \"10s\" or \"2m\""))?;
    let ms = n.checked_mul(scale_ms).ok_or_else(|| format!("{text:?} is too long"))?;
    if ms == 0 {
        return Err(format!("{text:?}: a timeout must be longer than zero"));
    }
    Ok(Duration::from_millis(ms))
}

/// Descriptors kept back from connections for everything else: the store's files, the data
/// directory lock, SNS deliveries and the drain's outgoing connections, logging.
fn reserved_descriptors(limit: u64) -> u64 {
    if limit <= 512 {
        limit / 2
    } else {
        256
    }
}

/// The connection limit in force: `configured`, or less if the open-file limit would run out
/// first (then new clients would be locked out by `accept` failing with EMFILE, instead of being
/// refused cleanly). Logs what it decided.
pub fn effective_max_connections(configured: usize) -> usize {
    let Some(files) = open_file_limit() else {
        return configured;
    };
    let cap = files.saturating_sub(reserved_descriptors(files)).max(1);
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    if configured > cap {
        tracing::warn!(
            configured,
            open_file_limit = files,
            max_connections = cap,
            "max_connections lowered to fit the open-file limit (raise `ulimit -n` to allow more)"
        );
        cap
    } else {
        tracing::info!(max_connections = configured, open_file_limit = files, "connection limit");
        configured
    }
}

/// The soft `RLIMIT_NOFILE`, if it can be read.
#[allow(unsafe_code)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every Unix.
fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit only writes the struct it is given, which is a valid, owned rlimit.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        (rc == 0).then_some(limit.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

/// Raises the soft open-file limit to the hard limit (a process may always do that) and returns
/// (before, after). Each connection is a descriptor: with the common soft limit of 1,024 a
/// thousand idle clients would otherwise exhaust it.
#[allow(unsafe_code)]
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every Unix.
pub fn raise_open_file_limit() -> std::io::Result<(u64, u64)> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit only writes the struct it is given, which is a valid, owned rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let before = limit.rlim_cur as u64;
        if limit.rlim_cur >= limit.rlim_max {
            return Ok((before, before));
        }
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit only reads the struct it is given; raising the soft limit up to the
        // hard one needs no privilege and affects nothing but this process's descriptor table.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((before, raised.rlim_cur as u64))
    }
    #[cfg(not(unix))]
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "no RLIMIT_NOFILE on this platform"))
}

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// What one connection is doing, and since when; shared by its reads, its request handler and
/// the task that enforces the timeouts.
pub struct Activity {
    born: Instant,
    /// IDLE, HEAD or BUSY.
    phase: AtomicU8,
    /// When the phase began, in milliseconds after `born`.
    since_ms: AtomicU64,
    /// Wakes [`expired`] when a phase with a deadline begins.
    changed: Notify,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            born: Instant::now(),
            phase: AtomicU8::new(IDLE),
            since_ms: AtomicU64::new(0),
            changed: Notify::new(),
        }
    }
}

impl Activity {
    fn now_ms(&self) -> u64 {
        self.born.elapsed().as_millis() as u64
    }

    fn enter(&self, phase: u8) {
        self.since_ms.store(self.now_ms(), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
        if phase != BUSY {
            self.changed.notify_one();
        }
    }

    /// Bytes arrived: if the connection was idle, a request head has begun.
    fn bytes_read(&self) {
        if self.phase.load(Ordering::Relaxed) == IDLE {
            self.enter(HEAD);
        }
    }

    /// A request's head is complete and its handler runs: no deadline here until it answers.
    /// The returned guard puts the connection back to idle when the handler is done.
    pub fn handling(&self) -> Handling<'_> {
        self.enter(BUSY);
        Handling(self)
    }

    /// The deadline of the current phase and what it limits; None while a request is handled.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<(Instant, &'static str)> {
        let phase = self.phase.load(Ordering::Acquire);
        let since = self.born + Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
        match phase {
            IDLE => Some((since + limits.idle_timeout, "idle timeout")),
            HEAD => Some((since + limits.header_read_timeout, "header read timeout")),
            _ => None,
        }
    }
}

/// Marks a connection busy for as long as it lives (see [`Activity::handling`]).
pub struct Handling<'a>(&'a Activity);

impl Drop for Handling<'_> {
    fn drop(&mut self) {
        self.0.enter(IDLE);
    }
}

/// Resolves with the limit that was exceeded once the connection has been idle longer than the
/// idle timeout, or has spent longer than the header timeout on a request head. The caller then
/// drops the connection, which closes it.
pub async fn expired(activity: &Activity, limits: &ConnectionLimits) -> &'static str {
    loop {
        match activity.deadline(limits) {
            None => activity.changed.notified().await,
            Some((deadline, what)) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => {
                        // The phase may have moved on while we slept: only a deadline that is
                        // still the current one counts.
                        if let Some((now_deadline, _)) = activity.deadline(limits) {
                            if now_deadline <= Instant::now() {
                                return what;
                            }
                        }
                    }
                    _ = activity.changed.notified() => {}
                }
            }
        }
    }
}

/// A connection's stream that reports arriving bytes to its [`Activity`].
pub struct Tracked<T> {
    pub io: T,
    pub activity: std::sync::Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999m").is_err());
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit_and_connections_fit_under_it() {
        let (before, after) = raise_open_file_limit().unwrap();
        assert!(after >= before);
        assert_eq!(open_file_limit(), Some(after));
        let cap = effective_max_connections(usize::MAX);
        assert!((cap as u64) < after, "{cap} connections must leave descriptors for the store");
        assert_eq!(effective_max_connections(3), 3);
        assert_eq!(reserved_descriptors(1024), 256);
        assert_eq!(reserved_descriptors(100), 50);
    }

    #[tokio::test]
    async fn phases_have_deadlines_and_a_handled_request_has_none() {
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_millis(50),
            idle_timeout: Duration::from_millis(150),
            ..Default::default()
        };
        let activity = Activity::default();
        assert_eq!(activity.deadline(&limits).map(|d| d.1), Some("idle timeout"));
        activity.bytes_read();
        assert_eq!(activity.deadline(&limits).map(|d| d.1), Some("header read timeout"));
        let handling = activity.handling();
        assert_eq!(activity.deadline(&limits), None);
        // A long poll: well past both limits, nothing expires.
        let waited = tokio::time::timeout(Duration::from_millis(400), expired(&activity, &limits)).await;
        assert!(waited.is_err());
        drop(handling);
        let started = Instant::now();
        assert_eq!(expired(&activity, &limits).await, "idle timeout");
        assert!(started.elapsed() >= Duration::from_millis(140));
        // A head begun while idle is cut at the header timeout, not the idle one.
        let started = Instant::now();
        let watch = expired(&activity, &limits);
        activity.bytes_read();
        assert_eq!(watch.await, "header read timeout");
        assert!(started.elapsed() < Duration::from_millis(140));
    }
}
