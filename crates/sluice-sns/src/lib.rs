//! An SNS-compatible topics API for sluice: topics, subscriptions (SQS queues of this server and
//! HTTP/HTTPS endpoints), filter policies, fan-out.
//!
//! SNS speaks only the Query protocol (`Action=...&Version=2010-03-31`, XML answers). The server
//! routes a request here when [`is_sns_request`] says so; [`Sns::handle`] answers it.
//!
//! Durability: topics and subscriptions are JSON records in the store's kv table under queue id 0
//! (never an SQS queue id), keys `sns/topic/<arn>` and `sns/sub/<arn>`, committed durably before the
//! answer. A successful Publish (or PublishBatch entry) means every SQS subscriber's copy is stored
//! (the engine's durable send) and every HTTP(S) delivery is recorded (`sns/pending/<id>`, see
//! [`delivery`]); the HTTP attempts themselves run in the background with retries, do not hold up
//! Publish, and are resumed after a restart. PublishBatch sends all its entries' copies for one
//! queue in one engine call and records all its HTTP deliveries in one commit, so a batch costs a
//! commit per subscribed queue (concurrent, so group commit usually folds them), not per entry.
//!
//! SubscribeURL / UnsubscribeURL / SigningCertURL are built from the configured public URL
//! ([`SnsOptions::public_url`]) when there is one, else from the request's Host header.

pub mod delivery;
pub mod filter;
pub mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sluice_engine::message::SendMessage;
use sluice_engine::{Engine, EngineError};
use sluice_protocol::{Request, Response};
use sluice_store::Op;

use crate::delivery::{HttpClient, PendingDelivery, Published, RetryPolicy};
use crate::filter::{FilterPolicy, Scope};
use crate::wire::{el, map_xml, MsgAttr, Params, SnsError, SnsResult};

/// The SNS API version; the server routes requests carrying it here.
pub const VERSION: &str = "2010-03-31";
/// The kv "queue id" reserved for SNS records.
pub(crate) const KV_QUEUE: u64 = 0;
const TOPIC_PREFIX: &str = "sns/topic/";
const SUB_PREFIX: &str = "sns/sub/";
const PAGE: usize = 100;
const MAX_MESSAGE_BYTES: usize = 262_144;

/// True for an SNS Query request: `Version=2010-03-31` in the query string or form body; also the
/// SubscribeURL / UnsubscribeURL links SNS hands out (`Action=ConfirmSubscription|Unsubscribe`,
/// which are not SQS actions) when no Version is given.
pub fn is_sns_request(query: Option<&str>, content_type: Option<&str>, body: &[u8]) -> bool {
    let mut version = None;
    let mut action = None;
    let mut scan = |bytes: &[u8]| {
        for (k, v) in form_urlencoded::parse(bytes) {
            match k.as_ref() {
                "Version" => version = Some(v.into_owned()),
                "Action" => action = Some(v.into_owned()),
                _ => {}
            }
        }
    };
    if let Some(q) = query {
        scan(q.as_bytes());
    }
    let form_body = content_type.is_none_or(|ct| ct.contains("x-www-form-urlencoded"));
    if form_body && !body.is_empty() && !body.starts_with(b"{") {
        scan(body);
    }
    match version.as_deref() {
        Some(v) => v == VERSION,
        None => matches!(
            action.as_deref(),
            Some("ConfirmSubscription" | "Unsubscribe")
        ),
    }
}

/// The SNS operations sluice serves, as metrics label them (`SNS.<Action>`).
pub const OPERATIONS: &[&str] = &[
    "SNS.CreateTopic",
    "SNS.DeleteTopic",
    "SNS.ListTopics",
    "SNS.GetTopicAttributes",
    "SNS.SetTopicAttributes",
    "SNS.Subscribe",
    "SNS.ConfirmSubscription",
    "SNS.Unsubscribe",
    "SNS.ListSubscriptions",
    "SNS.ListSubscriptionsByTopic",
    "SNS.GetSubscriptionAttributes",
    "SNS.SetSubscriptionAttributes",
    "SNS.Publish",
    "SNS.PublishBatch",
    "SNS.TagResource",
    "SNS.UntagResource",
    "SNS.ListTagsForResource",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Topic {
    arn: String,
    name: String,
    fifo: bool,
    attributes: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Subscription {
    arn: String,
    topic_arn: String,
    protocol: String,
    endpoint: String,
    owner: String,
    attributes: BTreeMap<String, String>,
    confirmed: bool,
    token: Option<String>,
}

impl Subscription {
    fn raw(&self) -> bool {
        self.attributes
            .get("RawMessageDelivery")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
    fn filter(&self) -> Option<FilterPolicy> {
        let text = self
            .attributes
            .get("FilterPolicy")
            .filter(|t| !t.is_empty())?;
        let scope = self
            .attributes
            .get("FilterPolicyScope")
            .and_then(|s| Scope::parse(s).ok())
            .unwrap_or(Scope::MessageAttributes);
        FilterPolicy::parse(text, scope).ok()
    }
    fn dead_letter_arn(&self) -> Option<String> {
        let rp: serde_json::Value =
            serde_json::from_str(self.attributes.get("RedrivePolicy")?).ok()?;
        rp.get("deadLetterTargetArn")?.as_str().map(str::to_string)
    }
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, Topic>,
    subs: BTreeMap<String, Subscription>,
}

struct Inner {
    engine: Arc<Engine>,
    region: String,
    account: String,
    /// Base of the URLs handed out (SubscribeURL, UnsubscribeURL), when configured.
    public_url: Option<String>,
    state: Mutex<State>,
    /// Serialises changes so their commits reach the store in the order they were made.
    writes: tokio::sync::Mutex<()>,
    http: HttpClient,
    seq: AtomicU64,
    /// Messages published per topic ARN since the server started (metrics, dashboard).
    published: Mutex<BTreeMap<String, u64>>,
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
}

impl Sns {
    /// Recovers topics, subscriptions and pending HTTP deliveries from the engine's store, and
    /// resumes those deliveries (on the current tokio runtime).
    pub fn open(engine: Arc<Engine>, options: SnsOptions) -> Result<Sns, String> {
        let http = delivery::http_client(options.ca_file.as_deref())?;
        let mut state = State::default();
        let mut pending = Vec::new();
        let mut bad = 0usize;
        engine
            .store()
            .scan_kv(&mut |queue, key, value| {
                if queue != KV_QUEUE {
                    return;
                }
                if key.starts_with(TOPIC_PREFIX.as_bytes()) {
                    match serde_json::from_slice::<Topic>(value) {
                        Ok(t) => {
                            state.topics.insert(t.arn.clone(), t);
                        }
                        Err(_) => bad += 1,
                    }
                } else if key.starts_with(SUB_PREFIX.as_bytes()) {
                    match serde_json::from_slice::<Subscription>(value) {
                        Ok(s) => {
                            state.subs.insert(s.arn.clone(), s);
                        }
                        Err(_) => bad += 1,
                    }
                } else if key.starts_with(delivery::PENDING_PREFIX.as_bytes()) {
                    match serde_json::from_slice::<PendingDelivery>(value) {
                        Ok(p) => pending.push(p),
                        Err(_) => bad += 1,
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        if bad > 0 {
            tracing::error!(bad, "SNS records could not be decoded and were skipped");
        }
        tracing::info!(
            topics = state.topics.len(),
            subscriptions = state.subs.len(),
            pending_deliveries = pending.len(),
            "SNS recovered"
        );
        let region = engine.region().to_string();
        let account = engine.account_id().to_string();
        let public_url = options
            .public_url
            .map(|u| u.trim_end_matches('/').to_string())
            .filter(|u| !u.is_empty());
        let inner = Arc::new(Inner {
            engine,
            region,
            account,
            public_url,
            state: Mutex::new(state),
            writes: tokio::sync::Mutex::new(()),
            http,
            seq: AtomicU64::new(wire::now_ms() << 20),
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
        let published = self
            .inner
            .published
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default();
        state
            .topics
            .values()
            .map(|t| {
                let subs = state.subs.values().filter(|s| s.topic_arn == t.arn);
                let (confirmed, pending) =
                    subs.fold(
                        (0, 0),
                        |(c, p), s| if s.confirmed { (c + 1, p) } else { (c, p + 1) },
                    );
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

    /// Answers one SNS request.
    pub async fn handle(&self, req: &Request<'_>) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let params = Params::parse(req.query, req.body);
        let base_url = match &self.inner.public_url {
            Some(u) => u.clone(),
            None => format!("{}://{}", req.scheme, req.host.unwrap_or("127.0.0.1:9324")),
        };
        let action = params.get("Action").unwrap_or("").to_string();
        match self.inner.dispatch(&action, &params, &base_url).await {
            Ok(Some(result)) => wire::ok_response(&action, &result, &request_id),
            Ok(None) => wire::empty_response(&action, &request_id),
            Err(e) => wire::error_response(&e, &request_id),
        }
    }

    /// The action name of a request, for logs and metrics.
    pub fn action_of(req: &Request<'_>) -> Option<String> {
        Params::parse(req.query, req.body)
            .get("Action")
            .map(str::to_string)
    }
}

fn topic_key(arn: &str) -> Vec<u8> {
    format!("{TOPIC_PREFIX}{arn}").into_bytes()
}

fn sub_key(arn: &str) -> Vec<u8> {
    format!("{SUB_PREFIX}{arn}").into_bytes()
}

const TOPIC_SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "DisplayName",
    "Policy",
    "TracingConfig",
    "KmsMasterKeyId",
    "SignatureVersion",
    "ContentBasedDeduplication",
    "FifoThroughputScope",
    "ArchivePolicy",
    "DataProtectionPolicy",
    "HTTPSuccessFeedbackRoleArn",
    "HTTPSuccessFeedbackSampleRate",
    "HTTPFailureFeedbackRoleArn",
    "SQSSuccessFeedbackRoleArn",
    "SQSSuccessFeedbackSampleRate",
    "SQSFailureFeedbackRoleArn",
    "LambdaSuccessFeedbackRoleArn",
    "LambdaSuccessFeedbackSampleRate",
    "LambdaFailureFeedbackRoleArn",
    "FirehoseSuccessFeedbackRoleArn",
    "FirehoseSuccessFeedbackSampleRate",
    "FirehoseFailureFeedbackRoleArn",
    "ApplicationSuccessFeedbackRoleArn",
    "ApplicationSuccessFeedbackSampleRate",
    "ApplicationFailureFeedbackRoleArn",
];

const SUB_SETTABLE: &[&str] = &[
    "DeliveryPolicy",
    "FilterPolicy",
    "FilterPolicyScope",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
    "ReplayPolicy",
];

const DEFAULT_EFFECTIVE_DELIVERY_POLICY: &str = r#"{"http":{"defaultHealthyRetryPolicy":{"minDelayTarget":20,"maxDelayTarget":20,"numRetries":3,"numMaxDelayRetries":0,"numNoDelayRetries":0,"numMinDelayRetries":0,"backoffFunction":"linear"},"disableSubscriptionOverrides":false,"defaultRequestPolicy":{"headerContentType":"text/plain; charset=UTF-8"}}}"#;

const UNSUPPORTED: &[&str] = &[
    "AddPermission",
    "RemovePermission",
    "CheckIfPhoneNumberIsOptedOut",
    "CreatePlatformApplication",
    "CreatePlatformEndpoint",
    "CreateSMSSandboxPhoneNumber",
    "DeleteEndpoint",
    "DeletePlatformApplication",
    "DeleteSMSSandboxPhoneNumber",
    "GetDataProtectionPolicy",
    "GetEndpointAttributes",
    "GetPlatformApplicationAttributes",
    "GetSMSAttributes",
    "GetSMSSandboxAccountStatus",
    "ListEndpointsByPlatformApplication",
    "ListOriginationNumbers",
    "ListPhoneNumbersOptedOut",
    "ListPlatformApplications",
    "ListSMSSandboxPhoneNumbers",
    "OptInPhoneNumber",
    "PutDataProtectionPolicy",
    "SetEndpointAttributes",
    "SetPlatformApplicationAttributes",
    "SetSMSAttributes",
    "VerifySMSSandboxPhoneNumber",
];

fn valid_topic_name(name: &str, fifo: bool) -> bool {
    let base = if fifo {
        name.strip_suffix(".fifo").unwrap_or("")
    } else {
        name
    };
    !base.is_empty()
        && name.len() <= 256
        && base
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn validate_bool(name: &str, v: &str) -> SnsResult<()> {
    if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") {
        Ok(())
    } else {
        Err(SnsError::invalid(format!("Invalid parameter: Attributes Reason: {name}: Invalid value [{v}]. Must be true or false.")))
    }
}

fn validate_json_attr(name: &str, v: &str) -> SnsResult<()> {
    if v.is_empty() {
        return Ok(());
    }
    serde_json::from_str::<serde_json::Value>(v)
        .map(|_| ())
        .map_err(|_| {
            SnsError::invalid(format!(
                "Invalid parameter: Attributes Reason: {name}: failed to parse JSON."
            ))
        })
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a recorded HTTP delivery in the background until it is delivered, dead-lettered or its
    /// subscription is gone.
    fn spawn_delivery(self: &Arc<Self>, job: PendingDelivery) {
        let inner = self.clone();
        tokio::spawn(async move {
            let wanted = |arn: &str| inner.lock().subs.contains_key(arn);
            delivery::run_pending(inner.http.clone(), inner.engine.clone(), job, wanted).await;
        });
    }

    fn topic_arn(&self, name: &str) -> String {
        format!("arn:aws:sns:{}:{}:{}", self.region, self.account, name)
    }

    async fn commit(&self, ops: Vec<Op>) -> SnsResult<()> {
        self.engine
            .store()
            .commit(ops)
            .await
            .map_err(|e| SnsError::internal(e.to_string()))
    }

    fn topic(&self, arn: &str) -> SnsResult<Topic> {
        self.lock()
            .topics
            .get(arn)
            .cloned()
            .ok_or_else(|| SnsError::not_found("Topic does not exist"))
    }

    fn check_arn(&self, arn: &str, what: &str) -> SnsResult<()> {
        let parts: Vec<&str> = arn.split(':').collect();
        if parts.len() < 6 || parts[0] != "arn" || parts[2] != "sns" {
            return Err(SnsError::invalid(format!("Invalid parameter: {what}")));
        }
        Ok(())
    }

    async fn dispatch(
        self: &Arc<Self>,
        action: &str,
        p: &Params,
        base_url: &str,
    ) -> SnsResult<Option<String>> {
        match action {
            "CreateTopic" => self.create_topic(p).await.map(Some),
            "DeleteTopic" => self.delete_topic(p).await.map(|_| None),
            "ListTopics" => self.list_topics(p).map(Some),
            "GetTopicAttributes" => self.get_topic_attributes(p).map(Some),
            "SetTopicAttributes" => self.set_topic_attributes(p).await.map(|_| None),
            "Subscribe" => self.subscribe(p, base_url).await.map(Some),
            "ConfirmSubscription" => self.confirm_subscription(p).await.map(Some),
            "Unsubscribe" => self.unsubscribe(p).await.map(|_| None),
            "ListSubscriptions" => self.list_subscriptions(p, None).map(Some),
            "ListSubscriptionsByTopic" => {
                let arn = p.required("TopicArn")?.to_string();
                self.topic(&arn)?;
                self.list_subscriptions(p, Some(&arn)).map(Some)
            }
            "GetSubscriptionAttributes" => self.get_subscription_attributes(p).map(Some),
            "SetSubscriptionAttributes" => self.set_subscription_attributes(p).await.map(|_| None),
            "Publish" => self.publish(p, base_url).await.map(Some),
            "PublishBatch" => self.publish_batch(p, base_url).await.map(Some),
            "TagResource" => self.tag_resource(p).await.map(|_| Some(String::new())),
            "UntagResource" => self.untag_resource(p).await.map(|_| Some(String::new())),
            "ListTagsForResource" => self.list_tags(p).map(Some),
            "" => Err(SnsError::invalid("Missing Action")),
            a if UNSUPPORTED.contains(&a) => Err(SnsError::new(
                "InvalidAction",
                400,
                format!("The action {a} is not supported by sluice (SMS, mobile push and permissions are not implemented)."),
            )),
            a => Err(SnsError::new("InvalidAction", 400, format!("The action {a} is not valid for this endpoint."))),
        }
    }

    // ---- topics ----

    async fn create_topic(&self, p: &Params) -> SnsResult<String> {
        let name = p.required("Name")?;
        let mut attrs = p.map("Attributes", "key", "value");
        let tags: BTreeMap<String, String> = p.tags("Tags").into_iter().collect();
        let fifo = match attrs.remove("FifoTopic") {
            Some(v) => {
                validate_bool("FifoTopic", &v)?;
                v.eq_ignore_ascii_case("true")
            }
            None => false,
        };
        if fifo && !valid_topic_name(name, true) {
            return Err(SnsError::invalid("Fifo Topic names must end with .fifo and must be made up of only uppercase and lowercase ASCII letters, numbers, underscores, and hyphens, and must be between 1 and 256 characters long."));
        }
        if !fifo && (!valid_topic_name(name, false)) {
            return Err(SnsError::invalid("Invalid parameter: Topic Name"));
        }
        self.validate_topic_attrs(&attrs, fifo)?;
        validate_tags(&tags)?;
        let _w = self.writes.lock().await;
        let arn = self.topic_arn(name);
        if let Some(existing) = self.lock().topics.get(&arn) {
            if attrs
                .iter()
                .any(|(k, v)| existing.attributes.get(k) != Some(v))
            {
                return Err(SnsError::invalid("Invalid parameter: Attributes Reason: Topic already exists with different attributes"));
            }
            if !tags.is_empty() && tags != existing.tags {
                return Err(SnsError::invalid(
                    "Invalid parameter: Tags Reason: Topic already exists with different tags",
                ));
            }
            return Ok(el("TopicArn", &arn));
        }
        if fifo && !attrs.contains_key("ContentBasedDeduplication") {
            attrs.insert("ContentBasedDeduplication".into(), "false".into());
        }
        let topic = Topic {
            arn: arn.clone(),
            name: name.to_string(),
            fifo,
            attributes: attrs,
            tags,
        };
        let value = serde_json::to_vec(&topic).map_err(|e| SnsError::internal(e.to_string()))?;
        self.commit(vec![Op::PutKv {
            queue: KV_QUEUE,
            key: topic_key(&arn),
            value,
        }])
        .await?;
        self.lock().topics.insert(arn.clone(), topic);
        Ok(el("TopicArn", &arn))
    }

    fn validate_topic_attrs(&self, attrs: &BTreeMap<String, String>, fifo: bool) -> SnsResult<()> {
        for (k, v) in attrs {
            if k == "FifoTopic" {
                return Err(SnsError::invalid("Invalid parameter: Attributes Reason: FifoTopic can only be set when the topic is created"));
            }
            if !TOPIC_SETTABLE.contains(&k.as_str()) {
                return Err(SnsError::invalid(format!(
                    "Invalid parameter: Attributes Reason: Unknown attribute {k}"
                )));
            }
            match k.as_str() {
                "ContentBasedDeduplication" => {
                    validate_bool(k, v)?;
                    if !fifo {
                        return Err(SnsError::invalid(
                            "Invalid parameter: Attributes Reason: Content-based deduplication can only be set for FIFO topics",
                        ));
                    }
                }
                "DeliveryPolicy" | "Policy" | "DataProtectionPolicy" | "ArchivePolicy" => validate_json_attr(k, v)?,
                "DisplayName" if v.len() > 100 => {
                    return Err(SnsError::invalid("Invalid parameter: DisplayName: must be at most 100 characters"))
                }
                "SignatureVersion" if v != "1" && v != "2" => {
                    return Err(SnsError::invalid("Invalid parameter: Attributes Reason: SignatureVersion: must be 1 or 2"))
                }
                "TracingConfig" if v != "Active" && v != "PassThrough" => {
                    return Err(SnsError::invalid("Invalid parameter: Attributes Reason: TracingConfig: must be Active or PassThrough"))
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn delete_topic(&self, p: &Params) -> SnsResult<()> {
        let arn = p.required("TopicArn")?.to_string();
        self.check_arn(&arn, "TopicArn")?;
        let _w = self.writes.lock().await;
        let subs: Vec<String> = {
            let st = self.lock();
            if !st.topics.contains_key(&arn) {
                return Ok(()); // Deleting a topic that does not exist is not an error.
            }
            st.subs
                .values()
                .filter(|s| s.topic_arn == arn)
                .map(|s| s.arn.clone())
                .collect()
        };
        let mut ops = vec![Op::DeleteKv {
            queue: KV_QUEUE,
            key: topic_key(&arn),
        }];
        ops.extend(subs.iter().map(|s| Op::DeleteKv {
            queue: KV_QUEUE,
            key: sub_key(s),
        }));
        self.commit(ops).await?;
        let mut st = self.lock();
        st.topics.remove(&arn);
        for s in subs {
            st.subs.remove(&s);
        }
        Ok(())
    }

    fn list_topics(&self, p: &Params) -> SnsResult<String> {
        let start = page_start(p)?;
        let st = self.lock();
        let mut out = String::from("<Topics>");
        let arns: Vec<&String> = st.topics.keys().skip(start).take(PAGE + 1).collect();
        for arn in arns.iter().take(PAGE) {
            out.push_str(&format!("<member>{}</member>", el("TopicArn", arn)));
        }
        out.push_str("</Topics>");
        if arns.len() > PAGE {
            out.push_str(&el("NextToken", &(start + PAGE).to_string()));
        }
        Ok(out)
    }

    fn get_topic_attributes(&self, p: &Params) -> SnsResult<String> {
        let arn = p.required("TopicArn")?;
        self.check_arn(arn, "TopicArn")?;
        let st = self.lock();
        let t = st
            .topics
            .get(arn)
            .ok_or_else(|| SnsError::not_found("Topic does not exist"))?;
        let (mut confirmed, mut pending) = (0, 0);
        for s in st.subs.values().filter(|s| s.topic_arn == t.arn) {
            if s.confirmed {
                confirmed += 1
            } else {
                pending += 1
            }
        }
        let mut a = BTreeMap::new();
        a.insert("TopicArn".to_string(), t.arn.clone());
        a.insert("Owner".into(), self.account.clone());
        a.insert("DisplayName".into(), String::new());
        a.insert("Policy".into(), self.default_policy(&t.arn));
        a.insert("SubscriptionsConfirmed".into(), confirmed.to_string());
        a.insert("SubscriptionsPending".into(), pending.to_string());
        a.insert("SubscriptionsDeleted".into(), "0".into());
        a.insert(
            "EffectiveDeliveryPolicy".into(),
            t.attributes
                .get("DeliveryPolicy")
                .filter(|d| !d.is_empty())
                .cloned()
                .unwrap_or_else(|| DEFAULT_EFFECTIVE_DELIVERY_POLICY.into()),
        );
        if t.fifo {
            a.insert("FifoTopic".into(), "true".into());
            a.insert("ContentBasedDeduplication".into(), "false".into());
        }
        for (k, v) in &t.attributes {
            a.insert(k.clone(), v.clone());
        }
        Ok(map_xml("Attributes", &a))
    }

    fn default_policy(&self, arn: &str) -> String {
        serde_json::json!({
            "Version": "2008-10-17",
            "Id": "__default_policy_ID",
            "Statement": [{
                "Sid": "__default_statement_ID",
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
                           "SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"],
                "Resource": arn,
                "Condition": {"StringEquals": {"AWS:SourceOwner": self.account}}
            }]
        })
        .to_string()
    }

    async fn set_topic_attributes(&self, p: &Params) -> SnsResult<()> {
        let arn = p.required("TopicArn")?.to_string();
        let name = p.required("AttributeName")?.to_string();
        let value = p.get("AttributeValue").unwrap_or("").to_string();
        self.check_arn(&arn, "TopicArn")?;
        let _w = self.writes.lock().await;
        let mut t = self.topic(&arn)?;
        let mut one = BTreeMap::new();
        one.insert(name.clone(), value.clone());
        self.validate_topic_attrs(&one, t.fifo)?;
        t.attributes.insert(name, value);
        self.save_topic(arn, t).await
    }

    // ---- subscriptions ----

    /// Checks subscription attributes; `subscribe` picks AWS's wording of filter-policy errors
    /// (Subscribe: `Invalid parameter: Attributes Reason: ...`).
    fn validate_sub_attrs(
        &self,
        attrs: &BTreeMap<String, String>,
        protocol: &str,
        current: &BTreeMap<String, String>,
        subscribe: bool,
    ) -> SnsResult<()> {
        let filter_error =
            |reason: String| SnsError::invalid(filter::invalid_parameter(&reason, subscribe));
        for (k, v) in attrs {
            if !SUB_SETTABLE.contains(&k.as_str()) {
                return Err(SnsError::invalid(format!(
                    "Invalid parameter: Attributes Reason: Unknown attribute {k}"
                )));
            }
            match k.as_str() {
                "RawMessageDelivery" => validate_bool(k, v)?,
                "DeliveryPolicy" => {
                    validate_json_attr(k, v)?;
                    if !protocol.starts_with("http") && !v.is_empty() {
                        return Err(SnsError::invalid(
                            "Invalid parameter: DeliveryPolicy: Delivery policy can only be set for HTTP/S subscriptions",
                        ));
                    }
                }
                "RedrivePolicy" => {
                    if v.is_empty() {
                        continue;
                    }
                    let rp: serde_json::Value = serde_json::from_str(v).map_err(|_| {
                        SnsError::invalid("Invalid parameter: RedrivePolicy: failed to parse JSON.")
                    })?;
                    let dlq = rp
                        .get("deadLetterTargetArn")
                        .and_then(|d| d.as_str())
                        .ok_or_else(|| {
                            SnsError::invalid(
                                "Invalid parameter: RedrivePolicy: deadLetterTargetArn is missing",
                            )
                        })?;
                    if delivery::queue_name_of_arn(dlq).is_none() {
                        return Err(SnsError::invalid("Invalid parameter: RedrivePolicy: deadLetterTargetArn is an invalid arn"));
                    }
                }
                "FilterPolicyScope" => {
                    Scope::parse(v).map_err(filter_error)?;
                }
                _ => {}
            }
        }
        // Check the filter policy against the scope it will have.
        let policy = attrs.get("FilterPolicy").or(current.get("FilterPolicy"));
        let scope = attrs
            .get("FilterPolicyScope")
            .or(current.get("FilterPolicyScope"));
        if let Some(text) = policy.filter(|t| !t.is_empty()) {
            let scope = scope
                .map(|s| Scope::parse(s))
                .transpose()
                .map_err(filter_error)?
                .unwrap_or(Scope::MessageAttributes);
            FilterPolicy::parse(text, scope).map_err(filter_error)?;
        }
        Ok(())
    }

    async fn subscribe(self: &Arc<Self>, p: &Params, base_url: &str) -> SnsResult<String> {
        let topic_arn = p.required("TopicArn")?.to_string();
        let protocol = p.required("Protocol")?.to_string();
        let endpoint = p.get("Endpoint").unwrap_or("").to_string();
        let return_arn = p.bool("ReturnSubscriptionArn");
        let mut attrs = p.map("Attributes", "key", "value");
        self.check_arn(&topic_arn, "TopicArn")?;
        match protocol.as_str() {
            "sqs" => {
                if delivery::queue_name_of_arn(&endpoint).is_none() {
                    return Err(SnsError::invalid("Invalid parameter: SQS endpoint ARN"));
                }
            }
            "http" | "https" => {
                if !endpoint.starts_with(&format!("{protocol}://")) {
                    return Err(SnsError::invalid("Invalid parameter: Endpoint must match the specified protocol"));
                }
            }
            "email" | "email-json" | "sms" | "application" | "lambda" | "firehose" => {
                return Err(SnsError::invalid(format!(
                    "Invalid parameter: Protocol: {protocol} subscriptions are not supported by sluice (only sqs, http, https)"
                )))
            }
            _ => return Err(SnsError::invalid(format!("Invalid parameter: Amazon SNS does not support this protocol string: {protocol}"))),
        }
        self.validate_sub_attrs(&attrs, &protocol, &BTreeMap::new(), true)?;
        if attrs.contains_key("FilterPolicy") && !attrs.contains_key("FilterPolicyScope") {
            attrs.insert("FilterPolicyScope".into(), "MessageAttributes".into());
        }
        let _w = self.writes.lock().await;
        let topic = self.topic(&topic_arn)?;
        if protocol == "sqs" && endpoint.ends_with(".fifo") && !topic.fifo {
            return Err(SnsError::invalid("Invalid parameter: Endpoint Reason: FIFO SQS Queues can not be subscribed to standard SNS topics"));
        }
        let existing = self
            .lock()
            .subs
            .values()
            .find(|s| s.topic_arn == topic_arn && s.protocol == protocol && s.endpoint == endpoint)
            .cloned();
        if let Some(s) = existing {
            if attrs.iter().any(|(k, v)| s.attributes.get(k) != Some(v)) {
                return Err(SnsError::invalid("Invalid parameter: Attributes Reason: Subscription already exists with different attributes"));
            }
            let shown = if s.confirmed || return_arn {
                s.arn.clone()
            } else {
                "pending confirmation".into()
            };
            return Ok(el("SubscriptionArn", &shown));
        }
        let arn = format!("{topic_arn}:{}", uuid::Uuid::new_v4());
        let is_http = protocol.starts_with("http");
        let token = is_http.then(|| {
            let a = uuid::Uuid::new_v4().simple().to_string();
            let b = uuid::Uuid::new_v4().simple().to_string();
            format!("{a}{b}{a}{b}")
        });
        let sub = Subscription {
            arn: arn.clone(),
            topic_arn: topic_arn.clone(),
            protocol: protocol.clone(),
            endpoint: endpoint.clone(),
            owner: self.account.clone(),
            attributes: attrs,
            confirmed: !is_http,
            token: token.clone(),
        };
        let value = serde_json::to_vec(&sub).map_err(|e| SnsError::internal(e.to_string()))?;
        let mut ops = vec![Op::PutKv {
            queue: KV_QUEUE,
            key: sub_key(&arn),
            value,
        }];
        // The SubscriptionConfirmation is recorded with the subscription (one commit), so a restart
        // still sends it.
        let confirmation = token.map(|token| {
            let (message_id, body) = delivery::confirmation_json(
                base_url,
                &topic_arn,
                &token,
                &wire::iso8601(wire::now_ms()),
            );
            let headers = vec![
                (
                    "x-amz-sns-message-type".to_string(),
                    "SubscriptionConfirmation".to_string(),
                ),
                ("x-amz-sns-message-id".to_string(), message_id),
                ("x-amz-sns-topic-arn".to_string(), topic_arn.clone()),
            ];
            let policy = RetryPolicy {
                num_retries: 2,
                num_no_delay_retries: 0,
                num_min_delay_retries: 2,
                min_delay: 1.0,
                max_delay: 1.0,
            };
            PendingDelivery::new(endpoint.clone(), headers, body, policy, None, arn.clone())
        });
        if let Some(job) = &confirmation {
            ops.push(job.put_op());
        }
        self.commit(ops).await?;
        self.lock().subs.insert(arn.clone(), sub);
        if let Some(job) = confirmation {
            self.spawn_delivery(job);
            let shown = if return_arn {
                arn
            } else {
                "pending confirmation".into()
            };
            return Ok(el("SubscriptionArn", &shown));
        }
        Ok(el("SubscriptionArn", &arn))
    }

    async fn confirm_subscription(&self, p: &Params) -> SnsResult<String> {
        let topic_arn = p.required("TopicArn")?.to_string();
        let token = p.required("Token")?.to_string();
        let _w = self.writes.lock().await;
        self.topic(&topic_arn)?;
        let found = self
            .lock()
            .subs
            .values()
            .find(|s| s.topic_arn == topic_arn && s.token.as_deref() == Some(token.as_str()))
            .cloned();
        let mut sub = found.ok_or_else(|| SnsError::invalid("Invalid token"))?;
        if !sub.confirmed {
            sub.confirmed = true;
            let value = serde_json::to_vec(&sub).map_err(|e| SnsError::internal(e.to_string()))?;
            self.commit(vec![Op::PutKv {
                queue: KV_QUEUE,
                key: sub_key(&sub.arn),
                value,
            }])
            .await?;
            self.lock().subs.insert(sub.arn.clone(), sub.clone());
        }
        Ok(el("SubscriptionArn", &sub.arn))
    }

    async fn unsubscribe(&self, p: &Params) -> SnsResult<()> {
        let arn = p.required("SubscriptionArn")?.to_string();
        if arn.split(':').count() != 7 || !arn.starts_with("arn:aws:sns:") {
            return Err(SnsError::invalid("Invalid parameter: SubscriptionArn Reason: An ARN must have at least 6 elements, not 1"));
        }
        let _w = self.writes.lock().await;
        if !self.lock().subs.contains_key(&arn) {
            return Err(SnsError::not_found("Subscription does not exist"));
        }
        self.commit(vec![Op::DeleteKv {
            queue: KV_QUEUE,
            key: sub_key(&arn),
        }])
        .await?;
        self.lock().subs.remove(&arn);
        Ok(())
    }

    fn list_subscriptions(&self, p: &Params, topic: Option<&str>) -> SnsResult<String> {
        let start = page_start(p)?;
        let st = self.lock();
        let subs: Vec<&Subscription> = st
            .subs
            .values()
            .filter(|s| topic.is_none_or(|t| s.topic_arn == t))
            .skip(start)
            .take(PAGE + 1)
            .collect();
        let mut out = String::from("<Subscriptions>");
        for s in subs.iter().take(PAGE) {
            let shown = if s.confirmed {
                s.arn.as_str()
            } else {
                "PendingConfirmation"
            };
            out.push_str(&format!(
                "<member>{}{}{}{}{}</member>",
                el("TopicArn", &s.topic_arn),
                el("Protocol", &s.protocol),
                el("SubscriptionArn", shown),
                el("Owner", &s.owner),
                el("Endpoint", &s.endpoint)
            ));
        }
        out.push_str("</Subscriptions>");
        if subs.len() > PAGE {
            out.push_str(&el("NextToken", &(start + PAGE).to_string()));
        }
        Ok(out)
    }

    fn subscription(&self, arn: &str) -> SnsResult<Subscription> {
        if arn.split(':').count() != 7 || !arn.starts_with("arn:aws:sns:") {
            return Err(SnsError::invalid("Invalid parameter: SubscriptionArn"));
        }
        self.lock()
            .subs
            .get(arn)
            .cloned()
            .ok_or_else(|| SnsError::not_found("Subscription does not exist"))
    }

    fn get_subscription_attributes(&self, p: &Params) -> SnsResult<String> {
        let s = self.subscription(p.required("SubscriptionArn")?)?;
        let mut a = BTreeMap::new();
        a.insert("SubscriptionArn".to_string(), s.arn.clone());
        a.insert("TopicArn".into(), s.topic_arn.clone());
        a.insert("Owner".into(), s.owner.clone());
        a.insert("Protocol".into(), s.protocol.clone());
        a.insert("Endpoint".into(), s.endpoint.clone());
        a.insert(
            "ConfirmationWasAuthenticated".into(),
            s.confirmed.to_string(),
        );
        a.insert("PendingConfirmation".into(), (!s.confirmed).to_string());
        a.insert("RawMessageDelivery".into(), "false".into());
        if s.protocol.starts_with("http") {
            let topic_policy = self
                .lock()
                .topics
                .get(&s.topic_arn)
                .and_then(|t| t.attributes.get("DeliveryPolicy").cloned());
            let eff = s
                .attributes
                .get("DeliveryPolicy")
                .filter(|d| !d.is_empty())
                .cloned()
                .or(topic_policy.filter(|d| !d.is_empty()))
                .unwrap_or_else(|| DEFAULT_EFFECTIVE_DELIVERY_POLICY.into());
            a.insert("EffectiveDeliveryPolicy".into(), eff);
        }
        for (k, v) in &s.attributes {
            if !v.is_empty() {
                a.insert(k.clone(), v.clone());
            }
        }
        if !a.contains_key("FilterPolicy") {
            a.remove("FilterPolicyScope");
        }
        Ok(map_xml("Attributes", &a))
    }

    async fn set_subscription_attributes(&self, p: &Params) -> SnsResult<()> {
        let arn = p.required("SubscriptionArn")?.to_string();
        let name = p.required("AttributeName")?.to_string();
        let value = p.get("AttributeValue").unwrap_or("").to_string();
        let _w = self.writes.lock().await;
        let mut s = self.subscription(&arn)?;
        let mut one = BTreeMap::new();
        one.insert(name.clone(), value.clone());
        self.validate_sub_attrs(&one, &s.protocol, &s.attributes, false)?;
        if value.is_empty() {
            s.attributes.remove(&name);
        } else {
            s.attributes.insert(name.clone(), value);
        }
        if name == "FilterPolicy"
            && s.attributes.contains_key("FilterPolicy")
            && !s.attributes.contains_key("FilterPolicyScope")
        {
            s.attributes
                .insert("FilterPolicyScope".into(), "MessageAttributes".into());
        }
        let bytes = serde_json::to_vec(&s).map_err(|e| SnsError::internal(e.to_string()))?;
        self.commit(vec![Op::PutKv {
            queue: KV_QUEUE,
            key: sub_key(&arn),
            value: bytes,
        }])
        .await?;
        self.lock().subs.insert(arn, s);
        Ok(())
    }

    // ---- tags ----

    /// The topic a tagging request names (ResourceNotFound, as AWS answers, if none).
    fn tagged_topic(&self, arn: &str) -> SnsResult<Topic> {
        self.lock()
            .topics
            .get(arn)
            .cloned()
            .ok_or_else(|| SnsError::new("ResourceNotFound", 404, "Resource does not exist"))
    }

    /// Persists a changed topic (durably), then makes it the current one.
    async fn save_topic(&self, arn: String, t: Topic) -> SnsResult<()> {
        let bytes = serde_json::to_vec(&t).map_err(|e| SnsError::internal(e.to_string()))?;
        self.commit(vec![Op::PutKv {
            queue: KV_QUEUE,
            key: topic_key(&arn),
            value: bytes,
        }])
        .await?;
        self.lock().topics.insert(arn, t);
        Ok(())
    }

    async fn tag_resource(&self, p: &Params) -> SnsResult<()> {
        let arn = p.required("ResourceArn")?.to_string();
        let tags = p.tags("Tags");
        let _w = self.writes.lock().await;
        let mut t = self.tagged_topic(&arn)?;
        for (k, v) in tags {
            t.tags.insert(k, v);
        }
        validate_tags(&t.tags)?;
        self.save_topic(arn, t).await
    }

    async fn untag_resource(&self, p: &Params) -> SnsResult<()> {
        let arn = p.required("ResourceArn")?.to_string();
        let keys = p.members("TagKeys");
        let _w = self.writes.lock().await;
        let mut t = self.tagged_topic(&arn)?;
        for k in keys {
            t.tags.remove(&k);
        }
        self.save_topic(arn, t).await
    }

    fn list_tags(&self, p: &Params) -> SnsResult<String> {
        let arn = p.required("ResourceArn")?;
        let st = self.lock();
        let t = st
            .topics
            .get(arn)
            .ok_or_else(|| SnsError::new("ResourceNotFound", 404, "Resource does not exist"))?;
        let mut out = String::from("<Tags>");
        for (k, v) in &t.tags {
            out.push_str(&format!(
                "<member>{}{}</member>",
                el("Key", k),
                el("Value", v)
            ));
        }
        out.push_str("</Tags>");
        Ok(out)
    }

    // ---- publishing ----

    fn next_sequence_number(&self) -> String {
        format!("{:020}", self.seq.fetch_add(1, Ordering::Relaxed))
    }

    async fn publish(self: &Arc<Self>, p: &Params, base_url: &str) -> SnsResult<String> {
        let arn = match (p.get("TopicArn"), p.get("TargetArn")) {
            (Some(t), _) | (None, Some(t)) => t.to_string(),
            (None, None) => return Err(SnsError::invalid(
                "Invalid parameter: TopicArn or TargetArn Reason: no value for required parameter",
            )),
        };
        if p.get("PhoneNumber").is_some() {
            return Err(SnsError::invalid(
                "Invalid parameter: PhoneNumber Reason: SMS is not supported by sluice",
            ));
        }
        self.check_arn(&arn, "TopicArn")?;
        let topic = self.topic(&arn)?;
        let entry = Entry {
            message: p.get("Message").map(str::to_string),
            subject: p.get("Subject").map(str::to_string),
            structure: p.get("MessageStructure").map(str::to_string),
            attributes: wire::message_attributes(p, "MessageAttributes")?,
            group_id: p.get("MessageGroupId").map(str::to_string),
            dedup_id: p.get("MessageDeduplicationId").map(str::to_string),
        };
        let subs = self.confirmed_subscriptions(&topic.arn);
        let prepared = self.prepare(&topic, &subs, entry, base_url)?;
        let (message_id, seq) = (
            prepared.message_id.clone(),
            prepared.sequence_number.clone(),
        );
        let mut results = self.deliver(&topic.arn, vec![prepared]).await;
        results.pop().unwrap_or(Ok(()))?;
        let mut out = el("MessageId", &message_id);
        if let Some(s) = seq {
            out.push_str(&el("SequenceNumber", &s));
        }
        Ok(out)
    }

    async fn publish_batch(self: &Arc<Self>, p: &Params, base_url: &str) -> SnsResult<String> {
        let arn = p.required("TopicArn")?.to_string();
        self.check_arn(&arn, "TopicArn")?;
        let topic = self.topic(&arn)?;
        let prefix = "PublishBatchRequestEntries.member";
        let mut entries = Vec::new();
        for i in 1.. {
            let ep = format!("{prefix}.{i}");
            let Some(id) = p.get(&format!("{ep}.Id")) else {
                break;
            };
            let e = Entry {
                message: p.get(&format!("{ep}.Message")).map(str::to_string),
                subject: p.get(&format!("{ep}.Subject")).map(str::to_string),
                structure: p.get(&format!("{ep}.MessageStructure")).map(str::to_string),
                attributes: wire::message_attributes(p, &format!("{ep}.MessageAttributes"))?,
                group_id: p.get(&format!("{ep}.MessageGroupId")).map(str::to_string),
                dedup_id: p
                    .get(&format!("{ep}.MessageDeduplicationId"))
                    .map(str::to_string),
            };
            entries.push((id.to_string(), e));
        }
        if entries.is_empty() {
            return Err(SnsError::new(
                "EmptyBatchRequest",
                400,
                "The batch request doesn't contain any entries",
            ));
        }
        if entries.len() > 10 {
            return Err(SnsError::new(
                "TooManyEntriesInBatchRequest",
                400,
                "The batch request contains more entries than permissible",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (id, _) in &entries {
            if id.is_empty()
                || id.len() > 80
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(SnsError::new(
                    "InvalidBatchEntryId",
                    400,
                    "The Id of a batch entry in a batch request doesn't abide by the specification",
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(SnsError::new(
                    "BatchEntryIdsNotDistinct",
                    400,
                    "Two or more batch entries in the request have the same Id",
                ));
            }
        }
        let total: usize = entries.iter().map(|(_, e)| e.size()).sum();
        if total > MAX_MESSAGE_BYTES {
            return Err(SnsError::new(
                "BatchRequestTooLong",
                400,
                "The length of all the messages put together is more than the limit",
            ));
        }
        // Validate every entry, then deliver the valid ones together: one engine send per subscribed
        // queue (as few as the size limit allows) and one commit for the HTTP deliveries.
        let subs = self.confirmed_subscriptions(&topic.arn);
        // Per entry: its Id, and its MessageId and SequenceNumber or its error.
        let mut outcome: Vec<(String, EntryOutcome)> = Vec::new();
        let mut prepared = Vec::new();
        let mut slots = Vec::new();
        for (id, e) in entries {
            match self.prepare(&topic, &subs, e, base_url) {
                Ok(p) => {
                    slots.push(outcome.len());
                    outcome.push((id, Ok((p.message_id.clone(), p.sequence_number.clone()))));
                    prepared.push(p);
                }
                Err(err) => outcome.push((id, Err(err))),
            }
        }
        let delivered = self.deliver(&topic.arn, prepared).await;
        for (slot, result) in slots.into_iter().zip(delivered) {
            if let Err(err) = result {
                outcome[slot].1 = Err(err);
            }
        }
        let mut ok = String::from("<Successful>");
        let mut failed = String::from("<Failed>");
        for (id, result) in outcome {
            match result {
                Ok((mid, seq)) => {
                    ok.push_str(&format!(
                        "<member>{}{}",
                        el("Id", &id),
                        el("MessageId", &mid)
                    ));
                    if let Some(s) = seq {
                        ok.push_str(&el("SequenceNumber", &s));
                    }
                    ok.push_str("</member>");
                }
                Err(err) => failed.push_str(&format!(
                    "<member>{}{}{}{}</member>",
                    el("Id", &id),
                    el("Code", err.code),
                    el("Message", &err.message),
                    el(
                        "SenderFault",
                        if err.status < 500 { "true" } else { "false" }
                    )
                )),
            }
        }
        ok.push_str("</Successful>");
        failed.push_str("</Failed>");
        Ok(ok + &failed)
    }

    /// The topic's confirmed subscriptions (the ones that receive messages).
    fn confirmed_subscriptions(&self, topic_arn: &str) -> Vec<Subscription> {
        self.lock()
            .subs
            .values()
            .filter(|s| s.topic_arn == topic_arn && s.confirmed)
            .cloned()
            .collect()
    }

    /// Validates one message and works out what each subscriber gets (filter policies, message
    /// structure, raw delivery). Nothing is delivered yet: see [`Inner::deliver`].
    fn prepare(
        &self,
        topic: &Topic,
        subs: &[Subscription],
        e: Entry,
        base_url: &str,
    ) -> SnsResult<Prepared> {
        let message = e.message.clone().unwrap_or_default();
        if message.is_empty() {
            return Err(SnsError::invalid("Invalid parameter: Empty message"));
        }
        if e.size() > MAX_MESSAGE_BYTES {
            return Err(SnsError::invalid("Invalid parameter: Message too long"));
        }
        if let Some(s) = &e.subject {
            if s.is_empty()
                || s.chars().count() > 100
                || s.chars().any(|c| c.is_control())
                || !s.is_ascii()
            {
                return Err(SnsError::invalid("Invalid parameter: Subject"));
            }
        }
        validate_message_attributes(&e.attributes)?;
        let structured: Option<serde_json::Map<String, serde_json::Value>> = match e
            .structure
            .as_deref()
        {
            None => None,
            Some("json") => {
                let v: serde_json::Value = serde_json::from_str(&message).map_err(|_| {
                    SnsError::invalid(
                        "Invalid parameter: Message Structure - JSON message body failed to parse",
                    )
                })?;
                let serde_json::Value::Object(map) = v else {
                    return Err(SnsError::invalid(
                        "Invalid parameter: Message Structure - JSON message body failed to parse",
                    ));
                };
                if !map.get("default").is_some_and(|d| d.is_string()) {
                    return Err(SnsError::invalid("Invalid parameter: Message Structure - No default entry in JSON message body"));
                }
                Some(map)
            }
            Some(_) => return Err(SnsError::invalid("Invalid parameter: MessageStructure")),
        };
        let (group_id, dedup_id, sequence_number) = if topic.fifo {
            let group = e.group_id.clone().ok_or_else(|| {
                SnsError::invalid(
                    "Invalid parameter: The MessageGroupId parameter is required for FIFO topics",
                )
            })?;
            check_fifo_id("MessageGroupId", &group)?;
            let cbd = topic
                .attributes
                .get("ContentBasedDeduplication")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
            let dedup = match &e.dedup_id {
                Some(d) => {
                    check_fifo_id("MessageDeduplicationId", d)?;
                    d.clone()
                }
                None if cbd => {
                    let mut h = Sha256::new();
                    h.update(message.as_bytes());
                    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
                }
                None => {
                    return Err(SnsError::invalid(
                        "Invalid parameter: The topic should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly",
                    ))
                }
            };
            (Some(group), Some(dedup), Some(self.next_sequence_number()))
        } else {
            if e.dedup_id.is_some() {
                return Err(SnsError::invalid(
                    "Invalid parameter: MessageDeduplicationId Reason: The request includes MessageDeduplicationId parameter that is not valid for this topic type",
                ));
            }
            if let Some(g) = &e.group_id {
                check_fifo_id("MessageGroupId", g)?;
            }
            (e.group_id.clone(), None, None)
        };
        let published = Published {
            message_id: uuid::Uuid::new_v4().to_string(),
            topic_arn: topic.arn.clone(),
            subject: e.subject.clone(),
            timestamp: wire::iso8601(wire::now_ms()),
            attributes: e.attributes.clone(),
            group_id,
            dedup_id,
            sequence_number,
            base_url: base_url.to_string(),
        };
        let attr_view: Vec<(String, String, String)> = e
            .attributes
            .iter()
            .filter_map(|(k, a)| {
                a.string_value
                    .as_ref()
                    .map(|v| (k.clone(), a.data_type.clone(), v.clone()))
            })
            .collect();
        let mut prepared = Prepared {
            message_id: published.message_id.clone(),
            sequence_number: published.sequence_number.clone(),
            sqs: Vec::new(),
            http: Vec::new(),
        };
        for s in subs {
            if let Some(f) = s.filter() {
                let pass = match f.scope() {
                    Scope::MessageAttributes => f.matches_attributes(&attr_view),
                    Scope::MessageBody => f.matches_body(&message),
                };
                if !pass {
                    continue;
                }
            }
            let text = match &structured {
                Some(map) => map
                    .get(&s.protocol)
                    .and_then(|v| v.as_str())
                    .or_else(|| map.get("default").and_then(|v| v.as_str()))
                    .unwrap_or("")
                    .to_string(),
                None => message.clone(),
            };
            let raw = s.raw();
            let body = if raw {
                text
            } else {
                delivery::notification_json(&published, &text, &s.arn)
            };
            if s.protocol == "sqs" {
                let fifo_queue = s.endpoint.ends_with(".fifo");
                let msg = SendMessage {
                    body,
                    attributes: if raw {
                        delivery::sqs_attributes(&published.attributes)
                    } else {
                        Default::default()
                    },
                    group_id: published.group_id.clone(),
                    deduplication_id: if fifo_queue {
                        published.dedup_id.clone()
                    } else {
                        None
                    },
                    ..Default::default()
                };
                prepared.sqs.push(SqsCopy {
                    queue_arn: s.endpoint.clone(),
                    dead_letter_arn: s.dead_letter_arn(),
                    sub_arn: s.arn.clone(),
                    msg,
                });
            } else {
                let mut headers = vec![
                    (
                        "x-amz-sns-message-type".to_string(),
                        "Notification".to_string(),
                    ),
                    (
                        "x-amz-sns-message-id".to_string(),
                        published.message_id.clone(),
                    ),
                    ("x-amz-sns-topic-arn".to_string(), topic.arn.clone()),
                    ("x-amz-sns-subscription-arn".to_string(), s.arn.clone()),
                ];
                if raw {
                    headers.push(("x-amz-sns-rawdelivery".to_string(), "true".to_string()));
                }
                let policy = s
                    .attributes
                    .get("DeliveryPolicy")
                    .or(topic.attributes.get("DeliveryPolicy"))
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    .and_then(|v| RetryPolicy::from_json(&v))
                    .unwrap_or_default();
                prepared.http.push(PendingDelivery::new(
                    s.endpoint.clone(),
                    headers,
                    body,
                    policy,
                    s.dead_letter_arn(),
                    s.arn.clone(),
                ));
            }
        }
        Ok(prepared)
    }

    /// Delivers prepared messages of one topic and answers, per message, Ok once every SQS copy is
    /// stored (or dropped as AWS drops it: queue gone or copy refused, after the subscription's
    /// dead-letter queue was tried) and its HTTP(S) deliveries are recorded.
    ///
    /// The copies bound for one queue go in one `send_messages` call (split only where the engine's
    /// batch size limit requires), so they cost one commit whatever the number of messages; the HTTP
    /// delivery records of all messages are one commit; all of these run concurrently. Only a
    /// storage failure fails a message (its copy might not be durable).
    async fn deliver(
        self: &Arc<Self>,
        topic_arn: &str,
        batch: Vec<Prepared>,
    ) -> Vec<SnsResult<()>> {
        let mut results: Vec<SnsResult<()>> = batch.iter().map(|_| Ok(())).collect();
        // Copies per target queue, in message order (FIFO order within a group is kept).
        let mut by_queue: BTreeMap<String, Vec<(usize, SqsCopy)>> = BTreeMap::new();
        let mut http: Vec<(usize, PendingDelivery)> = Vec::new();
        for (i, p) in batch.into_iter().enumerate() {
            for c in p.sqs {
                let name = delivery::queue_name_of_arn(&c.queue_arn)
                    .unwrap_or("")
                    .to_string();
                by_queue.entry(name).or_default().push((i, c));
            }
            http.extend(p.http.into_iter().map(|h| (i, h)));
        }
        let mut sends = Vec::new();
        for (queue, copies) in by_queue {
            for chunk in size_chunks(copies) {
                let mut meta = Vec::with_capacity(chunk.len());
                let mut msgs = Vec::with_capacity(chunk.len());
                for (i, c) in chunk {
                    // Kept only when a dead-letter queue may need the copy.
                    let fallback = c.dead_letter_arn.as_ref().map(|_| c.msg.clone());
                    meta.push((i, c.sub_arn, c.dead_letter_arn, fallback));
                    msgs.push(c.msg);
                }
                let engine = self.engine.clone();
                let queue = queue.clone();
                let task =
                    tokio::spawn(async move { engine.send_messages(&queue, msgs, "sns").await });
                sends.push((meta, task));
            }
        }
        let ops: Vec<Op> = http.iter().map(|(_, h)| h.put_op()).collect();
        match self.commit(ops).await {
            Ok(()) => {
                for (_, job) in http {
                    self.spawn_delivery(job);
                }
            }
            Err(e) => {
                for (i, _) in &http {
                    results[*i] = Err(SnsError::internal(format!(
                        "recording an HTTP delivery failed: {}",
                        e.message
                    )));
                }
            }
        }
        for (meta, task) in sends {
            let outcome: Vec<Result<(), EngineError>> = match task.await {
                Ok(Ok(per_message)) => per_message.into_iter().map(|r| r.map(|_| ())).collect(),
                Ok(Err(e)) => meta.iter().map(|_| Err(e.clone())).collect(),
                Err(join) => meta
                    .iter()
                    .map(|_| Err(EngineError::Internal(join.to_string())))
                    .collect(),
            };
            for ((i, sub_arn, dlq, fallback), result) in meta.into_iter().zip(outcome) {
                let Err(err) = result else { continue };
                tracing::warn!(subscription = %sub_arn, error = %err, "SNS delivery to SQS failed");
                let mut internal = matches!(err, EngineError::Internal(_));
                if let (Some(dlq), Some(msg)) = (dlq, fallback) {
                    if let Err(e2) = delivery::send_to_queue(&self.engine, &dlq, msg, "sns").await {
                        tracing::warn!(subscription = %sub_arn, dlq, error = %e2, "SNS dead-letter delivery failed");
                        internal |= matches!(e2, EngineError::Internal(_));
                    }
                }
                if internal && results[i].is_ok() {
                    results[i] = Err(SnsError::internal(format!(
                        "delivery to an SQS subscriber failed: {err}"
                    )));
                }
            }
        }
        let ok = results.iter().filter(|r| r.is_ok()).count() as u64;
        if ok > 0 {
            if let Ok(mut counts) = self.published.lock() {
                *counts.entry(topic_arn.to_string()).or_default() += ok;
            }
        }
        results
    }
}

/// What one PublishBatch entry comes to: its MessageId and SequenceNumber, or its error.
type EntryOutcome = SnsResult<(String, Option<String>)>;

/// A message ready to be delivered (see [`Inner::prepare`]).
struct Prepared {
    message_id: String,
    sequence_number: Option<String>,
    sqs: Vec<SqsCopy>,
    http: Vec<PendingDelivery>,
}

/// One copy for an SQS subscriber.
struct SqsCopy {
    queue_arn: String,
    dead_letter_arn: Option<String>,
    sub_arn: String,
    msg: SendMessage,
}

/// Splits one queue's copies into runs the engine accepts in one `send_messages` call (its batch
/// limit is on the total size; a single message is checked on its own).
fn size_chunks(copies: Vec<(usize, SqsCopy)>) -> Vec<Vec<(usize, SqsCopy)>> {
    let limit = sluice_engine::attributes::MAX_MESSAGE_SIZE as usize;
    let mut chunks: Vec<Vec<(usize, SqsCopy)>> = Vec::new();
    let mut size = 0usize;
    for (i, c) in copies {
        let n = send_size(&c.msg);
        match chunks.last_mut() {
            Some(last) if size + n <= limit => {
                size += n;
                last.push((i, c));
            }
            _ => {
                size = n;
                chunks.push(vec![(i, c)]);
            }
        }
    }
    chunks
}

/// A message's size as the engine's batch limit counts it (body and attributes).
fn send_size(m: &SendMessage) -> usize {
    m.body.len()
        + m.attributes
            .iter()
            .map(|(k, v)| {
                k.len()
                    + v.data_type.len()
                    + v.string_value.as_ref().map_or(0, |s| s.len())
                    + v.binary_value.as_ref().map_or(0, |b| b.len())
            })
            .sum::<usize>()
}

struct Entry {
    message: Option<String>,
    subject: Option<String>,
    structure: Option<String>,
    attributes: BTreeMap<String, MsgAttr>,
    group_id: Option<String>,
    dedup_id: Option<String>,
}

impl Entry {
    fn size(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.len())
            + self
                .attributes
                .iter()
                .map(|(k, a)| {
                    k.len()
                        + a.data_type.len()
                        + a.string_value.as_ref().map_or(0, |s| s.len())
                        + a.binary_value.as_ref().map_or(0, |b| b.len())
                })
                .sum::<usize>()
    }
}

fn check_fifo_id(name: &str, v: &str) -> SnsResult<()> {
    if v.is_empty() || v.len() > 128 || !v.chars().all(|c| c.is_ascii_graphic()) {
        return Err(SnsError::invalid(format!(
            "Invalid parameter: {name} Reason: must be 1-128 printable ASCII characters"
        )));
    }
    Ok(())
}

fn validate_message_attributes(attrs: &BTreeMap<String, MsgAttr>) -> SnsResult<()> {
    if attrs.len() > 10 {
        // AWS allows more on SNS itself, but SQS subscribers accept at most 10; keep the SNS limit loose.
        if attrs.len() > 50 {
            return Err(SnsError::invalid_value(
                "Number of message attributes exceeds the limit",
            ));
        }
    }
    for (name, a) in attrs {
        if name.is_empty()
            || name.len() > 256
            || name.starts_with('.')
            || name.ends_with('.')
            || name.contains("..")
            || name.to_ascii_lowercase().starts_with("aws.")
            || name.to_ascii_lowercase().starts_with("amazon.")
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        {
            return Err(SnsError::invalid_value(format!(
                "The message attribute name '{name}' is invalid."
            )));
        }
        let base = a.data_type.split('.').next().unwrap_or("");
        match base {
            "String" | "Number" if a.string_value.is_none() => {
                return Err(SnsError::invalid_value(format!(
                    "The message attribute '{name}' must contain non-empty message attribute value for message attribute type '{}'.",
                    a.data_type
                )))
            }
            "Binary" if a.binary_value.is_none() => {
                return Err(SnsError::invalid_value(format!(
                    "The message attribute '{name}' must contain non-empty message attribute value for message attribute type 'Binary'."
                )))
            }
            "String" | "Number" | "Binary" => {}
            _ => {
                return Err(SnsError::invalid_value(format!(
                    "The message attribute '{name}' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String."
                )))
            }
        }
        if base == "Number" {
            let v = a.string_value.as_deref().unwrap_or("");
            if v.trim()
                .parse::<f64>()
                .map(|f| !f.is_finite())
                .unwrap_or(true)
            {
                return Err(SnsError::invalid_value(format!(
                    "An error occurred while parsing the message attribute '{name}' value '{v}' as Number."
                )));
            }
        }
        if a.data_type == "String.Array" {
            let v = a.string_value.as_deref().unwrap_or("");
            if !matches!(
                serde_json::from_str::<serde_json::Value>(v),
                Ok(serde_json::Value::Array(_))
            ) {
                return Err(SnsError::invalid_value(format!(
                    "The message attribute '{name}' with type 'String.Array' has invalid value '{v}'."
                )));
            }
        }
    }
    Ok(())
}

fn validate_tags(tags: &BTreeMap<String, String>) -> SnsResult<()> {
    if tags.len() > 50 {
        return Err(SnsError::new(
            "TagLimitExceeded",
            400,
            "Could not complete request: tag quota of per resource exceeded",
        ));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > 128 || v.len() > 256 || k.starts_with("aws:") {
            return Err(SnsError::invalid(format!(
                "Invalid parameter: Tags Reason: invalid tag {k}"
            )));
        }
    }
    Ok(())
}

fn page_start(p: &Params) -> SnsResult<usize> {
    match p.get("NextToken") {
        None | Some("") => Ok(0),
        Some(t) => t
            .parse()
            .map_err(|_| SnsError::invalid("Invalid parameter: NextToken")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::clock::SystemClock;
    use sluice_engine::{EngineConfig, ReceiveOptions};
    use sluice_store::memory::MemoryBackend;
    use sluice_store::Store;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const ACCOUNT: &str = "000000000000";

    fn engine() -> Arc<Engine> {
        let store = Arc::new(Store::new(Arc::new(MemoryBackend::new())));
        let config = EngineConfig::new("us-east-1", ACCOUNT, vec![7; 32]);
        Arc::new(Engine::open(config, Arc::new(SystemClock), store).unwrap())
    }

    async fn call(sns: &Sns, body: &str) -> (u16, String) {
        let req = Request {
            method: "POST",
            path: "/",
            query: None,
            content_type: Some("application/x-www-form-urlencoded"),
            target: None,
            host: Some("sluice.test:9324"),
            scheme: "http",
            body: body.as_bytes(),
        };
        let resp = sns.handle(&req).await;
        (resp.status, String::from_utf8(resp.body).unwrap())
    }

    fn enc(s: &str) -> String {
        form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }

    fn commits(engine: &Engine) -> u64 {
        engine.store().stats().commits.load(Ordering::Relaxed)
    }

    async fn receive_all(engine: &Engine, queue: &str) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let opts = ReceiveOptions {
                max_number_of_messages: Some(10),
                ..Default::default()
            };
            let got = engine.receive_messages(queue, &opts).await.unwrap();
            if got.is_empty() {
                return out;
            }
            out.extend(got.into_iter().map(|m| m.body));
        }
    }

    async fn topic_with_queues(engine: &Arc<Engine>, sns: &Sns, queues: &[&str]) -> String {
        let (status, _) = call(sns, "Action=CreateTopic&Version=2010-03-31&Name=t").await;
        assert_eq!(status, 200);
        let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:t");
        for q in queues {
            engine
                .create_queue(q, &BTreeMap::new(), &BTreeMap::new())
                .await
                .unwrap();
            let endpoint = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{q}");
            let (status, body) = call(
                sns,
                &format!(
                    "Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=sqs&Endpoint={}",
                    enc(&topic),
                    enc(&endpoint)
                ),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        topic
    }

    fn batch_body(topic: &str, n: usize) -> String {
        let mut body = format!(
            "Action=PublishBatch&Version=2010-03-31&TopicArn={}",
            enc(topic)
        );
        for i in 1..=n {
            body.push_str(&format!(
                "&PublishBatchRequestEntries.member.{i}.Id=e{i}&PublishBatchRequestEntries.member.{i}.Message=m{i}"
            ));
        }
        body
    }

    #[tokio::test]
    async fn publish_batch_commits_once_per_queue() {
        let engine = engine();
        let sns = Sns::open(engine.clone(), SnsOptions::default()).unwrap();
        let topic = topic_with_queues(&engine, &sns, &["q1"]).await;
        let before = commits(&engine);
        let (status, body) = call(&sns, &batch_body(&topic, 10)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body.matches("<MessageId>").count(), 10, "{body}");
        assert_eq!(
            commits(&engine) - before,
            1,
            "ten entries, one subscriber: one commit"
        );
        // Durable before the answer: all ten are receivable, in order.
        let got = receive_all(&engine, "q1").await;
        let messages: Vec<String> = got
            .iter()
            .map(|b| {
                serde_json::from_str::<serde_json::Value>(b).unwrap()["Message"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(
            messages,
            (1..=10).map(|i| format!("m{i}")).collect::<Vec<_>>()
        );

        // Two subscribed queues: at most one commit each (group commit may fold them into one),
        // where one commit per entry and subscriber would be twenty.
        let _ = topic_with_queues(&engine, &sns, &["q2"]).await;
        let before = commits(&engine);
        let (status, _) = call(&sns, &batch_body(&topic, 10)).await;
        assert_eq!(status, 200);
        let used = commits(&engine) - before;
        assert!((1..=2).contains(&used), "{used} commits");
        assert_eq!(receive_all(&engine, "q1").await.len(), 10);
        assert_eq!(receive_all(&engine, "q2").await.len(), 10);
    }

    #[tokio::test]
    async fn publish_batch_keeps_per_entry_failures_and_fifo_order() {
        let engine = engine();
        let sns = Sns::open(engine.clone(), SnsOptions::default()).unwrap();
        let (status, _) = call(
            &sns,
            "Action=CreateTopic&Version=2010-03-31&Name=t.fifo&Attributes.entry.1.key=FifoTopic&Attributes.entry.1.value=true&Attributes.entry.2.key=ContentBasedDeduplication&Attributes.entry.2.value=true",
        )
        .await;
        assert_eq!(status, 200);
        let topic = format!("arn:aws:sns:us-east-1:{ACCOUNT}:t.fifo");
        let mut attrs = BTreeMap::new();
        attrs.insert("FifoQueue".to_string(), "true".to_string());
        engine
            .create_queue("f.fifo", &attrs, &BTreeMap::new())
            .await
            .unwrap();
        let endpoint = format!("arn:aws:sqs:us-east-1:{ACCOUNT}:f.fifo");
        call(&sns, &format!("Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=sqs&Endpoint={}&Attributes.entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true", enc(&topic), enc(&endpoint))).await;
        let mut body = format!(
            "Action=PublishBatch&Version=2010-03-31&TopicArn={}",
            enc(&topic)
        );
        // e2 has no group (fails alone); e4 repeats e1's content (de-duplicated by the queue).
        for (i, (msg, group)) in [("a", "g"), ("b", ""), ("c", "g"), ("a", "g"), ("d", "g")]
            .iter()
            .enumerate()
        {
            let i = i + 1;
            body.push_str(&format!("&PublishBatchRequestEntries.member.{i}.Id=e{i}&PublishBatchRequestEntries.member.{i}.Message={msg}"));
            if !group.is_empty() {
                body.push_str(&format!(
                    "&PublishBatchRequestEntries.member.{i}.MessageGroupId={group}"
                ));
            }
        }
        let before = commits(&engine);
        let (status, resp) = call(&sns, &body).await;
        assert_eq!(status, 200, "{resp}");
        assert_eq!(resp.matches("<SequenceNumber>").count(), 4, "{resp}");
        assert!(
            resp.contains("<Failed><member><Id>e2</Id><Code>InvalidParameter</Code>"),
            "{resp}"
        );
        assert_eq!(commits(&engine) - before, 1);
        let mut got = Vec::new();
        loop {
            let opts = ReceiveOptions {
                max_number_of_messages: Some(10),
                ..Default::default()
            };
            let batch = engine.receive_messages("f.fifo", &opts).await.unwrap();
            if batch.is_empty() {
                break;
            }
            for m in batch {
                got.push(m.body.clone());
                engine
                    .delete_messages("f.fifo", &[m.receipt_handle])
                    .unwrap();
            }
        }
        assert_eq!(got, vec!["a", "c", "d"]);
    }

    #[tokio::test]
    async fn urls_come_from_the_public_url_when_configured() {
        for (public_url, want) in [
            (None, "http://sluice.test:9324/?Action=Unsubscribe"),
            (
                Some("https://sns.example.com:8443/"),
                "https://sns.example.com:8443/?Action=Unsubscribe",
            ),
        ] {
            let engine = engine();
            let options = SnsOptions {
                public_url: public_url.map(str::to_string),
                ca_file: None,
            };
            let sns = Sns::open(engine.clone(), options).unwrap();
            let topic = topic_with_queues(&engine, &sns, &["q"]).await;
            call(
                &sns,
                &format!(
                    "Action=Publish&Version=2010-03-31&TopicArn={}&Message=hi",
                    enc(&topic)
                ),
            )
            .await;
            let [body] = receive_all(&engine, "q").await.try_into().unwrap();
            let env: serde_json::Value = serde_json::from_str(&body).unwrap();
            let unsubscribe = env["UnsubscribeURL"].as_str().unwrap();
            assert!(unsubscribe.starts_with(want), "{unsubscribe}");
            let base = want.trim_end_matches("/?Action=Unsubscribe");
            assert_eq!(
                env["SigningCertURL"].as_str().unwrap(),
                format!("{base}/SimpleNotificationService-sluice.pem")
            );
        }
    }

    /// A one-shot-per-connection HTTP server answering 200 and reporting each request body.
    async fn http_sink() -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text[..end]
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                let _ = tx.send(text[end + 4..end + 4 + len].to_string());
                                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, rx)
    }

    fn pending_ids(engine: &Engine) -> Vec<String> {
        let mut ids = Vec::new();
        engine
            .store()
            .scan_kv(&mut |queue, key, _| {
                if queue == KV_QUEUE {
                    if let Some(id) = key.strip_prefix(delivery::PENDING_PREFIX.as_bytes()) {
                        ids.push(String::from_utf8_lossy(id).to_string());
                    }
                }
            })
            .unwrap();
        ids
    }

    async fn wait_until(mut cond: impl FnMut() -> bool) {
        for _ in 0..200 {
            if cond() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("condition not reached within 5 s");
    }

    #[tokio::test]
    async fn recorded_deliveries_resume_at_open_and_are_deleted_when_done() {
        let engine = engine();
        let (url, mut posts) = http_sink().await;
        let topic_arn = format!("arn:aws:sns:us-east-1:{ACCOUNT}:t");
        let sub = Subscription {
            arn: format!("{topic_arn}:11111111-1111-1111-1111-111111111111"),
            topic_arn: topic_arn.clone(),
            protocol: "http".into(),
            endpoint: url.clone(),
            owner: ACCOUNT.into(),
            attributes: BTreeMap::new(),
            confirmed: true,
            token: None,
        };
        let job = PendingDelivery::new(
            url.clone(),
            vec![],
            "left over".into(),
            RetryPolicy::default(),
            None,
            sub.arn.clone(),
        );
        // A delivery for a subscription that is gone since: dropped without a POST.
        let orphan = PendingDelivery::new(
            url.clone(),
            vec![],
            "orphan".into(),
            RetryPolicy::default(),
            None,
            format!("{topic_arn}:gone"),
        );
        let ops = vec![
            Op::PutKv {
                queue: KV_QUEUE,
                key: sub_key(&sub.arn),
                value: serde_json::to_vec(&sub).unwrap(),
            },
            job.put_op(),
            orphan.put_op(),
        ];
        engine.store().commit(ops).await.unwrap();
        assert_eq!(pending_ids(&engine).len(), 2);

        let _sns = Sns::open(engine.clone(), SnsOptions::default()).unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), posts.recv())
            .await
            .unwrap();
        assert_eq!(got.as_deref(), Some("left over"));
        // Both records go (lazy deletes: wait for the writer).
        wait_until(|| pending_ids(&engine).is_empty()).await;
        assert!(
            posts.try_recv().is_err(),
            "the orphan must not be delivered"
        );
    }

    #[tokio::test]
    async fn publish_records_http_deliveries_before_answering() {
        let engine = engine();
        let sns = Sns::open(engine.clone(), SnsOptions::default()).unwrap();
        let (url, mut posts) = http_sink().await;
        let topic = topic_with_queues(&engine, &sns, &[]).await;
        let (status, _) = call(
            &sns,
            &format!(
                "Action=Subscribe&Version=2010-03-31&TopicArn={}&Protocol=http&Endpoint={}",
                enc(&topic),
                enc(&url)
            ),
        )
        .await;
        assert_eq!(status, 200);
        let confirmation: serde_json::Value =
            serde_json::from_str(&posts.recv().await.unwrap()).unwrap();
        let token = confirmation["Token"].as_str().unwrap();
        let (status, _) = call(
            &sns,
            &format!(
                "Action=ConfirmSubscription&Version=2010-03-31&TopicArn={}&Token={token}",
                enc(&topic)
            ),
        )
        .await;
        assert_eq!(status, 200);
        wait_until(|| pending_ids(&engine).is_empty()).await;

        let (status, body) = call(
            &sns,
            &format!(
                "Action=Publish&Version=2010-03-31&TopicArn={}&Message=hello",
                enc(&topic)
            ),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let n: serde_json::Value = serde_json::from_str(&posts.recv().await.unwrap()).unwrap();
        assert_eq!(n["Message"], "hello");
        wait_until(|| pending_ids(&engine).is_empty()).await;
        // With the store closed the delivery cannot be recorded: Publish must fail rather than
        // answer for a delivery a restart would forget.
        engine.store().close().await;
        let (status, body) = call(
            &sns,
            &format!(
                "Action=Publish&Version=2010-03-31&TopicArn={}&Message=lost",
                enc(&topic)
            ),
        )
        .await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("InternalError"), "{body}");
    }

    #[test]
    fn bad_ca_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("sluice-sns-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.pem");
        assert!(delivery::tls_config(Some(&missing))
            .unwrap_err()
            .contains("cannot read CA file"));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert!(delivery::tls_config(Some(&empty))
            .unwrap_err()
            .contains("holds no PEM certificate"));
        let garbage = dir.join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(delivery::tls_config(Some(&garbage)).is_err());
        assert!(delivery::tls_config(None).is_ok());
    }

    #[test]
    fn routing() {
        assert!(is_sns_request(
            None,
            Some("application/x-www-form-urlencoded"),
            b"Action=CreateTopic&Version=2010-03-31&Name=a"
        ));
        assert!(!is_sns_request(
            None,
            Some("application/x-www-form-urlencoded"),
            b"Action=AddPermission&Version=2012-11-05"
        ));
        assert!(is_sns_request(
            Some("Action=AddPermission&Version=2010-03-31"),
            None,
            b""
        ));
        assert!(is_sns_request(
            Some("Action=ConfirmSubscription&TopicArn=x&Token=y"),
            None,
            b""
        ));
        assert!(!is_sns_request(
            None,
            Some("application/x-amz-json-1.0"),
            b"{\"QueueName\":\"a\"}"
        ));
        assert!(!is_sns_request(Some("Action=ListQueues"), None, b""));
    }
}
