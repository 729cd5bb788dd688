//! A burst of operation records with producer-made ObjectId-like ids, plus a share of
//! duplicates (a retrying producer), sent as fast as possible. Used by scripts/demo_drain.sh.
//!
//! `cargo run -p sluice-client --example burst_producer -- ENDPOINT QUEUE COUNT [DUP_PERCENT]`
//! (COUNT 0 only creates the queue).

use std::time::Instant;

use sluice_client::{object_id_hex, plain_http_client, OutgoingMessage, Producer};

#[tokio::main]
async fn main() -> sluice_client::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: burst_producer ENDPOINT QUEUE COUNT [DUP_PERCENT]");
        std::process::exit(2);
    }
    let (endpoint, queue) = (&args[0], &args[1]);
    let count: usize = args[2].parse().expect("COUNT");
    let dup_pct: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(5);
    let client = plain_http_client(endpoint);
    let url = sluice_client::client::create_queue(&client, queue, &[]).await?;
    if count == 0 {
        println!("{url}");
        return Ok(());
    }
    let mut bodies: Vec<String> = (0..count)
        .map(|i| {
            serde_json::json!({
                "_id": object_id_hex(),
                "user": format!("user-{}", i % 997),
                "op": (["login", "update", "delete", "export"][i % 4]),
                "seq": i,
            })
            .to_string()
        })
        .collect();
    let dups = count * dup_pct / 100;
    for i in 0..dups {
        let copy = bodies[(i * 7919) % count].clone();
        bodies.push(copy);
    }
    fastrand::shuffle(&mut bodies[count / 2..]);
    let total = bodies.len();
    let producer = Producer::new(client, url);
    let t0 = Instant::now();
    let mut tickets = Vec::with_capacity(total);
    for b in bodies {
        tickets.push(producer.enqueue(OutgoingMessage::new(b)).await?);
    }
    let mut failed = 0;
    for t in tickets {
        if t.wait().await.is_err() {
            failed += 1;
        }
    }
    let requests = producer.stats().requests.load(std::sync::atomic::Ordering::Relaxed);
    producer.close().await;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "producer: {total} messages ({count} records + {dups} duplicates) in {secs:.1}s = {:.0} msg/s, \
         {requests} SendMessageBatch requests, {failed} failed",
        total as f64 / secs
    );
    Ok(())
}
