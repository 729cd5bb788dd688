//! Queues: create, GetQueueUrl, ListQueues (prefix, pagination), delete; attributes and the
//! Approximate* counts.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::QueueAttributeName as QA;

use crate::{counts, queue_attrs, send_body};
use sluice_testkit::{create_queue, queue_name, receive_exactly, receive_now, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_create_get_url_list_delete() {
    let server = TestServer::start();
    let client = server.client();
    let name = queue_name("life");

    let url = create_queue(&client, &name).await;
    if let Some(expected) = server.expected_queue_url(&name) {
        assert_eq!(url, expected, "CreateQueue QueueUrl");
    } else {
        assert!(url.ends_with(&format!("/{name}")), "CreateQueue QueueUrl {url}");
    }

    // Creating again with identical (here: no) attributes is idempotent.
    let again = create_queue(&client, &name).await;
    assert_eq!(again, url, "second CreateQueue with same attributes must return the same URL");

    let got = client.get_queue_url().queue_name(&name).send().await.expect("GetQueueUrl");
    assert_eq!(got.queue_url(), Some(url.as_str()), "GetQueueUrl");

    // ListQueues with a prefix: exactly our queues, in any order.
    let prefix = queue_name("lst");
    let mut mine = Vec::new();
    for i in 0..5 {
        mine.push(create_queue(&client, &format!("{prefix}-{i}")).await);
    }
    let other = create_queue(&client, &queue_name("zzother")).await;
    let listed = client.list_queues().queue_name_prefix(&prefix).send().await.expect("ListQueues(prefix)");
    let listed: HashSet<String> = listed.queue_urls().iter().cloned().collect();
    assert_eq!(listed, mine.iter().cloned().collect::<HashSet<_>>(), "ListQueues(QueueNamePrefix={prefix})");
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
        assert!(pages <= 10, "ListQueues pagination does not terminate: {paged:?}");
        let out = client
            .list_queues()
            .queue_name_prefix(&prefix)
            .max_results(2)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ListQueues(prefix, MaxResults=2, NextToken={token:?}): {e:?}"));
        assert!(out.queue_urls().len() <= 2, "page {pages} has {} > MaxResults=2 URLs", out.queue_urls().len());
        paged.extend(out.queue_urls().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    assert_eq!(paged.len(), 5, "paginated ListQueues returned {paged:?}");
    assert_eq!(paged.iter().cloned().collect::<HashSet<_>>(), mine.iter().cloned().collect::<HashSet<_>>());
    assert!(pages >= 3, "5 queues with MaxResults=2 need 3 pages, got {pages}");

    // Delete: gone from GetQueueUrl and ListQueues.
    client.delete_queue().queue_url(&mine[0]).send().await.expect("DeleteQueue");
    let gone = format!("{prefix}-0");
    expect_service_err!(
        "GetQueueUrl of deleted queue",
        client.get_queue_url().queue_name(&gone).send().await,
        GetQueueUrlError::QueueDoesNotExist(_)
    );
    let listed = client.list_queues().queue_name_prefix(&prefix).send().await.expect("ListQueues after delete");
    assert_eq!(listed.queue_urls().len(), 4, "ListQueues after delete: {:?}", listed.queue_urls());
    assert!(!listed.queue_urls().contains(&mine[0]));
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
        assert!(a.contains_key(&k), "GetQueueAttributes(All) lacks {k:?}: {a:?}");
    }
    assert_eq!(a[&QA::VisibilityTimeout], "45");
    assert_eq!(a[&QA::DelaySeconds], "0");
    assert_eq!(a[&QA::MessageRetentionPeriod], "345600");
    assert_eq!(a[&QA::ReceiveMessageWaitTimeSeconds], "0");
    let arn = &a[&QA::QueueArn];
    assert!(arn.starts_with("arn:aws:sqs:") && arn.ends_with(&format!(":{name}")), "QueueArn {arn}");
    if !server.is_external() {
        assert_eq!(arn, &format!("arn:aws:sqs:us-east-1:000000000000:{name}"));
    }
    let created: u64 = a[&QA::CreatedTimestamp].parse().expect("CreatedTimestamp is epoch seconds");
    assert!(created > 1_600_000_000 && created < 10_000_000_000, "CreatedTimestamp {created} should be epoch seconds");
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
    assert_eq!(keys, HashSet::from([QA::VisibilityTimeout, QA::ApproximateNumberOfMessages]));

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
    assert_eq!(counts(&client, &url).await, (2, 0, 1), "after a delayed send");
    let visible = receive_exactly(&client, &url, 2, 60, Duration::from_secs(10)).await;
    assert!(visible.iter().all(|m| m.body() != Some("delayed")), "delayed message delivered early");
    assert!(receive_now(&client, &url, 10).await.is_empty(), "delayed message delivered early");
}
