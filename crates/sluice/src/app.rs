//! Assembles a running server from a [`Config`]: opens the data directory (lock, receipt secret,
//! store), recovers the engine, declares configured queues.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use sluice_engine::clock::SystemClock;
use sluice_engine::{Engine, EngineConfig};
use sluice_protocol::ProtocolConfig;
use sluice_store::embedded::{EmbeddedBackend, OpenOptions};
use sluice_store::files;
use sluice_store::memory::MemoryBackend;
use sluice_store::Store;

use sluice_protocol::auth::KeyRing;

use crate::config::{AuthMode, Config};
use crate::server::AppState;

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("data directory {0} is in use by another sluice process")]
    Locked(String),
    #[error("cannot open the store: {0}")]
    Store(#[from] sluice_store::StoreError),
    #[error("cannot recover queues: {0}")]
    Engine(#[from] sluice_engine::EngineError),
    #[error("configured queue {0}: {1}")]
    Queue(String, sluice_engine::EngineError),
    #[error("SNS: {0}")]
    Sns(String),
    #[error("access keys: {0}")]
    Auth(String),
    #[error("encryption at rest: key file {0}: {1}")]
    KeyFile(String, String),
}

/// A ready server state plus what must live as long as it (the data directory lock).
pub struct Opened {
    pub state: Arc<AppState>,
    /// Held for the life of the process: a second server on the same directory is refused.
    pub _lock: Option<File>,
}

fn dir_err(dir: &Path) -> impl Fn(std::io::Error) -> StartError + '_ {
    move |e| StartError::DataDir(dir.display().to_string(), e)
}

/// Logs a warning for the data directory, and each file in it, that others may read or write
/// (sluice creates them 0700 / 0600; a directory made by hand or files restored from a backup may
/// be wider). Warned about, not changed: the operator may have widened them on purpose.
fn warn_about_wide_modes(dir: &Path) {
    match files::wider_than_private(dir) {
        Ok(wide) => {
            for (path, mode) in wide {
                let want = if path == dir { files::DIR_MODE } else { files::FILE_MODE };
                tracing::warn!(
                    path = %path.display(),
                    mode = %format!("{mode:04o}"),
                    "data directory entry is accessible to other users (it holds message bodies and the receipt secret); chmod {want:o} it"
                );
            }
        }
        Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot check the data directory's modes"),
    }
}

/// Reads the receipt-handle secret, creating it on first start (0600).
fn receipt_secret(dir: &Path) -> Result<Vec<u8>, StartError> {
    let path = dir.join("receipt.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 32 => Ok(bytes),
        _ => {
            let mut secret = Vec::with_capacity(32);
            secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            let tmp = dir.join("receipt.key.tmp");
            let mut f =
                files::create_options().write(true).create(true).truncate(true).open(&tmp).map_err(dir_err(dir))?;
            f.write_all(&secret).map_err(dir_err(dir))?;
            f.sync_all().map_err(dir_err(dir))?;
            std::fs::rename(&tmp, &path).map_err(dir_err(dir))?;
            Ok(secret)
        }
    }
}

/// The key ring of encryption at rest, from the configured key files.
fn key_ring(config: &Config) -> Result<Option<Arc<sluice_engine::at_rest::KeyRing>>, StartError> {
    use sluice_engine::at_rest::{parse_key, KeyRing};
    let Some(files) = &config.at_rest else {
        tracing::info!(
            "no master key configured (--master-key-file): message records are stored in the clear; \
             SqsManagedSseEnabled and KmsMasterKeyId are accepted as attributes only"
        );
        return Ok(None);
    };
    let read = |path: &Path| {
        let bad = |e: String| StartError::KeyFile(path.display().to_string(), e);
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        parse_key(&bytes).map_err(|e| bad(e.to_string()))
    };
    let master = read(&files.master)?;
    let old: Vec<[u8; 32]> = files.old_masters.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
    let mut named = Vec::new();
    for (name, path) in &files.kms_keys {
        named.push((name.clone(), read(path)?));
    }
    let ring = KeyRing::new(master, &old, &named);
    tracing::info!(
        master = %ring.master_fingerprint(),
        old_masters = old.len(),
        kms_keys = named.len(),
        "encryption at rest: message records of queues with SSE are stored encrypted"
    );
    Ok(Some(Arc::new(ring)))
}

/// Opens storage and recovers the engine.
pub async fn open(config: &Config) -> Result<Opened, StartError> {
    let started = Instant::now();
    let (store, secret, lock): (Store, Vec<u8>, Option<File>) = match &config.data_dir {
        None => {
            tracing::warn!("data directory is :memory: — nothing will survive a restart");
            let secret = uuid::Uuid::new_v4().as_bytes().to_vec();
            (Store::in_memory(Arc::new(MemoryBackend::new())), secret, None)
        }
        Some(dir) => {
            files::create_dir_all(dir).map_err(dir_err(dir))?;
            warn_about_wide_modes(dir);
            let lock = files::touch(&dir.join("LOCK")).map_err(dir_err(dir))?;
            if lock.try_lock().is_err() {
                return Err(StartError::Locked(dir.display().to_string()));
            }
            let secret = receipt_secret(dir)?;
            let options = OpenOptions { salvage: config.salvage };
            let backend = EmbeddedBackend::open_with(&dir.join("sluice.redb"), options)?;
            if config.salvage {
                let dropped = backend.salvaged();
                if dropped.is_empty() {
                    tracing::warn!("--salvage: nothing was damaged; nothing dropped");
                }
                for item in dropped {
                    tracing::error!(dropped = %item, "--salvage");
                }
                if !dropped.is_empty() {
                    tracing::error!(
                        count = dropped.len(),
                        "--salvage: started with damaged parts of the store dropped (listed above)"
                    );
                }
            }
            (Store::new(Arc::new(backend)), secret, Some(lock))
        }
    };
    let store = Arc::new(store);
    let mut engine_config = EngineConfig::new(&config.region, &config.account_id, secret);
    engine_config.at_rest = key_ring(config)?;
    let engine = Engine::open(engine_config, Arc::new(SystemClock), store)?;
    let queues = engine.list_queues("");
    let messages: usize =
        queues.iter().filter_map(|q| engine.queue_counts(q).ok()).map(|c| c.visible + c.inflight + c.delayed).sum();
    tracing::info!(queues = queues.len(), messages, millis = started.elapsed().as_millis() as u64, "recovered");
    for decl in &config.queues {
        let attrs = decl.attribute_strings();
        match engine.create_queue(&decl.name, &attrs, &decl.tags).await {
            Ok(()) => {}
            Err(sluice_engine::EngineError::QueueNameExists(_)) => {
                engine
                    .set_queue_attributes(&decl.name, &attrs)
                    .await
                    .map_err(|e| StartError::Queue(decl.name.clone(), e))?;
                tracing::info!(queue = %decl.name, "configured queue existed with other attributes; updated them");
            }
            Err(e) => return Err(StartError::Queue(decl.name.clone(), e)),
        }
    }
    let protocol = ProtocolConfig { public_base_url: config.public_url.clone(), policy_mode: config.policy_mode };
    let engine = Arc::new(engine);
    let sns_options = sluice_sns::SnsOptions {
        public_url: config.public_url.clone(),
        ca_file: config.sns_ca_file.clone(),
        policy_mode: config.policy_mode,
        auth: config.auth_mode() == crate::config::AuthMode::SigV4,
        endpoints: config.sns_endpoints.clone(),
    };
    let sns = sluice_sns::Sns::open(engine.clone(), sns_options).map_err(StartError::Sns)?;
    let guard = crate::guard::Guard::new(config);
    let auth = match config.auth_mode() {
        AuthMode::Off => None,
        AuthMode::SigV4 => {
            Some(Arc::new(KeyRing::new(&config.region, config.access_keys.clone()).map_err(StartError::Auth)?))
        }
    };
    match &auth {
        Some(keys) => tracing::info!(keys = keys.len(), "authentication: every request must be signed (SigV4)"),
        None if !config.access_keys.is_empty() => {
            tracing::warn!("authentication is off (--auth off) although access keys are configured")
        }
        None => tracing::info!("authentication: off (no access keys configured)"),
    }
    let state = AppState {
        engine,
        protocol,
        metrics: crate::metrics::Metrics::default(),
        sns,
        auth,
        guard,
        limits: config.limits,
        sessions: crate::session::Sessions::new(),
        metrics_token: config.metrics_token.clone(),
    };
    Ok(Opened { state: Arc::new(state), _lock: lock })
}
