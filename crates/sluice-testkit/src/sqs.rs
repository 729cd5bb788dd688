//! Talking SQS in tests: an `aws-sdk-sqs` client for a plain-HTTP endpoint, names unique across
//! tests and processes, queue and message helpers, and the MD5s SQS defines (the Rust SDK does
//! not check the digests SQS returns; tests compare them with these).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::retry::RetryConfig;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::{Message, MessageAttributeValue, MessageSystemAttributeName};
use aws_sdk_sqs::Client;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A queue name that is unique across tests and processes (so tests also work
/// against one shared external endpoint). Only `[A-Za-z0-9_-]`, < 80 chars.
pub fn queue_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

/// A name unique to this test process, with underscores only (also a valid SQL identifier).
pub fn unique(tag: &str) -> String {
    format!("{tag}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// SDK client for a plain-HTTP endpoint. Retries are disabled so that every
/// failure is reported as the server answered it.
pub fn client_for(endpoint: &str) -> Client {
    client_with_credentials(endpoint, "test", "test")
}

/// [`client_for`] signing with the access key `key_id` / `secret` (a server started with keys).
pub fn client_with_credentials(endpoint: &str, key_id: &str, secret: &str) -> Client {
    let http = aws_smithy_http_client::Builder::new().build_http();
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key_id, secret, None, None, "static"))
        .http_client(http)
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                // Long polls are at most 20 s.
                .operation_attempt_timeout(Duration::from_secs(40))
                .build(),
        )
        .build();
    Client::from_conf(config)
}

// ---------------------------------------------------------------- MD5 helpers

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    let digest = Md5::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn push_len_prefixed(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// MD5 of message attributes as SQS defines it: attributes sorted by name;
/// each encoded as len(name) name len(type) type, transport byte (1 = String /
/// Number, 2 = Binary), len(value) value; lengths are 4-byte big-endian.
pub fn md5_of_attributes(attrs: &HashMap<String, MessageAttributeValue>) -> String {
    let mut names: Vec<&String> = attrs.keys().collect();
    names.sort();
    let mut buf = Vec::new();
    for name in names {
        let v = &attrs[name];
        push_len_prefixed(&mut buf, name.as_bytes());
        push_len_prefixed(&mut buf, v.data_type().as_bytes());
        if v.data_type().starts_with("Binary") {
            buf.push(2);
            push_len_prefixed(&mut buf, v.binary_value().expect("binary value").as_ref());
        } else {
            buf.push(1);
            push_len_prefixed(&mut buf, v.string_value().expect("string value").as_bytes());
        }
    }
    md5_hex(&buf)
}

// ---------------------------------------------------------------- SQS helpers

pub fn string_attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(v).build().unwrap()
}

pub fn number_attr(v: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("Number").string_value(v).build().unwrap()
}

pub fn binary_attr(v: &[u8]) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("Binary")
        .binary_value(aws_sdk_sqs::primitives::Blob::new(v.to_vec()))
        .build()
        .unwrap()
}

pub async fn create_queue(client: &Client, name: &str) -> String {
    let out =
        client.create_queue().queue_name(name).send().await.unwrap_or_else(|e| panic!("CreateQueue {name}: {e:?}"));
    out.queue_url().unwrap_or_else(|| panic!("CreateQueue {name}: no QueueUrl")).to_string()
}

/// Receives until `n` distinct messages arrived (or `deadline` passed), using
/// short long-polls so a server that samples still converges. Each message is
/// made invisible for `visibility` seconds. Panics on duplicates or timeout.
pub async fn receive_exactly(
    client: &Client,
    url: &str,
    n: usize,
    visibility: i32,
    deadline: Duration,
) -> Vec<Message> {
    let start = Instant::now();
    let mut got: Vec<Message> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while got.len() < n {
        if start.elapsed() > deadline {
            panic!("received only {} of {n} messages from {url} within {deadline:?}", got.len());
        }
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap_or_else(|e| panic!("ReceiveMessage {url}: {e:?}"));
        assert!(out.messages().len() <= 10, "ReceiveMessage(max 10) returned {} messages", out.messages().len());
        for m in out.messages() {
            let id = m.message_id().expect("MessageId").to_string();
            assert!(seen.insert(id.clone()), "message {id} received twice while invisible (visibility {visibility}s)");
            got.push(m.clone());
        }
    }
    got
}

/// One receive with no waiting.
pub async fn receive_now(client: &Client, url: &str, max: i32) -> Vec<Message> {
    client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(max)
        .wait_time_seconds(0)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap_or_else(|e| panic!("ReceiveMessage {url}: {e:?}"))
        .messages()
        .to_vec()
}

pub fn sys_attr(m: &Message, name: MessageSystemAttributeName) -> Option<&str> {
    m.attributes().and_then(|a| a.get(&name)).map(|s| s.as_str())
}
