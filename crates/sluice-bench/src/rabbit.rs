//! The RabbitMQ peer for the pipeline scenario (feature `rabbitmq`): a durable queue, persistent
//! messages (delivery_mode 2), publisher confirms (each producer publishes --batch messages and
//! waits for their confirms, like an SQS SendMessageBatch waiting for fsync), consumers with
//! manual acks and a prefetch of 100. One AMQP connection per worker.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;

use crate::client::Result;
use crate::run::{drive, ms, now_us, percentiles, round, Run};
use crate::{body, body_ts, emit, futures_join, unique, Common};

async fn channel(uri: &str) -> Result<(Connection, lapin::Channel)> {
    let conn = Connection::connect(uri, ConnectionProperties::default()).await?;
    let ch = conn.create_channel().await?;
    Ok((conn, ch))
}

pub async fn pipeline(a: &Common) -> Result<()> {
    let uri = a.endpoint.clone();
    let label = a.label();
    let queue = unique("pipe");
    let (admin_conn, admin) = channel(&uri).await?;
    admin
        .queue_declare(&queue, QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
        .await?;
    let (np, nc) = a.split();
    let run = Run::new();
    let per_producer_rate = if a.rate > 0.0 { a.rate / np as f64 } else { 0.0 };
    let mut producers = Vec::new();
    for _ in 0..np {
        let (run, uri, queue, batch, size) = (run.clone(), uri.clone(), queue.clone(), a.batch.max(1), a.body_size);
        producers.push(tokio::spawn(async move {
            let r: Result<()> = async {
                let (_conn, ch) = channel(&uri).await?;
                ch.confirm_select(ConfirmSelectOptions::default()).await?;
                let props = BasicProperties::default().with_delivery_mode(2);
                let mut next = tokio::time::Instant::now();
                while !run.stopped() {
                    if per_producer_rate > 0.0 {
                        tokio::time::sleep_until(next).await;
                        next += Duration::from_secs_f64(batch as f64 / per_producer_rate);
                    }
                    let b = body(size, now_us());
                    let mut confirms = Vec::with_capacity(batch);
                    for _ in 0..batch {
                        confirms.push(
                            ch.basic_publish("", &queue, BasicPublishOptions::default(), b.as_bytes(), props.clone())
                                .await?,
                        );
                    }
                    let mut ok = 0;
                    for c in confirms {
                        if c.await?.is_ack() {
                            ok += 1;
                        }
                    }
                    run.sent.fetch_add(ok, Relaxed);
                    run.reqs.fetch_add(1, Relaxed);
                }
                Ok(())
            }
            .await;
            if let Err(e) = r {
                run.error("publish", &e);
            }
        }));
    }
    let mut consumers = Vec::new();
    for i in 0..nc {
        let (run, uri, queue) = (run.clone(), uri.clone(), queue.clone());
        consumers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let r: Result<()> = async {
                let (_conn, ch) = channel(&uri).await?;
                ch.basic_qos(100, BasicQosOptions::default()).await?;
                let mut consumer = ch
                    .basic_consume(&queue, &format!("c{i}"), BasicConsumeOptions::default(), FieldTable::default())
                    .await?;
                while !run.stopped() {
                    let d = tokio::select! {
                        d = consumer.next() => d,
                        _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                    };
                    let Some(d) = d else { break };
                    let d = d?;
                    if run.measuring() {
                        if let Some(ts) = std::str::from_utf8(&d.data).ok().and_then(body_ts) {
                            lat.push(now_us().saturating_sub(ts).min(u32::MAX as u64) as u32);
                        }
                    }
                    d.ack(BasicAckOptions::default()).await?;
                    run.recv.fetch_add(1, Relaxed);
                    run.reqs.fetch_add(1, Relaxed);
                }
                Ok(())
            }
            .await;
            if let Err(e) = r {
                run.error("consume", &e);
            }
            lat
        }));
    }
    let w = drive(&run, &format!("{label} pipeline"), a.warmup(), a.duration(), |_| false).await;
    futures_join(producers).await;
    let lat: Vec<u32> = futures_join(consumers).await.into_iter().flatten().collect();
    let (p50, p99, p999) = percentiles(lat);
    let left = admin
        .queue_declare(
            &queue,
            QueueDeclareOptions { durable: true, passive: true, ..Default::default() },
            FieldTable::default(),
        )
        .await
        .map(|q| q.message_count())
        .ok();
    if !a.keep {
        let _ = admin.queue_delete(&queue, QueueDeleteOptions::default()).await;
    }
    let _ = admin_conn.close(200, "bye").await;
    emit(json!({
        "scenario": "pipeline", "target": label, "msgs_per_s": round(w.rate(w.d.recv)), "sent_msgs_per_s": round(w.rate(w.d.sent)),
        "requests_per_s": round(w.rate(w.d.reqs)), "p50_ms": ms(p50), "p99_ms": ms(p99), "p999_ms": ms(p999),
        "latency": "publish->deliver", "errors": w.d.errs, "left_in_queue": left, "duration_s": round(w.secs),
        "producers": np, "consumers": nc, "batch": a.batch, "body_size": a.body_size, "rate_limit": a.rate,
        "durability": "durable queue, persistent messages, publisher confirms, manual acks",
    }));
    Ok(())
}
