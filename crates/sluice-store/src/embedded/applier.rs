//! The applier thread: commits sealed layers to redb in order (a checkpoint's layer durably, then
//! gives its log file back), removes a chunk of doomed records after each layer and while idle,
//! and turns a panic or a failed commit into a failed backend so nobody waits for it forever.

use std::sync::atomic::Ordering;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use redb::Durability;

use super::{Checkpoint, Layers, Shared};
use crate::space::RECHECK;
use crate::StoreError;

impl Shared {
    /// Waits until every sealed layer is in redb (or the applier failed).
    pub(super) fn wait_for_applier<'a>(
        &'a self,
        mut layers: MutexGuard<'a, Layers>,
        until: impl Fn(&Layers) -> bool,
    ) -> MutexGuard<'a, Layers> {
        while !until(&layers) && self.failed.get().is_none() {
            layers = self.layers_changed.wait(layers).unwrap_or_else(|p| p.into_inner());
        }
        layers
    }

    /// The applier thread's body. A panic in it (a bug, or redb's) is turned into a failure, so that
    /// writers held back and flushes waiting for the applier get an error instead of waiting forever.
    pub(super) fn run_applier(&self) {
        self.fail_on_panic(|| self.applier_loop());
    }

    pub(super) fn fail_on_panic(&self, body: impl FnOnce()) {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
            let what =
                panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
            let why = StoreError::Io(format!("store applier panicked: {}", what.unwrap_or_default()));
            tracing::error!(error = %why, "refusing writes until restart");
            self.fail(&why);
        }
    }

    /// While the disk is short of space, redb's file must not grow (a failed redb write leaves it
    /// unusable until a restart): the applier waits, re-measuring every [`RECHECK`], and says so
    /// in `paused` so that nobody waits for it meanwhile. False: the backend is closing or failed.
    fn hold_back_while_degraded(&self) -> bool {
        if self.space.degraded().is_none() {
            return true;
        }
        let mut layers = self.layers();
        layers.paused = true;
        self.layers_changed.notify_all();
        while self.space.degraded().is_some() {
            if layers.closing || self.failed.get().is_some() {
                return false;
            }
            layers = self.layers_changed.wait_timeout(layers, RECHECK).unwrap_or_else(|p| p.into_inner()).0;
        }
        layers.paused = false;
        true
    }

    /// Commits sealed layers to redb, oldest first, until the backend closes.
    fn applier_loop(&self) {
        let mut applies = 0u64;
        let mut apply_time = Duration::ZERO;
        // Doomed records may be left in redb: one chunk of them goes after each layer, and chunk
        // after chunk while no layer waits.
        let mut cleaning = !self.doomed().is_empty();
        loop {
            if !self.hold_back_while_degraded() {
                return;
            }
            let (pending, checkpoint) = {
                let mut layers =
                    self.wait_for_applier(self.layers(), |l| !l.sealed.is_empty() || l.closing || cleaning);
                // A failed backend wakes every wait at once; the applier must stop here, or its idle
                // clean-up would spin (and keep committing to a redb whose state is uncertain).
                if self.failed.get().is_some() {
                    return;
                }
                let closing = layers.closing;
                match layers.sealed.front_mut() {
                    Some(front) => (front.pending.clone(), front.checkpoint.take()),
                    None if closing => return,
                    None => {
                        drop(layers);
                        if !self.clean_up(&mut cleaning) {
                            return;
                        }
                        continue;
                    }
                }
            };
            if self.failed.get().is_some() {
                return;
            }
            let started = Instant::now();
            let durability = if checkpoint.is_some() { Durability::Immediate } else { Durability::None };
            if let Err(e) = self.commit_to_redb(pending.effective_ops(), durability) {
                // The ops are durable in the log; redb's state is uncertain, so writes stop until a
                // restart replays the logs. The layer stays readable.
                tracing::error!(error = %e, "applying the log to redb failed; refusing writes until restart");
                self.fail(&e);
                return;
            }
            applies += 1;
            apply_time += started.elapsed();
            let mut layers = self.layers();
            layers.sealed_ops -= pending.len();
            layers.sealed.pop_front();
            if let Some(Checkpoint { retired, log_bytes, split }) = checkpoint {
                layers.spare_log = Some(retired);
                layers.checkpointing = false;
                let per_commit = |d: Duration| d.as_micros() as u64 / split.commits.max(1);
                tracing::debug!(
                    commits = split.commits,
                    syncs = split.syncs,
                    ops = split.ops,
                    log_bytes,
                    write_us_per_commit = per_commit(split.write),
                    sync_us_per_sync = split.sync.as_micros() as u64 / split.syncs.max(1),
                    held_back_ms = split.held_back.as_millis() as u64,
                    applies,
                    apply_us_per_apply = apply_time.as_micros() as u64 / applies.max(1),
                    checkpoint_ms = started.elapsed().as_millis() as u64,
                    cleanup_chunks = self.cleanup_chunks.load(Ordering::Relaxed),
                    "checkpoint"
                );
                (applies, apply_time) = (0, Duration::ZERO);
            }
            drop(layers);
            self.layers_changed.notify_all();
            cleaning |= pending.dooms_records();
            if cleaning && !self.clean_up(&mut cleaning) {
                return;
            }
        }
    }
}
