//! An SNS-compatible topics API for sluice: topics, subscriptions (SQS queues of this server and
//! HTTP/HTTPS endpoints), filter policies, fan-out.
//!
//! SNS speaks only the Query protocol (`Action=...&Version=2010-03-31`, XML answers). The server
//! routes a request here when [`is_sns_request`] says so; [`Sns::handle`] answers it.
//!
//! Durability: topics and subscriptions are JSON records in the store's kv table under queue id 0
//! (never an SQS queue id), keys `sns/topic/<arn>` and `sns/sub/<arn>`, committed durably before the
//! answer. A successful Publish means every SQS subscriber's copy is stored (the engine's durable
//! send). HTTP deliveries run in the background with retries and do not hold up Publish.

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

use crate::delivery::{HttpClient, HttpJob, Published, RetryPolicy};
use crate::filter::{FilterPolicy, Scope};
use crate::wire::{el, map_xml, MsgAttr, Params, SnsError, SnsResult};

/// The SNS API version; the server routes requests carrying it here.
pub const VERSION: &str = "2010-03-31";
/// The kv "queue id" reserved for SNS records.
const KV_QUEUE: u64 = 0;
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

impl Sns {
    /// Recovers topics and subscriptions from the engine's store.
    pub fn open(engine: Arc<Engine>) -> Result<Sns, String> {
        let mut state = State::default();
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
                }
            })
            .map_err(|e| e.to_string())?;
        if bad > 0 {
            tracing::error!(bad, "SNS records could not be decoded and were skipped");
        }
        tracing::info!(
            topics = state.topics.len(),
            subscriptions = state.subs.len(),
            "SNS recovered"
        );
        let region = engine.region().to_string();
        let account = engine.account_id().to_string();
        Ok(Sns {
            inner: Arc::new(Inner {
                engine,
                region,
                account,
                state: Mutex::new(state),
                writes: tokio::sync::Mutex::new(()),
                http: delivery::http_client(),
                seq: AtomicU64::new(wire::now_ms() << 20),
                published: Mutex::new(BTreeMap::new()),
            }),
        })
    }

    /// Answers one SNS request.
    /// Every topic with its subscription counts and published total, sorted by ARN.
    pub fn overviews(&self) -> Vec<TopicOverview> {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let published = self.inner.published.lock().map(|p| p.clone()).unwrap_or_default();
        state
            .topics
            .values()
            .map(|t| {
                let subs = state.subs.values().filter(|s| s.topic_arn == t.arn);
                let (confirmed, pending) = subs.fold((0, 0), |(c, p), s| if s.confirmed { (c + 1, p) } else { (c, p + 1) });
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

    pub async fn handle(&self, req: &Request<'_>) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        let params = Params::parse(req.query, req.body);
        let base_url = format!("http://{}", req.host.unwrap_or("127.0.0.1:9324"));
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

    fn validate_sub_attrs(
        &self,
        attrs: &BTreeMap<String, String>,
        protocol: &str,
        current: &BTreeMap<String, String>,
    ) -> SnsResult<()> {
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
                    Scope::parse(v).map_err(SnsError::invalid)?;
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
                .map_err(SnsError::invalid)?
                .unwrap_or(Scope::MessageAttributes);
            FilterPolicy::parse(text, scope).map_err(SnsError::invalid)?;
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
        self.validate_sub_attrs(&attrs, &protocol, &BTreeMap::new())?;
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
        self.commit(vec![Op::PutKv {
            queue: KV_QUEUE,
            key: sub_key(&arn),
            value,
        }])
        .await?;
        self.lock().subs.insert(arn.clone(), sub);
        if let Some(token) = token {
            let (message_id, body) = delivery::confirmation_json(
                base_url,
                &topic_arn,
                &token,
                &wire::iso8601(wire::now_ms()),
            );
            let job = HttpJob {
                url: endpoint,
                headers: vec![
                    ("x-amz-sns-message-type", "SubscriptionConfirmation".into()),
                    ("x-amz-sns-message-id", message_id),
                    ("x-amz-sns-topic-arn", topic_arn),
                ],
                body,
                policy: RetryPolicy {
                    num_retries: 2,
                    num_no_delay_retries: 0,
                    num_min_delay_retries: 2,
                    min_delay: 1.0,
                    max_delay: 1.0,
                },
                dead_letter_arn: None,
                sub_arn: arn.clone(),
            };
            tokio::spawn(delivery::deliver_http(
                self.http.clone(),
                self.engine.clone(),
                job,
            ));
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
        self.validate_sub_attrs(&one, &s.protocol, &s.attributes)?;
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
        self.commit(vec![Op::PutKv { queue: KV_QUEUE, key: topic_key(&arn), value: bytes }]).await?;
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
        let (message_id, seq) = self.publish_one(&topic, entry, base_url).await?;
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
        let mut ok = String::from("<Successful>");
        let mut failed = String::from("<Failed>");
        for (id, e) in entries {
            match self.publish_one(&topic, e, base_url).await {
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

    /// Validates one message and fans it out. SQS copies are durable when this returns Ok.
    async fn publish_one(
        self: &Arc<Self>,
        topic: &Topic,
        e: Entry,
        base_url: &str,
    ) -> SnsResult<(String, Option<String>)> {
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
        let subs: Vec<Subscription> = self
            .lock()
            .subs
            .values()
            .filter(|s| s.topic_arn == topic.arn && s.confirmed)
            .cloned()
            .collect();
        let attr_view: Vec<(String, String, String)> = e
            .attributes
            .iter()
            .filter_map(|(k, a)| {
                a.string_value
                    .as_ref()
                    .map(|v| (k.clone(), a.data_type.clone(), v.clone()))
            })
            .collect();
        let mut sqs_tasks = Vec::new();
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
                text.clone()
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
                let engine = self.engine.clone();
                let dlq = s.dead_letter_arn();
                let sub_arn = s.arn.clone();
                let endpoint = s.endpoint.clone();
                sqs_tasks.push(tokio::spawn(async move {
                    match delivery::send_to_queue(&engine, &endpoint, msg.clone(), "sns").await {
                        Ok(()) => Ok(()),
                        Err(err) => {
                            tracing::warn!(subscription = %sub_arn, error = %err, "SNS delivery to SQS failed");
                            match dlq {
                                Some(d) => delivery::send_to_queue(&engine, &d, msg, "sns").await.map_err(|e2| (err, Some(e2))),
                                None => Err((err, None)),
                            }
                        }
                    }
                }));
            } else {
                let mut headers = vec![
                    ("x-amz-sns-message-type", "Notification".to_string()),
                    ("x-amz-sns-message-id", published.message_id.clone()),
                    ("x-amz-sns-topic-arn", topic.arn.clone()),
                    ("x-amz-sns-subscription-arn", s.arn.clone()),
                ];
                if raw {
                    headers.push(("x-amz-sns-rawdelivery", "true".into()));
                }
                let policy = s
                    .attributes
                    .get("DeliveryPolicy")
                    .or(topic.attributes.get("DeliveryPolicy"))
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    .and_then(|v| RetryPolicy::from_json(&v))
                    .unwrap_or_default();
                let job = HttpJob {
                    url: s.endpoint.clone(),
                    headers,
                    body,
                    policy,
                    dead_letter_arn: s.dead_letter_arn(),
                    sub_arn: s.arn.clone(),
                };
                tokio::spawn(delivery::deliver_http(
                    self.http.clone(),
                    self.engine.clone(),
                    job,
                ));
            }
        }
        for t in sqs_tasks {
            match t.await {
                Ok(Ok(())) => {}
                // Only a storage failure fails the Publish (the copy might not be durable). A queue that
                // is gone, or a copy the queue refuses, is dropped as AWS drops it (after the
                // dead-letter queue, if any, was tried).
                Ok(Err((err, dlq_err))) => {
                    let internal = matches!(err, EngineError::Internal(_))
                        || matches!(dlq_err, Some(EngineError::Internal(_)));
                    if internal {
                        return Err(SnsError::internal(format!(
                            "delivery to an SQS subscriber failed: {err}"
                        )));
                    }
                }
                Err(join) => return Err(SnsError::internal(join.to_string())),
            }
        }
        if let Ok(mut counts) = self.published.lock() {
            *counts.entry(topic.arn.clone()).or_default() += 1;
        }
        Ok((published.message_id, published.sequence_number))
    }
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
