//! Server configuration and lifecycle (the real binary): the config file, environment
//! variables, SIGTERM with long polls waiting, `--data-dir :memory:`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use aws_sdk_sqs::operation::get_queue_url::GetQueueUrlError;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, QueueAttributeName as QA, SendMessageBatchRequestEntry};

use crate::{counts, queue_attrs, queue_url_by_name, SLUICE_BIN};
use sluice_testkit::{
    create_queue, external_endpoint, md5_hex, queue_name, receive_exactly, receive_now, skip_if_external, TestServer,
};

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
        .map(|i| {
            SendMessageBatchRequestEntry::builder().id(format!("e{i}")).message_body(format!("m-{i}")).build().unwrap()
        })
        .collect();
    let batch =
        client.send_message_batch().queue_url(&url).set_entries(Some(entries)).send().await.expect("SendMessageBatch");
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
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(m.receipt_handle().unwrap())
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .delete_message_batch()
            .queue_url(&url)
            .set_entries(Some(entries))
            .send()
            .await
            .expect("DeleteMessageBatch");
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
        client
            .send_message()
            .queue_url(&fifo_url)
            .message_body("once")
            .message_group_id("g")
            .message_deduplication_id("d-1")
            .send()
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
