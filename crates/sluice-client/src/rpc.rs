//! Request-reply over SQS: the requester owns a temporary reply queue; each request carries the
//! reply queue's URL (`ReplyTo`) and a fresh correlation id (`CorrelationId`) as message
//! attributes; the responder sends its answer to `ReplyTo` with the same `CorrelationId`
//! ([`reply`]). Replies that arrive after their request timed out are deleted and dropped.
//!
//! The reply queue is deleted by [`Requester::close`]; a requester that dies leaves it behind
//! (give reply queues a recognizable prefix and clean them up, or use a short retention period).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::types::{Message, QueueAttributeName};
use aws_sdk_sqs::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::client::{get_string_attribute, string_attribute};
use crate::consumer::delete_batch;
use crate::error::{Error, Result};

/// Message attribute holding the correlation id.
pub const CORRELATION_ID: &str = "CorrelationId";
/// Message attribute holding the reply queue URL.
pub const REPLY_TO: &str = "ReplyTo";

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Message>>>>;

/// Sends requests and waits for correlated replies on a temporary queue.
pub struct Requester {
    client: Client,
    request_url: String,
    reply_url: String,
    pending: Pending,
    stop: watch::Sender<bool>,
    listener: JoinHandle<()>,
}

fn random_hex(bytes: usize) -> String {
    (0..bytes).map(|_| format!("{:02x}", fastrand::u8(..))).collect()
}

impl Requester {
    /// Creates a temporary reply queue named `<prefix>-<random>` and starts listening on it.
    pub async fn new(client: Client, request_url: impl Into<String>, reply_queue_prefix: &str) -> Result<Self> {
        let name = format!("{reply_queue_prefix}-{}", random_hex(8));
        let reply_url =
            crate::client::create_queue(&client, &name, &[(QueueAttributeName::MessageRetentionPeriod, "3600")])
                .await?;
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (stop, stop_rx) = watch::channel(false);
        let listener = tokio::spawn(listen(client.clone(), reply_url.clone(), pending.clone(), stop_rx));
        Ok(Requester { client, request_url: request_url.into(), reply_url, pending, stop, listener })
    }

    /// The temporary reply queue.
    pub fn reply_queue_url(&self) -> &str {
        &self.reply_url
    }

    /// Sends `body` and waits up to `timeout` for the reply.
    pub async fn request(&self, body: impl Into<String>, timeout: Duration) -> Result<Message> {
        let id = random_hex(16);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id.clone(), tx);
        let sent = self
            .client
            .send_message()
            .queue_url(&self.request_url)
            .message_body(body)
            .message_attributes(CORRELATION_ID, string_attribute(&id))
            .message_attributes(REPLY_TO, string_attribute(&self.reply_url))
            .send()
            .await;
        if let Err(e) = sent {
            self.pending.lock().unwrap().remove(&id);
            return Err(Error::sqs("SendMessage", e));
        }
        let r = tokio::time::timeout(timeout, rx).await;
        self.pending.lock().unwrap().remove(&id);
        match r {
            Ok(Ok(m)) => Ok(m),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Sends `req` as JSON and parses the reply body as JSON.
    pub async fn request_json<Req: Serialize + ?Sized, Resp: DeserializeOwned>(
        &self,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp> {
        let m = self.request(serde_json::to_string(req)?, timeout).await?;
        Ok(serde_json::from_str(m.body().unwrap_or_default())?)
    }

    /// Stops listening and deletes the reply queue.
    pub async fn close(self) -> Result<()> {
        let _ = self.stop.send(true);
        let _ = self.listener.await;
        self.client.delete_queue().queue_url(&self.reply_url).send().await.map_err(|e| Error::sqs("DeleteQueue", e))?;
        Ok(())
    }
}

async fn listen(client: Client, url: String, pending: Pending, mut stop: watch::Receiver<bool>) {
    loop {
        let r = tokio::select! {
            _ = stop.changed() => return,
            r = client.receive_message().queue_url(&url).max_number_of_messages(10)
                .wait_time_seconds(20).message_attribute_names("All").send() => r,
        };
        let out = match r {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %Error::sqs("ReceiveMessage", e), "reply queue receive failed");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut receipts = Vec::new();
        for m in out.messages() {
            if let Some(r) = m.receipt_handle() {
                receipts.push(r.to_string());
            }
            let Some(id) = get_string_attribute(m.message_attributes(), CORRELATION_ID) else { continue };
            let waiter = pending.lock().unwrap().remove(id);
            if let Some(tx) = waiter {
                let _ = tx.send(m.clone());
            }
        }
        delete_batch(&client, &url, &receipts).await;
    }
}

/// Answers `request` (a message sent by a [`Requester`]): sends `body` to its `ReplyTo` queue with
/// its `CorrelationId`. Errors with [`Error::Config`] if the request has no such attributes.
pub async fn reply(client: &Client, request: &Message, body: impl Into<String>) -> Result<()> {
    let attrs = request.message_attributes();
    let (Some(reply_to), Some(id)) =
        (get_string_attribute(attrs, REPLY_TO), get_string_attribute(attrs, CORRELATION_ID))
    else {
        return Err(Error::Config("the request has no ReplyTo / CorrelationId attributes".into()));
    };
    client
        .send_message()
        .queue_url(reply_to)
        .message_body(body)
        .message_attributes(CORRELATION_ID, string_attribute(id))
        .send()
        .await
        .map_err(|e| Error::sqs("SendMessage", e))?;
    Ok(())
}
