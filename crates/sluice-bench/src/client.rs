//! A minimal SQS client: one hyper http1 keep-alive connection, AWS JSON 1.0. Requests are
//! SigV4-signed ([`crate::sign`]) when credentials were given ([`set_credentials`]); otherwise
//! they carry a fixed dummy SigV4 header, for servers that do not verify (moto, sluice without
//! keys), at no signing cost.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use std::time::SystemTime;
use tokio::net::TcpStream;

use crate::sign::{Credentials, Signer};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, Error>;

const AUTH: &str =
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0";
const JSON: &str = "application/x-amz-json-1.0";

/// The credentials every connection signs with, set once from the command line before any
/// connection opens (a process-wide setting, like the endpoint; passing it through every scenario
/// would change every call site for nothing).
static CREDENTIALS: OnceLock<Credentials> = OnceLock::new();

/// Sign every request from now on with `creds`.
pub fn set_credentials(creds: Credentials) {
    let _ = CREDENTIALS.set(creds);
}

/// `http://host:port[/...]` -> `host:port`.
pub fn authority(endpoint: &str) -> Result<String> {
    let rest = endpoint.strip_prefix("http://").ok_or("endpoint must start with http://")?;
    let auth = rest.split('/').next().unwrap_or(rest);
    if auth.is_empty() {
        return Err("endpoint has no host".into());
    }
    Ok(auth.to_string())
}

pub struct Sqs {
    sender: SendRequest<Full<Bytes>>,
    host: HeaderValue,
    authority: String,
    /// None: unsigned (the dummy header).
    signer: Option<Signer>,
    /// Connections opened again because the server closed one (moto's dev server answers
    /// `Connection: close`, HTTP/1.0 style).
    pub reconnects: u64,
}

#[derive(Serialize)]
#[allow(non_snake_case)]
pub struct Entry<'a> {
    pub Id: &'a str,
    pub MessageBody: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub MessageGroupId: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub MessageDeduplicationId: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct Message {
    #[serde(rename = "ReceiptHandle")]
    pub receipt: String,
    #[serde(rename = "Body")]
    pub body: String,
}

#[derive(Deserialize)]
struct ReceiveResp {
    #[serde(rename = "Messages", default)]
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct BatchResp {
    #[serde(rename = "Successful", default)]
    successful: Vec<serde::de::IgnoredAny>,
    #[serde(rename = "Failed", default)]
    failed: Vec<serde::de::IgnoredAny>,
}

pub const IDS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

impl Sqs {
    pub async fn connect(authority: &str) -> Result<Sqs> {
        Ok(Sqs {
            sender: open(authority).await?,
            host: HeaderValue::from_str(authority)?,
            authority: authority.to_string(),
            signer: CREDENTIALS.get().cloned().map(Signer::new),
            reconnects: 0,
        })
    }

    /// One call; non-2xx statuses become errors carrying the response body.
    pub async fn call(&mut self, action: &'static str, body: Vec<u8>) -> Result<Bytes> {
        if self.sender.ready().await.is_err() {
            self.sender = open(&self.authority).await?;
            self.reconnects += 1;
            self.sender.ready().await?;
        }
        let target = target(action);
        let builder = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header(HOST, self.host.clone())
            .header("x-amz-target", target.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static(JSON));
        let builder = match &mut self.signer {
            None => builder.header(AUTHORIZATION, HeaderValue::from_static(AUTH)),
            Some(signer) => {
                let sig = signer.sign(&self.authority, target.to_str()?, JSON, &body, SystemTime::now());
                builder.header("x-amz-date", sig.amz_date).header(AUTHORIZATION, sig.authorization)
            }
        };
        let req = builder.body(Full::new(Bytes::from(body)))?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(format!("{action}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)).into());
        }
        Ok(bytes)
    }

    pub async fn create_queue(&mut self, name: &str, attrs: &[(&str, &str)]) -> Result<String> {
        let attrs: serde_json::Map<String, serde_json::Value> =
            attrs.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
        let mut req = serde_json::json!({ "QueueName": name });
        if !attrs.is_empty() {
            req["Attributes"] = serde_json::Value::Object(attrs);
        }
        let b = self.call("CreateQueue", serde_json::to_vec(&req)?).await?;
        let v: serde_json::Value = serde_json::from_slice(&b)?;
        Ok(v["QueueUrl"].as_str().ok_or("CreateQueue: no QueueUrl")?.to_string())
    }

    pub async fn get_queue_url(&mut self, name: &str) -> Result<String> {
        let b = self.call("GetQueueUrl", serde_json::to_vec(&serde_json::json!({ "QueueName": name }))?).await?;
        let v: serde_json::Value = serde_json::from_slice(&b)?;
        Ok(v["QueueUrl"].as_str().ok_or("GetQueueUrl: no QueueUrl")?.to_string())
    }

    pub async fn delete_queue(&mut self, url: &str) -> Result<()> {
        self.call("DeleteQueue", serde_json::to_vec(&serde_json::json!({ "QueueUrl": url }))?).await?;
        Ok(())
    }

    pub async fn queue_depth(&mut self, url: &str) -> Result<u64> {
        let req = serde_json::json!({ "QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"] });
        let b = self.call("GetQueueAttributes", serde_json::to_vec(&req)?).await?;
        let v: serde_json::Value = serde_json::from_slice(&b)?;
        Ok(v["Attributes"]["ApproximateNumberOfMessages"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    /// SendMessage; returns 1.
    pub async fn send(&mut self, url: &str, body: &str, group: Option<&str>, dedup: Option<&str>) -> Result<u64> {
        #[derive(Serialize)]
        #[allow(non_snake_case)]
        struct Req<'a> {
            QueueUrl: &'a str,
            MessageBody: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            MessageGroupId: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            MessageDeduplicationId: Option<&'a str>,
        }
        let req = Req { QueueUrl: url, MessageBody: body, MessageGroupId: group, MessageDeduplicationId: dedup };
        self.call("SendMessage", serde_json::to_vec(&req)?).await?;
        Ok(1)
    }

    /// SendMessageBatch; returns the number of successful entries (failures are an error).
    pub async fn send_batch(&mut self, url: &str, entries: &[Entry<'_>]) -> Result<u64> {
        #[derive(Serialize)]
        #[allow(non_snake_case)]
        struct Req<'a, 'b> {
            QueueUrl: &'a str,
            Entries: &'a [Entry<'b>],
        }
        let b = self.call("SendMessageBatch", serde_json::to_vec(&Req { QueueUrl: url, Entries: entries })?).await?;
        let r: BatchResp = serde_json::from_slice(&b)?;
        if !r.failed.is_empty() {
            return Err(format!("SendMessageBatch: {} failed: {}", r.failed.len(), String::from_utf8_lossy(&b)).into());
        }
        Ok(r.successful.len() as u64)
    }

    pub async fn receive(&mut self, url: &str, max: u32, wait: u32, visibility: Option<u32>) -> Result<Vec<Message>> {
        #[derive(Serialize)]
        #[allow(non_snake_case)]
        struct Req<'a> {
            QueueUrl: &'a str,
            MaxNumberOfMessages: u32,
            WaitTimeSeconds: u32,
            #[serde(skip_serializing_if = "Option::is_none")]
            VisibilityTimeout: Option<u32>,
        }
        let req = Req { QueueUrl: url, MaxNumberOfMessages: max, WaitTimeSeconds: wait, VisibilityTimeout: visibility };
        let b = self.call("ReceiveMessage", serde_json::to_vec(&req)?).await?;
        let r: ReceiveResp = serde_json::from_slice(&b)?;
        Ok(r.messages)
    }

    /// DeleteMessageBatch of up to 10 receipts; returns how many were deleted.
    pub async fn delete_batch(&mut self, url: &str, msgs: &[Message]) -> Result<u64> {
        if msgs.is_empty() {
            return Ok(0);
        }
        #[derive(Serialize)]
        #[allow(non_snake_case)]
        struct E<'a> {
            Id: &'a str,
            ReceiptHandle: &'a str,
        }
        #[derive(Serialize)]
        #[allow(non_snake_case)]
        struct Req<'a> {
            QueueUrl: &'a str,
            Entries: Vec<E<'a>>,
        }
        let entries = msgs.iter().zip(IDS).map(|(m, id)| E { Id: id, ReceiptHandle: &m.receipt }).collect();
        let b = self.call("DeleteMessageBatch", serde_json::to_vec(&Req { QueueUrl: url, Entries: entries })?).await?;
        let r: BatchResp = serde_json::from_slice(&b)?;
        // Entries that failed (e.g. a receipt that went stale on a slow server) are not an error of
        // the run: the message comes back and is received again.
        Ok(r.successful.len() as u64)
    }
}

async fn open(authority: &str) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn target(action: &'static str) -> HeaderValue {
    HeaderValue::from_static(match action {
        "CreateQueue" => "AmazonSQS.CreateQueue",
        "GetQueueUrl" => "AmazonSQS.GetQueueUrl",
        "DeleteQueue" => "AmazonSQS.DeleteQueue",
        "GetQueueAttributes" => "AmazonSQS.GetQueueAttributes",
        "SendMessage" => "AmazonSQS.SendMessage",
        "SendMessageBatch" => "AmazonSQS.SendMessageBatch",
        "ReceiveMessage" => "AmazonSQS.ReceiveMessage",
        "DeleteMessageBatch" => "AmazonSQS.DeleteMessageBatch",
        _ => "AmazonSQS.Unknown",
    })
}
