//! The HTTPS listener (`--tls-cert` / `--tls-key`, issue 23 item 5): the real binary with a CA and
//! certificates made by the `openssl` command at test time (the kit's `TestCa`; SKIP without it), spoken to with
//! rustls (the same stack as the server). Checks: queue URLs over HTTPS are https://; plain HTTP
//! on the HTTPS port is refused without harm; SIGHUP swaps the certificate for new connections
//! while an open keep-alive connection goes on with the old one; a broken pair on SIGHUP keeps the
//! current certificate.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sluice_testkit::tls::TestCa;
use sluice_testkit::{external_endpoint, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

fn connector(ca: &Path) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn leaf_der(pem: &Path) -> Vec<u8> {
    CertificateDer::pem_file_iter(pem).unwrap().next().unwrap().unwrap().to_vec()
}

async fn connect(tls: &tokio_rustls::TlsConnector, endpoint: &str) -> TlsStream<TcpStream> {
    let addr = endpoint.strip_prefix("https://").unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    tls.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.expect("TLS handshake")
}

fn peer_leaf(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// One HTTP/1.1 request on a kept-alive connection; returns the head and body as text.
async fn request(stream: &mut TlsStream<TcpStream>, head: &str, body: &str) -> String {
    let req = format!("{head}Host: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n =
            tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.expect("response").unwrap();
        assert!(n > 0, "connection closed; got {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_serves_https_urls_and_reloads_its_certificate_on_sighup() {
    if external_endpoint().is_some() {
        eprintln!("SKIP: SQS_ENDPOINT is set");
        return;
    }
    let Some(ca) = TestCa::new() else { return };
    let (first, second) = (ca.issue("first"), ca.issue("second"));
    let (cert, key) = (ca.dir.join("cert.pem"), ca.dir.join("key.pem"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let server = TestServer::spawn_with(
        env!("CARGO_BIN_EXE_sluice"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
        &[],
    );
    assert!(server.endpoint.starts_with("https://"), "{}", server.endpoint);
    let tls = connector(&ca.cert);

    // Queue URLs built from Host over HTTPS are https://.
    let mut old = connect(&tls, &server.endpoint).await;
    assert_eq!(peer_leaf(&old), leaf_der(&first.cert));
    let json = "POST / HTTP/1.1\r\nX-Amz-Target: AmazonSQS.CreateQueue\r\nContent-Type: application/x-amz-json-1.0\r\n";
    let created = request(&mut old, json, r#"{"QueueName":"tls-q"}"#).await;
    assert!(created.starts_with("HTTP/1.1 200"), "{created}");
    assert!(created.contains(r#""QueueUrl":"https://127.0.0.1/000000000000/tls-q""#), "{created}");
    let query = "POST / HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n";
    let listed = request(&mut old, query, "Action=GetQueueUrl&QueueName=tls-q&Version=2012-11-05").await;
    assert!(listed.contains("<QueueUrl>https://127.0.0.1/000000000000/tls-q</QueueUrl>"), "{listed}");

    // Plain HTTP on the HTTPS port: no answer in clear, and the server goes on.
    let mut plain = TcpStream::connect(server.endpoint.strip_prefix("https://").unwrap()).await.unwrap();
    plain.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read_to_end(&mut reply)).await;
    assert!(!String::from_utf8_lossy(&reply).contains("200 OK"), "plain HTTP must not be served on the TLS port");

    // Renewal: new files, SIGHUP. New handshakes get the second certificate...
    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    let hup = Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(hup.success());
    let second = leaf_der(&second.cert);
    let t0 = Instant::now();
    loop {
        let fresh = connect(&tls, &server.endpoint).await;
        if peer_leaf(&fresh) == second {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "SIGHUP did not swap the certificate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ...and the connection opened before the reload is still served, on its old session.
    let health = request(&mut old, "GET /health HTTP/1.1\r\n", "").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert_eq!(peer_leaf(&old), leaf_der(&first.cert));

    // A broken pair (key of another certificate) on SIGHUP: refused, the second one stays.
    std::fs::copy(&first.key, &key).unwrap();
    let hup = Command::new("kill").args(["-HUP", &server.pid().to_string()]).status().unwrap();
    assert!(hup.success());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut after = connect(&tls, &server.endpoint).await;
    assert_eq!(peer_leaf(&after), second);
    let health = request(&mut after, "GET /health HTTP/1.1\r\n", "").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    drop(server);
}

/// A certificate and key that do not belong together: the server refuses to start (exit status
/// non-zero) instead of failing every handshake later.
#[test]
fn a_mismatched_pair_is_refused_at_startup() {
    if external_endpoint().is_some() {
        return;
    }
    let Some(ca) = TestCa::new() else { return };
    let (a, b) = (ca.issue("a"), ca.issue("b"));
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["serve", "--port", "0", "--data-dir", ":memory:", "--tls-cert"])
        .arg(&a.cert)
        .arg("--tls-key")
        .arg(&b.key)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).is_empty(), "nothing listens");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("TLS certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
