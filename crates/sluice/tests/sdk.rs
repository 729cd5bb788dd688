//! End-to-end tests: sluice driven by the official Rust SDK (`aws-sdk-sqs`). Each test starts its
//! own server (own port, own data dir) from the test kit (`sluice-testkit`): in-process, or the
//! real binary where the test needs a process (signals, restarts, flags, environment).
//! AWS's documented SQS behaviour (standard queues) is the spec.
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

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::operation::create_queue::CreateQueueError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchError;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::operation::purge_queue::PurgeQueueError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName as Sys,
    QueueAttributeName as QA, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;

use sluice_testkit::*;

/// The real `sluice` binary of this crate (for tests that signal or restart it).
const SLUICE_BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// Asserts that `$res` failed with the service error variant `$pat` and
/// returns the service error. On mismatch prints the whole SDK error (which
/// includes the raw HTTP response) so the failure is diagnosable.
macro_rules! expect_service_err {
    ($what:expr, $res:expr, $pat:pat) => {{
        match $res {
            Ok(out) => panic!(
                "{}: expected {}, got Ok({:?})",
                $what,
                stringify!($pat),
                out
            ),
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
    assert_eq!(
        out.md5_of_message_body(),
        Some(md5_hex(body.as_bytes()).as_str()),
        "SendMessage MD5OfMessageBody"
    );
    out.message_id().expect("SendMessage MessageId").to_string()
}

fn batch_entry(id: &str, body: &str) -> SendMessageBatchRequestEntry {
    SendMessageBatchRequestEntry::builder()
        .id(id)
        .message_body(body)
        .build()
        .unwrap()
}

fn delete_entry(id: &str, handle: &str) -> DeleteMessageBatchRequestEntry {
    DeleteMessageBatchRequestEntry::builder()
        .id(id)
        .receipt_handle(handle)
        .build()
        .unwrap()
}

// ------------------------------------------------------------------ queues

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_create_get_url_list_delete() {
    let server = TestServer::start();
    let client = server.client();
    let name = queue_name("life");

    let url = create_queue(&client, &name).await;
    if let Some(expected) = server.expected_queue_url(&name) {
        assert_eq!(url, expected, "CreateQueue QueueUrl");
    } else {
        assert!(
            url.ends_with(&format!("/{name}")),
            "CreateQueue QueueUrl {url}"
        );
    }

    // Creating again with identical (here: no) attributes is idempotent.
    let again = create_queue(&client, &name).await;
    assert_eq!(
        again, url,
        "second CreateQueue with same attributes must return the same URL"
    );

    let got = client
        .get_queue_url()
        .queue_name(&name)
        .send()
        .await
        .expect("GetQueueUrl");
    assert_eq!(got.queue_url(), Some(url.as_str()), "GetQueueUrl");

    // ListQueues with a prefix: exactly our queues, in any order.
    let prefix = queue_name("lst");
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(create_queue(&client, &format!("{prefix}-{i}")).await);
    }
    let other = create_queue(&client, &queue_name("zzother")).await;
    let listed = client
        .list_queues()
        .queue_name_prefix(&prefix)
        .send()
        .await
        .expect("ListQueues(prefix)");
    let listed: HashSet<String> = listed.queue_urls().iter().cloned().collect();
    assert_eq!(
        listed,
        mine.iter().cloned().collect::<HashSet<_>>(),
        "ListQueues(QueueNamePrefix={prefix})"
    );
    assert!(!listed.contains(&other));

    // Without a prefix: everything we created is there.
    let all = client.list_queues().send().await.expect("ListQueues()");
    let all: HashSet<String> = all.queue_urls().iter().cloned().collect();
    for u in mine.iter().chain([&url, &other]) {
        assert!(all.contains(u), "ListQueues() lacks {u}: {all:?}");
    }

    // Pagination: MaxResults=2 over 5 queues -> pages of <= 2 with NextToken,
    // the last page has no NextToken, and the union is exactly the 5 queues.
    let mut paged = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(
            pages <= 10,
            "ListQueues pagination does not terminate: {paged:?}"
        );
        let out = client
            .list_queues()
            .queue_name_prefix(&prefix)
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!("ListQueues(prefix, MaxResults=2, NextToken={token:?}): {e:?}")
            });
        assert!(
            out.queue_urls().len() <= 2,
            "page {pages} has {} > MaxResults=2 URLs",
            out.queue_urls().len()
        );
        paged.extend(out.queue_urls().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    assert_eq!(paged.len(), 5, "paginated ListQueues returned {paged:?}");
    assert_eq!(
        paged.iter().cloned().collect::<HashSet<_>>(),
        mine.iter().cloned().collect::<HashSet<_>>()
    );
    assert!(
        pages >= 3,
        "5 queues with MaxResults=2 need 3 pages, got {pages}"
    );

    // Delete: gone from GetQueueUrl and ListQueues.
    client
        .delete_queue()
        .queue_url(&mine[0])
        .send()
        .await
        .expect("DeleteQueue");
    let gone = format!("{prefix}-0");
    expect_service_err!(
        "GetQueueUrl of deleted queue",
        client.get_queue_url().queue_name(&gone).send().await,
        GetQueueUrlError::QueueDoesNotExist(_)
    );
    let listed = client
        .list_queues()
        .queue_name_prefix(&prefix)
        .send()
        .await
        .expect("ListQueues after delete");
    assert_eq!(
        listed.queue_urls().len(),
        4,
        "ListQueues after delete: {:?}",
        listed.queue_urls()
    );
    assert!(!listed.queue_urls().contains(&mine[0]));
}

// ---------------------------------------------------------------- messages

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_receive_delete_with_attributes_and_md5s() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("attrs")).await;

    let body = "héllo wörld ✓ {\"json\": [1,2,3]} <xml a='b'>&amp;</xml>\n\ttab";
    let mut attrs: HashMap<String, MessageAttributeValue> = HashMap::new();
    attrs.insert("str".into(), string_attr("a string value ü"));
    attrs.insert("num".into(), number_attr("-12.5e3"));
    attrs.insert("bin".into(), binary_attr(&[0, 1, 2, 0xfe, 0xff, b'\n']));
    attrs.insert(
        "Custom".into(),
        MessageAttributeValue::builder()
            .data_type("String.custom")
            .string_value("x")
            .build()
            .unwrap(),
    );

    let sent = client
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .set_message_attributes(Some(attrs.clone()))
        .send()
        .await
        .expect("SendMessage with attributes");
    let msg_id = sent
        .message_id()
        .expect("SendMessage MessageId")
        .to_string();
    assert_eq!(
        sent.md5_of_message_body(),
        Some(md5_hex(body.as_bytes()).as_str()),
        "SendMessage MD5OfMessageBody"
    );
    assert_eq!(
        sent.md5_of_message_attributes(),
        Some(md5_of_attributes(&attrs).as_str()),
        "SendMessage MD5OfMessageAttributes"
    );

    let before = Instant::now();
    let msgs = receive_exactly(&client, &url, 1, 30, Duration::from_secs(10)).await;
    let m = &msgs[0];
    assert_eq!(m.message_id(), Some(msg_id.as_str()));
    assert_eq!(m.body(), Some(body), "received body");
    assert_eq!(
        m.md5_of_body(),
        Some(md5_hex(body.as_bytes()).as_str()),
        "received MD5OfBody"
    );
    let got_attrs = m.message_attributes().cloned().unwrap_or_default();
    assert_eq!(
        got_attrs, attrs,
        "received MessageAttributes (requested All)"
    );
    assert_eq!(
        m.md5_of_message_attributes(),
        Some(md5_of_attributes(&attrs).as_str()),
        "received MD5OfMessageAttributes"
    );
    assert!(
        m.receipt_handle().is_some_and(|h| !h.is_empty()),
        "ReceiptHandle"
    );
    assert_eq!(
        sys_attr(m, Sys::ApproximateReceiveCount),
        Some("1"),
        "ApproximateReceiveCount: {:?}",
        m.attributes()
    );
    let sent_ts: u64 = sys_attr(m, Sys::SentTimestamp)
        .expect("SentTimestamp")
        .parse()
        .expect("SentTimestamp is epoch millis");
    let first_ts: u64 = sys_attr(m, Sys::ApproximateFirstReceiveTimestamp)
        .expect("ApproximateFirstReceiveTimestamp")
        .parse()
        .expect("ApproximateFirstReceiveTimestamp is epoch millis");
    assert!(
        sent_ts > 1_600_000_000_000 && first_ts >= sent_ts,
        "SentTimestamp {sent_ts}, first receive {first_ts}"
    );
    assert!(
        sys_attr(m, Sys::SenderId).is_some(),
        "SenderId missing: {:?}",
        m.attributes()
    );

    // Only the requested message attribute names come back.
    client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(m.receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .expect("ChangeMessageVisibility 0");
    let only = client
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("num")
        .wait_time_seconds(2)
        .send()
        .await
        .expect("ReceiveMessage(MessageAttributeNames=[num])");
    let m2 = only
        .messages()
        .first()
        .expect("message visible again after ChangeMessageVisibility 0");
    let names: Vec<&String> = m2
        .message_attributes()
        .map(|a| a.keys().collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        vec!["num"],
        "ReceiveMessage(MessageAttributeNames=[num]) returned {names:?}"
    );
    let mut only_num = HashMap::new();
    only_num.insert("num".to_string(), attrs["num"].clone());
    assert_eq!(
        m2.md5_of_message_attributes(),
        Some(md5_of_attributes(&only_num).as_str()),
        "MD5OfMessageAttributes covers the returned attributes"
    );

    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(m2.receipt_handle().unwrap())
        .send()
        .await
        .expect("DeleteMessage");
    assert!(
        receive_now(&client, &url, 10).await.is_empty(),
        "message still receivable after DeleteMessage"
    );
    assert_eq!(
        counts(&client, &url).await,
        (0, 0, 0),
        "counts after delete"
    );
    assert!(before.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_send_10_and_batch_delete() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("batch")).await;

    let mut entries = Vec::new();
    let mut bodies = HashMap::new();
    let mut entry_attrs = HashMap::new();
    for i in 0..10 {
        let id = format!("m{i}");
        let body = format!("batch body {i} ✓");
        let mut e = SendMessageBatchRequestEntry::builder()
            .id(&id)
            .message_body(&body);
        if i % 2 == 0 {
            let mut a = HashMap::new();
            a.insert("idx".to_string(), number_attr(&i.to_string()));
            a.insert("kind".to_string(), string_attr("even"));
            e = e.set_message_attributes(Some(a.clone()));
            entry_attrs.insert(id.clone(), a);
        }
        entries.push(e.build().unwrap());
        bodies.insert(id, body);
    }
    let out = client
        .send_message_batch()
        .queue_url(&url)
        .set_entries(Some(entries))
        .send()
        .await
        .expect("SendMessageBatch(10)");
    assert!(
        out.failed().is_empty(),
        "SendMessageBatch failures: {:?}",
        out.failed()
    );
    assert_eq!(out.successful().len(), 10);
    let mut ids = HashSet::new();
    let mut msg_ids = HashSet::new();
    for r in out.successful() {
        let body = &bodies[r.id()];
        assert_eq!(
            r.md5_of_message_body(),
            md5_hex(body.as_bytes()),
            "entry {} MD5OfMessageBody",
            r.id()
        );
        match entry_attrs.get(r.id()) {
            Some(a) => assert_eq!(
                r.md5_of_message_attributes(),
                Some(md5_of_attributes(a).as_str()),
                "entry {} MD5OfMessageAttributes",
                r.id()
            ),
            None => assert_eq!(
                r.md5_of_message_attributes(),
                None,
                "entry {} has no attributes",
                r.id()
            ),
        }
        ids.insert(r.id().to_string());
        msg_ids.insert(r.message_id().to_string());
    }
    assert_eq!(ids.len(), 10, "result entry ids");
    assert_eq!(msg_ids.len(), 10, "message ids distinct");

    let msgs = receive_exactly(&client, &url, 10, 60, Duration::from_secs(15)).await;
    let got_bodies: HashSet<&str> = msgs.iter().map(|m| m.body().unwrap()).collect();
    assert_eq!(
        got_bodies,
        bodies.values().map(|s| s.as_str()).collect::<HashSet<_>>()
    );
    for m in &msgs {
        assert!(msg_ids.contains(m.message_id().unwrap()));
    }

    let del: Vec<_> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| delete_entry(&format!("d{i}"), m.receipt_handle().unwrap()))
        .collect();
    let out = client
        .delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(del))
        .send()
        .await
        .expect("DeleteMessageBatch(10)");
    assert!(
        out.failed().is_empty(),
        "DeleteMessageBatch failures: {:?}",
        out.failed()
    );
    let ok: HashSet<&str> = out.successful().iter().map(|e| e.id()).collect();
    assert_eq!(
        ok,
        (0..10)
            .map(|i| format!("d{i}"))
            .collect::<HashSet<_>>()
            .iter()
            .map(|s| s.as_str())
            .collect()
    );
    assert_eq!(
        counts(&client, &url).await,
        (0, 0, 0),
        "counts after DeleteMessageBatch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_batch_with_invalid_handle_fails_only_that_entry() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("badh")).await;
    send_body(&client, &url, "one").await;
    let msgs = receive_exactly(&client, &url, 1, 60, Duration::from_secs(10)).await;
    let out = client
        .delete_message_batch()
        .queue_url(&url)
        .entries(delete_entry("good", msgs[0].receipt_handle().unwrap()))
        .entries(delete_entry("bad", "this-is-not-a-receipt-handle"))
        .send()
        .await
        .expect("DeleteMessageBatch with one invalid handle must succeed as a call");
    assert_eq!(
        out.successful().iter().map(|e| e.id()).collect::<Vec<_>>(),
        vec!["good"]
    );
    assert_eq!(out.failed().len(), 1, "failed: {:?}", out.failed());
    let f = &out.failed()[0];
    assert_eq!(f.id(), "bad");
    assert_eq!(f.code(), "ReceiptHandleIsInvalid", "failed entry: {f:?}");
    assert!(
        f.sender_fault(),
        "SenderFault for an invalid receipt handle: {f:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_max_10_with_visibility_override() {
    let server = TestServer::start();
    let client = server.client();
    // Queue default visibility is long; the per-receive override is short.
    let name = queue_name("vis");
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(QA::VisibilityTimeout, "600")
        .send()
        .await
        .expect("CreateQueue VisibilityTimeout=600")
        .queue_url()
        .unwrap()
        .to_string();
    for i in 0..12 {
        send_body(&client, &url, &format!("v{i}")).await;
    }

    let first = receive_exactly(&client, &url, 12, 4, Duration::from_secs(10)).await;
    assert!(
        receive_now(&client, &url, 10).await.is_empty(),
        "messages visible right after receive with VisibilityTimeout=4"
    );
    let (visible, not_visible, _) = counts(&client, &url).await;
    assert_eq!((visible, not_visible), (0, 12), "counts while in flight");

    // After the 4 s override (not the queue's 600 s) they come back.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let again = receive_exactly(&client, &url, 12, 600, Duration::from_secs(10)).await;
    let a: HashSet<_> = first
        .iter()
        .map(|m| m.message_id().unwrap().to_string())
        .collect();
    let b: HashSet<_> = again
        .iter()
        .map(|m| m.message_id().unwrap().to_string())
        .collect();
    assert_eq!(a, b);
    for m in &again {
        assert_eq!(
            sys_attr(m, Sys::ApproximateReceiveCount),
            Some("2"),
            "second receive count of {:?}",
            m.body()
        );
        assert_ne!(
            m.receipt_handle(),
            first
                .iter()
                .find(|f| f.message_id() == m.message_id())
                .unwrap()
                .receipt_handle(),
            "a new receive must yield a new receipt handle"
        );
    }
    // Now the queue's own 600 s applies: nothing visible.
    assert!(receive_now(&client, &url, 10).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_visibility_to_zero_makes_message_receivable() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("cmv")).await;
    let id = send_body(&client, &url, "cmv body").await;

    let got = receive_exactly(&client, &url, 1, 120, Duration::from_secs(10)).await;
    assert!(
        receive_now(&client, &url, 10).await.is_empty(),
        "message visible while its 120 s visibility timeout runs"
    );
    client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(got[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .expect("ChangeMessageVisibility(0)");
    let again = receive_now(&client, &url, 10).await;
    assert_eq!(
        again.len(),
        1,
        "message not receivable at once after ChangeMessageVisibility(0)"
    );
    assert_eq!(again[0].message_id(), Some(id.as_str()));
    assert_eq!(sys_attr(&again[0], Sys::ApproximateReceiveCount), Some("2"));

    // A garbage handle is rejected.
    expect_service_err!(
        "ChangeMessageVisibility with garbage handle",
        client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle("garbage")
            .visibility_timeout(5)
            .send()
            .await,
        ChangeMessageVisibilityError::ReceiptHandleIsInvalid(_)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_promptly_when_a_message_arrives() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("lp")).await;

    let sender = client.clone();
    let send_url = url.clone();
    let task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        send_body(&sender, &send_url, "wake up").await
    });
    let start = Instant::now();
    let out = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(10)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("ReceiveMessage(WaitTimeSeconds=10)");
    let elapsed = start.elapsed();
    let sent_id = task.await.unwrap();
    assert_eq!(
        out.messages().len(),
        1,
        "long poll returned {:?} after {elapsed:?}",
        out.messages()
    );
    assert_eq!(out.messages()[0].message_id(), Some(sent_id.as_str()));
    assert!(
        elapsed < Duration::from_secs(5),
        "long poll returned only after {elapsed:?} (message sent after ~1 s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_on_empty_queue_waits_then_returns_empty() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("lpe")).await;

    let start = Instant::now();
    let out = client
        .receive_message()
        .queue_url(&url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("ReceiveMessage(WaitTimeSeconds=2)");
    let elapsed = start.elapsed();
    assert!(out.messages().is_empty());
    assert!(
        elapsed >= Duration::from_millis(1800) && elapsed < Duration::from_secs(6),
        "empty long poll of 2 s took {elapsed:?}"
    );

    // The queue attribute ReceiveMessageWaitTimeSeconds applies when the
    // request gives no WaitTimeSeconds.
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QA::ReceiveMessageWaitTimeSeconds, "2")
        .send()
        .await
        .expect("SetQueueAttributes ReceiveMessageWaitTimeSeconds=2");
    let start = Instant::now();
    let out = client
        .receive_message()
        .queue_url(&url)
        .send()
        .await
        .expect("ReceiveMessage (queue default wait)");
    let elapsed = start.elapsed();
    assert!(out.messages().is_empty());
    assert!(
        elapsed >= Duration::from_millis(1800) && elapsed < Duration::from_secs(6),
        "receive on queue with ReceiveMessageWaitTimeSeconds=2 took {elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_attributes_and_counts() {
    let server = TestServer::start();
    let client = server.client();
    let name = queue_name("qattr");
    let url = client
        .create_queue()
        .queue_name(&name)
        .attributes(QA::VisibilityTimeout, "45")
        .send()
        .await
        .expect("CreateQueue VisibilityTimeout=45")
        .queue_url()
        .unwrap()
        .to_string();

    let a = queue_attrs(&client, &url).await;
    for k in [
        QA::ApproximateNumberOfMessages,
        QA::ApproximateNumberOfMessagesNotVisible,
        QA::ApproximateNumberOfMessagesDelayed,
        QA::CreatedTimestamp,
        QA::LastModifiedTimestamp,
        QA::VisibilityTimeout,
        QA::MaximumMessageSize,
        QA::MessageRetentionPeriod,
        QA::DelaySeconds,
        QA::ReceiveMessageWaitTimeSeconds,
        QA::QueueArn,
    ] {
        assert!(
            a.contains_key(&k),
            "GetQueueAttributes(All) lacks {k:?}: {a:?}"
        );
    }
    assert_eq!(a[&QA::VisibilityTimeout], "45");
    assert_eq!(a[&QA::DelaySeconds], "0");
    assert_eq!(a[&QA::MessageRetentionPeriod], "345600");
    assert_eq!(a[&QA::ReceiveMessageWaitTimeSeconds], "0");
    let arn = &a[&QA::QueueArn];
    assert!(
        arn.starts_with("arn:aws:sqs:") && arn.ends_with(&format!(":{name}")),
        "QueueArn {arn}"
    );
    if !server.is_external() {
        assert_eq!(arn, &format!("arn:aws:sqs:us-east-1:000000000000:{name}"));
    }
    let created: u64 = a[&QA::CreatedTimestamp]
        .parse()
        .expect("CreatedTimestamp is epoch seconds");
    assert!(
        created > 1_600_000_000 && created < 10_000_000_000,
        "CreatedTimestamp {created} should be epoch seconds"
    );
    assert_eq!(counts(&client, &url).await, (0, 0, 0), "fresh queue");

    // Asking for specific names returns just those.
    let some = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QA::VisibilityTimeout)
        .attribute_names(QA::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("GetQueueAttributes(two names)");
    let keys: HashSet<QA> = some.attributes().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        HashSet::from([QA::VisibilityTimeout, QA::ApproximateNumberOfMessages])
    );

    for i in 0..3 {
        send_body(&client, &url, &format!("c{i}")).await;
    }
    assert_eq!(counts(&client, &url).await, (3, 0, 0), "after 3 sends");

    let got = client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(1)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("ReceiveMessage(1)");
    assert_eq!(got.messages().len(), 1);
    assert_eq!(counts(&client, &url).await, (2, 1, 0), "after receiving 1");

    client
        .delete_message()
        .queue_url(&url)
        .receipt_handle(got.messages()[0].receipt_handle().unwrap())
        .send()
        .await
        .expect("DeleteMessage");
    assert_eq!(counts(&client, &url).await, (2, 0, 0), "after deleting it");

    client
        .send_message()
        .queue_url(&url)
        .message_body("delayed")
        .delay_seconds(60)
        .send()
        .await
        .expect("SendMessage DelaySeconds=60");
    assert_eq!(
        counts(&client, &url).await,
        (2, 0, 1),
        "after a delayed send"
    );
    let visible = receive_exactly(&client, &url, 2, 60, Duration::from_secs(10)).await;
    assert!(
        visible.iter().all(|m| m.body() != Some("delayed")),
        "delayed message delivered early"
    );
    assert!(
        receive_now(&client, &url, 10).await.is_empty(),
        "delayed message delivered early"
    );
}

// ------------------------------------------------------------------ errors

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_queue_does_not_exist() {
    let server = TestServer::start();
    let client = server.client();
    let missing = queue_name("nope");
    let e = expect_service_err!(
        "GetQueueUrl of unknown queue",
        client.get_queue_url().queue_name(&missing).send().await,
        GetQueueUrlError::QueueDoesNotExist(_)
    );
    assert_eq!(
        e.meta().code(),
        Some("AWS.SimpleQueueService.NonExistentQueue")
    );

    // Operations on a URL of a queue that does not exist.
    let url = create_queue(&client, &missing).await;
    client
        .delete_queue()
        .queue_url(&url)
        .send()
        .await
        .expect("DeleteQueue");
    expect_service_err!(
        "SendMessage to deleted queue",
        client
            .send_message()
            .queue_url(&url)
            .message_body("x")
            .send()
            .await,
        SendMessageError::QueueDoesNotExist(_)
    );
    expect_service_err!(
        "ReceiveMessage from deleted queue",
        client.receive_message().queue_url(&url).send().await,
        ReceiveMessageError::QueueDoesNotExist(_)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_create_queue_with_conflicting_attributes() {
    let server = TestServer::start();
    let client = server.client();
    let name = queue_name("conflict");
    client
        .create_queue()
        .queue_name(&name)
        .attributes(QA::VisibilityTimeout, "30")
        .send()
        .await
        .expect("CreateQueue VisibilityTimeout=30");
    // Same attributes: fine.
    client
        .create_queue()
        .queue_name(&name)
        .attributes(QA::VisibilityTimeout, "30")
        .send()
        .await
        .expect("CreateQueue again with identical attributes");
    expect_service_err!(
        "CreateQueue with conflicting VisibilityTimeout",
        client
            .create_queue()
            .queue_name(&name)
            .attributes(QA::VisibilityTimeout, "60")
            .send()
            .await,
        CreateQueueError::QueueNameExists(_)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_delete_with_garbage_receipt_handle() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("garbage")).await;
    send_body(&client, &url, "x").await;
    expect_service_err!(
        "DeleteMessage with garbage receipt handle",
        client
            .delete_message()
            .queue_url(&url)
            .receipt_handle("not-a-real-handle")
            .send()
            .await,
        DeleteMessageError::ReceiptHandleIsInvalid(_)
    );
    // The message is untouched.
    assert_eq!(counts(&client, &url).await, (1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_batch_validation() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("bval")).await;

    expect_service_err!(
        "SendMessageBatch with 0 entries",
        client
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(vec![]))
            .send()
            .await,
        SendMessageBatchError::EmptyBatchRequest(_)
    );
    let eleven: Vec<_> = (0..11)
        .map(|i| batch_entry(&format!("e{i}"), "b"))
        .collect();
    expect_service_err!(
        "SendMessageBatch with 11 entries",
        client
            .send_message_batch()
            .queue_url(&url)
            .set_entries(Some(eleven))
            .send()
            .await,
        SendMessageBatchError::TooManyEntriesInBatchRequest(_)
    );
    expect_service_err!(
        "SendMessageBatch with duplicate ids",
        client
            .send_message_batch()
            .queue_url(&url)
            .entries(batch_entry("same", "a"))
            .entries(batch_entry("other", "b"))
            .entries(batch_entry("same", "c"))
            .send()
            .await,
        SendMessageBatchError::BatchEntryIdsNotDistinct(_)
    );
    // None of the rejected batches enqueued anything.
    assert_eq!(
        counts(&client, &url).await,
        (0, 0, 0),
        "rejected batches must not enqueue"
    );

    expect_service_err!(
        "DeleteMessageBatch with 0 entries",
        client
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(vec![]))
            .send()
            .await,
        DeleteMessageBatchError::EmptyBatchRequest(_)
    );
    let eleven: Vec<_> = (0..11)
        .map(|i| delete_entry(&format!("e{i}"), &format!("h{i}")))
        .collect();
    expect_service_err!(
        "DeleteMessageBatch with 11 entries",
        client
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(eleven))
            .send()
            .await,
        DeleteMessageBatchError::TooManyEntriesInBatchRequest(_)
    );
    expect_service_err!(
        "DeleteMessageBatch with duplicate ids",
        client
            .delete_message_batch()
            .queue_url(&url)
            .entries(delete_entry("dup", "h1"))
            .entries(delete_entry("dup", "h2"))
            .send()
            .await,
        DeleteMessageBatchError::BatchEntryIdsNotDistinct(_)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_then_purge_again_is_in_progress() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("purge")).await;
    for i in 0..3 {
        send_body(&client, &url, &format!("p{i}")).await;
    }
    client
        .purge_queue()
        .queue_url(&url)
        .send()
        .await
        .expect("first PurgeQueue");
    expect_service_err!(
        "second PurgeQueue within 60 s",
        client.purge_queue().queue_url(&url).send().await,
        PurgeQueueError::PurgeQueueInProgress(_)
    );
    // AWS allows up to 60 s for the purge; a single node should be quick.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = counts(&client, &url).await;
        if c == (0, 0, 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queue not empty 5 s after PurgeQueue: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        receive_now(&client, &url, 10).await.is_empty(),
        "messages receivable after PurgeQueue"
    );
}

// ------------------------------------------------------------- durability

async fn send_100(client: &Client, url: &str) -> HashSet<String> {
    // 50 single sends + 5 batches of 10.
    let mut bodies = HashSet::new();
    for i in 0..50 {
        let b = format!("durable-{i}");
        send_body(client, url, &b).await;
        bodies.insert(b);
    }
    for batch in 0..5 {
        let entries: Vec<_> = (0..10)
            .map(|j| {
                let b = format!("durable-{}", 50 + batch * 10 + j);
                bodies.insert(b.clone());
                batch_entry(&format!("e{j}"), &b)
            })
            .collect();
        let out = client
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("SendMessageBatch");
        assert!(
            out.failed().is_empty() && out.successful().len() == 10,
            "batch {batch}: {:?}",
            out.failed()
        );
    }
    assert_eq!(bodies.len(), 100);
    bodies
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

async fn assert_all_received(client: &Client, url: &str, expected: &HashSet<String>, what: &str) {
    let msgs = receive_exactly(client, url, expected.len(), 120, Duration::from_secs(30)).await;
    let got: HashSet<String> = msgs.iter().map(|m| m.body().unwrap().to_string()).collect();
    assert_eq!(&got, expected, "{what}: bodies after restart differ");
    let extra = receive_now(client, url, 10).await;
    assert!(
        extra.is_empty(),
        "{what}: unexpected extra messages after restart: {:?}",
        extra.iter().map(|m| m.body()).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_sigterm_keeps_all_messages() {
    let mut server = TestServer::spawn(SLUICE_BIN);
    if skip_if_external(&server, "restart_after_sigterm_keeps_all_messages") {
        return;
    }
    let client = server.client();
    let name = queue_name("graceful");
    client
        .create_queue()
        .queue_name(&name)
        .attributes(QA::VisibilityTimeout, "77")
        .send()
        .await
        .expect("CreateQueue");
    let url = queue_url_by_name(&client, &name).await;
    let bodies = send_100(&client, &url).await;

    let status = server.terminate();
    assert!(
        status.success(),
        "graceful shutdown on SIGTERM should exit 0, got {status}"
    );
    server.restart();
    let client = server.client();
    let url = queue_url_by_name(&client, &name).await;
    assert_eq!(
        Some(url.clone()),
        server.expected_queue_url(&name),
        "queue URL after restart uses the new port"
    );
    assert_eq!(
        queue_attrs(&client, &url).await[&QA::VisibilityTimeout],
        "77",
        "queue attributes survive restart"
    );
    assert_eq!(
        counts(&client, &url).await,
        (100, 0, 0),
        "counts after graceful restart"
    );
    assert_all_received(&client, &url, &bodies, "SIGTERM restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_after_sigkill_keeps_acknowledged_messages() {
    let mut server = TestServer::spawn(SLUICE_BIN);
    if skip_if_external(&server, "restart_after_sigkill_keeps_acknowledged_messages") {
        return;
    }
    let client = server.client();
    let name = queue_name("killed");
    let url = create_queue(&client, &name).await;
    let bodies = send_100(&client, &url).await;

    // Every send above was acknowledged; kill without warning.
    server.kill();
    server.restart();
    let client = server.client();
    let url = queue_url_by_name(&client, &name).await;
    assert_all_received(&client, &url, &bodies, "SIGKILL restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_survive_graceful_restart() {
    let mut server = TestServer::spawn(SLUICE_BIN);
    if skip_if_external(&server, "deletes_survive_graceful_restart") {
        return;
    }
    let client = server.client();
    let name = queue_name("deldur");
    let url = create_queue(&client, &name).await;
    let gone_name = queue_name("deldur-gone");
    let gone_url = create_queue(&client, &gone_name).await;
    client
        .delete_queue()
        .queue_url(&gone_url)
        .send()
        .await
        .expect("DeleteQueue");

    let mut bodies = HashSet::new();
    for i in 0..20 {
        let b = format!("keep-or-delete-{i}");
        send_body(&client, &url, &b).await;
        bodies.insert(b);
    }
    let got = receive_exactly(&client, &url, 20, 300, Duration::from_secs(15)).await;
    // Delete 10 (5 singly, 5 in a batch); leave 10 in flight (300 s).
    for m in &got[..5] {
        client
            .delete_message()
            .queue_url(&url)
            .receipt_handle(m.receipt_handle().unwrap())
            .send()
            .await
            .expect("DeleteMessage");
        bodies.remove(m.body().unwrap());
    }
    let del: Vec<_> = got[5..10]
        .iter()
        .enumerate()
        .map(|(i, m)| delete_entry(&format!("d{i}"), m.receipt_handle().unwrap()))
        .collect();
    let out = client
        .delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(del))
        .send()
        .await
        .expect("DeleteMessageBatch");
    assert!(out.failed().is_empty(), "{:?}", out.failed());
    for m in &got[5..10] {
        bodies.remove(m.body().unwrap());
    }

    let status = server.terminate();
    assert!(
        status.success(),
        "graceful shutdown on SIGTERM should exit 0, got {status}"
    );
    server.restart();
    let client = server.client();
    expect_service_err!(
        "GetQueueUrl of a queue deleted before restart",
        client.get_queue_url().queue_name(&gone_name).send().await,
        GetQueueUrlError::QueueDoesNotExist(_)
    );
    let url = queue_url_by_name(&client, &name).await;
    // The 10 undeleted ones may be in flight or visible after restart
    // (visibility need not survive), but the 10 deleted ones must not return.
    let (v, nv, d) = counts(&client, &url).await;
    assert_eq!(
        v + nv + d,
        10,
        "messages after restart: visible {v}, in flight {nv}, delayed {d}"
    );
    if v == 10 {
        assert_all_received(&client, &url, &bodies, "deletes + SIGTERM restart").await;
    }
}

// ---------------------------------------------------------------------------
// Server configuration and lifecycle
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_declares_queues() {
    if external_endpoint().is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sluice-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sluice.toml");
    std::fs::write(
        &path,
        "# declared queues\n[[queues]]\nname = \"declared-orders\"\nattributes = { VisibilityTimeout = 77, DelaySeconds = \"3\" }\ntags = { team = \"checkout\" }\n",
    )
    .unwrap();
    let server = TestServer::spawn_with(SLUICE_BIN, &["--config", path.to_str().unwrap()], &[]);
    let client = server.client();
    let url = queue_url_by_name(&client, "declared-orders").await;
    let attrs = queue_attrs(&client, &url).await;
    assert_eq!(attrs[&QA::VisibilityTimeout], "77");
    assert_eq!(attrs[&QA::DelaySeconds], "3");
    let tags = client.list_queue_tags().queue_url(&url).send().await.unwrap();
    assert_eq!(tags.tags().and_then(|t| t.get("team")).map(String::as_str), Some("checkout"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_sets_port_region_and_account() {
    if external_endpoint().is_some() {
        return;
    }
    let server = TestServer::spawn_with(
        SLUICE_BIN,
        &[],
        &[("SLUICE_PORT", "0"), ("SLUICE_REGION", "eu-west-1"), ("SLUICE_ACCOUNT_ID", "123456789012")],
    );
    let client = server.client();
    let name = queue_name("env");
    let url = client.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    assert_eq!(url, format!("{}/123456789012/{name}", server.endpoint));
    let attrs = queue_attrs(&client, &url).await;
    assert_eq!(attrs[&QA::QueueArn], format!("arn:aws:sqs:eu-west-1:123456789012:{name}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_releases_long_polls_and_exits_cleanly() {
    let mut server = TestServer::spawn(SLUICE_BIN);
    if skip_if_external(&server, "sigterm_releases_long_polls_and_exits_cleanly") {
        return;
    }
    let client = server.client();
    let url = create_queue(&client, &queue_name("shutdown")).await;
    let poller = {
        let client = client.clone();
        let url = url.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let out = client.receive_message().queue_url(&url).wait_time_seconds(20).send().await;
            (out, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let s = server.terminate();
        drop(server);
        s
    })
    .await
    .unwrap();
    assert!(status.success(), "graceful shutdown must exit 0, got {status:?}");
    let (out, waited) = poller.await.unwrap();
    let out = out.expect("the long poll must get an answer, not a dropped connection");
    assert!(out.messages().is_empty());
    // Not a benchmark: the poll asked for 20 s; shutdown must cut it short.
    assert!(waited < Duration::from_secs(15), "long poll was not released at shutdown ({waited:?})");
    assert!(started.elapsed() < Duration::from_secs(15));
}

// ---------------------------------------------------------------------------
// FIFO under concurrency
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifo_order_holds_under_concurrent_producers_and_consumers() {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    use std::sync::{Arc, Mutex};

    const GROUPS: usize = 20;
    const PER_GROUP: usize = 40;
    let server = TestServer::start();
    let client = server.client();
    let url = client
        .create_queue()
        .queue_name(queue_name("order").replace('.', "-") + ".fifo")
        .attributes(QA::FifoQueue, "true")
        .send()
        .await
        .expect("create FIFO queue")
        .queue_url
        .unwrap();

    // Four producers, each owning five groups, sending in order; every 7th message is sent twice
    // with the same deduplication id (a producer retry) and must not be enqueued twice.
    let mut producers = Vec::new();
    for p in 0..4 {
        let client = client.clone();
        let url = url.clone();
        producers.push(tokio::spawn(async move {
            for i in 0..PER_GROUP {
                for g in (p..GROUPS).step_by(4) {
                    let times = if i % 7 == 0 { 2 } else { 1 };
                    for _ in 0..times {
                        client
                            .send_message()
                            .queue_url(&url)
                            .message_body(format!("{g}:{i}"))
                            .message_group_id(format!("g{g}"))
                            .message_deduplication_id(format!("d-{g}-{i}"))
                            .send()
                            .await
                            .expect("send");
                    }
                }
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }

    // Four consumers. Each records what it got (under one lock, before deleting), so the recorded
    // order per group is the delivery order.
    let seen: Arc<Mutex<HashMap<usize, Vec<usize>>>> = Arc::new(Mutex::new(HashMap::new()));
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        let url = url.clone();
        let seen = seen.clone();
        consumers.push(tokio::spawn(async move {
            let mut empty = 0;
            while empty < 3 {
                let out = client
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .visibility_timeout(60)
                    .wait_time_seconds(1)
                    .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                    .send()
                    .await
                    .expect("receive");
                let msgs = out.messages.unwrap_or_default();
                if msgs.is_empty() {
                    empty += 1;
                    continue;
                }
                empty = 0;
                {
                    let mut seen = seen.lock().unwrap();
                    for m in &msgs {
                        let body = m.body().unwrap();
                        let (g, i) = body.split_once(':').unwrap();
                        seen.entry(g.parse().unwrap()).or_default().push(i.parse().unwrap());
                    }
                }
                for m in &msgs {
                    client.delete_message().queue_url(&url).receipt_handle(m.receipt_handle().unwrap()).send().await.expect("delete");
                }
            }
        }));
    }
    for c in consumers {
        c.await.unwrap();
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), GROUPS);
    for (g, order) in seen.iter() {
        let expected: Vec<usize> = (0..PER_GROUP).collect();
        assert_eq!(order, &expected, "group {g}: per-group order, no duplicates, nothing lost");
    }
}

// ---------------------------------------------------------------------------
// Observability: /metrics, /api, /health, /ready
// ---------------------------------------------------------------------------

/// A plain HTTP/1.1 GET over a std socket (keeps the test free of another HTTP client).
fn http_get(endpoint: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr = endpoint.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn metric(text: &str, name: &str, queue: &str) -> f64 {
    let prefix = format!("{name}{{queue=\"{queue}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("no {prefix} in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_api_and_queue_attributes_agree() {
    let server = TestServer::start();
    if external_endpoint().is_some() {
        return;
    }
    let client = server.client();
    let name = queue_name("metrics");
    let url = create_queue(&client, &name).await;
    for i in 0..3 {
        send_body(&client, &url, &format!("m{i}")).await;
    }
    let got = receive_now(&client, &url, 1).await;
    assert_eq!(got.len(), 1);
    let (visible, inflight, delayed) = counts(&client, &url).await;
    assert_eq!((visible, inflight, delayed), (2, 1, 0));

    let endpoint = server.endpoint.clone();
    let (status, text) = tokio::task::spawn_blocking({
        let e = endpoint.clone();
        move || http_get(&e, "/metrics")
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(metric(&text, "sluice_queue_messages_visible", &name), visible as f64);
    assert_eq!(metric(&text, "sluice_queue_messages_inflight", &name), inflight as f64);
    assert_eq!(metric(&text, "sluice_queue_messages_delayed", &name), delayed as f64);
    assert_eq!(metric(&text, "sluice_queue_messages_sent_total", &name), 3.0);
    assert_eq!(metric(&text, "sluice_queue_messages_received_total", &name), 1.0);
    assert!(text.contains("sluice_requests_total{action=\"SendMessage\",outcome=\"ok\"} 3"), "{text}");
    assert!(text.contains("# TYPE sluice_request_duration_seconds histogram"));
    assert!(text.contains("sluice_store_commit_duration_seconds_count"));

    let (status, api) = tokio::task::spawn_blocking({
        let e = endpoint.clone();
        move || http_get(&e, "/api/queues")
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&api).expect("JSON");
    let q = doc["queues"].as_array().unwrap().iter().find(|q| q["name"] == name.as_str()).expect("queue listed");
    assert_eq!((q["visible"].as_u64(), q["inflight"].as_u64()), (Some(visible), Some(inflight)));

    // Peek shows the visible messages and changes nothing.
    let (status, peek) = tokio::task::spawn_blocking({
        let (e, n) = (endpoint.clone(), name.clone());
        move || http_get(&e, &format!("/api/queues/{n}/peek?max=10"))
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    let peek: serde_json::Value = serde_json::from_str(&peek).unwrap();
    assert_eq!(peek["messages"].as_array().unwrap().len(), 2);
    assert_eq!(counts(&client, &url).await, (2, 1, 0));

    for path in ["/health", "/ready"] {
        let e = endpoint.clone();
        let (status, _) = tokio::task::spawn_blocking(move || http_get(&e, path)).await.unwrap();
        assert_eq!(status, 200, "{path}");
    }
}

/// `--data-dir :memory:` applies commits on the request thread instead of a writer thread
/// (`Store::in_memory`): the same API, nothing on disk, nothing after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_server_sends_receives_deletes_and_keeps_nothing() {
    let mut server = TestServer::spawn_with(SLUICE_BIN, &["--data-dir", ":memory:"], &[]);
    if skip_if_external(&server, "in_memory_server_sends_receives_deletes_and_keeps_nothing") {
        return;
    }
    let client = server.client();
    let name = queue_name("memory");
    let url = create_queue(&client, &name).await;

    let sent = client.send_message().queue_url(&url).message_body("m-0").send().await.expect("SendMessage");
    assert_eq!(sent.md5_of_message_body(), Some(md5_hex(b"m-0").as_str()));
    let entries: Vec<_> = (1..=10)
        .map(|i| SendMessageBatchRequestEntry::builder().id(format!("e{i}")).message_body(format!("m-{i}")).build().unwrap())
        .collect();
    let batch = client.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("SendMessageBatch");
    assert_eq!(batch.successful().len(), 10, "{batch:?}");
    assert!(batch.failed().is_empty(), "{batch:?}");

    let got = receive_exactly(&client, &url, 11, 60, Duration::from_secs(10)).await;
    let bodies: HashSet<String> = got.iter().map(|m| m.body().unwrap().to_string()).collect();
    let expected: HashSet<String> = (0..=10).map(|i| format!("m-{i}")).collect();
    assert_eq!(bodies, expected);
    for m in &got {
        assert_eq!(m.md5_of_body(), Some(md5_hex(m.body().unwrap().as_bytes()).as_str()));
    }
    assert_eq!(counts(&client, &url).await, (0, 11, 0));
    for chunk in got.chunks(10) {
        let entries: Vec<_> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| DeleteMessageBatchRequestEntry::builder().id(format!("d{i}")).receipt_handle(m.receipt_handle().unwrap()).build().unwrap())
            .collect();
        let out = client.delete_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("DeleteMessageBatch");
        assert!(out.failed().is_empty(), "{out:?}");
    }
    assert_eq!(counts(&client, &url).await, (0, 0, 0));
    assert!(receive_now(&client, &url, 10).await.is_empty());

    // FIFO de-duplication works the same way in memory.
    let fifo = format!("{name}.fifo");
    let fifo_url = client
        .create_queue()
        .queue_name(&fifo)
        .attributes(QA::FifoQueue, "true")
        .send()
        .await
        .expect("CreateQueue fifo")
        .queue_url()
        .unwrap()
        .to_string();
    let send_fifo = || {
        client.send_message().queue_url(&fifo_url).message_body("once").message_group_id("g").message_deduplication_id("d-1").send()
    };
    let first = send_fifo().await.expect("first FIFO send");
    let again = send_fifo().await.expect("duplicate FIFO send");
    assert_eq!(first.message_id(), again.message_id(), "a duplicate answers with the first send's MessageId");
    assert_eq!(receive_exactly(&client, &fifo_url, 1, 60, Duration::from_secs(5)).await.len(), 1);
    assert!(receive_now(&client, &fifo_url, 10).await.is_empty(), "the duplicate was not queued");

    assert_eq!(std::fs::read_dir(server.data_dir()).unwrap().count(), 0, "nothing written to the default data dir");
    let status = server.terminate();
    assert!(status.success(), "graceful shutdown should exit 0, got {status}");
    server.restart();
    let client = server.client();
    expect_service_err!(
        "GetQueueUrl after an in-memory restart",
        client.get_queue_url().queue_name(&name).send().await,
        GetQueueUrlError::QueueDoesNotExist(_)
    );
}
