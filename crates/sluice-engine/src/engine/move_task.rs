//! Message move tasks (StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask): a
//! background task moves the messages of a dead-letter queue to a destination queue, or each back to
//! the queue it came from, at an optional maximum rate.
//!
//! Tasks are persisted beside their source queue. A task still running when the server stops is
//! marked FAILED ("interrupted by a server restart") at the next start, never silently resumed or
//! lost: messages it already moved are moved (each move is one atomic commit), the rest stay in the DLQ.
//!
//! Part of the engine: a task moves its batches with the engine's own atomic move
//! (`Engine::move_messages`, in `dead_letter.rs`), and recovery hands it the task records it finds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_store::{Op, QueueId};

use super::Engine;
use crate::error::{EngineError, Result};
use crate::record::{kv_key, KV_TASK};

/// What a task is doing, as ListMessageMoveTasks reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TaskRecord {
    pub handle: String,
    pub source_arn: String,
    pub destination_arn: Option<String>,
    pub max_per_second: Option<u32>,
    pub started_ms: u64,
    pub to_move: u64,
    pub moved: u64,
    /// RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED.
    pub status: String,
    pub failure_reason: Option<String>,
}

/// A task: its record and the flag that cancels it.
pub struct MoveTask {
    source_queue: QueueId,
    record: Mutex<TaskRecord>,
    cancel: AtomicBool,
}

impl MoveTask {
    /// A snapshot of the task's record.
    pub fn record(&self) -> TaskRecord {
        self.record.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, engine: &Engine, change: impl FnOnce(&mut TaskRecord)) {
        let record = {
            let mut r = self.record.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut r);
            r.clone()
        };
        if let Ok(bytes) = serde_json::to_vec(&record) {
            engine.store().commit_lazy(vec![Op::PutKv {
                queue: self.source_queue,
                key: kv_key(KV_TASK, &record.handle),
                value: bytes,
            }]);
        }
    }
}

/// Task handles look like AWS's: base64 of `{"taskId": <uuid>, "sourceArn": <arn>}`.
fn encode_handle(task_id: &str, source_arn: &str) -> String {
    use base64::Engine as _;
    let doc = serde_json::json!({ "taskId": task_id, "sourceArn": source_arn });
    base64::engine::general_purpose::STANDARD.encode(doc.to_string())
}

/// Checks that a task handle is well formed (InvalidParameterValue otherwise).
fn check_handle(handle: &str) -> Result<()> {
    use base64::Engine as _;
    let doc = base64::engine::general_purpose::STANDARD
        .decode(handle.trim())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    match doc {
        Some(d)
            if d.get("taskId").is_some_and(|t| t.is_string()) && d.get("sourceArn").is_some_and(|a| a.is_string()) =>
        {
            Ok(())
        }
        // AWS's recorded answer (LocalStack snapshot test_cancel_with_invalid_task_handle): the value is not echoed.
        _ => Err(EngineError::InvalidParameterValue("Value for parameter TaskHandle is invalid.".into())),
    }
}

fn not_found(what: &str) -> EngineError {
    EngineError::ResourceNotFound(format!("The resource that you specified for the {what} parameter doesn't exist."))
}

impl Engine {
    /// StartMessageMoveTask. Returns the task handle.
    pub fn start_message_move_task(
        self: &Arc<Self>,
        source_arn: &str,
        destination_arn: Option<&str>,
        max_per_second: Option<i64>,
    ) -> Result<String> {
        let source = self.queue_by_arn(source_arn).ok_or_else(|| not_found("SourceArn"))?;
        if self.dead_letter_source_queues(&source.name)?.is_empty() {
            return Err(EngineError::InvalidParameterValue(
                "Source queue must be configured as a Dead Letter Queue.".into(),
            ));
        }
        if let Some(dest) = destination_arn {
            let dest_queue = self.queue_by_arn(dest).ok_or_else(|| not_found("DestinationArn"))?;
            if dest_queue.lock().record.attributes.fifo_queue != source.lock().record.attributes.fifo_queue {
                return Err(EngineError::InvalidParameterValue(
                    "Source and destination queues must be of the same type.".into(),
                ));
            }
        }
        let rate = match max_per_second {
            None => None,
            Some(r) if (1..=500).contains(&r) => Some(r as u32),
            Some(r) => {
                return Err(EngineError::InvalidParameterValue(format!(
                "Value {r} for parameter MaxNumberOfMessagesPerSecond is invalid. Reason: Must be between 1 and 500."
            )))
            }
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if tasks.iter().any(|t| {
            let r = t.record();
            r.source_arn == source_arn && (r.status == "RUNNING" || r.status == "CANCELLING")
        }) {
            return Err(EngineError::InvalidParameterValue(
                "There is already a task running. Only one active task is allowed for a source queue arn at a given time.".into(),
            ));
        }
        let now = self.clock().now_ms();
        let to_move = {
            let mut s = source.lock();
            // Through the engine, so the retention removals the tick finds are committed.
            self.tick(&source, &mut s, now);
            s.counts().visible as u64
        };
        let task = Arc::new(MoveTask {
            source_queue: source.id,
            record: Mutex::new(TaskRecord {
                handle: encode_handle(&uuid::Uuid::new_v4().to_string(), source_arn),
                source_arn: source_arn.to_string(),
                destination_arn: destination_arn.map(str::to_string),
                max_per_second: rate,
                started_ms: now,
                to_move,
                moved: 0,
                status: "RUNNING".into(),
                failure_reason: None,
            }),
            cancel: AtomicBool::new(false),
        });
        tasks.push(task.clone());
        drop(tasks);
        task.update(self, |_| {});
        let handle = task.record().handle;
        let engine = self.clone();
        tokio::spawn(async move { engine.run_move_task(task).await });
        Ok(handle)
    }

    async fn run_move_task(self: Arc<Self>, task: Arc<MoveTask>) {
        let record = task.record();
        let batch = record.max_per_second.map_or(10, |r| r.min(10) as usize);
        loop {
            if task.cancel.load(Ordering::SeqCst) {
                task.update(&self, |r| r.status = "CANCELLED".into());
                return;
            }
            let Some(source) = self.queue_by_arn(&record.source_arn) else {
                task.update(&self, |r| {
                    r.status = "FAILED".into();
                    r.failure_reason = Some("The source queue was deleted.".into());
                });
                return;
            };
            let taken = source.lock().take_visible_for_move(batch);
            if taken.is_empty() {
                task.update(&self, |r| r.status = "COMPLETED".into());
                return;
            }
            match self.move_batch(&source, record.destination_arn.as_deref(), taken).await {
                Ok(n) => task.update(&self, |r| r.moved += n as u64),
                Err(e) => {
                    task.update(&self, |r| {
                        r.status = "FAILED".into();
                        r.failure_reason = Some(e.to_string());
                    });
                    return;
                }
            }
            if let Some(rate) = record.max_per_second {
                tokio::time::sleep(Duration::from_secs_f64(batch as f64 / rate as f64)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Moves one batch taken from `source` to `destination`, or each message back to its
    /// DeadLetterQueueSourceArn. Messages that cannot be placed go back into the source.
    async fn move_batch(
        &self,
        source: &crate::queue::Queue,
        destination: Option<&str>,
        taken: Vec<(u64, crate::record::MessageMeta)>,
    ) -> Result<usize> {
        let mut by_target: Vec<(String, Vec<(u64, crate::record::MessageMeta)>)> = Vec::new();
        let mut unplaced = Vec::new();
        let mut groups = std::collections::HashMap::new();
        for (seq, meta) in taken {
            let body = match self.store().get_body(source.id, seq)? {
                Some(b) => self.open_body(source, &meta.id, &b).ok().flatten(),
                None => None,
            };
            if let Some(g) = body.as_ref().and_then(|b| b.group_id.clone()) {
                groups.insert(seq, g);
            }
            let target = match destination {
                Some(d) => Some(d.to_string()),
                None => body.and_then(|b| b.dead_letter_source_arn),
            };
            match target {
                Some(t) => match by_target.iter_mut().find(|(arn, _)| *arn == t) {
                    Some((_, list)) => list.push((seq, meta)),
                    None => by_target.push((t, vec![(seq, meta)])),
                },
                None => unplaced.push((seq, meta)),
            }
        }
        let mut moved = 0;
        let mut failure = None;
        for (arn, messages) in by_target {
            match self.queue_by_arn(&arn) {
                Some(target) => moved += self.move_messages(source, &target, messages, None).await?,
                None => {
                    failure = Some(format!("Destination queue {arn} does not exist."));
                    unplaced.extend(messages);
                }
            }
        }
        if !unplaced.is_empty() {
            let now = self.clock().now_ms();
            let mut state = source.lock();
            for (seq, meta) in unplaced {
                let group = groups.get(&seq).map_or("", String::as_str);
                state.insert(seq, meta, group, now);
            }
            return Err(EngineError::InvalidParameterValue(
                failure.unwrap_or_else(|| "Messages without a DeadLetterQueueSourceArn need a DestinationArn.".into()),
            ));
        }
        Ok(moved)
    }

    /// CancelMessageMoveTask. Returns the number of messages moved so far.
    pub fn cancel_message_move_task(&self, handle: &str) -> Result<u64> {
        check_handle(handle)?;
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let task = tasks
            .iter()
            .find(|t| t.record().handle == handle)
            .ok_or_else(|| EngineError::ResourceNotFound("Task does not exist.".into()))?;
        if task.record().status != "RUNNING" {
            return Err(EngineError::ResourceNotFound("Task is not running.".into()));
        }
        task.cancel.store(true, Ordering::SeqCst);
        task.update(self, |r| r.status = "CANCELLING".into());
        Ok(task.record().moved)
    }

    /// ListMessageMoveTasks: the most recent tasks of a source queue, newest first (1–10, default 1).
    pub fn list_message_move_tasks(&self, source_arn: &str, max: Option<i64>) -> Result<Vec<TaskRecord>> {
        self.queue_by_arn(source_arn).ok_or_else(|| not_found("SourceArn"))?;
        let max = match max {
            None => 1,
            Some(n) if (1..=10).contains(&n) => n as usize,
            Some(n) => {
                return Err(EngineError::InvalidParameterValue(format!(
                    "Value {n} for parameter MaxResults is invalid. Reason: Must be between 1 and 10."
                )))
            }
        };
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        Ok(tasks.iter().rev().map(|t| t.record()).filter(|r| r.source_arn == source_arn).take(max).collect())
    }

    /// Rebuilds the task list at startup; tasks that were running are marked FAILED.
    pub(super) fn recover_tasks(&self, records: Vec<(QueueId, Vec<u8>)>) {
        let mut recovered: Vec<Arc<MoveTask>> = Vec::new();
        for (queue, bytes) in records {
            let Ok(mut record) = serde_json::from_slice::<TaskRecord>(&bytes) else { continue };
            let interrupted = record.status == "RUNNING" || record.status == "CANCELLING";
            if interrupted {
                record.status = "FAILED".into();
                record.failure_reason = Some("The task was interrupted by a server restart.".into());
            }
            let task =
                Arc::new(MoveTask { source_queue: queue, record: Mutex::new(record), cancel: AtomicBool::new(false) });
            if interrupted {
                task.update(self, |_| {});
            }
            recovered.push(task);
        }
        recovered.sort_by_key(|t| t.record().started_ms);
        *self.tasks.lock().unwrap_or_else(|p| p.into_inner()) = recovered;
    }
}
