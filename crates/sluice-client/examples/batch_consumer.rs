//! Handles batches of up to 50 messages and reports per-message failures.
//!
//! `cargo run -p sluice-client --example batch_consumer` (queue `operation-records`).

use sluice_client::{plain_http_client, BatchConsumer, BatchOutcome, ConsumerConfig};

#[tokio::main]
async fn main() -> sluice_client::Result<()> {
    let endpoint = std::env::var("SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9324".into());
    let client = plain_http_client(&endpoint);
    let url = sluice_client::client::queue_url(&client, "operation-records").await?;
    let config = ConsumerConfig { workers: 2, batch_size: 50, ..Default::default() };
    let stats = BatchConsumer::with_config(client, url, config)
        .run(
            |batch| async move {
                let mut outcome = BatchOutcome::success();
                for m in &batch {
                    // Anything that is not JSON fails; it comes back after its visibility
                    // timeout and ends in the dead-letter queue after maxReceiveCount tries.
                    if serde_json::from_str::<serde_json::Value>(m.body().unwrap_or_default()).is_err() {
                        outcome.fail(m.message_id().unwrap_or_default());
                    }
                }
                println!("handled a batch of {}", batch.len());
                outcome
            },
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
        )
        .await;
    eprintln!("{stats:?}");
    Ok(())
}
