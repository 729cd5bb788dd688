//! What a consumer does with a received message: DeleteMessage(Batch) and
//! ChangeMessageVisibility(Batch), and the receipt-handle check both start with. Their writes are
//! committed lazily (the durability rule in `engine/mod.rs`).

use sluice_store::Op;

use super::{encode_meta, push_removal, Engine};
use crate::attributes::MAX_VISIBILITY_TIMEOUT;
use crate::error::{EngineError, Result};
use crate::queue::{Queue, QueueStats};
use crate::receipt::Receipt;

impl Engine {
    fn check_receipt(&self, queue: &Queue, handle: &str) -> Result<Receipt> {
        match self.receipts.check(handle) {
            Some(r) if r.queue == queue.id => Ok(r),
            Some(_) => Err(EngineError::ReceiptHandleOfOtherQueue(handle.to_string())),
            None => Err(EngineError::ReceiptHandleIsInvalid(handle.to_string())),
        }
    }

    /// DeleteMessage / DeleteMessageBatch: one result per handle. The removal is committed lazily.
    pub fn delete_messages(&self, name: &str, handles: &[String]) -> Result<Vec<Result<()>>> {
        let queue = self.queue(name)?;
        self.refuse_if_unrecordable()?;
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        let (results, unblocked) = {
            let mut state = queue.lock();
            let results = handles
                .iter()
                .map(|h| {
                    let r = self.check_receipt(&queue, h)?;
                    if state.delete(r, now, h)? {
                        QueueStats::add(&queue.stats.deleted, 1);
                        push_removal(&queue, &mut state, r.seq, now, &mut ops);
                    }
                    Ok(())
                })
                .collect();
            // On a FIFO queue, deleting a group's in-flight message unblocks the group's next one:
            // a waiting long poll must see it now, not at its deadline.
            let unblocked = state.record.attributes.fifo_queue && !ops.is_empty();
            // Committed under the lock, so a de-duplication record written here reaches the store
            // before any prune of it (a prune runs under this lock too).
            self.store.commit_lazy(ops);
            (results, unblocked)
        };
        if unblocked {
            queue.notify.notify_waiters();
        }
        Ok(results)
    }

    /// ChangeMessageVisibility / ChangeMessageVisibilityBatch: one result per (handle, timeout).
    pub fn change_visibility(&self, name: &str, changes: &[(String, i64)]) -> Result<Vec<Result<()>>> {
        let queue = self.queue(name)?;
        self.refuse_if_unrecordable()?;
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        let mut wake = false;
        let results = {
            let mut state = queue.lock();
            self.tick(&queue, &mut state, now);
            changes
                .iter()
                .map(|(h, timeout)| {
                    let r = self.check_receipt(&queue, h)?;
                    if !(0..=MAX_VISIBILITY_TIMEOUT as i64).contains(timeout) {
                        return Err(EngineError::InvalidParameterValue(format!(
                            "Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be >= 0 and <= 43200."
                        )));
                    }
                    let meta = state.change_visibility(r, now, *timeout as u64 * 1000, h)?;
                    wake |= *timeout == 0;
                    ops.push(Op::PutMeta { queue: queue.id, seq: r.seq, meta: encode_meta(&state, r.seq, &meta) });
                    Ok(())
                })
                .collect()
        };
        self.store.commit_lazy(ops);
        if wake {
            queue.notify.notify_waiters();
        }
        Ok(results)
    }
}
