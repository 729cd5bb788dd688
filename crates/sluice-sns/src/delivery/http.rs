//! The HTTP(S) client every delivery uses: plain TCP for http://, TLS (rustls, ring provider) for
//! https:// with Mozilla's roots plus the operator's CA bundle; and one POST. Every connection goes
//! only to an address the [`EndpointPolicy`] allows (names through [`GuardedResolver`], IP
//! literals checked in [`Connector`]).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::endpoints::{EndpointPolicy, GuardedResolver};

/// The pooled HTTP/1.1 client every delivery uses (plain TCP for http://, TLS for https://).
pub type HttpClient = Client<Connector, Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the delivery client. `extra_ca`: a PEM bundle whose certificates are trusted besides
/// Mozilla's roots (self-hosted endpoints with a private CA); `policy`: the addresses it may reach.
pub fn http_client(extra_ca: Option<&Path>, policy: EndpointPolicy) -> Result<HttpClient, String> {
    let tls = tls_config(extra_ca)?;
    let policy = Arc::new(policy);
    let mut http = HttpConnector::new_with_resolver(GuardedResolver { policy: policy.clone() });
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.set_nodelay(true);
    // The connector below handles https:// itself; the TCP part accepts both schemes.
    http.enforce_http(false);
    let connector = Connector { http, tls: TlsConnector::from(Arc::new(tls)), policy };
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The TLS client configuration: ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN, Mozilla's roots
/// plus the certificates of `extra_ca`.
pub fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| format!("cannot read CA file {shown}: {e}"))?;
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("CA file {shown}: {e}"))?;
            roots.add(cert).map_err(|e| format!("CA file {shown}: unusable certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("CA file {shown} holds no PEM certificate"));
        }
        tracing::info!(ca_file = %shown, certificates = added, "SNS trusts an extra CA bundle");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Connects http:// endpoints over TCP and https:// endpoints over TLS (server name from the URL,
/// an IP address included), to allowed addresses only.
#[derive(Clone)]
pub struct Connector {
    http: HttpConnector<GuardedResolver>,
    tls: TlsConnector,
    /// hyper-util's connector resolves names through [`GuardedResolver`] but connects to an IP
    /// literal directly, so literals are checked here.
    policy: Arc<EndpointPolicy>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme_str() == Some("https");
        let literal = uri.host().and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse().ok());
        if let Some(ip) = literal.filter(|ip| !self.policy.allows(*ip)) {
            tracing::warn!(endpoint = %uri, "SNS delivery refused: {}", EndpointPolicy::refusal(ip));
            return Box::pin(async move { Err(EndpointPolicy::refusal(ip).into()) });
        }
        let tcp = self.http.call(uri.clone());
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = tcp.await?;
            if !https {
                return Ok(Conn::Plain(tcp));
            }
            let host = uri.host().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
            let name =
                ServerName::try_from(host.to_string()).map_err(|e| format!("invalid TLS server name {host:?}: {e}"))?;
            let stream = tls.connect(name, tcp.into_inner()).await?;
            Ok(Conn::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}

/// One connection of [`Connector`].
pub enum Conn {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One POST; Ok(status) when the endpoint answered a status SNS counts as delivered (below 500).
/// Connection, TLS (an untrusted certificate included) and timeout errors are failures.
pub async fn post(client: &HttpClient, url: &str, headers: &[(String, String)], body: String) -> Result<u16, String> {
    let mut builder = hyper::Request::post(url)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("user-agent", "Amazon Simple Notification Service Agent");
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let req = builder.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(15), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| error_chain(&e))?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    if (200..500).contains(&status) {
        Ok(status)
    } else {
        Err(format!("HTTP status {status}"))
    }
}

/// An error with its causes ("client error (Connect): invalid peer certificate: UnknownIssuer").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_ca_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("sluice-sns-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert!(tls_config(Some(&missing)).unwrap_err().contains("cannot read CA file"));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert!(tls_config(Some(&empty)).unwrap_err().contains("holds no PEM certificate"));
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
        assert!(tls_config(Some(&garbage)).is_err());
        assert!(tls_config(None).is_ok());
    }
}
