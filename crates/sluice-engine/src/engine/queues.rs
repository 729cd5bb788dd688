//! Queue administration: CreateQueue, GetQueueUrl, ListQueues, DeleteQueue, GetQueueAttributes,
//! SetQueueAttributes, the tags, AddPermission / RemovePermission (the Policy attribute) and
//! PurgeQueue. Each change is durable when its method returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_store::{Op, QueueId};

use super::{lock_poisoned, Engine};
use crate::attributes::{self, QueueAttributes};
use crate::error::{EngineError, Result};
use crate::queue::{Counts, Queue, QueueState};
use crate::record::{dedup_kv_key, QueueRecord};

/// How long a deleted queue's name stays reserved.
const DELETED_NAME_HOLD_MS: u64 = 60_000;

impl Engine {
    /// CreateQueue. Returns Ok for an existing queue when every supplied attribute matches.
    pub async fn create_queue(
        &self,
        name: &str,
        attributes: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        let fifo = attributes::wants_fifo(attributes)?;
        attributes::validate_queue_name(name, fifo)?;
        let attrs = QueueAttributes { fifo_queue: fifo, ..QueueAttributes::default() }.with(attributes)?;
        attributes::validate_tags(name, tags)?;
        self.check_redrive(&self.queue_arn(name), fifo, &attrs)?;
        if let Ok(existing) = self.queue(name) {
            let state = existing.lock();
            return match state.record.attributes.first_conflict(attributes)? {
                None => Ok(()),
                Some(attr) => Err(EngineError::QueueNameExists(attr)),
            };
        }
        let now = self.clock.now_ms();
        {
            let mut deleted = self.recently_deleted.lock().unwrap_or_else(lock_poisoned);
            deleted.retain(|_, at| now < *at + DELETED_NAME_HOLD_MS);
            if deleted.contains_key(name) {
                return Err(EngineError::QueueDeletedRecently(name.to_string()));
            }
        }
        let record = QueueRecord {
            name: name.to_string(),
            created_ms: now,
            last_modified_ms: now,
            attributes: attrs,
            tags: tags.clone(),
        };
        let id = new_queue_id();
        // Persist first, then publish: a queue is visible only once it is durable.
        self.store.commit(vec![Op::PutQueue { queue: id, record: record.encode() }]).await?;
        let mut map = self.queues.write().unwrap_or_else(lock_poisoned);
        if let Some(existing) = map.get(name) {
            // Lost a race with a concurrent create of the same name: keep the first, drop ours.
            let conflict = existing.lock().record.attributes.first_conflict(attributes)?;
            drop(map);
            self.store.commit_lazy(vec![Op::DeleteQueue { queue: id }]);
            return match conflict {
                None => Ok(()),
                Some(attr) => Err(EngineError::QueueNameExists(attr)),
            };
        }
        let state = QueueState::new(record, now << 20);
        map.insert(name.to_string(), Arc::new(Queue::new(id, self.queue_arn(name), state)));
        Ok(())
    }

    /// GetQueueUrl: Ok if the queue exists.
    pub fn queue_exists(&self, name: &str) -> Result<()> {
        self.queue(name).map(|_| ())
    }

    /// ListQueues: names starting with `prefix`, sorted.
    pub fn list_queues(&self, prefix: &str) -> Vec<String> {
        let map = self.queues.read().unwrap_or_else(lock_poisoned);
        let mut names: Vec<String> = map.keys().filter(|n| n.starts_with(prefix)).cloned().collect();
        names.sort();
        names
    }

    /// DeleteQueue: the queue and its messages are gone once this returns.
    pub async fn delete_queue(&self, name: &str) -> Result<()> {
        let queue = {
            let mut map = self.queues.write().unwrap_or_else(lock_poisoned);
            map.remove(name).ok_or(EngineError::QueueDoesNotExist)?
        };
        queue.lock().mark_deleted();
        queue.notify.notify_waiters();
        self.recently_deleted.lock().unwrap_or_else(lock_poisoned).insert(name.to_string(), self.clock.now_ms());
        self.store.commit(vec![Op::DeleteQueue { queue: queue.id }]).await?;
        Ok(())
    }

    /// The current counts of a queue (ApproximateNumberOfMessages...).
    pub fn queue_counts(&self, name: &str) -> Result<Counts> {
        let queue = self.queue(name)?;
        let mut state = queue.lock();
        self.tick(&queue, &mut state, self.clock.now_ms());
        Ok(state.counts())
    }

    /// GetQueueAttributes: the requested names (`All` for every one), in AWS's order.
    pub fn get_queue_attributes(&self, name: &str, names: &[String]) -> Result<Vec<(String, String)>> {
        for n in names {
            attributes::check_readable(n)?;
        }
        let queue = self.queue(name)?;
        let mut state = queue.lock();
        self.tick(&queue, &mut state, self.clock.now_ms());
        let all = names.iter().any(|n| n == "All");
        let counts = state.counts();
        let mut out = Vec::new();
        for &attr in attributes::READABLE {
            if !all && !names.iter().any(|n| n == attr) {
                continue;
            }
            let value = match attr {
                "QueueArn" => Some(queue.arn.clone()),
                "ApproximateNumberOfMessages" => Some(counts.visible.to_string()),
                "ApproximateNumberOfMessagesNotVisible" => Some(counts.inflight.to_string()),
                "ApproximateNumberOfMessagesDelayed" => Some(counts.delayed.to_string()),
                "CreatedTimestamp" => Some((state.record.created_ms / 1000).to_string()),
                "LastModifiedTimestamp" => Some((state.record.last_modified_ms / 1000).to_string()),
                other => state.record.attributes.get(other),
            };
            if let Some(v) = value {
                out.push((attr.to_string(), v));
            }
        }
        Ok(out)
    }

    /// SetQueueAttributes: all or nothing, durable when it returns.
    pub async fn set_queue_attributes(&self, name: &str, attrs: &BTreeMap<String, String>) -> Result<()> {
        let queue = self.queue(name)?;
        let updated = queue.lock().record.attributes.with(attrs)?;
        if attrs.contains_key("RedrivePolicy") {
            self.check_redrive(&queue.arn, updated.fifo_queue, &updated)?;
        }
        let record = {
            let mut state = queue.lock();
            let updated = state.record.attributes.with(attrs)?;
            state.record.attributes = updated;
            state.record.last_modified_ms = self.clock.now_ms();
            state.record.clone()
        };
        self.store.commit(vec![Op::PutQueue { queue: queue.id, record: record.encode() }]).await?;
        Ok(())
    }

    /// TagQueue.
    pub async fn tag_queue(&self, name: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        if tags.is_empty() {
            // An empty map over JSON counts as the missing parameter, as it does over the Query protocol.
            return Err(EngineError::MissingParameter("Tags".into()));
        }
        self.update_tags(name, |current| {
            let mut next = current.clone();
            next.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            attributes::validate_tags(name, &next)?;
            Ok(next)
        })
        .await
    }

    /// UntagQueue.
    pub async fn untag_queue(&self, name: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            return Err(EngineError::InvalidParameterValue(
                "Tag keys must be between 1 and 128 characters in length.".into(),
            ));
        }
        self.update_tags(name, |current| {
            let mut next = current.clone();
            for k in keys {
                next.remove(k);
            }
            Ok(next)
        })
        .await
    }

    async fn update_tags(
        &self,
        name: &str,
        change: impl FnOnce(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>>,
    ) -> Result<()> {
        let queue = self.queue(name)?;
        let record = {
            let mut state = queue.lock();
            state.record.tags = change(&state.record.tags)?;
            state.record.clone()
        };
        self.store.commit(vec![Op::PutQueue { queue: queue.id, record: record.encode() }]).await?;
        Ok(())
    }

    /// ListQueueTags.
    pub fn list_queue_tags(&self, name: &str) -> Result<BTreeMap<String, String>> {
        Ok(self.queue(name)?.lock().record.tags.clone())
    }

    /// PurgeQueue: at most once every 60 seconds per queue; durable when it returns.
    pub async fn purge_queue(&self, name: &str) -> Result<()> {
        let queue = self.queue(name)?;
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        {
            let mut state = queue.lock();
            if let Some(last) = state.last_purge_ms {
                if now < last + 60_000 {
                    return Err(EngineError::PurgeQueueInProgress(name.to_string()));
                }
            }
            let (below, forgotten) = state.purge(now);
            ops.push(Op::PurgeMessages { queue: queue.id, below });
            ops.extend(forgotten.iter().map(|k| Op::DeleteKv { queue: queue.id, key: dedup_kv_key(k) }));
        }
        self.store.commit(ops).await?;
        Ok(())
    }

    /// The queue's ARN and parsed policy, for the access check before an action runs.
    pub fn queue_policy(&self, name: &str) -> Result<Option<Arc<crate::iam::Policy>>> {
        let queue = self.queue(name)?;
        let state = queue.lock();
        Ok(state.record.attributes.policy.as_ref().map(|p| p.policy().clone()))
    }

    /// AddPermission: adds a statement to the queue's Policy.
    pub async fn add_permission(&self, name: &str, label: &str, accounts: &[String], actions: &[String]) -> Result<()> {
        self.update_policy(name, |arn, policy| {
            crate::policy::add_permission(policy, arn, label, accounts, actions).map(Some)
        })
        .await
    }

    /// RemovePermission: removes the statement `label` from the queue's Policy.
    pub async fn remove_permission(&self, name: &str, label: &str) -> Result<()> {
        self.update_policy(name, |_, policy| crate::policy::remove_permission(policy, label)).await
    }

    async fn update_policy(
        &self,
        name: &str,
        change: impl FnOnce(&str, Option<&str>) -> Result<Option<String>>,
    ) -> Result<()> {
        let queue = self.queue(name)?;
        let record = {
            let mut state = queue.lock();
            let current = state.record.attributes.policy.as_ref().map(|p| p.text());
            let next = change(&queue.arn, current)?;
            state.record.attributes.policy = next
                .map(|text| crate::iam::StoredPolicy::parse(&text))
                .transpose()
                .map_err(|e| EngineError::Internal(format!("AddPermission made a policy that does not parse: {e}")))?;
            state.record.last_modified_ms = self.clock.now_ms();
            state.record.clone()
        };
        self.store.commit(vec![Op::PutQueue { queue: queue.id, record: record.encode() }]).await?;
        Ok(())
    }
}

fn new_queue_id() -> QueueId {
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let id = u64::from_be_bytes(bytes[..8].try_into().unwrap_or([1; 8]));
        // Ids of namespaces (SNS's records) are never a queue's.
        if !sluice_store::is_reserved_queue_id(id) {
            return id;
        }
    }
}
