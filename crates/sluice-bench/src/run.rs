//! Shared counters, the once-a-second progress line, the measurement window and percentiles.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

static BASE: OnceLock<Instant> = OnceLock::new();

/// Microseconds since the process's time base (send timestamps in bodies use this).
pub fn now_us() -> u64 {
    BASE.get_or_init(Instant::now).elapsed().as_micros() as u64
}

#[derive(Default)]
pub struct Run {
    pub stop: AtomicBool,
    pub measuring: AtomicBool,
    pub sent: AtomicU64,
    pub recv: AtomicU64,
    pub reqs: AtomicU64,
    pub errs: AtomicU64,
    pub empty: AtomicU64,
}

#[derive(Clone, Copy, Default, Debug)]
pub struct Snap {
    pub sent: u64,
    pub recv: u64,
    pub reqs: u64,
    pub errs: u64,
    pub empty: u64,
}

impl Run {
    pub fn new() -> Arc<Run> {
        Arc::new(Run::default())
    }
    pub fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }
    pub fn measuring(&self) -> bool {
        self.measuring.load(Relaxed)
    }
    pub fn snap(&self) -> Snap {
        Snap {
            sent: self.sent.load(Relaxed),
            recv: self.recv.load(Relaxed),
            reqs: self.reqs.load(Relaxed),
            errs: self.errs.load(Relaxed),
            empty: self.empty.load(Relaxed),
        }
    }
    /// Counts an error; prints the first few.
    pub fn error(&self, what: &str, e: &dyn std::fmt::Display) {
        let n = self.errs.fetch_add(1, Relaxed);
        if n < 5 {
            eprintln!("  error ({what}): {e}");
        }
    }
}

/// The measured window.
pub struct Window {
    pub secs: f64,
    pub d: Snap,
}

impl Window {
    pub fn rate(&self, n: u64) -> f64 {
        if self.secs > 0.0 {
            n as f64 / self.secs
        } else {
            0.0
        }
    }
}

/// Prints a progress line every second to stderr; after `warmup` starts measuring; stops the
/// run after `duration` of measurement, or as soon as `done` says so (checked every 50 ms).
pub async fn drive(
    run: &Run,
    label: &str,
    warmup: Duration,
    duration: Duration,
    done: impl Fn(&Snap) -> bool,
) -> Window {
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut last_print = start;
    let mut last = run.snap();
    let mut begin: Option<(Instant, Snap)> = None;
    if warmup.is_zero() {
        run.measuring.store(true, Relaxed);
        begin = Some((start, last));
    }
    loop {
        tick.tick().await;
        let now = Instant::now();
        let s = run.snap();
        if begin.is_none() && now - start >= warmup {
            run.measuring.store(true, Relaxed);
            begin = Some((now, s));
        }
        let finished = done(&s) || begin.map(|(t, _)| now - t >= duration).unwrap_or(false);
        if now - last_print >= Duration::from_secs(1) || finished {
            let dt = (now - last_print).as_secs_f64().max(1e-9);
            eprintln!(
                "[{label}] t={:5.1}s{} sent {:>9.0} msg/s  recv {:>9.0} msg/s  {:>8.0} req/s  total sent {} recv {}  errors {}",
                (now - start).as_secs_f64(),
                if begin.is_some() { " " } else { "w" },
                (s.sent - last.sent) as f64 / dt,
                (s.recv - last.recv) as f64 / dt,
                (s.reqs - last.reqs) as f64 / dt,
                s.sent,
                s.recv,
                s.errs
            );
            last_print = now;
            last = s;
        }
        if finished {
            run.measuring.store(false, Relaxed);
            run.stop.store(true, Relaxed);
            let (t0, s0) = begin.unwrap_or((now, s));
            return Window {
                secs: (now - t0).as_secs_f64(),
                d: Snap {
                    sent: s.sent - s0.sent,
                    recv: s.recv - s0.recv,
                    reqs: s.reqs - s0.reqs,
                    errs: s.errs - s0.errs,
                    empty: s.empty - s0.empty,
                },
            };
        }
    }
}

/// Latency samples in microseconds -> (p50, p99, p99.9) in milliseconds.
pub fn percentiles(mut v: Vec<u32>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_unstable();
    let p = |q: f64| v[((q * v.len() as f64) as usize).min(v.len() - 1)] as f64 / 1000.0;
    (p(0.50), p(0.99), p(0.999))
}

pub fn ms(x: f64) -> serde_json::Value {
    if x.is_finite() {
        serde_json::Value::from((x * 1000.0).round() / 1000.0)
    } else {
        serde_json::Value::Null
    }
}

pub fn round(x: f64) -> serde_json::Value {
    serde_json::Value::from((x * 10.0).round() / 10.0)
}

/// VmRSS of a process in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
