//! The JSON documents subscribers receive: the Notification envelope and the
//! SubscriptionConfirmation, with AWS's field order, URLs and a stand-in signature.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::action::MsgAttr;

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
        attrs.insert(name.as_str(), EnvAttr { ty: &a.data_type, value });
    }
    let mut fields = vec![("Message", message), ("MessageId", p.message_id.as_str())];
    if let Some(s) = &p.subject {
        fields.push(("Subject", s));
    }
    fields.extend([("Timestamp", p.timestamp.as_str()), ("TopicArn", p.topic_arn.as_str()), ("Type", "Notification")]);
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

pub fn confirmation_json(base_url: &str, topic_arn: &str, token: &str, timestamp: &str) -> (String, String) {
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
