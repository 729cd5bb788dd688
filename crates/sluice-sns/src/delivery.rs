//! What SNS delivers: the JSON envelope (Notification / SubscriptionConfirmation), SQS copies, and
//! HTTP(S) POSTs with retries, back-off and a dead-letter queue.
//!
//! HTTPS endpoints are spoken to over TLS (rustls with the ring provider); certificates must chain
//! to Mozilla's roots (webpki-roots) or to the operator's extra CA bundle (`sns_ca_file`), so an
//! endpoint with an untrusted certificate fails like one that is down: retried, then dead-lettered.
//!
//! Every HTTP delivery is a [`PendingDelivery`] record in the store's kv table (queue id 0, key
//! `sns/pending/<id>`), written before the first attempt, rewritten lazily after each failed one
//! (attempts made, time of the next) and deleted once delivered or dead-lettered, so retries
//! waiting at a restart are resumed ([`run_pending`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_engine::message::{AttributeValue, SendMessage};
use sluice_engine::{Engine, EngineError};
use sluice_store::Op;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::wire::MsgAttr;

/// The pooled HTTP/1.1 client every delivery uses (plain TCP for http://, TLS for https://).
pub type HttpClient = Client<Connector, Full<Bytes>>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the delivery client. `extra_ca`: a PEM bundle whose certificates are trusted besides
/// Mozilla's roots (self-hosted endpoints with a private CA).
pub fn http_client(extra_ca: Option<&Path>) -> Result<HttpClient, String> {
    let tls = tls_config(extra_ca)?;
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.set_nodelay(true);
    // The connector below handles https:// itself; the TCP part accepts both schemes.
    http.enforce_http(false);
    let connector = Connector {
        http,
        tls: TlsConnector::from(Arc::new(tls)),
    };
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The TLS client configuration: ring provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN, Mozilla's roots
/// plus the certificates of `extra_ca`.
pub fn tls_config(extra_ca: Option<&Path>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| format!("cannot read CA file {shown}: {e}"))?;
        let mut added = 0usize;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("CA file {shown}: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("CA file {shown}: unusable certificate: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("CA file {shown} holds no PEM certificate"));
        }
        tracing::info!(ca_file = %shown, certificates = added, "SNS trusts an extra CA bundle");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Connects http:// endpoints over TCP and https:// endpoints over TLS (server name from the URL,
/// an IP address included).
#[derive(Clone)]
pub struct Connector {
    http: HttpConnector,
    tls: TlsConnector,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let https = uri.scheme_str() == Some("https");
        let tcp = self.http.call(uri.clone());
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = tcp.await?;
            if !https {
                return Ok(Conn::Plain(tcp));
            }
            let host = uri
                .host()
                .unwrap_or("")
                .trim_start_matches('[')
                .trim_end_matches(']');
            let name = ServerName::try_from(host.to_string())
                .map_err(|e| format!("invalid TLS server name {host:?}: {e}"))?;
            let stream = tls.connect(name, tcp.into_inner()).await?;
            Ok(Conn::Tls(Box::new(TokioIo::new(stream))))
        })
    }
}

/// One connection of [`Connector`].
pub enum Conn {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// One POST; Ok(status) when the endpoint answered a status SNS counts as delivered (below 500).
/// Connection, TLS (an untrusted certificate included) and timeout errors are failures.
pub async fn post(
    client: &HttpClient,
    url: &str,
    headers: &[(String, String)],
    body: String,
) -> Result<u16, String> {
    let mut builder = hyper::Request::post(url)
        .header("content-type", "text/plain; charset=UTF-8")
        .header("user-agent", "Amazon Simple Notification Service Agent");
    for (k, v) in headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let req = builder
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(15), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| error_chain(&e))?;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    if (200..500).contains(&status) {
        Ok(status)
    } else {
        Err(format!("HTTP status {status}"))
    }
}

/// An error with its causes ("client error (Connect): invalid peer certificate: UnknownIssuer").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Key prefix of pending HTTP deliveries in the kv table (queue id 0).
pub const PENDING_PREFIX: &str = "sns/pending/";

/// The kv key of a pending delivery.
pub fn pending_key(id: &str) -> Vec<u8> {
    format!("{PENDING_PREFIX}{id}").into_bytes()
}

/// One HTTP(S) delivery not yet done (a Notification or a SubscriptionConfirmation), as persisted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingDelivery {
    pub id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub policy: RetryPolicy,
    /// Where an undeliverable message goes (an SQS queue ARN).
    pub dead_letter_arn: Option<String>,
    pub sub_arn: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// Wall-clock time (ms since the epoch) of the next attempt.
    pub next_at_ms: u64,
}

impl PendingDelivery {
    pub fn new(
        url: String,
        headers: Vec<(String, String)>,
        body: String,
        policy: RetryPolicy,
        dead_letter_arn: Option<String>,
        sub_arn: String,
    ) -> PendingDelivery {
        PendingDelivery {
            id: uuid::Uuid::new_v4().simple().to_string(),
            url,
            headers,
            body,
            policy,
            dead_letter_arn,
            sub_arn,
            attempts: 0,
            next_at_ms: crate::wire::now_ms(),
        }
    }

    /// The op that stores this record.
    pub fn put_op(&self) -> Op {
        Op::PutKv {
            queue: crate::KV_QUEUE,
            key: pending_key(&self.id),
            value: serde_json::to_vec(self).unwrap_or_default(),
        }
    }

    fn delete_op(&self) -> Op {
        Op::DeleteKv {
            queue: crate::KV_QUEUE,
            key: pending_key(&self.id),
        }
    }
}

/// Runs one pending delivery to its end: waits for its next attempt, POSTs, and after a failure
/// records the attempt and schedules the next per the retry policy; after the last failure the body
/// goes to the dead-letter queue if there is one. The record is deleted once delivered or
/// dead-lettered, or when `wanted` says its subscription is gone (checked before each attempt).
/// Record updates are lazy writes: a crash may repeat an attempt, never lose the delivery.
pub async fn run_pending(
    client: HttpClient,
    engine: Arc<Engine>,
    mut job: PendingDelivery,
    wanted: impl Fn(&str) -> bool,
) {
    let store = engine.store().clone();
    loop {
        let now = crate::wire::now_ms();
        if job.next_at_ms > now {
            tokio::time::sleep(Duration::from_millis(job.next_at_ms - now)).await;
        }
        if !wanted(&job.sub_arn) {
            tracing::debug!(subscription = %job.sub_arn, "subscription gone; pending SNS delivery dropped");
            store.commit_lazy(vec![job.delete_op()]);
            return;
        }
        let result = post(&client, &job.url, &job.headers, job.body.clone()).await;
        job.attempts += 1;
        let error = match result {
            Ok(_) => {
                store.commit_lazy(vec![job.delete_op()]);
                return;
            }
            Err(e) => e,
        };
        tracing::debug!(subscription = %job.sub_arn, attempt = job.attempts, error = %error, "SNS HTTP delivery failed");
        if job.attempts <= job.policy.num_retries {
            let delay = job.policy.delay(job.attempts);
            job.next_at_ms = crate::wire::now_ms() + delay.as_millis() as u64;
            store.commit_lazy(vec![job.put_op()]);
            continue;
        }
        tracing::warn!(subscription = %job.sub_arn, attempts = job.attempts, error = %error, "SNS HTTP delivery gave up");
        if let Some(dlq) = &job.dead_letter_arn {
            let msg = SendMessage {
                body: job.body.clone(),
                ..Default::default()
            };
            if let Err(e) = send_to_queue(&engine, dlq, msg, "sns").await {
                tracing::warn!(subscription = %job.sub_arn, dlq, error = %e, "SNS dead-letter delivery failed");
                if matches!(e, EngineError::Internal(_)) {
                    // Storage trouble: keep the record; the delivery resumes at the next start.
                    return;
                }
            }
        }
        store.commit_lazy(vec![job.delete_op()]);
        return;
    }
}
