//! Request-reply: a responder and a requester in one process.
//!
//! `cargo run -p sluice-client --example request_reply`

use std::time::Duration;

use sluice_client::rpc::{self, Requester};
use sluice_client::{plain_http_client, Consumer};

#[tokio::main]
async fn main() -> sluice_client::Result<()> {
    let endpoint = std::env::var("SQS_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9324".into());
    let client = plain_http_client(&endpoint);
    let requests = sluice_client::client::create_queue(&client, "rpc-requests", &[]).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let c = client.clone();
    let responder = tokio::spawn(Consumer::new(client.clone(), &requests).run(
        move |m| {
            let c = c.clone();
            async move {
                let n: u64 = m.body().unwrap_or_default().parse()?;
                rpc::reply(&c, &m, (n * n).to_string()).await?;
                Ok(())
            }
        },
        async {
            let _ = stopped.await;
        },
    ));
    let requester = Requester::new(client, &requests, "rpc-reply").await?;
    for n in 1..=5u64 {
        let answer = requester.request(n.to_string(), Duration::from_secs(5)).await?;
        println!("{n}^2 = {}", answer.body().unwrap_or_default());
    }
    requester.close().await?;
    let _ = stop.send(());
    let _ = responder.await;
    Ok(())
}
