//! Containment of damaged stored records: a message whose body record cannot be read, does not
//! decode or no longer matches the MD5 stored with it at send is *quarantined*: taken out of its
//! queue (never served with a wrong body, never left in flight), its raw bytes kept beside the queue
//! under a [`KV_QUARANTINE`] key for inspection, counted ([`Engine::quarantined`], the
//! `sluice_quarantined_messages` metric) and logged once. The messages around it are served as
//! usual. [`verify_body_record`] is the same check for `sluice check`.

use std::sync::atomic::Ordering;

use sluice_store::{Op, Seq};

use super::{push_removal, Engine};
use crate::queue::Queue;
use crate::record::{BodyRecord, KV_QUARANTINE};

/// A message whose stored body failed verification during a receive.
pub(crate) struct Damaged {
    pub seq: Seq,
    /// The raw record as read (empty if it could not be read at all).
    pub bytes: Vec<u8>,
    pub reason: String,
}

/// The key a quarantined message's record is kept under.
fn quarantine_key(seq: Seq) -> Vec<u8> {
    let mut key = vec![KV_QUARANTINE];
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// What is wrong with a stored body record, if anything: it must decode and match its stored MD5
/// (a record sealed at rest is skipped: see the first line).
pub fn verify_body_record(bytes: &[u8]) -> Result<(), String> {
    // A record sealed at rest can only be opened with its queue's data key, which `sluice check`
    // does not have; AES-GCM authenticates it when the server reads it (damage is then quarantined).
    if crate::at_rest::is_sealed(bytes) {
        return Ok(());
    }
    let record = BodyRecord::decode(bytes).map_err(|e| e.to_string())?;
    if !record.md5_matches() {
        return Err("body does not match its stored MD5".into());
    }
    Ok(())
}

impl Engine {
    /// Moves damaged messages of `queue` out of it (see the module doc).
    pub(crate) fn quarantine(&self, queue: &Queue, damaged: Vec<Damaged>) {
        let now = self.clock.now_ms();
        let mut ops = Vec::new();
        let mut state = queue.lock();
        for d in damaged {
            if state.remove(d.seq).is_none() {
                continue;
            }
            tracing::error!(queue = %state.record.name, seq = d.seq, reason = %d.reason,
                "quarantined a message whose stored record failed verification");
            self.quarantined.fetch_add(1, Ordering::Relaxed);
            ops.push(Op::PutKv { queue: queue.id, key: quarantine_key(d.seq), value: d.bytes });
            push_removal(queue, &mut state, d.seq, now, &mut ops);
        }
        self.store.commit_lazy(ops);
    }

    /// Messages quarantined since start, plus those found quarantined at recovery.
    pub fn quarantined(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
    }
}
