//! The library against a real sluice server.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::Client;
use serde::{Deserialize, Serialize};
use sluice_client::dlq::{self, ReplayOptions, ReplayReport};
use sluice_client::rpc::{self, Requester};
use sluice_client::{
    BatchConsumer, BatchOutcome, Consumer, ConsumerConfig, Error, OutgoingMessage, Producer, ProducerConfig,
};
use support::{create_queue, depth, TestServer};
use tokio::sync::oneshot;

async fn receive_all(client: &Client, url: &str, n: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        let out = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .visibility_timeout(60)
            .send()
            .await
            .unwrap();
        got.extend(out.messages().iter().cloned());
    }
    got
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Op {
    _id: String,
    user: String,
    seq: u32,
}

#[tokio::test]
async fn producer_batches_typed_json() {
    let server = TestServer::start();
    let client = support::client(&server);
    let url = create_queue(&client, "prod").await;
    let producer = Producer::with_config(
        client.clone(),
        &url,
        ProducerConfig { linger: Duration::from_millis(20), ..Default::default() },
    );
    let mut tickets = Vec::new();
    let mut sent = Vec::new();
    for i in 0..95 {
        let op = Op { _id: sluice_client::object_id_hex(), user: format!("u{i}"), seq: i };
        tickets.push(producer.enqueue_json(&op).await.unwrap());
        sent.push(op);
    }
    let mut ids = HashSet::new();
    for t in tickets {
        ids.insert(t.wait().await.unwrap().message_id);
    }
    assert_eq!(ids.len(), 95);
    let requests = producer.stats().requests.load(Ordering::Relaxed);
    assert!(requests <= 15, "95 messages took {requests} SendMessageBatch requests (want ~10)");
    producer.close().await;

    let got = receive_all(&client, &url, 95).await;
    let mut ops: Vec<Op> = got.iter().map(|m| serde_json::from_str(m.body().unwrap()).unwrap()).collect();
    ops.sort_by_key(|o| o.seq);
    assert_eq!(ops, sent);
}

#[tokio::test]
async fn producer_respects_the_request_size_limit_and_delays() {
    let server = TestServer::start();
    let client = support::client(&server);
    let url = create_queue(&client, "big").await;
    let producer = Producer::with_config(
        client.clone(),
        &url,
        ProducerConfig { linger: Duration::from_millis(100), ..Default::default() },
    );
    // 5 x 300 KB: at most 3 fit in one 1 MiB request.
    let big = "x".repeat(300 * 1024);
    let mut tickets = Vec::new();
    for _ in 0..5 {
        tickets.push(producer.enqueue(OutgoingMessage::new(big.clone())).await.unwrap());
    }
    for t in tickets {
        t.wait().await.unwrap();
    }
    assert!(producer.stats().requests.load(Ordering::Relaxed) >= 2);
    let too_big = producer.send(OutgoingMessage::new("y".repeat(1_048_577))).await;
    assert!(matches!(too_big, Err(Error::TooLarge { .. })), "{too_big:?}");
    assert_eq!(receive_all(&client, &url, 5).await.len(), 5);

    // A delayed message is not visible at once.
    producer.send(OutgoingMessage::new("later").delay(Duration::from_secs(2))).await.unwrap();
    let now = client.receive_message().queue_url(&url).wait_time_seconds(0).send().await.unwrap();
    assert!(now.messages().is_empty());
    let later = receive_all(&client, &url, 1).await;
    assert_eq!(later[0].body(), Some("later"));
    producer.close().await;
}

#[tokio::test]
async fn consumer_workers_heartbeat_and_failures() {
    let server = TestServer::start();
    let client = support::client(&server);
    let url = create_queue(&client, "cons").await;
    let producer = Producer::new(client.clone(), &url);
    for i in 0..20 {
        let body = match i {
            0 => "slow".to_string(),
            1..=3 => format!("fail-once-{i}"),
            _ => format!("ok-{i}"),
        };
        producer.enqueue(OutgoingMessage::new(body)).await.unwrap();
    }
    producer.close().await;

    let calls: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let stop_tx = Arc::new(Mutex::new(Some(stop_tx)));
    let config = ConsumerConfig {
        workers: 3,
        wait_time_seconds: 1,
        visibility_timeout: 2, // the slow message takes 4 s: only the heartbeat keeps it hidden
        heartbeat_interval: Some(Duration::from_millis(500)),
        failure_visibility: Some(0),
        ..Default::default()
    };
    let (c2, d2, s2) = (calls.clone(), done.clone(), stop_tx.clone());
    let stats = Consumer::with_config(client.clone(), &url, config)
        .run(
            move |m| {
                let (calls, done, stop) = (c2.clone(), d2.clone(), s2.clone());
                async move {
                    let body = m.body().unwrap_or_default().to_string();
                    let n = {
                        let mut c = calls.lock().unwrap();
                        let e = c.entry(body.clone()).or_default();
                        *e += 1;
                        *e
                    };
                    if body == "slow" {
                        tokio::time::sleep(Duration::from_secs(4)).await;
                    }
                    if body.starts_with("fail-once") && n == 1 {
                        return Err("first attempt fails".into());
                    }
                    if done.fetch_add(1, Ordering::SeqCst) + 1 == 20 {
                        if let Some(tx) = stop.lock().unwrap().take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(())
                }
            },
            async {
                let _ = tokio::time::timeout(Duration::from_secs(30), stop_rx).await;
            },
        )
        .await;
    assert_eq!(done.load(Ordering::SeqCst), 20, "stats {stats:?}");
    {
        let calls = calls.lock().unwrap();
        assert_eq!(calls["slow"], 1, "the heartbeat must keep the slow message from being redelivered");
        for i in 1..=3 {
            assert_eq!(calls[&format!("fail-once-{i}")], 2);
        }
    }
    assert_eq!(stats.succeeded, 20);
    assert_eq!(stats.failed, 3);
    assert!(stats.extended >= 1, "{stats:?}");
    assert_eq!(stats.deleted, 20, "{stats:?}");
    assert_eq!(depth(&client, &url).await, 0);
}

#[tokio::test]
async fn consumer_shutdown_releases_what_it_holds() {
    let server = TestServer::start();
    let client = support::client(&server);
    let url = create_queue(&client, "shut").await;
    let producer = Producer::new(client.clone(), &url);
    for i in 0..10 {
        producer.enqueue(OutgoingMessage::new(format!("m{i}"))).await.unwrap();
    }
    producer.close().await;
    let config = ConsumerConfig { workers: 1, wait_time_seconds: 1, visibility_timeout: 60, ..Default::default() };
    let stats = Consumer::with_config(client.clone(), &url, config)
        .run(
            |_m| async {
                tokio::time::sleep(Duration::from_millis(700)).await;
                Ok(())
            },
            tokio::time::sleep(Duration::from_millis(1500)),
        )
        .await;
    assert!(stats.succeeded >= 1 && stats.succeeded < 10, "{stats:?}");
    assert_eq!(stats.succeeded + stats.released, 10, "{stats:?}");
    // Released messages are visible at once (the visibility timeout was 60 s).
    let rest = receive_all(&client, &url, 10 - stats.succeeded as usize).await;
    assert_eq!(rest.len() as u64, 10 - stats.succeeded);
}

#[tokio::test]
async fn batch_consumer_reports_per_message_failures() {
    let server = TestServer::start();
    let client = support::client(&server);
    let url = create_queue(&client, "batch").await;
    let producer = Producer::new(client.clone(), &url);
    for i in 0..30 {
        let body = if i % 10 == 0 { format!("bad-{i}") } else { format!("good-{i}") };
        producer.enqueue(OutgoingMessage::new(body)).await.unwrap();
    }
    producer.close().await;
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let sizes: Arc<Mutex<Vec<usize>>> = Arc::default();
    let config = ConsumerConfig {
        workers: 2,
        wait_time_seconds: 1,
        batch_size: 20,
        batch_linger: Duration::from_millis(200),
        failure_visibility: Some(0),
        ..Default::default()
    };
    let (s2, z2) = (seen.clone(), sizes.clone());
    let seen3 = seen.clone();
    let stats = BatchConsumer::with_config(client.clone(), &url, config)
        .run(
            move |batch| {
                let (seen, sizes) = (s2.clone(), z2.clone());
                async move {
                    sizes.lock().unwrap().push(batch.len());
                    let mut out = BatchOutcome::success();
                    let mut seen = seen.lock().unwrap();
                    for m in &batch {
                        let body = m.body().unwrap().to_string();
                        let n = seen.entry(body.clone()).or_default();
                        *n += 1;
                        if body.starts_with("bad") && *n == 1 {
                            out.fail(m.message_id().unwrap());
                        }
                    }
                    out
                }
            },
            async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    {
                        let s = seen3.lock().unwrap();
                        if s.len() == 30 && s.iter().filter(|(k, v)| k.starts_with("bad") && **v == 2).count() == 3 {
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        )
        .await;
    assert_eq!(stats.succeeded, 30, "{stats:?}");
    assert_eq!(stats.failed, 3, "{stats:?}");
    assert!(sizes.lock().unwrap().iter().all(|&n| (1..=20).contains(&n)));
    assert!(sizes.lock().unwrap().iter().any(|&n| n > 10), "batches combine receives: {:?}", sizes.lock().unwrap());
    assert_eq!(depth(&client, &url).await, 0);
}

#[tokio::test]
async fn dlq_peek_and_replay() {
    let server = TestServer::start();
    let client = support::client(&server);
    let dlq_url = create_queue(&client, "dlq").await;
    let dlq_arn = sluice_client::client::queue_arn(&client, &dlq_url).await.unwrap();
    // A move task needs the DLQ to be one: the source names it in its redrive policy.
    let policy = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"3"}}"#);
    let src_url = sluice_client::client::create_queue(
        &client,
        &support::unique("src").replace('_', "-"),
        &[(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy, policy.as_str())],
    )
    .await
    .unwrap();
    let producer = Producer::new(client.clone(), &dlq_url);
    for i in 0..15 {
        let attr = sluice_client::client::string_attribute(format!("v{i}"));
        producer.enqueue(OutgoingMessage::new(format!("dead-{i}")).attribute("k", attr)).await.unwrap();
    }
    producer.close().await;

    let peeked = dlq::peek(&client, &dlq_url, 10).await.unwrap();
    assert_eq!(peeked.len(), 10);
    // Still there and visible right away.
    let (visible, in_flight, _) = sluice_client::client::queue_depth(&client, &dlq_url).await.unwrap();
    assert_eq!((visible, in_flight), (15, 0));

    // Manual replay of 5 (receive + send + delete).
    let opts = ReplayOptions { force_manual: true, max_messages: Some(5), ..Default::default() };
    let report = dlq::replay(&client, &dlq_url, &src_url, &opts).await.unwrap();
    assert_eq!(report, ReplayReport::Manual { moved: 5, failed: 0, not_deleted: 0 });
    assert_eq!(depth(&client, &dlq_url).await, 10);

    // The rest: StartMessageMoveTask if the server has it, else the same fallback.
    let report = dlq::replay(&client, &dlq_url, &src_url, &ReplayOptions::default()).await.unwrap();
    eprintln!("replay: {report:?}");
    match report {
        ReplayReport::MoveTask { .. } => {
            let t0 = Instant::now();
            while depth(&client, &dlq_url).await > 0 {
                assert!(t0.elapsed() < Duration::from_secs(20), "move task did not empty the DLQ");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        ReplayReport::Manual { moved, failed, .. } => assert_eq!((moved, failed), (10, 0)),
    }
    assert_eq!(depth(&client, &dlq_url).await, 0);
    let moved = receive_all(&client, &src_url, 15).await;
    assert_eq!(moved.len(), 15);
    let bodies: HashSet<_> = moved.iter().map(|m| m.body().unwrap().to_string()).collect();
    assert_eq!(bodies.len(), 15);
}

#[tokio::test]
async fn request_reply_with_timeout() {
    let server = TestServer::start();
    let client = support::client(&server);
    let req_url = create_queue(&client, "req").await;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let responder_client = client.clone();
    let responder = tokio::spawn(
        Consumer::with_config(
            client.clone(),
            &req_url,
            ConsumerConfig { workers: 2, wait_time_seconds: 1, ..Default::default() },
        )
        .run(
            move |m| {
                let c = responder_client.clone();
                async move {
                    let body = m.body().unwrap_or_default().to_uppercase();
                    rpc::reply(&c, &m, body).await?;
                    Ok(())
                }
            },
            async {
                let _ = stop_rx.await;
            },
        ),
    );
    let requester = Requester::new(client.clone(), &req_url, "reply").await.unwrap();
    let (a, b) = tokio::join!(
        requester.request("hello", Duration::from_secs(10)),
        requester.request("world", Duration::from_secs(10))
    );
    assert_eq!(a.unwrap().body(), Some("HELLO"));
    assert_eq!(b.unwrap().body(), Some("WORLD"));
    let _ = stop_tx.send(());
    responder.await.unwrap();

    // Nobody answers now.
    let t0 = Instant::now();
    let r = requester.request("anyone?", Duration::from_secs(1)).await;
    assert!(matches!(r, Err(Error::Timeout(_))), "{r:?}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    let reply_url = requester.reply_queue_url().to_string();
    requester.close().await.unwrap();
    let gone = client.get_queue_attributes().queue_url(&reply_url).send().await;
    assert!(gone.is_err(), "the reply queue is deleted on close");
}
