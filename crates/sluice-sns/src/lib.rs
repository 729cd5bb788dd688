//! An SNS-compatible topics API for sluice: topics, subscriptions (SQS queues of this server and
//! HTTP/HTTPS endpoints), filter policies, fan-out.
//!
//! SNS speaks only the Query protocol (`Action=...&Version=2010-03-31`, XML answers). The server
//! recognises a request as SNS with `sluice_protocol::route`, which parses its [`Form`] once, and
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
//! - [`wire`]: SNS's side of the Query protocol: the inputs' decoding rules on the form (parsed
//!   once, by the protocol crate's routing), XML and AWS error documents out.
//! - [`dispatch`]: the one `match` from a decoded action to its handler.
//! - `access`: topic policies on SNS requests, queue policies on SNS → SQS copies.
//! - [`topics`], [`subscriptions`], [`tags`], [`publish`]: the handlers; typed inputs in, typed
//!   outputs out, no XML.
//! - [`validation`]: AWS's limits and InvalidParameter wording.
//! - [`records`]: what is persisted, and recovery.
//! - [`delivery`]: what subscribers get: the envelopes, SQS copies, HTTP(S) POSTs over TLS with
//!   retries.
//! - [`filter`]: filter policies.

pub(crate) mod access;
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
use sluice_protocol::auth::access::{Caller, PolicyMode};
use sluice_protocol::{Request, Response};

use crate::action::SnsAction;
use crate::delivery::{HttpClient, PendingDelivery};
use crate::records::State;

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
    pub(crate) seq: AtomicU64,
    /// The engine's clock: envelope timestamps, retry schedules, FIFO sequence numbers.
    pub(crate) clock: Arc<dyn Clock>,
    /// Messages published per topic ARN since the server started (metrics, dashboard).
    pub(crate) published: Mutex<BTreeMap<String, u64>>,
    /// `--policy-mode` and whether requests are signed (see [`SnsOptions`]).
    pub(crate) policy_mode: PolicyMode,
    pub(crate) auth: bool,
    /// SQS copies a queue policy refused (the topic was not allowed to send), since the start.
    pub(crate) denied_deliveries: AtomicU64,
    /// (topic, queue) pairs whose refusal was logged: each is logged once.
    pub(crate) denied_logged: Mutex<std::collections::BTreeSet<(String, String)>>,
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
    /// `--policy-mode`: enforce topic policies and the queue policies SQS copies must pass, or
    /// only log what they would deny.
    pub policy_mode: PolicyMode,
    /// Whether requests are signed (`--auth sigv4`). Then every SNS → SQS copy needs the queue's
    /// policy to allow the topic, as on AWS; without signatures (local development) only a queue
    /// that has a `Policy` is checked, so fan-out without policies keeps working while a policy
    /// that forgets the topic is caught before it reaches AWS.
    pub auth: bool,
}

impl Sns {
    /// Recovers topics, subscriptions and pending HTTP deliveries from the engine's store, and
    /// resumes those deliveries (on the current tokio runtime).
    pub fn open(engine: Arc<Engine>, options: SnsOptions) -> Result<Sns, String> {
        let http = delivery::http_client(options.ca_file.as_deref())?;
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
            seq: AtomicU64::new(clock.now_ms() << 20),
            clock,
            published: Mutex::new(BTreeMap::new()),
            policy_mode: options.policy_mode,
            auth: options.auth,
            denied_deliveries: AtomicU64::new(0),
            denied_logged: Mutex::new(Default::default()),
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
        let form = Form::parse(req.query, req.body);
        let caller = Caller {
            identity: req.identity,
            secure_transport: req.scheme == "https",
            source_ip: req.source_ip,
            mode: self.inner.policy_mode,
        };
        self.handle_form(&form, req.host, req.scheme, &caller).await
    }

    /// SQS copies that a queue policy refused since the server started (a metric).
    pub fn denied_deliveries(&self) -> u64 {
        self.inner.denied_deliveries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Answers the SNS request whose parameters `form` holds (`sluice_protocol::route` parsed it); `host` is its
    /// Host header and `scheme` how it reached the listener (`http`/`https`): the base of the URLs
    /// handed out when no public URL is configured; `caller` who sent it (policies are checked
    /// before the action runs).
    pub async fn handle_form(
        &self,
        form: &Form<'_>,
        host: Option<&str>,
        scheme: &str,
        caller: &Caller<'_>,
    ) -> Response {
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
        if let Err(e) = self.inner.authorize(caller, &action) {
            return wire::error_response(&e, &request_id);
        }
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
