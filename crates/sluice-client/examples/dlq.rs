//! Peeks at a dead-letter queue and replays it to its source queue.
//!
//! `cargo run -p sluice-client --example dlq -- DLQ_NAME SOURCE_NAME`

use sluice_client::dlq::{self, ReplayOptions};
use sluice_client::plain_http_client;

#[tokio::main]
async fn main() -> sluice_client::Result<()> {
    let endpoint = std::env::var("SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9324".into());
    let mut args = std::env::args().skip(1);
    let (Some(dlq_name), Some(source_name)) = (args.next(), args.next()) else {
        eprintln!("usage: dlq DLQ_NAME SOURCE_NAME");
        std::process::exit(2);
    };
    let client = plain_http_client(&endpoint);
    let dlq_url = sluice_client::client::queue_url(&client, &dlq_name).await?;
    let source_url = sluice_client::client::queue_url(&client, &source_name).await?;
    // Peeking is a receive + immediate visibility reset: it bumps the receive count.
    for m in dlq::peek(&client, &dlq_url, 10).await? {
        println!("{} {}", m.message_id().unwrap_or("?"), m.body().unwrap_or_default());
    }
    let report = dlq::replay(&client, &dlq_url, &source_url, &ReplayOptions::default()).await?;
    println!("{report:?}");
    Ok(())
}
