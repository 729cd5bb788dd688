//! Free disk space, and the *degraded mode* it drives.
//!
//! A full disk must cost neither a message nor the service. The embedded backend keeps
//! [`RESERVE_BYTES`] free on the data directory's file system: once less is free, it is degraded.
//! Degraded, the store refuses writes that add data (sends, queue records) with the retryable
//! [`StoreError::Full`](crate::StoreError::Full) before they reach the log, and stops moving the log
//! into redb (whose file would have to grow; a redb write that fails leaves it unusable until a
//! restart). Deletes and receive bookkeeping still go to the write-ahead log, which is preallocated
//! and needs no new space. When more than the reserve (plus [`HYSTERESIS_BYTES`]) is free again the
//! store resumes by itself, within [`RECHECK`].
//!
//! The reserve is what lets a restart recover: replaying both logs (each at most its preallocated
//! size while degraded) into redb must fit in it.
//!
//! [`SpaceWatch`] measures (`statvfs`) at most every [`RECHECK`] and logs each change of mode once.
//! Tests set a fake free-space figure with [`SpaceWatch::set_free_override`] (a failpoint: cheap
//! and deterministic).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Space kept free for recovery: a replay of both write-ahead logs into redb (each log at most
/// [`crate::wal::PREALLOCATED`] while degraded; redb needs about as much again as the records).
pub const RESERVE_BYTES: u64 = crate::wal::PREALLOCATED;

/// Extra space needed before leaving degraded mode, so that it does not flap at the boundary.
pub const HYSTERESIS_BYTES: u64 = 4 << 20;

/// How long a measurement is trusted: how soon the store notices space gone or back.
pub const RECHECK: Duration = Duration::from_millis(200);

/// No override of the measured free space (see [`SpaceWatch::set_free_override`]).
const NO_OVERRIDE: u64 = u64::MAX;

/// Bytes available to an unprivileged writer on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is a valid C string.
    #[allow(unsafe_code)]
    let (rc, st) = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st), st)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Whether an I/O error means the disk (or the user's quota) is full.
pub fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Mebibytes, rounded up, for messages.
pub fn mib(bytes: u64) -> u64 {
    bytes.div_ceil(1 << 20)
}

/// Watches the free space of one directory and says whether the store is degraded.
pub struct SpaceWatch {
    dir: PathBuf,
    degraded: AtomicBool,
    /// Set when a write failed with ENOSPC: degraded until a measurement says otherwise.
    why: Mutex<Option<String>>,
    /// Nanoseconds after `born` of the last measurement (0: never, or forced): an atomic, since
    /// every commit asks.
    checked_at: AtomicU64,
    born: Instant,
    free_override: AtomicU64,
}

impl SpaceWatch {
    pub fn new(dir: &Path) -> Self {
        SpaceWatch {
            dir: dir.to_path_buf(),
            degraded: AtomicBool::new(false),
            why: Mutex::new(None),
            checked_at: AtomicU64::new(0),
            born: Instant::now(),
            free_override: AtomicU64::new(NO_OVERRIDE),
        }
    }

    /// Failpoint for tests: pretend `Some(bytes)` are free (None: measure again). Takes effect at
    /// the next check, which this forces.
    pub fn set_free_override(&self, bytes: Option<u64>) {
        self.free_override.store(bytes.unwrap_or(NO_OVERRIDE), Ordering::SeqCst);
        self.checked_at.store(0, Ordering::SeqCst);
    }

    fn now_nanos(&self) -> u64 {
        (self.born.elapsed().as_nanos() as u64).max(1)
    }

    /// Free bytes now (measured, or the override).
    pub fn free(&self) -> std::io::Result<u64> {
        match self.free_override.load(Ordering::SeqCst) {
            NO_OVERRIDE => free_bytes(&self.dir),
            bytes => Ok(bytes),
        }
    }

    /// Why the store is degraded, or None; measures again if the last measurement is older than
    /// [`RECHECK`].
    pub fn degraded(&self) -> Option<String> {
        let now = self.now_nanos();
        let last = self.checked_at.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= RECHECK.as_nanos() as u64;
        // One caller measures; the others use the last figure meanwhile.
        if due && self.checked_at.compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed).is_ok() {
            self.measure();
        }
        if !self.degraded.load(Ordering::Acquire) {
            return None;
        }
        self.why.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A write failed for lack of space: degraded at once (until a measurement finds space).
    pub fn out_of_space(&self, what: &str) {
        self.enter(format!("{what}: no space left on the device holding {}", self.dir.display()));
        // Holds for at least one RECHECK, even if statvfs (a quota, say) still shows space.
        self.checked_at.store(self.now_nanos(), Ordering::SeqCst);
    }

    fn measure(&self) {
        let free = match self.free() {
            Ok(free) => free,
            Err(e) => {
                tracing::warn!(error = %e, dir = %self.dir.display(), "cannot measure free disk space");
                return;
            }
        };
        let degraded = self.degraded.load(Ordering::Acquire);
        if free < RESERVE_BYTES {
            self.enter(format!(
                "{} MiB free on the device holding {}, less than the {} MiB kept for recovery",
                free >> 20,
                self.dir.display(),
                mib(RESERVE_BYTES)
            ));
        } else if degraded && free >= RESERVE_BYTES + HYSTERESIS_BYTES {
            *self.why.lock().unwrap_or_else(|p| p.into_inner()) = None;
            self.degraded.store(false, Ordering::Release);
            tracing::warn!(free_mib = free >> 20, "disk space is back; the store accepts writes again");
        }
    }

    fn enter(&self, why: String) {
        let mut slot = self.why.lock().unwrap_or_else(|p| p.into_inner());
        if !self.degraded.swap(true, Ordering::AcqRel) {
            tracing::error!(reason = %why, "store degraded: refusing sends until disk space is back (deletes and receives go on)");
        }
        *slot = Some(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enters_and_leaves_with_the_free_space() {
        let watch = SpaceWatch::new(&std::env::temp_dir());
        assert!(free_bytes(&std::env::temp_dir()).unwrap() > 0);
        watch.set_free_override(Some(RESERVE_BYTES * 4));
        assert_eq!(watch.degraded(), None);
        watch.set_free_override(Some(RESERVE_BYTES - 1));
        assert!(watch.degraded().unwrap().contains("kept for recovery"));
        // Within the hysteresis: still degraded.
        watch.set_free_override(Some(RESERVE_BYTES + 1));
        assert!(watch.degraded().is_some());
        watch.set_free_override(Some(RESERVE_BYTES + HYSTERESIS_BYTES));
        assert_eq!(watch.degraded(), None);
        watch.out_of_space("log write");
        assert!(watch.degraded().unwrap().contains("no space left"), "an ENOSPC holds until the next measurement");
    }
}
