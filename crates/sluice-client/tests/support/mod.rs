//! The client's test helpers on top of the shared kit (`sluice-testkit`): the server comes from the
//! kit (in-process, so `cargo test -p sluice-client` needs no prebuilt binary); the client and the
//! queue helpers are the library's own (`plain_http_client`, `create_queue`, `queue_depth`), so the
//! tests use the library as an application would.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

pub use sluice_testkit::{sluice_bin, unique, TestServer};

/// The library's plain-HTTP client for `server`.
pub fn client(server: &TestServer) -> aws_sdk_sqs::Client {
    sluice_client::plain_http_client(&server.endpoint)
}

pub async fn create_queue(client: &aws_sdk_sqs::Client, tag: &str) -> String {
    sluice_client::client::create_queue(client, &unique(tag).replace('_', "-"), &[]).await.expect("CreateQueue")
}

/// Visible + in flight + delayed.
pub async fn depth(client: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let (a, b, c) = sluice_client::client::queue_depth(client, url).await.expect("GetQueueAttributes");
    a + b + c
}

/// An HTTPS server (`--tls-cert`/`--tls-key`, the real binary); its endpoint is `https://127.0.0.1:PORT`.
pub fn start_tls(certs: &TestCerts) -> TestServer {
    let (cert, key) = (certs.server_cert.to_str().unwrap(), certs.server_key.to_str().unwrap());
    TestServer::spawn_with(sluice_bin(), &["--tls-cert", cert, "--tls-key", key], &[])
}

/// The library's HTTPS client for `server`, trusting the test CA.
pub fn tls_client(server: &TestServer, certs: &TestCerts) -> aws_sdk_sqs::Client {
    let http = sluice_client::client::https_http_client(Some(&certs.ca_cert)).expect("https client");
    aws_sdk_sqs::Client::from_conf(sluice_client::client::plain_http_config(&server.endpoint).http_client(http).build())
}

/// A CA and a server certificate for 127.0.0.1 / localhost, made with the `openssl` command.
pub struct TestCerts {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

/// Makes a throwaway CA and a server certificate it signed (SAN `IP:127.0.0.1`, `DNS:localhost`)
/// in a new temp dir, with the `openssl` command. None (after printing why) when there is no
/// `openssl` to run.
pub fn make_test_certs() -> Option<TestCerts> {
    let dir = std::env::temp_dir().join(unique("sluice-client-tls"));
    std::fs::create_dir_all(&dir).unwrap();
    let ext = dir.join("server.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec[..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=sluice test CA"],
        ]
        .concat()
        .into_iter()
        .chain(["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .collect(),
        [&["req"][..], &ec[..], &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]].concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
    ];
    for args in steps {
        match Command::new("openssl").args(&args).current_dir(&dir).stdin(Stdio::null()).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("openssl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => {
                eprintln!("SKIP: cannot run openssl ({e}): no test certificates");
                return None;
            }
        }
    }
    Some(TestCerts {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
        dir,
    })
}
