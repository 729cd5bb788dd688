//! Read-only views for metrics and the dashboard: each queue's figures (the same counters
//! GetQueueAttributes reads), visible messages peeked at without being received, and the gauge of
//! waiting long polls.

use std::sync::Arc;

use sluice_store::Seq;

use super::{lock_poisoned, Engine};
use crate::error::Result;
use crate::message::Attributes;
use crate::queue::{Counts, Queue};

/// One queue's figures for metrics and the dashboard.
#[derive(Debug, Clone)]
pub struct QueueOverview {
    pub name: String,
    pub arn: String,
    pub fifo: bool,
    pub counts: Counts,
    pub oldest_age_ms: Option<u64>,
    pub sent: u64,
    pub received: u64,
    pub deleted: u64,
    pub empty_receives: u64,
    pub dead_lettered: u64,
    pub dlq_arn: Option<String>,
}

/// A message shown without being received (dashboard peek).
#[derive(Debug, Clone)]
pub struct PeekedMessage {
    pub message_id: String,
    pub body: String,
    pub sent_ms: u64,
    pub receive_count: u32,
    pub attributes: Attributes,
}

impl Engine {
    /// Figures of every queue, sorted by name (metrics, dashboard).
    pub fn overviews(&self) -> Vec<QueueOverview> {
        let mut queues: Vec<Arc<Queue>> = self.queues.read().unwrap_or_else(lock_poisoned).values().cloned().collect();
        queues.sort_by(|a, b| a.name.cmp(&b.name));
        queues.iter().map(|q| self.overview_of(q)).collect()
    }

    /// Figures of one queue.
    pub fn overview(&self, name: &str) -> Result<QueueOverview> {
        let queue = self.queue(name)?;
        Ok(self.overview_of(&queue))
    }

    fn overview_of(&self, q: &Queue) -> QueueOverview {
        use std::sync::atomic::Ordering::Relaxed;
        let now = self.clock.now_ms();
        let mut state = q.lock();
        self.tick(q, &mut state, now);
        QueueOverview {
            name: q.name.clone(),
            arn: q.arn.clone(),
            fifo: state.record.attributes.fifo_queue,
            counts: state.counts(),
            oldest_age_ms: state.oldest_sent_ms().map(|t| now.saturating_sub(t)),
            sent: q.stats.sent.load(Relaxed),
            received: q.stats.received.load(Relaxed),
            deleted: q.stats.deleted.load(Relaxed),
            empty_receives: q.stats.empty_receives.load(Relaxed),
            dead_lettered: q.stats.dead_lettered.load(Relaxed),
            dlq_arn: state.record.attributes.redrive_policy.as_ref().map(|p| p.dead_letter_target_arn.clone()),
        }
    }

    /// Up to `max` visible messages, oldest first, without changing their visibility.
    pub fn peek(&self, name: &str, max: usize) -> Result<Vec<PeekedMessage>> {
        let queue = self.queue(name)?;
        let now = self.clock.now_ms();
        let picked = queue.lock().peek_visible(now, max);
        let mut out = Vec::with_capacity(picked.len());
        let seqs: Vec<Seq> = picked.iter().map(|(seq, _)| *seq).collect();
        let bodies = self.store.get_bodies(queue.id, &seqs)?;
        for ((_, meta), bytes) in picked.into_iter().zip(bodies) {
            let Some(bytes) = bytes else { continue };
            let Some(record) = self.open_body(&queue, &meta.id, &bytes)? else { continue };
            out.push(PeekedMessage {
                message_id: uuid::Uuid::from_bytes(meta.id).to_string(),
                body: record.body,
                sent_ms: meta.sent_ms,
                receive_count: meta.receive_count,
                attributes: record.attributes,
            });
        }
        Ok(out)
    }

    /// Receives currently waiting in a long poll.
    pub fn long_polls_waiting(&self) -> i64 {
        self.long_polls_waiting.load(std::sync::atomic::Ordering::Relaxed)
    }
}
