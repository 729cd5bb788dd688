//! Sealing the active layer for the applier, with a switch of log files when a checkpoint is due
//! (the full file goes to the applier with the layer and comes back once redb has it durably);
//! `flush` (everything logged into redb, for scans) and `close` (the last checkpoint, at shutdown,
//! leaving both logs empty).

use std::sync::Arc;

use redb::Durability;

use super::{Checkpoint, LogState, Sealed, Shared};
use crate::StoreError;

impl Shared {
    /// Seals the active layer for the applier; with `checkpoint`, first switches new records to
    /// the spare log file and hands the full one over with the layer. The caller holds the log lock,
    /// so nothing is logged between the switch and the seal.
    pub(super) fn seal(&self, log: &mut LogState, checkpoint: bool) -> Result<(), StoreError> {
        let checkpoint = if checkpoint {
            let Some(mut next) = self.layers().spare_log.take() else { return Ok(()) };
            // The full file's records must be durable on their own until the checkpoint is: a
            // crash in between replays them.
            if log.unsynced {
                self.sync_log(log)?;
            }
            if let Err(e) = next.restart_after(log.wal.epoch()) {
                self.layers().spare_log = Some(next);
                self.fail(&e);
                return Err(e);
            }
            let log_bytes = log.wal.used();
            let retired = std::mem::replace(&mut log.wal, next);
            log.oldest = None;
            Some(Checkpoint { retired, log_bytes, split: std::mem::take(&mut log.split) })
        } else {
            None
        };
        let mut layers = self.layers();
        let pending = std::mem::take(&mut layers.active);
        layers.sealed_ops += pending.len();
        layers.checkpointing |= checkpoint.is_some();
        layers.sealed.push_back(Sealed { pending: Arc::new(pending), checkpoint });
        drop(layers);
        self.layers_changed.notify_all();
        Ok(())
    }

    /// Applies everything logged so far to redb (on request of a reader that needs redb complete:
    /// scans).
    pub(super) fn flush(&self) -> Result<(), StoreError> {
        {
            let mut log = self.log()?;
            if self.failed.get().is_some() {
                return Ok(());
            }
            if !self.layers().active.is_empty() {
                self.seal(&mut log, false)?;
            }
        }
        let layers = self.wait_for_applier(self.layers(), |l| l.sealed.is_empty() || l.paused);
        if !layers.sealed.is_empty() {
            return Err(StoreError::Full("the store is degraded (disk full): its B-tree is not up to date".into()));
        }
        drop(layers);
        self.refuse_if_failed()
    }

    /// Stops the applier's work at a clean point and makes everything durable in redb, leaving
    /// both logs empty (shutdown).
    pub(super) fn close(&self) -> Result<(), StoreError> {
        let mut log = self.log()?;
        if self.failed.get().is_some() {
            return Ok(());
        }
        let mut layers = self.wait_for_applier(self.layers(), |l| l.sealed.is_empty() || l.paused);
        layers.closing = true;
        self.layers_changed.notify_all();
        if !layers.sealed.is_empty() || layers.paused || self.space.degraded().is_some() {
            // Degraded: no checkpoint (redb cannot grow). Everything is in the logs, which the next
            // start replays into the space kept for recovery.
            tracing::warn!("closing while the disk is full: the write-ahead log will be replayed at the next start");
            return Ok(());
        }
        if self.failed.get().is_some() || log.oldest.is_none() && layers.active.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut layers.active);
        self.commit_to_redb(pending.effective_ops(), Durability::Immediate)?;
        // The spare first: its records are older, and replaying them alone on top of a state
        // that already has the active file's would undo those (a crash between the two resets).
        if let Some(spare) = layers.spare_log.as_mut() {
            spare.restart_after(log.wal.epoch())?;
            let after = spare.epoch();
            log.wal.restart_after(after)?;
        } else {
            log.wal.reset()?;
        }
        log.oldest = None;
        Ok(())
    }
}
