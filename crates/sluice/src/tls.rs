//! The HTTPS side of the listener (`--tls-cert` / `--tls-key`): rustls with the ring provider
//! (no OpenSSL, no aws-lc/cmake build; the same rustls the SNS deliveries, the drain's SDK client
//! and the MongoDB driver use).
//!
//! The certificate is served through [`ReloadableCert`], a `ResolvesServerCert` holding the
//! current `CertifiedKey` behind a lock. `sluice serve` swaps it on SIGHUP ([`ReloadableCert::reload`]):
//! handshakes after the swap get the new certificate, established connections keep theirs (a TLS
//! session never changes certificate), so a renewal drops nothing. A reload that fails (unreadable
//! file, key not matching the certificate) keeps the old certificate and reports the error.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Errors loading the certificate or the key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: not a PEM certificate chain: {1}")]
    Certs(PathBuf, String),
    #[error("{0}: no certificate in the file")]
    NoCert(PathBuf),
    #[error("{0}: not a PEM private key (PKCS#8, PKCS#1 or SEC1): {1}")]
    Key(PathBuf, String),
    #[error("{cert} / {key}: {reason}")]
    Mismatch { cert: PathBuf, key: PathBuf, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain (leaf first) and its private key, and checks they belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|e| TlsError::Read(cert.to_path_buf(), e))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Certs(cert.to_path_buf(), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCert(cert.to_path_buf()));
    }
    let key_pem = std::fs::read(key).map_err(|e| TlsError::Read(key.to_path_buf(), e))?;
    let key_der =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key(key.to_path_buf(), e.to_string()))?;
    // from_der parses the key with the provider and checks it matches the leaf's public key, so a
    // half-renewed pair (new cert, old key) is refused at load instead of failing every handshake.
    CertifiedKey::from_der(chain, key_der, &provider()).map_err(|e| TlsError::Mismatch {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The listener's certificate: the current one for every new handshake, replaceable at runtime.
#[derive(Debug)]
pub struct ReloadableCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    /// Why a lock and not an atomic swap crate: one read per handshake (not per request) is
    /// nothing next to the handshake itself, and a write happens only on SIGHUP.
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    /// Loads the pair once; fails if it cannot be used.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<ReloadableCert, TlsError> {
        let key = load_certified_key(cert_path, key_path)?;
        Ok(ReloadableCert {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Reads the files again and swaps the certificate in for new handshakes. On error the
    /// current certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = Arc::new(load_certified_key(&self.cert_path, &self.key_path)?);
        // A poisoned lock only means a writer panicked between two whole values: take it.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// The acceptor for the listener: TLS 1.2 and 1.3, HTTP/1.1 by ALPN (the server speaks HTTP/1.1
/// only; clients that offer h2 fall back to it).
pub fn acceptor(cert: Arc<ReloadableCert>) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_bad_files_are_typed_errors() {
        let dir = std::env::temp_dir().join(format!("sluice-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert!(matches!(load_certified_key(&missing, &missing), Err(TlsError::Read(..))));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        assert!(matches!(load_certified_key(&empty, &empty), Err(TlsError::NoCert(..))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
