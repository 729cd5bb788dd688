//! Dead-letter queue tools: look at messages without consuming them, and replay them to their
//! source queue.
//!
//! SQS has no real "peek": [`peek`] receives messages (which makes them invisible and increments
//! their `ApproximateReceiveCount`) and then immediately sets their visibility back to 0.
//! Caveats, all inherent to SQS:
//! - while a peek runs, the peeked messages are invisible to real consumers;
//! - each peek counts as a receive: if the DLQ itself has a redrive policy, peeking often can
//!   move messages on to *its* dead-letter queue;
//! - if the peeking process dies between the receive and the reset, the messages stay invisible
//!   until the peek's visibility timeout ends;
//! - a large queue is sampled, not listed: SQS returns whatever its hosts have at hand.

use std::collections::HashMap;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

use crate::consumer::{change_visibility, delete_batch};
use crate::error::{Error, Result};

/// Options of [`peek_with`].
#[derive(Debug, Clone)]
pub struct PeekOptions {
    /// At most this many messages.
    pub max_messages: usize,
    /// Visibility timeout during the peek (seconds): long enough that one message is not seen
    /// twice while the peek runs, short enough to recover soon if the peeker dies.
    pub visibility_timeout: i32,
    /// Long-poll wait of each receive (seconds); the peek ends at the first empty receive.
    pub wait_time_seconds: i32,
}

impl Default for PeekOptions {
    fn default() -> Self {
        PeekOptions { max_messages: 10, visibility_timeout: 30, wait_time_seconds: 1 }
    }
}

/// Up to `max_messages` messages of the queue, left in the queue (see the module caveats).
pub async fn peek(client: &Client, queue_url: &str, max_messages: usize) -> Result<Vec<Message>> {
    peek_with(client, queue_url, &PeekOptions { max_messages, ..Default::default() }).await
}

/// [`peek`] with options.
pub async fn peek_with(client: &Client, queue_url: &str, opts: &PeekOptions) -> Result<Vec<Message>> {
    let mut got: Vec<Message> = Vec::new();
    let mut result = Ok(());
    while got.len() < opts.max_messages {
        let want = (opts.max_messages - got.len()).min(10) as i32;
        match client
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(want)
            .visibility_timeout(opts.visibility_timeout.max(1))
            .wait_time_seconds(opts.wait_time_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
        {
            Ok(out) if out.messages().is_empty() => break,
            Ok(out) => got.extend(out.messages().iter().cloned()),
            Err(e) => {
                result = Err(Error::sqs("ReceiveMessage", e));
                break;
            }
        }
    }
    // Always put back what was taken, even after an error.
    let receipts: Vec<String> = got.iter().filter_map(|m| m.receipt_handle().map(str::to_string)).collect();
    change_visibility(client, queue_url, &receipts, 0).await;
    result.map(|_| got)
}

/// Options of [`replay`].
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    /// Stop after this many messages (manual replay only; a move task moves everything).
    pub max_messages: Option<u64>,
    /// Messages per second for the move task (`MaxNumberOfMessagesPerSecond`).
    pub max_per_second: Option<i32>,
    /// Skip StartMessageMoveTask and replay by receive + send + delete.
    pub force_manual: bool,
}

/// How a replay was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayReport {
    /// The server runs a message move task (asynchronous; see ListMessageMoveTasks).
    MoveTask {
        /// The task handle (for CancelMessageMoveTask).
        task_handle: String,
    },
    /// Done here by receive + send + delete.
    Manual {
        /// Messages sent to the source queue and deleted from the DLQ.
        moved: u64,
        /// Messages that could not be sent (left in the DLQ, made visible again).
        failed: u64,
        /// Sent but not deleted from the DLQ (they will be replayed again: at-least-once).
        not_deleted: u64,
    },
}

/// Moves the messages of `dlq_url` back to `source_url`. Uses StartMessageMoveTask when the
/// server supports it; when it answers UnsupportedOperation (older sluice builds did) or
/// `force_manual` is set, receives, sends to the source (body, message attributes, FIFO group
/// and deduplication ids) and deletes from the DLQ only what was sent. The manual path is
/// at-least-once: a crash between send and delete replays a message twice.
pub async fn replay(client: &Client, dlq_url: &str, source_url: &str, opts: &ReplayOptions) -> Result<ReplayReport> {
    if !opts.force_manual {
        let source_arn = crate::client::queue_arn(client, dlq_url).await?;
        let dest_arn = crate::client::queue_arn(client, source_url).await?;
        match client
            .start_message_move_task()
            .source_arn(source_arn)
            .destination_arn(dest_arn)
            .set_max_number_of_messages_per_second(opts.max_per_second)
            .send()
            .await
        {
            Ok(out) => {
                return Ok(ReplayReport::MoveTask { task_handle: out.task_handle().unwrap_or_default().to_string() })
            }
            Err(e) => {
                let err = Error::sqs("StartMessageMoveTask", e);
                if !err.is_unsupported_operation() {
                    return Err(err);
                }
                tracing::info!(
                    "StartMessageMoveTask is not supported by this server; replaying by receive + send + delete"
                );
            }
        }
    }
    replay_manual(client, dlq_url, source_url, opts.max_messages).await
}

async fn replay_manual(client: &Client, dlq_url: &str, source_url: &str, max: Option<u64>) -> Result<ReplayReport> {
    let (mut moved, mut failed, mut not_deleted) = (0u64, 0u64, 0u64);
    loop {
        let remaining = max.map(|m| m.saturating_sub(moved + failed));
        if remaining == Some(0) {
            break;
        }
        let want = remaining.map_or(10, |r| r.min(10)) as i32;
        let out = client
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(want)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| Error::sqs("ReceiveMessage", e))?;
        let msgs = out.messages();
        if msgs.is_empty() {
            break;
        }
        let entries: Vec<SendMessageBatchRequestEntry> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let sys = |n: MessageSystemAttributeName| m.attributes().and_then(|a| a.get(&n)).cloned();
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(m.body().unwrap_or_default())
                    .set_message_attributes(m.message_attributes().filter(|a| !a.is_empty()).cloned())
                    .set_message_group_id(sys(MessageSystemAttributeName::MessageGroupId))
                    .set_message_deduplication_id(sys(MessageSystemAttributeName::MessageDeduplicationId))
                    .build()
                    .expect("id and body set")
            })
            .collect();
        let sent = client.send_message_batch().queue_url(source_url).set_entries(Some(entries)).send().await;
        let mut ok_idx: Vec<usize> = Vec::new();
        match sent {
            Ok(out) => ok_idx.extend(out.successful().iter().filter_map(|e| e.id().parse::<usize>().ok())),
            Err(e) => tracing::warn!(error = %Error::sqs("SendMessageBatch", e), "replay send failed"),
        }
        let by_idx: HashMap<usize, &Message> = msgs.iter().enumerate().collect();
        let delete: Vec<String> =
            ok_idx.iter().filter_map(|i| by_idx.get(i).and_then(|m| m.receipt_handle()).map(str::to_string)).collect();
        let release: Vec<String> = msgs
            .iter()
            .enumerate()
            .filter(|(i, _)| !ok_idx.contains(i))
            .filter_map(|(_, m)| m.receipt_handle().map(str::to_string))
            .collect();
        let (deleted, del_failed) = delete_batch(client, dlq_url, &delete).await;
        moved += deleted;
        not_deleted += del_failed;
        if !release.is_empty() {
            failed += release.len() as u64;
            change_visibility(client, dlq_url, &release, 0).await;
            // The source is refusing: stop instead of spinning on the same messages.
            break;
        }
    }
    Ok(ReplayReport::Manual { moved, failed, not_deleted })
}
