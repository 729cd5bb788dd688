//! Encryption at rest: the key ring (master key, old master keys, named keys standing in for KMS
//! keys), per-queue data keys wrapped by them, and the sealing of message body records.
//!
//! What is encrypted: a message's body record (body, message attributes, system attributes,
//! sender, group and de-duplication ids, DLQ source, the body's MD5), once, with AES-256-GCM under
//! the queue's current data key, the queue ARN and the message id as associated data: a record
//! copied to another queue or message does not open. Meta records (ids, timestamps, counts, the
//! group name, the de-duplication digest) stay in the clear: recovery reads every one of them.
//! Messages are plaintext in memory; only the bytes handed to the store are sealed.
//!
//! Data keys: 32 random bytes, one per queue at a time, replaced after the queue's
//! `KmsDataKeyReusePeriodSeconds` (and when the queue's key changes, and at every start, so a
//! key's counter nonces are never repeated). Each is stored wrapped (AES-256-GCM under the queue's
//! KMS key: the master key for SSE-SQS and `alias/aws/sqs`, a named key for `KmsMasterKeyId`) in a
//! kv record of its queue, with the wrapping key's fingerprint; the record is committed durably
//! before the first message uses the key. Old data keys stay readable until no message can still
//! use them (the longest retention plus the longest reuse period), then their records go.
//!
//! Master key rotation: the new key is the master key and the old ones are `old` keys; data keys
//! wrapped by an old key are unwrapped at open and rewritten under the new master key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use sha2::{Digest, Sha256};

use crate::record::BodyRecord;

/// The first 8 bytes of a sealed body record. A plain record starts with bincode's little-endian
/// u64 length of the body, whose bytes 4..8 are zero for any body under 4 GiB: the two never meet.
pub(crate) const SEALED_MAGIC: [u8; 8] = [0xff, b'S', b'E', b'A', b'L', b'E', b'D', 1];
/// Magic, data key id (u32), nonce (12 bytes); the ciphertext follows, then the 16-byte tag.
const SEALED_HEADER: usize = 8 + 4 + 12;
const TAG_LEN: usize = 16;
/// Version, created_ms, wrapping key fingerprint, nonce, wrapped key, tag.
const WRAPPED_LEN: usize = 1 + 8 + 8 + 12 + 32 + TAG_LEN;
/// No message outlives this after its data key stopped being current: the longest retention
/// (14 days) plus the longest reuse period (1 day).
const DATA_KEY_KEEP_MS: u64 = (14 + 1) * 86_400_000;

/// The alias of AWS's managed key for SQS; here, the master key.
pub const AWS_MANAGED_ALIAS: &str = "alias/aws/sqs";

/// A key file could not be read as a key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a key file must hold 32 bytes, raw or base64 (found {0} bytes that are neither)")]
pub struct KeyFileError(pub usize);

/// Reads a key file's contents: exactly 32 raw bytes, or base64 (standard, padded or not) of 32
/// bytes with surrounding whitespace.
pub fn parse_key(bytes: &[u8]) -> Result<[u8; 32], KeyFileError> {
    use base64::Engine as _;
    if let Ok(text) = std::str::from_utf8(bytes) {
        let text = text.trim();
        for engine in [&base64::engine::general_purpose::STANDARD, &base64::engine::general_purpose::STANDARD_NO_PAD] {
            if let Ok(decoded) = engine.decode(text) {
                if let Ok(key) = <[u8; 32]>::try_from(decoded.as_slice()) {
                    return Ok(key);
                }
            }
        }
    }
    <[u8; 32]>::try_from(bytes).map_err(|_| KeyFileError(bytes.len()))
}

/// A key-encryption key: the master key, an old master key or a named key.
struct Kek {
    cipher: Aes256Gcm,
    fingerprint: [u8; 8],
}

impl Kek {
    fn new(key: &[u8; 32]) -> Kek {
        let mut h = Sha256::new();
        h.update(b"sluice key fingerprint\0");
        h.update(key);
        let mut fingerprint = [0u8; 8];
        fingerprint.copy_from_slice(&h.finalize()[..8]);
        Kek { cipher: Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(key)), fingerprint }
    }
}

/// Which key wraps a queue's data keys: an index into the ring's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KekId(usize);

/// The configured keys. Index 0 is the master key, then the old master keys, then the named ones.
pub struct KeyRing {
    keks: Vec<Kek>,
    old_masters: usize,
    /// Key id or alias (`alias/…`) → index in `keks`.
    names: HashMap<String, usize>,
    /// Sealed records that did not open (wrong queue or message, damaged bytes, missing key).
    damaged: AtomicU64,
}

impl KeyRing {
    /// The master key, the previous master keys (read only) and the named keys (`alias/name` or a
    /// key id → key). `alias/aws/sqs` always names the master key.
    pub fn new(master: [u8; 32], old_masters: &[[u8; 32]], named: &[(String, [u8; 32])]) -> KeyRing {
        let mut keks = vec![Kek::new(&master)];
        keks.extend(old_masters.iter().map(Kek::new));
        let mut names = HashMap::new();
        names.insert(AWS_MANAGED_ALIAS.to_string(), 0);
        for (name, key) in named {
            names.insert(name.clone(), keks.len());
            keks.push(Kek::new(key));
        }
        KeyRing { keks, old_masters: old_masters.len(), names, damaged: AtomicU64::new(0) }
    }

    /// The master key's fingerprint (hex), for logs.
    pub fn master_fingerprint(&self) -> String {
        self.keks[0].fingerprint.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Sealed records found damaged since start.
    pub fn damaged(&self) -> u64 {
        self.damaged.load(Ordering::Relaxed)
    }

    pub(crate) fn count_damage(&self) {
        self.damaged.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn master(&self) -> KekId {
        KekId(0)
    }

    /// The key a `KmsMasterKeyId` names: a key id, an alias, or either's ARN
    /// (`arn:aws:kms:region:account:key/<id>`, `…:alias/<name>`).
    pub(crate) fn resolve(&self, kms_key_id: &str) -> Option<KekId> {
        let name = match kms_key_id.strip_prefix("arn:aws:kms:") {
            Some(rest) => {
                let resource = rest.splitn(3, ':').nth(2)?;
                resource.strip_prefix("key/").unwrap_or(resource)
            }
            None => kms_key_id,
        };
        self.names.get(name).map(|&i| KekId(i))
    }

    fn find(&self, fingerprint: &[u8]) -> Option<usize> {
        self.keks.iter().position(|k| k.fingerprint == fingerprint)
    }

    fn wrap_aad(arn: &str, id: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(16 + arn.len() + 5);
        aad.extend_from_slice(b"sluice data key\0");
        aad.extend_from_slice(arn.as_bytes());
        aad.push(0);
        aad.extend_from_slice(&id.to_be_bytes());
        aad
    }

    /// A data key's stored record, wrapped by `kek` and bound to its queue and id.
    fn wrap(&self, kek: usize, arn: &str, id: u32, created_ms: u64, key: &[u8; 32]) -> Vec<u8> {
        let kek = &self.keks[kek];
        let nonce: [u8; 12] = random();
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.push(1);
        out.extend_from_slice(&created_ms.to_be_bytes());
        out.extend_from_slice(&kek.fingerprint);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(key);
        let tag = kek
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &Self::wrap_aad(arn, id), &mut out[29..61])
            .expect("32 bytes are within AES-GCM's limits");
        out.extend_from_slice(&tag);
        out
    }

    /// Unwraps a stored data key record of queue `arn`. Returns the key and whether it was wrapped
    /// by an old master key (so the caller rewrites it under the current one).
    pub(crate) fn unwrap(&self, arn: &str, id: u32, record: &[u8]) -> Result<(Arc<DataKey>, Option<Vec<u8>>), String> {
        if record.len() != WRAPPED_LEN || record[0] != 1 {
            return Err(format!("data key {id} of {arn}: record is damaged ({} bytes)", record.len()));
        }
        let created_ms = u64::from_be_bytes(record[1..9].try_into().expect("8 bytes"));
        let fingerprint = &record[9..17];
        let Some(kek) = self.find(fingerprint) else {
            let hex: String = fingerprint.iter().map(|b| format!("{b:02x}")).collect();
            return Err(format!(
                "data key {id} of {arn} is wrapped by a key that is not configured (fingerprint {hex}; the master \
                 key's is {}): the master key is wrong, or pass the previous one with --old-master-key-file, or a \
                 [kms_keys] entry is missing",
                self.master_fingerprint()
            ));
        };
        let mut key = [0u8; 32];
        key.copy_from_slice(&record[29..61]);
        self.keks[kek]
            .cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&record[17..29]),
                &Self::wrap_aad(arn, id),
                &mut key,
                Tag::from_slice(&record[61..]),
            )
            .map_err(|_| format!("data key {id} of {arn} does not unwrap: the record is damaged"))?;
        let rewrap = (1..=self.old_masters).contains(&kek).then(|| self.wrap(0, arn, id, created_ms, &key));
        Ok((Arc::new(DataKey::new(id, created_ms, kek, &key)), rewrap))
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the OS random source is available");
    b
}

/// One data key of a queue, ready to use.
pub(crate) struct DataKey {
    id: u32,
    created_ms: u64,
    /// The ring key that wraps it.
    kek: usize,
    cipher: Aes256Gcm,
    /// Nonces are this counter: a key is used for sealing only in the process that made it.
    sealed: AtomicU64,
}

impl DataKey {
    fn new(id: u32, created_ms: u64, kek: usize, key: &[u8; 32]) -> DataKey {
        DataKey {
            id,
            created_ms,
            kek,
            cipher: Aes256Gcm::new(aes_gcm::Key::<Aes256Gcm>::from_slice(key)),
            sealed: AtomicU64::new(0),
        }
    }

    /// The body record encoded and sealed, in one buffer: one AEAD pass, no second copy.
    pub(crate) fn seal(&self, arn: &str, message_id: &[u8; 16], body: &BodyRecord) -> Vec<u8> {
        let n = self.sealed.fetch_add(1, Ordering::Relaxed);
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&n.to_be_bytes());
        let mut out = Vec::with_capacity(SEALED_HEADER + body.encoded_len() + TAG_LEN);
        out.extend_from_slice(&SEALED_MAGIC);
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&nonce);
        body.encode_into(&mut out);
        let tag = self
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &body_aad(arn, message_id), &mut out[SEALED_HEADER..])
            .expect("a message is within AES-GCM's limits");
        out.extend_from_slice(&tag);
        out
    }
}

fn body_aad(arn: &str, message_id: &[u8; 16]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(arn.len() + 17);
    aad.extend_from_slice(arn.as_bytes());
    aad.push(0);
    aad.extend_from_slice(message_id);
    aad
}

/// Whether stored body bytes are sealed.
pub(crate) fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(&SEALED_MAGIC)
}

/// A queue's data keys.
#[derive(Default)]
pub(crate) struct QueueKeys {
    /// Every key this queue's records may use, by id (the read side).
    all: RwLock<HashMap<u32, Arc<DataKey>>>,
    /// The key new records are sealed with; the async lock also serialises rotations.
    current: tokio::sync::Mutex<Option<Arc<DataKey>>>,
}

/// What a rotation writes: the new key's record, and the records of keys no message can use.
pub(crate) struct Rotation {
    pub key: Arc<DataKey>,
    pub put: (u32, Vec<u8>),
    pub expired: Vec<u32>,
}

impl QueueKeys {
    /// Adds a key recovered at open.
    pub(crate) fn recover(&self, key: Arc<DataKey>) {
        self.all.write().unwrap_or_else(|p| p.into_inner()).insert(key.id, key);
    }

    fn get(&self, id: u32) -> Option<Arc<DataKey>> {
        self.all.read().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Opens a sealed body record; `None` if it does not open (unknown key, another queue's or
    /// message's record, damaged bytes).
    pub(crate) fn open(&self, arn: &str, message_id: &[u8; 16], bytes: &[u8]) -> Option<BodyRecord> {
        if bytes.len() < SEALED_HEADER + TAG_LEN {
            return None;
        }
        let id = u32::from_be_bytes(bytes[8..12].try_into().ok()?);
        let key = self.get(id)?;
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let mut plain = body[SEALED_HEADER..].to_vec();
        key.cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&bytes[12..SEALED_HEADER]),
                &body_aad(arn, message_id),
                &mut plain,
                Tag::from_slice(tag),
            )
            .ok()?;
        BodyRecord::decode(&plain).ok()
    }

    /// The key to seal with now, if the current one is still fresh and wrapped by `kek`.
    /// Otherwise the caller holds the returned guard, makes a [`Rotation`] and installs it.
    pub(crate) async fn current(
        &self,
        kek: KekId,
        now: u64,
        reuse_ms: u64,
    ) -> Result<Arc<DataKey>, tokio::sync::MutexGuard<'_, Option<Arc<DataKey>>>> {
        let guard = self.current.lock().await;
        match &*guard {
            Some(k) if k.kek == kek.0 && now < k.created_ms.saturating_add(reuse_ms) && now >= k.created_ms => {
                Ok(k.clone())
            }
            _ => Err(guard),
        }
    }

    /// A new data key for the queue `arn`, wrapped by `kek`, and the keys it retires for good.
    pub(crate) fn rotate(&self, ring: &KeyRing, kek: KekId, arn: &str, now: u64) -> Rotation {
        let all = self.all.read().unwrap_or_else(|p| p.into_inner());
        let id = all.keys().max().map_or(1, |m| m.wrapping_add(1).max(1));
        let expired =
            all.values().filter(|k| k.created_ms.saturating_add(DATA_KEY_KEEP_MS) < now).map(|k| k.id).collect();
        let raw: [u8; 32] = random();
        let record = ring.wrap(kek.0, arn, id, now, &raw);
        Rotation { key: Arc::new(DataKey::new(id, now, kek.0, &raw)), put: (id, record), expired }
    }

    /// Makes a rotation's key current (after its record is durable).
    pub(crate) fn install(&self, guard: &mut Option<Arc<DataKey>>, rotation: &Rotation) {
        let mut all = self.all.write().unwrap_or_else(|p| p.into_inner());
        for id in &rotation.expired {
            all.remove(id);
        }
        all.insert(rotation.key.id, rotation.key.clone());
        *guard = Some(rotation.key.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Attributes;

    fn body(text: &str) -> BodyRecord {
        BodyRecord {
            body: text.into(),
            attributes: Attributes::new(),
            system_attributes: Attributes::new(),
            sender_id: "s".into(),
            group_id: None,
            deduplication_id: None,
            dead_letter_source_arn: None,
            md5_of_body: None,
        }
    }

    #[test]
    fn key_files_are_raw_or_base64() {
        let raw = [7u8; 32];
        assert_eq!(parse_key(&raw), Ok(raw));
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        assert_eq!(parse_key(format!("{b64}\n").as_bytes()), Ok(raw));
        assert_eq!(parse_key(b"short"), Err(KeyFileError(5)));
    }

    #[test]
    fn sealed_bodies_open_only_for_their_queue_and_message() {
        let ring = KeyRing::new([1; 32], &[], &[]);
        let keys = QueueKeys::default();
        let r = keys.rotate(&ring, ring.master(), "arn:q", 1000);
        let mut slot = None;
        keys.install(&mut slot, &r);
        let sealed = r.key.seal("arn:q", &[5; 16], &body("secret marker"));
        assert!(is_sealed(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(keys.open("arn:q", &[5; 16], &sealed).unwrap().body, "secret marker");
        assert!(keys.open("arn:other", &[5; 16], &sealed).is_none());
        assert!(keys.open("arn:q", &[6; 16], &sealed).is_none());
        let mut flipped = sealed.clone();
        flipped[30] ^= 1;
        assert!(keys.open("arn:q", &[5; 16], &flipped).is_none());
        assert!(!is_sealed(&body("x").encode()));
    }

    #[test]
    fn data_keys_unwrap_with_old_masters_and_are_rewrapped() {
        let old = KeyRing::new([1; 32], &[], &[]);
        let keys = QueueKeys::default();
        let r = keys.rotate(&old, old.master(), "arn:q", 1000);
        let (id, record) = &r.put;
        let sealed = r.key.seal("arn:q", &[5; 16], &body("m"));

        let rotated = KeyRing::new([2; 32], &[[1; 32]], &[]);
        let (key, rewrap) = rotated.unwrap("arn:q", *id, record).unwrap();
        let rewrapped = rewrap.expect("wrapped by an old master: rewritten");
        let fresh = QueueKeys::default();
        fresh.recover(key);
        assert_eq!(fresh.open("arn:q", &[5; 16], &sealed).unwrap().body, "m");

        let only_new = KeyRing::new([2; 32], &[], &[]);
        assert!(only_new.unwrap("arn:q", *id, &rewrapped).unwrap().1.is_none());
        let err = only_new.unwrap("arn:q", *id, record).err().unwrap();
        assert!(err.contains("not configured"), "{err}");
        assert!(only_new.unwrap("arn:other", *id, &rewrapped).is_err());
    }

    #[test]
    fn key_ids_resolve_by_alias_id_and_arn() {
        let ring = KeyRing::new([1; 32], &[], &[("alias/orders".into(), [3; 32]), ("1234abcd".into(), [4; 32])]);
        assert_eq!(ring.resolve("alias/aws/sqs"), Some(ring.master()));
        assert_eq!(ring.resolve("alias/orders"), Some(KekId(1)));
        assert_eq!(ring.resolve("arn:aws:kms:us-east-1:000000000000:alias/orders"), Some(KekId(1)));
        assert_eq!(ring.resolve("arn:aws:kms:us-east-1:000000000000:key/1234abcd"), Some(KekId(2)));
        assert_eq!(ring.resolve("1234abcd"), Some(KekId(2)));
        assert_eq!(ring.resolve("alias/nope"), None);
    }
}
