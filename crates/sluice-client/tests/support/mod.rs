//! The client's test helpers on top of the shared kit (`sluice-testkit`): the server comes from the
//! kit (in-process, so `cargo test -p sluice-client` needs no prebuilt binary); the client and the
//! queue helpers are the library's own (`plain_http_client`, `create_queue`, `queue_depth`), so the
//! tests use the library as an application would.

#![allow(dead_code)]

pub use sluice_testkit::{unique, TestServer};

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
