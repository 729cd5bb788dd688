//! Helpers shared by the crate's tests: an engine on the memory store, requests to an [`Sns`],
//! a local HTTP sink, and reads of the pending-delivery records.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use sluice_engine::clock::{Clock, SystemClock};
use sluice_engine::{Engine, EngineConfig, ReceiveOptions};
use sluice_protocol::Request;
use sluice_store::memory::MemoryBackend;
use sluice_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use sluice_store::Namespace;

use crate::records::PENDING_PREFIX;
use crate::Sns;

pub(crate) const ACCOUNT: &str = "000000000000";

pub(crate) fn engine() -> Arc<Engine> {
    engine_on(Arc::new(SystemClock))
}

/// An engine on the memory store whose clock is `clock` (a `ManualClock` in tests of time).
pub(crate) fn engine_on(clock: Arc<dyn Clock>) -> Arc<Engine> {
    let store = Arc::new(Store::new(Arc::new(MemoryBackend::new())));
    let config = EngineConfig::new("us-east-1", ACCOUNT, vec![7; 32]);
    Arc::new(Engine::open(config, clock, store).unwrap())
}

pub(crate) async fn call(sns: &Sns, body: &str) -> (u16, String) {
    let req = Request {
        method: "POST",
        path: "/",
        query: None,
        headers: &hyper::HeaderMap::new(),
        content_type: Some("application/x-www-form-urlencoded"),
        target: None,
        host: Some("sluice.test:9324"),
        scheme: "http",
        body: body.as_bytes(),
        identity: None,
        source_ip: None,
    };
    let resp = sns.handle(&req).await;
    (resp.status, String::from_utf8(resp.body).unwrap())
}

pub(crate) fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn commits(engine: &Engine) -> u64 {
    engine.store().stats().commits.load(Ordering::Relaxed)
}

pub(crate) async fn receive_all(engine: &Engine, queue: &str) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let opts = ReceiveOptions { max_number_of_messages: Some(10), ..Default::default() };
        let got = engine.receive_messages(queue, &opts).await.unwrap();
        if got.is_empty() {
            return out;
        }
        out.extend(got.into_iter().map(|m| m.body));
    }
}

pub(crate) async fn topic_with_queues(engine: &Arc<Engine>, sns: &Sns, queues: &[&str]) -> String {
    let (status, _) = call(sns, "Action=CreateTopic&Version=2010-03-31&Name=t").await;
    assert_eq!(status, 200);
    let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:t");
    for q in queues {
        engine.create_queue(q, &BTreeMap::new(), &BTreeMap::new()).await.unwrap();
        let endpoint = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{q}");
        let (status, body) = call(
            sns,
            &format!(
                "Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=sqs&Endpoint={}",
                enc(&topic),
                enc(&endpoint)
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    topic
}

pub(crate) fn batch_body(topic: &str, n: usize) -> String {
    let mut body = format!("Action=PublishBatch&Version=2010-03-31&TopicArn={}", enc(topic));
    for i in 1..=n {
        body.push_str(&format!(
            "&PublishBatchRequestEntries.member.{i}.Id=e{i}&PublishBatchRequestEntries.member.{i}.Message=m{i}"
        ));
    }
    body
}

/// Options for tests whose HTTP subscribers listen on 127.0.0.1 ([`http_sink`]): the SSRF guard
/// refuses loopback subscribers unless the operator allows them.
pub(crate) fn local_subscribers() -> crate::SnsOptions {
    crate::SnsOptions { endpoints: crate::EndpointPolicy::allow_all(), ..Default::default() }
}

pub(crate) async fn http_sink() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            let _ = tx.send(text[end + 4..end + 4 + len].to_string());
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

pub(crate) fn pending_ids(engine: &Engine) -> Vec<String> {
    let mut ids = Vec::new();
    engine
        .store()
        .scan_namespace(Namespace::Sns, &mut |key, _| {
            if let Some(id) = key.strip_prefix(PENDING_PREFIX.as_bytes()) {
                ids.push(String::from_utf8_lossy(id).to_string());
            }
        })
        .unwrap();
    ids
}

pub(crate) async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("condition not reached within 5 s");
}
