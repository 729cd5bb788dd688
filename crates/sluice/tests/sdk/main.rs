//! End-to-end tests: sluice driven by the official Rust SDK (`aws-sdk-sqs`), one test binary
//! with a module per area. Each test starts its own server (own port, own data dir) from the test
//! kit (`sluice-testkit`): in-process, or the real binary where the test needs a process
//! (signals, restarts, flags, environment). AWS's documented SQS behaviour (standard queues) is
//! the spec.
//!
//! Note on MD5s: the Rust SDK does not check the MD5 digests SQS returns (other
//! SDKs do), so these tests compute and compare them themselves.
//!
//! Note on errors: the SDK speaks awsJson1_0 with awsQueryCompatible and maps
//! errors to variants by the *query* error code, taken from the response
//! header `x-amzn-query-error: <code>;Sender` (e.g.
//! `AWS.SimpleQueueService.NonExistentQueue;Sender`), falling back to `__type`.
//!
//! Set SQS_ENDPOINT=http://127.0.0.1:5000 to run against another server
//! (e.g. moto); restart tests are then skipped.

use std::collections::HashMap;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName as QA, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

use sluice_testkit::md5_hex;

/// The real `sluice` binary of this crate (for tests that signal or restart it).
const SLUICE_BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// Asserts that `$res` failed with the service error variant `$pat` and
/// returns the service error. On mismatch prints the whole SDK error (which
/// includes the raw HTTP response) so the failure is diagnosable.
macro_rules! expect_service_err {
    ($what:expr, $res:expr, $pat:pat) => {{
        match $res {
            Ok(out) => panic!("{}: expected {}, got Ok({:?})", $what, stringify!($pat), out),
            Err(e) => {
                let full = format!("{e:?}");
                let se = e.into_service_error();
                if !matches!(se, $pat) {
                    panic!(
                        "{}: expected {}, got {:?} (code={:?}, message={:?})\nfull error: {}",
                        $what,
                        stringify!($pat),
                        se,
                        se.meta().code(),
                        se.meta().message(),
                        full
                    );
                }
                se
            }
        }
    }};
}

// The macro above is in scope in the modules declared below it.
mod auth;
mod batch;
mod durability;
mod errors;
mod fifo;
mod lifecycle;
mod messages;
mod observability;
mod queues;

async fn queue_attrs(client: &Client, url: &str) -> HashMap<QA, String> {
    client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QA::All)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetQueueAttributes(All) {url}: {e:?}"))
        .attributes()
        .cloned()
        .unwrap_or_default()
}

/// (ApproximateNumberOfMessages, …NotVisible, …Delayed)
async fn counts(client: &Client, url: &str) -> (u64, u64, u64) {
    let a = queue_attrs(client, url).await;
    let get = |k: QA| -> u64 {
        a.get(&k)
            .unwrap_or_else(|| panic!("GetQueueAttributes(All) lacks {k:?}: {a:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("{k:?} not a number in {a:?}: {e}"))
    };
    (
        get(QA::ApproximateNumberOfMessages),
        get(QA::ApproximateNumberOfMessagesNotVisible),
        get(QA::ApproximateNumberOfMessagesDelayed),
    )
}

async fn send_body(client: &Client, url: &str, body: &str) -> String {
    let out = client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("SendMessage {url}: {e:?}"));
    assert_eq!(out.md5_of_message_body(), Some(md5_hex(body.as_bytes()).as_str()), "SendMessage MD5OfMessageBody");
    out.message_id().expect("SendMessage MessageId").to_string()
}

fn batch_entry(id: &str, body: &str) -> SendMessageBatchRequestEntry {
    SendMessageBatchRequestEntry::builder().id(id).message_body(body).build().unwrap()
}

fn delete_entry(id: &str, handle: &str) -> DeleteMessageBatchRequestEntry {
    DeleteMessageBatchRequestEntry::builder().id(id).receipt_handle(handle).build().unwrap()
}

async fn queue_url_by_name(client: &Client, name: &str) -> String {
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetQueueUrl {name} after restart: {e:?}"))
        .queue_url()
        .unwrap()
        .to_string()
}
