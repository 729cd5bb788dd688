//! Messages: send / receive / delete with attributes and MD5s, receive limits and visibility
//! overrides, ChangeMessageVisibility, long polling.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityError;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName as Sys, QueueAttributeName as QA};

use crate::{counts, send_body};
use sluice_testkit::{
    binary_attr, create_queue, md5_hex, md5_of_attributes, number_attr, queue_name, receive_exactly, receive_now,
    string_attr, sys_attr, TestServer,
};

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
        MessageAttributeValue::builder().data_type("String.custom").string_value("x").build().unwrap(),
    );

    let sent = client
        .send_message()
        .queue_url(&url)
        .message_body(body)
        .set_message_attributes(Some(attrs.clone()))
        .send()
        .await
        .expect("SendMessage with attributes");
    let msg_id = sent.message_id().expect("SendMessage MessageId").to_string();
    assert_eq!(sent.md5_of_message_body(), Some(md5_hex(body.as_bytes()).as_str()), "SendMessage MD5OfMessageBody");
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
    assert_eq!(m.md5_of_body(), Some(md5_hex(body.as_bytes()).as_str()), "received MD5OfBody");
    let got_attrs = m.message_attributes().cloned().unwrap_or_default();
    assert_eq!(got_attrs, attrs, "received MessageAttributes (requested All)");
    assert_eq!(
        m.md5_of_message_attributes(),
        Some(md5_of_attributes(&attrs).as_str()),
        "received MD5OfMessageAttributes"
    );
    assert!(m.receipt_handle().is_some_and(|h| !h.is_empty()), "ReceiptHandle");
    assert_eq!(sys_attr(m, Sys::ApproximateReceiveCount), Some("1"), "ApproximateReceiveCount: {:?}", m.attributes());
    let sent_ts: u64 =
        sys_attr(m, Sys::SentTimestamp).expect("SentTimestamp").parse().expect("SentTimestamp is epoch millis");
    let first_ts: u64 = sys_attr(m, Sys::ApproximateFirstReceiveTimestamp)
        .expect("ApproximateFirstReceiveTimestamp")
        .parse()
        .expect("ApproximateFirstReceiveTimestamp is epoch millis");
    assert!(sent_ts > 1_600_000_000_000 && first_ts >= sent_ts, "SentTimestamp {sent_ts}, first receive {first_ts}");
    assert!(sys_attr(m, Sys::SenderId).is_some(), "SenderId missing: {:?}", m.attributes());

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
    let m2 = only.messages().first().expect("message visible again after ChangeMessageVisibility 0");
    let names: Vec<&String> = m2.message_attributes().map(|a| a.keys().collect()).unwrap_or_default();
    assert_eq!(names, vec!["num"], "ReceiveMessage(MessageAttributeNames=[num]) returned {names:?}");
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
    assert!(receive_now(&client, &url, 10).await.is_empty(), "message still receivable after DeleteMessage");
    assert_eq!(counts(&client, &url).await, (0, 0, 0), "counts after delete");
    assert!(before.elapsed() < Duration::from_secs(10));
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
    let a: HashSet<_> = first.iter().map(|m| m.message_id().unwrap().to_string()).collect();
    let b: HashSet<_> = again.iter().map(|m| m.message_id().unwrap().to_string()).collect();
    assert_eq!(a, b);
    for m in &again {
        assert_eq!(sys_attr(m, Sys::ApproximateReceiveCount), Some("2"), "second receive count of {:?}", m.body());
        assert_ne!(
            m.receipt_handle(),
            first.iter().find(|f| f.message_id() == m.message_id()).unwrap().receipt_handle(),
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
    assert!(receive_now(&client, &url, 10).await.is_empty(), "message visible while its 120 s visibility timeout runs");
    client
        .change_message_visibility()
        .queue_url(&url)
        .receipt_handle(got[0].receipt_handle().unwrap())
        .visibility_timeout(0)
        .send()
        .await
        .expect("ChangeMessageVisibility(0)");
    let again = receive_now(&client, &url, 10).await;
    assert_eq!(again.len(), 1, "message not receivable at once after ChangeMessageVisibility(0)");
    assert_eq!(again[0].message_id(), Some(id.as_str()));
    assert_eq!(sys_attr(&again[0], Sys::ApproximateReceiveCount), Some("2"));

    // A garbage handle is rejected.
    expect_service_err!(
        "ChangeMessageVisibility with garbage handle",
        client.change_message_visibility().queue_url(&url).receipt_handle("garbage").visibility_timeout(5).send().await,
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
    assert_eq!(out.messages().len(), 1, "long poll returned {:?} after {elapsed:?}", out.messages());
    assert_eq!(out.messages()[0].message_id(), Some(sent_id.as_str()));
    assert!(elapsed < Duration::from_secs(5), "long poll returned only after {elapsed:?} (message sent after ~1 s)");
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
    let out = client.receive_message().queue_url(&url).send().await.expect("ReceiveMessage (queue default wait)");
    let elapsed = start.elapsed();
    assert!(out.messages().is_empty());
    assert!(
        elapsed >= Duration::from_millis(1800) && elapsed < Duration::from_secs(6),
        "receive on queue with ReceiveMessageWaitTimeSeconds=2 took {elapsed:?}"
    );
}
