//! The client's test helpers on top of the shared kit (`sluice-testkit`): the server comes from the
//! kit (in-process, so `cargo test -p sluice-client` needs no prebuilt binary); the client and the
//! queue helpers are the library's own (`plain_http_client`, `create_queue`, `queue_depth`), so the
//! tests use the library as an application would. [`drain`]: what the drain scenarios share.

#![allow(dead_code)]

pub mod drain;

pub use sluice_testkit::tls::TestCa;
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

/// An HTTPS server (`--tls-cert`/`--tls-key`, the real binary) with a certificate of `ca`; its
/// endpoint is `https://127.0.0.1:PORT`.
pub fn start_tls(ca: &TestCa) -> TestServer {
    let leaf = ca.issue("server");
    let (cert, key) = (leaf.cert.to_str().unwrap(), leaf.key.to_str().unwrap());
    TestServer::spawn_with(sluice_bin(), &["--tls-cert", cert, "--tls-key", key], &[])
}

/// The library's HTTPS client for `server`, trusting the test CA.
pub fn tls_client(server: &TestServer, ca: &TestCa) -> aws_sdk_sqs::Client {
    let http = sluice_client::client::https_http_client(Some(&ca.cert)).expect("https client");
    aws_sdk_sqs::Client::from_conf(sluice_client::client::plain_http_config(&server.endpoint).http_client(http).build())
}
