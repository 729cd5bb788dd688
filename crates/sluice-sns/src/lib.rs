//! An SNS-compatible topics API for sluice: topics, subscriptions (SQS queues of this server and
//! HTTP/HTTPS endpoints), filter policies, fan-out.
//!
//! SNS speaks only the Query protocol (`Action=...&Version=2010-03-31`, XML answers). The server
//! recognises a request as SNS with [`Form::recognise`], which parses its form once, and
//! [`Sns::handle_form`] answers it.
//!
//! Durability: topics and subscriptions are JSON records in the store's SNS namespace
//! ([`records`]), committed durably before the answer. A successful Publish (or PublishBatch
//! entry) means every SQS subscriber's copy is stored (the engine's durable send) and every HTTP(S) delivery is recorded (`sns/pending/<id>`, see
//! [`delivery`]); the HTTP attempts themselves run in the background with retries, do not hold up
//! Publish, and are resumed after a restart. PublishBatch sends all its entries' copies for one
//! queue in one engine call and records all its HTTP deliveries in one commit, so a batch costs a
//! commit per subscribed queue (concurrent, so group commit usually folds them), not per entry.
//!
//! SubscribeURL / UnsubscribeURL / SigningCertURL are built from the configured public URL
//! ([`SnsOptions::public_url`]) when there is one, else from the request's Host header.
//!
//! Time (envelope timestamps, retry schedules) comes from the engine's clock
//! (`Engine::shared_clock`), never the wall clock directly.
//!
//! Layout (one job per module):
//! - [`action`]: the operations, declared once: the typed request [`action::SnsAction`] (one
//!   variant per operation, with its input), the typed answers, the metrics list, the refused
//!   operations.
//! - [`error`]: [`error::SnsError`] and the one table of AWS codes, statuses and fault sides.
//! - [`wire`]: the Query protocol, and only it: the form (parsed once), which requests are SNS
//!   requests, the inputs' decoding rules, XML and AWS error documents out.
//! - [`dispatch`]: the one `match` from a decoded action to its handler.
//! - [`topics`], [`subscriptions`], [`tags`], [`publish`]: the handlers; typed inputs in, typed
//!   outputs out, no XML.
//! - [`validation`]: AWS's limits and InvalidParameter wording.
//! - [`records`]: what is persisted, and recovery.
//! - [`delivery`]: what subscribers get: the envelopes, SQS copies, HTTP(S) POSTs over TLS with
//!   retries, only to addresses the [`EndpointPolicy`] allows (no loopback, private or link-local
//!   subscriber unless the operator allows it: the SSRF guard).
//! - [`filter`]: filter policies.

pub(crate) mod delivery;
pub(crate) mod dispatch;
pub(crate) mod filter;
pub(crate) mod publish;
pub(crate) mod records;
pub(crate) mod subscriptions;
pub(crate) mod tags;
pub(crate) mod topics;
pub(crate) mod validation;
// The SNS wire (form decoding, XML replies) and its typed actions and errors live in the protocol crate,
// beside SQS's; the handlers here see only the typed values.
pub(crate) use sluice_protocol::sns::{action, error, wire};
#[cfg(test)]
pub(crate) mod test_support;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use sluice_engine::clock::Clock;
use sluice_engine::Engine;
use sluice_protocol::{Request, Response};

use crate::action::SnsAction;
use crate::delivery::{HttpClient, PendingDelivery};
use crate::records::State;

pub use delivery::EndpointPolicy;
pub use sluice_protocol::sns::action::OPERATIONS;
pub use sluice_protocol::sns::error::{Fault, SnsError};
pub use sluice_protocol::sns::wire::Form;

pub(crate) struct Inner {
    pub(crate) engine: Arc<Engine>,
    pub(crate) region: String,
    pub(crate) account: String,
    /// Base of the URLs handed out (SubscribeURL, UnsubscribeURL), when configured.
    pub(crate) public_url: Option<String>,
    pub(crate) state: Mutex<State>,
    /// Serialises changes so their commits reach the store in the order they were made.
    pub(crate) writes: tokio::sync::Mutex<()>,
    pub(crate) http: HttpClient,
    /// The addresses HTTP(S) subscriptions may reach (checked again at each connection by `http`).
    pub(crate) endpoints: EndpointPolicy,
    pub(crate) seq: AtomicU64,
    /// The engine's clock: envelope timestamps, retry schedules, FIFO sequence numbers.
    pub(crate) clock: Arc<dyn Clock>,
    /// Messages published per topic ARN since the server started (metrics, dashboard).
    pub(crate) published: Mutex<BTreeMap<String, u64>>,
}

/// One topic's figures for metrics and the dashboard.
#[derive(Debug, Clone)]
pub struct TopicOverview {
    pub arn: String,
    pub name: String,
    pub fifo: bool,
    pub subscriptions_confirmed: usize,
    pub subscriptions_pending: usize,
    pub published: u64,
}

/// The SNS service state. Cheap to clone.
#[derive(Clone)]
pub struct Sns {
    inner: Arc<Inner>,
}

/// Operator settings of the SNS API.
#[derive(Debug, Clone, Default)]
pub struct SnsOptions {
    /// Base of SubscribeURL / UnsubscribeURL / SigningCertURL (the server's `public_url`); None:
    /// from each request's Host header.
    pub public_url: Option<String>,
    /// A PEM bundle of CA certificates trusted for https:// subscribers besides Mozilla's roots
    /// (`sns_ca_file`).
    pub ca_file: Option<std::path::PathBuf>,
    /// The addresses HTTP(S) subscribers may have besides public ones (default: none; the SSRF
    /// guard, see `delivery::endpoints`).
    pub endpoints: EndpointPolicy,
}

impl Sns {
    /// Recovers topics, subscriptions and pending HTTP deliveries from the engine's store, and
    /// resumes those deliveries (on the current tokio runtime).
    pub fn open(engine: Arc<Engine>, options: SnsOptions) -> Result<Sns, String> {
        let http = delivery::http_client(options.ca_file.as_deref(), options.endpoints.clone())?;
        let (state, pending) = records::recover(&engine)?;
        let clock = engine.shared_clock();
        let region = engine.region().to_string();
        let account = engine.account_id().to_string();
        let public_url = options.public_url.map(|u| u.trim_end_matches('/').to_string()).filter(|u| !u.is_empty());
        let inner = Arc::new(Inner {
            engine,
            region,
            account,
            public_url,
            state: Mutex::new(state),
            writes: tokio::sync::Mutex::new(()),
            http,
            endpoints: options.endpoints,
            seq: AtomicU64::new(clock.now_ms() << 20),
            clock,
            published: Mutex::new(BTreeMap::new()),
        });
        if !pending.is_empty() {
            if tokio::runtime::Handle::try_current().is_ok() {
                for job in pending {
                    inner.spawn_delivery(job);
                }
            } else {
                tracing::warn!(
                    count = pending.len(),
                    "no async runtime: pending SNS deliveries resume at the next start"
                );
            }
        }
        Ok(Sns { inner })
    }

    /// Every topic with its subscription counts and published total, sorted by ARN.
    pub fn overviews(&self) -> Vec<TopicOverview> {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let published = self.inner.published.lock().map(|p| p.clone()).unwrap_or_default();
        state
            .topics
            .values()
            .map(|t| {
                let subs = state.subs.values().filter(|s| s.topic_arn == t.arn);
                let (confirmed, pending) =
                    subs.fold((0, 0), |(c, p), s| if s.confirmed { (c + 1, p) } else { (c, p + 1) });
                TopicOverview {
                    arn: t.arn.clone(),
                    name: t.name.clone(),
                    fifo: t.fifo,
                    subscriptions_confirmed: confirmed,
                    subscriptions_pending: pending,
                    published: published.get(&t.arn).copied().unwrap_or(0),
                }
            })
            .collect()
    }

    /// Answers one SNS request (parsing its form; the server, which has parsed it already to
    /// route it, calls [`Sns::handle_form`]).
    pub async fn handle(&self, req: &Request<'_>) -> Response {
        let form = Form::parse(req.query, req.content_type, req.body);
        self.handle_form(&form, req.host, req.scheme).await
    }

    /// Answers the SNS request whose parameters `form` holds ([`Form::recognise`]); `host` is its
    /// Host header and `scheme` how it reached the listener (`http`/`https`): the base of the URLs
    /// handed out when no public URL is configured.
    pub async fn handle_form(&self, form: &Form, host: Option<&str>, scheme: &str) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let base_url = match &self.inner.public_url {
            Some(u) => u.clone(),
            None => format!("{scheme}://{}", host.unwrap_or("127.0.0.1:9324")),
        };
        let action = match SnsAction::decode(form) {
            Ok(action) => action,
            Err(e) => return wire::error_response(&e, &request_id),
        };
        let operation = action.operation();
        match self.inner.dispatch(action, &base_url).await {
            Ok(reply) => wire::reply_response(operation, &reply, &request_id),
            Err(e) => wire::error_response(&e, &request_id),
        }
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a recorded HTTP delivery in the background until it is delivered, dead-lettered or its
    /// subscription is gone.
    pub(crate) fn spawn_delivery(self: &Arc<Self>, job: PendingDelivery) {
        let inner = self.clone();
        tokio::spawn(async move {
            let wanted = |arn: &str| inner.lock().subs.contains_key(arn);
            delivery::run_pending(inner.http.clone(), inner.engine.clone(), job, wanted).await;
        });
    }
}
