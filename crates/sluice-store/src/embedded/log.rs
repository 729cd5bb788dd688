//! The writer's side of a commit: one record in the write-ahead log (fdatasynced for `apply`,
//! not for `append`) and its ops added to the active layer, where readers see them at once.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{LogState, Shared};
use crate::{Op, StoreError};

impl Shared {
    /// Writes one log record for `ops` (fdatasynced if `durable`) and adds them to the active
    /// layer, where readers see them at once.
    pub(super) fn log_and_keep(&self, ops: Vec<Op>, durable: bool) -> Result<(), StoreError> {
        let mut log = self.log()?;
        self.refuse_if_failed()?;
        // A failed write leaves nothing applied and the log's end where it was; a failed sync
        // leaves the record's fate unknown, so writes stop until a restart replays what is there.
        let started = Instant::now();
        let injected =
            self.inject_enospc.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        // Degraded, the log may use its preallocated room but not grow.
        let may_grow = self.space.degraded().is_none();
        let appended = if injected {
            Err(StoreError::Full("write-ahead log: No space left on device (injected)".into()))
        } else {
            log.wal.append_bounded(&ops, may_grow)
        };
        if let Err(e) = appended {
            if e.is_retryable() {
                self.space.out_of_space("write-ahead log");
            }
            return Err(e);
        }
        log.split.write += started.elapsed();
        log.unsynced = true;
        if durable {
            self.sync_log(&mut log)?;
        }
        log.split.commits += 1;
        log.split.ops += ops.len() as u64;
        log.oldest.get_or_insert_with(Instant::now);
        self.note_doomed(&ops);
        self.layers().active.extend(ops);
        Ok(())
    }

    /// fdatasyncs the log: every record appended so far becomes durable.
    pub(super) fn sync_log(&self, log: &mut LogState) -> Result<(), StoreError> {
        let started = Instant::now();
        if let Err(e) = log.wal.sync() {
            tracing::error!(error = %e, "write-ahead log sync failed; refusing writes until restart");
            self.fail(&e);
            return Err(e);
        }
        log.unsynced = false;
        log.split.syncs += 1;
        log.split.sync += started.elapsed();
        Ok(())
    }
}
