//! Recovery: [`Engine::open`] rebuilds every queue's index from the store's scans (queue records,
//! purge bounds still being removed, message meta records, kv records), with the FIFO
//! de-duplication windows and the move-task list, and removes what belongs to deleted queues.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use sluice_store::{Op, QueueId, Store};
use tokio::sync::watch;

use super::{lock_poisoned, Engine, EngineConfig};
use crate::clock::Clock;
use crate::error::{EngineError, Result};
use crate::queue::{DedupEntry, DedupKey, Queue, QueueState, DEDUP_WINDOW_MS};
use crate::receipt::ReceiptKey;
use crate::record::{
    data_key_kv_key, dedup_kv_key, MessageMeta, QueueRecord, KV_DATA_KEY, KV_DEDUP, KV_QUARANTINE, KV_TASK,
};

impl Engine {
    /// Opens the engine over `store`, rebuilding every queue's index from it (recovery).
    pub fn open(config: EngineConfig, clock: Arc<dyn Clock>, store: Arc<Store>) -> Result<Engine> {
        let now = clock.now_ms();
        let seq_floor = now << 20;
        let mut queues: HashMap<QueueId, QueueState> = HashMap::new();
        let mut bad = None;
        store.scan_queues(&mut |id, bytes| match QueueRecord::decode(bytes) {
            Ok(record) => {
                queues.insert(id, QueueState::new(record, seq_floor));
            }
            Err(e) => bad = Some(e),
        })?;
        if let Some(e) = bad {
            return Err(e);
        }
        store.scan_purge_bounds(&mut |id, below| {
            if let Some(q) = queues.get_mut(&id) {
                q.seqs_start_at_least(below);
            }
        })?;
        let mut orphans = Vec::new();
        let mut corrupt = 0usize;
        store.scan_meta(&mut |id, seq, bytes| match (queues.get_mut(&id), MessageMeta::decode(bytes)) {
            (Some(q), Ok((meta, group, dedup))) => {
                q.insert(seq, meta, &group, now);
                // A queued FIFO message's de-duplication entry lives in its meta record; a send
                // sets expiry and sent_ms from the same clock reading.
                let expires_ms = meta.sent_ms + DEDUP_WINDOW_MS;
                if let Some(key) = dedup.filter(|_| expires_ms > now) {
                    q.dedup.recover(key, DedupEntry { message_id: meta.id, seq, expires_ms }, false);
                }
            }
            (None, _) => orphans.push(Op::DeleteMessage { queue: id, seq }),
            (Some(_), Err(_)) => corrupt += 1,
        })?;
        let mut task_records = Vec::new();
        let mut data_keys: Vec<(QueueId, u32, Vec<u8>)> = Vec::new();
        let mut quarantined = 0u64;
        store.scan_kv(&mut |id, key, value| {
            let Some(q) = queues.get_mut(&id) else { return };
            match key.first() {
                Some(&KV_DEDUP) => match (DedupKey::try_from(&key[1..]), DedupEntry::decode(value)) {
                    // Written when a message left the queue inside its window (and, before meta
                    // version 4, at every send).
                    (Ok(k), Some(e)) if e.expires_ms > now => q.dedup.recover(k, e, true),
                    // Expired while the server was down, or not a record this version wrote.
                    _ => orphans.push(Op::DeleteKv { queue: id, key: key.to_vec() }),
                },
                Some(&KV_TASK) => task_records.push((id, value.to_vec())),
                Some(&KV_DATA_KEY) => match <[u8; 4]>::try_from(&key[1..]) {
                    Ok(k) => data_keys.push((id, u32::from_be_bytes(k), value.to_vec())),
                    Err(_) => orphans.push(Op::DeleteKv { queue: id, key: key.to_vec() }),
                },
                Some(&KV_QUARANTINE) => quarantined += 1,
                _ => {}
            }
        })?;
        for (id, q) in queues.iter_mut() {
            let stale = q.finish_dedup_recovery();
            orphans.extend(stale.iter().map(|k| Op::DeleteKv { queue: *id, key: dedup_kv_key(k) }));
        }
        if corrupt > 0 {
            tracing::error!(corrupt, "message metadata records could not be decoded and were skipped");
        }
        if !orphans.is_empty() {
            tracing::info!(count = orphans.len(), "removing messages of deleted queues");
            store.commit_lazy(orphans);
        }
        let engine = Engine {
            receipts: ReceiptKey::new(&config.receipt_secret),
            config,
            clock,
            store,
            queues: RwLock::new(HashMap::new()),
            shutdown: watch::channel(false).0,
            tasks: Mutex::new(Vec::new()),
            recently_deleted: Mutex::new(HashMap::new()),
            long_polls_waiting: std::sync::atomic::AtomicI64::new(0),
            quarantined: std::sync::atomic::AtomicU64::new(quarantined),
        };
        {
            let mut map = engine.queues.write().unwrap_or_else(lock_poisoned);
            let mut by_id = HashMap::new();
            for (id, state) in queues {
                let arn = engine.queue_arn(&state.record.name);
                let name = state.record.name.clone();
                let queue = Arc::new(Queue::new(id, arn, state));
                by_id.insert(id, queue.clone());
                map.insert(name, queue);
            }
            engine.recover_data_keys(&by_id, data_keys)?;
        }
        engine.recover_tasks(task_records);
        Ok(engine)
    }

    /// Unwraps every queue's data keys. A key that does not unwrap is a start-up error naming the
    /// problem (a wrong master key must not look like lost messages); so is encrypted data with no
    /// master key configured. Keys wrapped by an old master key are rewritten under the new one.
    fn recover_data_keys(
        &self,
        queues: &HashMap<QueueId, Arc<Queue>>,
        records: Vec<(QueueId, u32, Vec<u8>)>,
    ) -> Result<()> {
        let mut rewrapped = Vec::new();
        for (id, key_id, record) in records {
            let Some(queue) = queues.get(&id) else { continue };
            let Some(ring) = &self.config.at_rest else {
                return Err(EngineError::AtRest(format!(
                    "queue {} holds encrypted messages but no master key is configured (--master-key-file / \
                     SLUICE_MASTER_KEY_FILE)",
                    queue.name
                )));
            };
            let (key, rewrap) = ring.unwrap(&queue.arn, key_id, &record).map_err(EngineError::AtRest)?;
            if let Some(value) = rewrap {
                rewrapped.push(Op::PutKv { queue: id, key: data_key_kv_key(key_id), value });
            }
            queue.keys.recover(key);
        }
        if !rewrapped.is_empty() {
            tracing::info!(
                count = rewrapped.len(),
                "data keys wrapped by an old master key rewritten under the current one"
            );
            self.store.commit_lazy(rewrapped);
        }
        Ok(())
    }
}
