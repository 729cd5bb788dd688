//! FIFO order under concurrent producers and consumers.

use std::collections::HashMap;

use aws_sdk_sqs::types::QueueAttributeName as QA;

use sluice_testkit::{queue_name, TestServer};

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
                    client
                        .delete_message()
                        .queue_url(&url)
                        .receipt_handle(m.receipt_handle().unwrap())
                        .send()
                        .await
                        .expect("delete");
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
