//! Batch actions: SendMessageBatch and DeleteMessageBatch, per-entry failures, batch validation.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_sqs::operation::delete_message_batch::DeleteMessageBatchError;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use crate::{batch_entry, counts, delete_entry, send_body};
use sluice_testkit::{
    create_queue, md5_hex, md5_of_attributes, number_attr, queue_name, receive_exactly, string_attr, TestServer,
};

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
        let mut e = SendMessageBatchRequestEntry::builder().id(&id).message_body(&body);
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
    assert!(out.failed().is_empty(), "SendMessageBatch failures: {:?}", out.failed());
    assert_eq!(out.successful().len(), 10);
    let mut ids = HashSet::new();
    let mut msg_ids = HashSet::new();
    for r in out.successful() {
        let body = &bodies[r.id()];
        assert_eq!(r.md5_of_message_body(), md5_hex(body.as_bytes()), "entry {} MD5OfMessageBody", r.id());
        match entry_attrs.get(r.id()) {
            Some(a) => assert_eq!(
                r.md5_of_message_attributes(),
                Some(md5_of_attributes(a).as_str()),
                "entry {} MD5OfMessageAttributes",
                r.id()
            ),
            None => assert_eq!(r.md5_of_message_attributes(), None, "entry {} has no attributes", r.id()),
        }
        ids.insert(r.id().to_string());
        msg_ids.insert(r.message_id().to_string());
    }
    assert_eq!(ids.len(), 10, "result entry ids");
    assert_eq!(msg_ids.len(), 10, "message ids distinct");

    let msgs = receive_exactly(&client, &url, 10, 60, Duration::from_secs(15)).await;
    let got_bodies: HashSet<&str> = msgs.iter().map(|m| m.body().unwrap()).collect();
    assert_eq!(got_bodies, bodies.values().map(|s| s.as_str()).collect::<HashSet<_>>());
    for m in &msgs {
        assert!(msg_ids.contains(m.message_id().unwrap()));
    }

    let del: Vec<_> =
        msgs.iter().enumerate().map(|(i, m)| delete_entry(&format!("d{i}"), m.receipt_handle().unwrap())).collect();
    let out = client
        .delete_message_batch()
        .queue_url(&url)
        .set_entries(Some(del))
        .send()
        .await
        .expect("DeleteMessageBatch(10)");
    assert!(out.failed().is_empty(), "DeleteMessageBatch failures: {:?}", out.failed());
    let ok: HashSet<&str> = out.successful().iter().map(|e| e.id()).collect();
    assert_eq!(ok, (0..10).map(|i| format!("d{i}")).collect::<HashSet<_>>().iter().map(|s| s.as_str()).collect());
    assert_eq!(counts(&client, &url).await, (0, 0, 0), "counts after DeleteMessageBatch");
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
    assert_eq!(out.successful().iter().map(|e| e.id()).collect::<Vec<_>>(), vec!["good"]);
    assert_eq!(out.failed().len(), 1, "failed: {:?}", out.failed());
    let f = &out.failed()[0];
    assert_eq!(f.id(), "bad");
    assert_eq!(f.code(), "ReceiptHandleIsInvalid", "failed entry: {f:?}");
    assert!(f.sender_fault(), "SenderFault for an invalid receipt handle: {f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_batch_validation() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("bval")).await;

    expect_service_err!(
        "SendMessageBatch with 0 entries",
        client.send_message_batch().queue_url(&url).set_entries(Some(vec![])).send().await,
        SendMessageBatchError::EmptyBatchRequest(_)
    );
    let eleven: Vec<_> = (0..11).map(|i| batch_entry(&format!("e{i}"), "b")).collect();
    expect_service_err!(
        "SendMessageBatch with 11 entries",
        client.send_message_batch().queue_url(&url).set_entries(Some(eleven)).send().await,
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
    assert_eq!(counts(&client, &url).await, (0, 0, 0), "rejected batches must not enqueue");

    expect_service_err!(
        "DeleteMessageBatch with 0 entries",
        client.delete_message_batch().queue_url(&url).set_entries(Some(vec![])).send().await,
        DeleteMessageBatchError::EmptyBatchRequest(_)
    );
    let eleven: Vec<_> = (0..11).map(|i| delete_entry(&format!("e{i}"), &format!("h{i}"))).collect();
    expect_service_err!(
        "DeleteMessageBatch with 11 entries",
        client.delete_message_batch().queue_url(&url).set_entries(Some(eleven)).send().await,
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
