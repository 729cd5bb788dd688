//! Processes messages with 8 workers until Ctrl-C, then releases what it holds.
//!
//! `cargo run -p sluice-client --example consumer` (queue `operation-records`).

use std::time::Duration;

use sluice_client::{plain_http_client, Consumer, ConsumerConfig};

#[tokio::main]
async fn main() -> sluice_client::Result<()> {
    let endpoint = std::env::var("SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9324".into());
    let client = plain_http_client(&endpoint);
    let url = sluice_client::client::queue_url(&client, "operation-records").await?;
    let config = ConsumerConfig { workers: 8, visibility_timeout: 30, ..Default::default() };
    let stats = Consumer::with_config(client, url, config)
        .run(
            |m| async move {
                let v: serde_json::Value = serde_json::from_str(m.body().unwrap_or_default())?;
                // Pretend to work; the heartbeat keeps the message hidden however long this takes.
                tokio::time::sleep(Duration::from_millis(5)).await;
                println!("{}", v["_id"]);
                Ok(())
            },
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await;
    eprintln!("{stats:?}");
    Ok(())
}
