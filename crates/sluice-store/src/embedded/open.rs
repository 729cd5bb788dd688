//! Opening the store: the manifest check (a missing file stops it), the format check, the replay of both write-ahead logs (lower epoch first)
//! into redb in one durable transaction, the `doomed` ranges left to remove, the applier thread;
//! and the prefetch of the store file into the page cache that speeds up recovery's scan.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Instant;

use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use super::tables::{apply_ops, BODY, DOOMED, FORMAT, INFO, KV, META, QUEUES};
use super::{io, EmbeddedBackend, Layers, LogState, Shared, Split};
use crate::manifest;
use crate::space::{mib, SpaceWatch, RESERVE_BYTES};
use crate::wal::{Dropped, Wal, PREALLOCATED};
use crate::StoreError;

/// Page cache redb may use; bodies read on receive are mostly recent, so a modest cache suffices.
pub(super) const CACHE_BYTES: usize = 64 << 20;

/// The two log files: records go to one while the applier checkpoints the other's.
pub const LOG_EXTENSIONS: [&str; 2] = ["wal", "wal2"];

/// How to open a store.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    /// Keep every readable record of damaged logs and start without missing files, instead of
    /// refusing to start; what is dropped is logged and returned by [`EmbeddedBackend::salvaged`].
    pub salvage: bool,
}

/// One thing a salvaging open dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Salvaged {
    /// A damaged stretch of a log.
    LogRange { file: PathBuf, range: Dropped },
    /// A file the manifest lists that was not there (re-created empty).
    MissingFile(PathBuf),
}

impl std::fmt::Display for Salvaged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Salvaged::LogRange { file, range } => write!(
                f,
                "{}: dropped {} bytes at offset {} ({})",
                file.display(),
                range.len,
                range.offset,
                range.reason
            ),
            Salvaged::MissingFile(file) => write!(f, "{}: missing, re-created empty", file.display()),
        }
    }
}

impl EmbeddedBackend {
    /// Opens (or creates) the store file at `path` and its logs beside it (same name, `.wal` and
    /// `.wal2`), replaying the logs' records into the database. Damage stops it (see [`OpenOptions`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, OpenOptions::default())
    }

    /// [`EmbeddedBackend::open`] with options.
    pub fn open_with(path: &Path, options: OpenOptions) -> Result<Self, StoreError> {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        crate::files::create_dir_all(&dir).map_err(io)?;
        let mut salvaged = Vec::new();
        // Before creating anything: a store file or log that should be there and is not.
        let expected = manifest::expected_files(path);
        let gone = match manifest::missing(path)? {
            Some(gone) => gone,
            // No manifest: a new store (nothing there), or one from before manifests (all there).
            None => {
                let present = expected.iter().filter(|f| f.exists()).count();
                if present == 0 || present == expected.len() {
                    Vec::new()
                } else {
                    expected.iter().filter(|f| !f.exists()).cloned().collect()
                }
            }
        };
        if !gone.is_empty() {
            let names: Vec<String> = gone.iter().map(|f| f.display().to_string()).collect();
            if !options.salvage {
                return Err(StoreError::Corrupt(format!(
                    "{} missing from the data directory ({} lists it). Restore it, or start with --salvage to \
                     go on without it (its messages are lost)",
                    names.join(", "),
                    manifest::path_for(path).display()
                )));
            }
            for file in gone {
                tracing::error!(file = %file.display(), "salvage: a store file is missing; re-creating it empty");
                salvaged.push(Salvaged::MissingFile(file));
            }
        }
        let space = SpaceWatch::new(&dir);
        check_room(path, &space)?;
        // Created 0600 here: redb would create it with the default mode.
        crate::files::touch(path).map_err(io)?;
        prefetch_in_background(path);
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(path).map_err(io)?;
        // Before the logs: a newer format's records may not even decode here.
        let found = match db.begin_read().map_err(io)?.open_table(INFO) {
            Ok(info) => info.get("format").map_err(io)?.map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(io(e)),
        };
        if let Some(found) = found.filter(|&f| f > FORMAT) {
            return Err(StoreError::Unsupported(format!(
                "{} was written by a newer sluice (store format {found}; this one reads up to {FORMAT}): run that version or newer",
                path.display()
            )));
        }
        let mut open_log = |ext: &str| -> Result<_, StoreError> {
            let file = path.with_extension(ext);
            if !options.salvage {
                return Wal::open(&file);
            }
            let (wal, records, dropped) = Wal::open_salvaging(&file)?;
            salvaged.extend(dropped.into_iter().map(|range| Salvaged::LogRange { file: file.clone(), range }));
            Ok((wal, records))
        };
        let (first, first_records) = open_log(LOG_EXTENSIONS[0])?;
        let (second, second_records) = open_log(LOG_EXTENSIONS[1])?;
        // Every file now exists: from here on a missing one is damage.
        if !manifest::path_for(path).exists() {
            manifest::write(path)?;
        }
        // The lower epoch was written first (each switch starts the other file after this one).
        let (mut older, older_records, mut newer, newer_records) = if first.epoch() <= second.epoch() {
            (first, first_records, second, second_records)
        } else {
            (second, second_records, first, first_records)
        };
        let mut tx = db.begin_write().map_err(io)?;
        tx.set_durability(Durability::Immediate).map_err(io)?;
        tx.set_quick_repair(true);
        tx.open_table(QUEUES).map_err(io)?;
        tx.open_table(META).map_err(io)?;
        tx.open_table(BODY).map_err(io)?;
        tx.open_table(KV).map_err(io)?;
        tx.open_table(DOOMED).map_err(io)?;
        tx.open_table(INFO).map_err(io)?.insert("format", FORMAT).map_err(io)?;
        // Replaying is idempotent: every op sets or removes keys, so records whose effects a
        // checkpoint already made durable (a crash between checkpoint and log reset) replay harmlessly.
        let records = older_records.len() + newer_records.len();
        let replayed: usize = older_records.iter().chain(&newer_records).map(Vec::len).sum();
        for ops in older_records.iter().chain(&newer_records) {
            apply_ops(&tx, ops.iter())?;
        }
        tx.commit().map_err(io)?;
        if records > 0 {
            tracing::info!(records, ops = replayed, "replayed the write-ahead log");
            let latest = newer.epoch();
            older.restart_after(latest)?;
            newer.restart_after(older.epoch())?;
        }
        let mut doomed = HashMap::new();
        for item in db.begin_read().map_err(io)?.open_table(DOOMED).map_err(io)?.iter().map_err(io)? {
            let (queue, below) = item.map_err(io)?;
            doomed.insert(queue.value(), below.value());
        }
        let log = LogState { wal: newer, oldest: None, unsynced: false, split: Split::default() };
        let layers = Layers { spare_log: Some(older), ..Layers::default() };
        let shared = Arc::new(Shared {
            db,
            log: Mutex::new(log),
            layers: Mutex::new(layers),
            layers_changed: Condvar::new(),
            failed: OnceLock::new(),
            doomed: Mutex::new(doomed),
            cleanup_chunks: AtomicU64::new(0),
            space,
            inject_enospc: AtomicU32::new(0),
        });
        let applier = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("sluice-store-apply".into())
                .spawn(move || shared.run_applier())
                .map_err(io)?
        };
        Ok(EmbeddedBackend { shared, applier: Mutex::new(Some(applier)), salvaged })
    }
}

/// Refuses to start, before creating any file, where the logs still to be created and the
/// recovery reserve do not fit: a disk too small gets a message saying how much is needed instead of
/// a half-made log.
fn check_room(path: &Path, space: &SpaceWatch) -> Result<(), StoreError> {
    let missing_logs = LOG_EXTENSIONS.iter().filter(|ext| !path.with_extension(ext).exists()).count() as u64;
    if missing_logs == 0 {
        return Ok(());
    }
    let needed = missing_logs * PREALLOCATED + RESERVE_BYTES;
    let free = space.free().map_err(io)?;
    if free < needed {
        return Err(StoreError::Full(format!(
            "a new store needs {} MiB free in {} ({} MiB of write-ahead logs, {} MiB kept for recovery); {} MiB are free",
            mib(needed),
            path.parent().map_or_else(|| ".".into(), |p| p.display().to_string()),
            mib(missing_logs * PREALLOCATED),
            mib(RESERVE_BYTES),
            free >> 20
        )));
    }
    Ok(())
}

/// Bytes asked of the kernel at a time while prefetching.
const PREFETCH_CHUNK: u64 = 16 << 20;

/// Reads the store file into the page cache, sequentially, on a background thread.
///
/// Recovery walks the `meta` table in key order, and its pages lie scattered between the bodies
/// written with them: with a cold page cache (a fresh boot, or the host reclaiming the cache, as it
/// does here minutes after a large fill) that walk was a stream of small random reads, 14.8 s for
/// a 10M-message FIFO queue that recovers in 4.9 s from a warm cache. Streaming the whole file in
/// at the disk's sequential rate beside the walk brings the cold case near the warm one. Skipped
/// when the file would take more than half the memory available, where it would evict itself.
fn prefetch_in_background(path: &Path) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let Ok(file) = File::open(path) else { return };
        let Ok(len) = file.metadata().map(|m| m.len()) else { return };
        let available = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kib| kib * 1024)
        });
        if len < PREFETCH_CHUNK || available.is_none_or(|a| len > a / 2) {
            return;
        }
        let spawned = std::thread::Builder::new().name("sluice-store-prefetch".into()).spawn(move || {
            let started = Instant::now();
            let mut offset = 0;
            while offset < len {
                let n = PREFETCH_CHUNK.min(len - offset) as usize;
                // SAFETY: maps a range of an open file read-only and unmaps it before the next; the
                // populate makes the kernel read the range into the page cache now, without copying it
                // into this process (a plain read would cost a memcpy per byte on the recovery's cores).
                #[allow(unsafe_code)]
                let done = unsafe {
                    let map = libc::mmap(
                        std::ptr::null_mut(),
                        n,
                        libc::PROT_READ,
                        libc::MAP_SHARED,
                        file.as_raw_fd(),
                        offset as libc::off_t,
                    );
                    if map == libc::MAP_FAILED {
                        return;
                    }
                    let populated = libc::madvise(map, n, libc::MADV_POPULATE_READ);
                    libc::munmap(map, n);
                    populated
                };
                if done != 0 {
                    return;
                }
                offset += n as u64;
            }
            tracing::debug!(bytes = len, ms = started.elapsed().as_millis() as u64, "store file prefetched");
        });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "no prefetch thread");
        }
    }
}
