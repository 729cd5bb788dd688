//! AWS errors as the SDK sees them (the modeled exception variants): missing queues,
//! conflicting attributes, bad receipt handles, PurgeQueueInProgress.

use std::time::{Duration, Instant};

use aws_sdk_sqs::operation::create_queue::CreateQueueError;
use aws_sdk_sqs::operation::delete_message::DeleteMessageError;
use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::operation::purge_queue::PurgeQueueError;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageError;
use aws_sdk_sqs::operation::send_message::SendMessageError;
use aws_sdk_sqs::types::QueueAttributeName as QA;

use crate::{counts, send_body};
use sluice_testkit::{create_queue, queue_name, receive_now, TestServer};

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
    assert_eq!(e.meta().code(), Some("AWS.SimpleQueueService.NonExistentQueue"));

    // Operations on a URL of a queue that does not exist.
    let url = create_queue(&client, &missing).await;
    client.delete_queue().queue_url(&url).send().await.expect("DeleteQueue");
    expect_service_err!(
        "SendMessage to deleted queue",
        client.send_message().queue_url(&url).message_body("x").send().await,
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
        client.create_queue().queue_name(&name).attributes(QA::VisibilityTimeout, "60").send().await,
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
        client.delete_message().queue_url(&url).receipt_handle("not-a-real-handle").send().await,
        DeleteMessageError::ReceiptHandleIsInvalid(_)
    );
    // The message is untouched.
    assert_eq!(counts(&client, &url).await, (1, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_then_purge_again_is_in_progress() {
    let server = TestServer::start();
    let client = server.client();
    let url = create_queue(&client, &queue_name("purge")).await;
    for i in 0..3 {
        send_body(&client, &url, &format!("p{i}")).await;
    }
    client.purge_queue().queue_url(&url).send().await.expect("first PurgeQueue");
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
        assert!(Instant::now() < deadline, "queue not empty 5 s after PurgeQueue: {c:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(receive_now(&client, &url, 10).await.is_empty(), "messages receivable after PurgeQueue");
}
