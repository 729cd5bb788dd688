//! Sends operation records as JSON with an auto-batching producer.
//!
//! `cargo run -p sluice-client --example producer -- [COUNT]` against a sluice at
//! $SQS_ENDPOINT (default http://127.0.0.1:9324); queue `operation-records`.

use std::time::Instant;

use serde::Serialize;
use sluice_client::{object_id_hex, plain_http_client, Producer};

#[derive(Serialize)]
struct OperationRecord {
    /// Made by the producer (ObjectId-like), so duplicates can be dropped at the database.
    _id: String,
    user: String,
    op: &'static str,
}

#[tokio::main]
async fn main() -> sluice_client::Result<()> {
    let endpoint = std::env::var("SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9324".into());
    let count: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let client = plain_http_client(&endpoint);
    let url = sluice_client::client::create_queue(&client, "operation-records", &[]).await?;
    let producer = Producer::new(client, url);
    let t0 = Instant::now();
    let mut tickets = Vec::with_capacity(count);
    for i in 0..count {
        let rec = OperationRecord { _id: object_id_hex(), user: format!("user-{}", i % 100), op: "login" };
        tickets.push(producer.enqueue_json(&rec).await?);
    }
    for t in tickets {
        t.wait().await?;
    }
    let requests = producer.stats().requests.load(std::sync::atomic::Ordering::Relaxed);
    producer.close().await;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "sent {count} records in {secs:.2}s ({:.0}/s) with {requests} SendMessageBatch requests",
        count as f64 / secs
    );
    Ok(())
}
