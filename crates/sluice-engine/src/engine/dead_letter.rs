//! Dead-letter queues: checking the target of a RedrivePolicy, finding a queue's target, moving
//! messages into another queue in one atomic commit (dead-lettering, and move tasks' redrives),
//! and ListDeadLetterSourceQueues.

use std::sync::Arc;

use sluice_store::{Op, Seq};

use super::{lock_poisoned, push_removal, Engine};
use crate::attributes::QueueAttributes;
use crate::error::{EngineError, Result};
use crate::queue::Queue;
use crate::record::MessageMeta;

impl Engine {
    /// Checks a RedrivePolicy a queue wants: the target exists, has the same type and allows it.
    pub(super) fn check_redrive(&self, source_arn: &str, fifo: bool, attrs: &QueueAttributes) -> Result<()> {
        let Some(policy) = &attrs.redrive_policy else { return Ok(()) };
        let invalid = |why: &str| {
            EngineError::InvalidParameterValue(format!(
                "Value {} for parameter RedrivePolicy is invalid. Reason: {why}",
                policy.to_json()
            ))
        };
        if policy.dead_letter_target_arn == source_arn {
            return Err(invalid("A queue cannot be its own dead-letter queue."));
        }
        let target = self
            .queue_by_arn(&policy.dead_letter_target_arn)
            .ok_or_else(|| invalid("Dead letter target does not exist."))?;
        let target_state = target.lock();
        if target_state.record.attributes.fifo_queue != fifo {
            return Err(invalid("Dead-letter queue must be same type of queue as the source."));
        }
        if let Some(allow) = &target_state.record.attributes.redrive_allow_policy {
            if !allow.allows(source_arn) {
                return Err(invalid("Queue is not allowed by the dead-letter queue's RedriveAllowPolicy."));
            }
        }
        Ok(())
    }

    /// The dead-letter queue and threshold of `queue`, if its RedrivePolicy names an existing queue.
    pub(super) fn redrive_target(&self, queue: &Queue) -> Option<(Arc<Queue>, u32)> {
        let policy = queue.lock().record.attributes.redrive_policy.clone()?;
        let dlq = self.queue_by_arn(&policy.dead_letter_target_arn)?;
        Some((dlq, policy.max_receive_count))
    }

    /// Moves messages removed from `from` into `to`, atomically per batch: the copy and the removal
    /// are one commit. Keeps body, attributes and SentTimestamp; `dead_letter_source` marks DLQ moves.
    pub(super) async fn move_messages(
        &self,
        from: &Queue,
        to: &Queue,
        messages: Vec<(Seq, MessageMeta)>,
        dead_letter_source: Option<&str>,
    ) -> Result<usize> {
        let now = self.clock.now_ms();
        let mut ops = Vec::with_capacity(messages.len() * 2);
        let mut inserts = Vec::with_capacity(messages.len());
        {
            // Leaving the source: open de-duplication windows get their kv records in this commit.
            let mut state = from.lock();
            for (seq, _) in &messages {
                push_removal(from, &mut state, *seq, now, &mut ops);
            }
        }
        // The copies are sealed for the target: its data key, its ARN.
        let to_attrs = to.lock().record.attributes.clone();
        let key = self.sealing_key(to, &to_attrs, now).await?;
        let first_seq = to.lock().alloc_seqs(messages.len());
        let seqs: Vec<Seq> = messages.iter().map(|(seq, _)| *seq).collect();
        let bodies = self.store.get_bodies(from.id, &seqs)?;
        for (i, ((_, meta), bytes)) in messages.into_iter().zip(bodies).enumerate() {
            let Some(bytes) = bytes else { continue };
            // Damage (a sealed record that does not open) is logged and counted; it cannot move.
            let Some(mut body) = self.open_body(from, &meta.id, &bytes)? else { continue };
            // Set when dead-lettering; cleared when a move task redrives the message.
            body.dead_letter_source_arn = dead_letter_source.map(str::to_string);
            let group = body.group_id.clone().unwrap_or_default();
            // Dead letters keep their receive count (as on AWS); a redrive starts the count afresh so
            // the message is not dead-lettered again at its first receive.
            let moved = if dead_letter_source.is_some() {
                MessageMeta { visible_at_ms: now, group: 0, ..meta }
            } else {
                MessageMeta {
                    first_receive_ms: 0,
                    last_receive_ms: 0,
                    receive_count: 0,
                    visible_at_ms: now,
                    group: 0,
                    ..meta
                }
            };
            let new_seq = first_seq + i as u64;
            // The copy has no de-duplication entry in the target (the source keeps the window).
            ops.push(Op::PutMessage {
                queue: to.id,
                seq: new_seq,
                meta: moved.encode(&group, None),
                body: Engine::stored_body(key.as_deref(), to, &moved.id, &body),
            });
            inserts.push((new_seq, moved, group));
        }
        self.store.commit(ops).await?;
        let n = inserts.len();
        {
            let mut state = to.lock();
            for (seq, meta, group) in inserts {
                state.insert(seq, meta, &group, now);
            }
        }
        to.notify.notify_waiters();
        Ok(n)
    }

    /// ListDeadLetterSourceQueues: names of the queues whose RedrivePolicy targets `name`, sorted.
    pub fn dead_letter_source_queues(&self, name: &str) -> Result<Vec<String>> {
        let dlq = self.queue(name)?;
        let queues: Vec<Arc<Queue>> = self.queues.read().unwrap_or_else(lock_poisoned).values().cloned().collect();
        let mut names: Vec<String> = queues
            .iter()
            .filter(|q| {
                q.lock().record.attributes.redrive_policy.as_ref().is_some_and(|p| p.dead_letter_target_arn == dlq.arn)
            })
            .map(|q| q.name.clone())
            .collect();
        names.sort();
        Ok(names)
    }
}
