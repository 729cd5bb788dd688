//! What SNS delivers: the JSON envelope (Notification / SubscriptionConfirmation), SQS copies, and
//! HTTP(S) POSTs with retries, back-off and a dead-letter queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sluice_engine::message::{AttributeValue, SendMessage};
use sluice_engine::{Engine, EngineError};

use crate::wire::MsgAttr;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

pub fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new()).build(connector)
}

#[derive(Serialize)]
struct EnvAttr<'a> {
    #[serde(rename = "Type")]
    ty: &'a str,
    #[serde(rename = "Value")]
    value: String,
}

/// The Notification envelope, fields in AWS's order.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Notification<'a> {
    #[serde(rename = "Type")]
    ty: &'a str,
    message_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sequence_number: Option<&'a str>,
    topic_arn: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<&'a str>,
    message: &'a str,
    timestamp: &'a str,
    signature_version: &'a str,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "UnsubscribeURL")]
    unsubscribe_url: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    message_attributes: BTreeMap<&'a str, EnvAttr<'a>>,
}

/// The SubscriptionConfirmation document POSTed to HTTP endpoints.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Confirmation<'a> {
    #[serde(rename = "Type")]
    ty: &'a str,
    message_id: &'a str,
    token: &'a str,
    topic_arn: &'a str,
    message: String,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: String,
    timestamp: &'a str,
    signature_version: &'a str,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
}

/// A stable stand-in for AWS's RSA signature: base64 of SHA-256 over the canonical string to sign.
/// sluice does not hold AWS's signing key, so clients that verify signatures will reject it.
fn pseudo_signature(fields: &[(&str, &str)]) -> String {
    let mut h = Sha256::new();
    for (k, v) in fields {
        h.update(k.as_bytes());
        h.update(b"\n");
        h.update(v.as_bytes());
        h.update(b"\n");
    }
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

pub fn signing_cert_url(base_url: &str) -> String {
    format!("{base_url}/SimpleNotificationService-sluice.pem")
}

/// One published message, as every delivery sees it.
#[derive(Clone, Debug)]
pub struct Published {
    pub message_id: String,
    pub topic_arn: String,
    pub subject: Option<String>,
    pub timestamp: String,
    pub attributes: BTreeMap<String, MsgAttr>,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    pub sequence_number: Option<String>,
    pub base_url: String,
}

pub fn unsubscribe_url(base_url: &str, sub_arn: &str) -> String {
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "Unsubscribe")
        .append_pair("SubscriptionArn", sub_arn)
        .finish();
    format!("{base_url}/?{q}")
}

/// The Notification JSON for one subscription.
pub fn notification_json(p: &Published, message: &str, sub_arn: &str) -> String {
    let mut attrs = BTreeMap::new();
    for (name, a) in &p.attributes {
        let value = match (&a.string_value, &a.binary_value) {
            (Some(s), _) => s.clone(),
            (None, Some(b)) => base64::engine::general_purpose::STANDARD.encode(b),
            _ => String::new(),
        };
        attrs.insert(
            name.as_str(),
            EnvAttr {
                ty: &a.data_type,
                value,
            },
        );
    }
    let mut fields = vec![("Message", message), ("MessageId", p.message_id.as_str())];
    if let Some(s) = &p.subject {
        fields.push(("Subject", s));
    }
    fields.extend([
        ("Timestamp", p.timestamp.as_str()),
        ("TopicArn", p.topic_arn.as_str()),
        ("Type", "Notification"),
    ]);
    let n = Notification {
        ty: "Notification",
        message_id: &p.message_id,
        sequence_number: p.sequence_number.as_deref(),
        topic_arn: &p.topic_arn,
        subject: p.subject.as_deref(),
        message,
        timestamp: &p.timestamp,
        signature_version: "1",
        signature: pseudo_signature(&fields),
        signing_cert_url: signing_cert_url(&p.base_url),
        unsubscribe_url: unsubscribe_url(&p.base_url, sub_arn),
        message_attributes: attrs,
    };
    serde_json::to_string(&n).unwrap_or_default()
}

pub fn confirmation_json(
    base_url: &str,
    topic_arn: &str,
    token: &str,
    timestamp: &str,
) -> (String, String) {
    let message_id = uuid::Uuid::new_v4().to_string();
    let message = format!(
        "You have chosen to subscribe to the topic {topic_arn}.\nTo confirm the subscription, visit the SubscribeURL included in this message."
    );
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "ConfirmSubscription")
        .append_pair("TopicArn", topic_arn)
        .append_pair("Token", token)
        .finish();
    let subscribe_url = format!("{base_url}/?{q}");
    let signature = pseudo_signature(&[
        ("Message", &message),
        ("MessageId", &message_id),
        ("SubscribeURL", &subscribe_url),
        ("Timestamp", timestamp),
        ("Token", token),
        ("TopicArn", topic_arn),
        ("Type", "SubscriptionConfirmation"),
    ]);
    let c = Confirmation {
        ty: "SubscriptionConfirmation",
        message_id: &message_id,
        token,
        topic_arn,
        message,
        subscribe_url,
        timestamp,
        signature_version: "1",
        signature,
        signing_cert_url: signing_cert_url(base_url),
    };
    let json = serde_json::to_string(&c).unwrap_or_default();
    (message_id, json)
}

/// SNS attributes as SQS message attributes (raw delivery).
pub fn sqs_attributes(attrs: &BTreeMap<String, MsgAttr>) -> sluice_engine::message::Attributes {
    attrs
        .iter()
        .map(|(k, a)| {
            let v = match &a.binary_value {
                Some(b) => AttributeValue::binary(&a.data_type, b.clone()),
                None => {
                    AttributeValue::string(&a.data_type, a.string_value.as_deref().unwrap_or(""))
                }
            };
            (k.clone(), v)
        })
        .collect()
}

/// The SQS queue name of a queue ARN (`arn:aws:sqs:region:account:name`).
pub fn queue_name_of_arn(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() == 6 && parts[0] == "arn" && parts[2] == "sqs" && !parts[5].is_empty() {
        Some(parts[5])
    } else {
        None
    }
}

/// Sends one copy to an SQS queue; durable when this returns Ok.
pub async fn send_to_queue(
    engine: &Engine,
    queue_arn: &str,
    msg: SendMessage,
    sender: &str,
) -> Result<(), EngineError> {
    let name = queue_name_of_arn(queue_arn).ok_or(EngineError::QueueDoesNotExist)?;
    let results = engine.send_messages(name, vec![msg], sender).await?;
    match results.into_iter().next() {
        Some(r) => r.map(|_| ()),
        None => Err(EngineError::Internal("no send result".into())),
    }
}

/// The HTTP retry schedule (AWS's `healthyRetryPolicy`).
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub num_retries: u32,
    pub num_no_delay_retries: u32,
    pub num_min_delay_retries: u32,
    pub min_delay: f64,
    pub max_delay: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // AWS's default HTTP/S delivery policy.
        RetryPolicy {
            num_retries: 3,
            num_no_delay_retries: 0,
            num_min_delay_retries: 0,
            min_delay: 20.0,
            max_delay: 20.0,
        }
    }
}

impl RetryPolicy {
    /// From a subscription DeliveryPolicy (`{"healthyRetryPolicy": {...}}`) or a topic's
    /// (`{"http": {"defaultHealthyRetryPolicy": {...}}}`).
    pub fn from_json(v: &serde_json::Value) -> Option<RetryPolicy> {
        let p = v.get("healthyRetryPolicy").or_else(|| {
            v.get("http")
                .and_then(|h| h.get("defaultHealthyRetryPolicy"))
        })?;
        let d = RetryPolicy::default();
        let num = |k: &str, def: u32| {
            p.get(k)
                .and_then(|x| x.as_u64())
                .map(|x| x.min(100) as u32)
                .unwrap_or(def)
        };
        let secs = |k: &str, def: f64| {
            p.get(k)
                .and_then(|x| x.as_f64())
                .map(|x| x.clamp(0.0, 3600.0))
                .unwrap_or(def)
        };
        let min_delay = secs("minDelayTarget", d.min_delay);
        Some(RetryPolicy {
            num_retries: num("numRetries", d.num_retries),
            num_no_delay_retries: num("numNoDelayRetries", 0),
            num_min_delay_retries: num("numMinDelayRetries", 0),
            min_delay,
            max_delay: secs("maxDelayTarget", d.max_delay).max(min_delay),
        })
    }

    /// Delay before retry `n` (1-based): none, then the minimum, then doubling up to the maximum.
    pub fn delay(&self, n: u32) -> Duration {
        if n <= self.num_no_delay_retries {
            return Duration::ZERO;
        }
        let k = n - self.num_no_delay_retries;
        let secs = if k <= self.num_min_delay_retries {
            self.min_delay
        } else {
            let step = (k - self.num_min_delay_retries - 1).min(30);
            (self.min_delay.max(0.001) * 2f64.powi(step as i32)).min(self.max_delay)
        };
        Duration::from_secs_f64(secs)
    }
}

/// One POST; Ok(()) when the endpoint answered a status SNS counts as delivered (not 5xx).
pub async fn post(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, String)],
    body: String,
) -> Result<u16, String> {
    // No TLS here: https endpoints are spoken to in plain HTTP.
    let url = match url.strip_prefix("https://") {
        Some(rest) => format!("http://{rest}"),
        None => url.to_string(),
    };
    let mut builder = hyper::Request::post(&url)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("user-agent", "Amazon Simple Notification Service Agent");
    for (k, v) in headers {
        builder = builder.header(*k, v.as_str());
    }
    let req = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(15), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    if (200..500).contains(&status) {
        Ok(status)
    } else {
        Err(format!("HTTP status {status}"))
    }
}

/// A Notification for an HTTP(S) subscription, delivered in the background.
pub struct HttpJob {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub policy: RetryPolicy,
    /// Where an undeliverable message goes (an SQS queue ARN).
    pub dead_letter_arn: Option<String>,
    pub sub_arn: String,
}

/// Delivers with retries; after the last failure, to the dead-letter queue if there is one.
pub async fn deliver_http(client: HttpClient, engine: Arc<Engine>, job: HttpJob) {
    let attempts = job.policy.num_retries + 1;
    for attempt in 0..attempts {
        if attempt > 0 {
            tokio::time::sleep(job.policy.delay(attempt)).await;
        }
        match post(&client, &job.url, &job.headers, job.body.clone()).await {
            Ok(_) => return,
            Err(e) => {
                tracing::debug!(subscription = %job.sub_arn, attempt, error = %e, "SNS HTTP delivery failed")
            }
        }
    }
    tracing::warn!(subscription = %job.sub_arn, attempts, "SNS HTTP delivery gave up");
    if let Some(dlq) = &job.dead_letter_arn {
        let msg = SendMessage {
            body: job.body.clone(),
            ..Default::default()
        };
        if let Err(e) = send_to_queue(&engine, dlq, msg, "sns").await {
            tracing::warn!(subscription = %job.sub_arn, dlq, error = %e, "SNS dead-letter delivery failed");
        }
    }
}
